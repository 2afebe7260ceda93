// examples/parallel_sum.cpp: parallel_for and task_group over a vector.
#include <atomic>   // atomic
#include <exception>  // exception
#include <cstdio>   // printf, fprintf
#include <numeric>  // iota
#include <vector>   // vector

#include <forkline/forkline.hpp>  // runtime, parallel_for, task_group

namespace {
int run_example() {
    forkline::runtime rt;
    std::vector<long> v(1'000'000);
    std::iota(v.begin(), v.end(), 1L);

    // Square in place with a parallel loop, then sum in chunks with a task group.
    const long total = rt.run([&] {
        forkline::parallel_for(std::size_t{0}, v.size(), [&](std::size_t i) { v[i] = v[i] % 1000; });
        std::vector<long> partial(64, 0);
        forkline::task_group tg;
        const std::size_t chunk = v.size() / partial.size();
        for (std::size_t c = 0; c < partial.size(); ++c) {
            tg.spawn([&, c] {
                for (std::size_t i = c * chunk; i < (c + 1) * chunk; ++i) partial[c] += v[i];
            });
        }
        tg.wait();
        return std::accumulate(partial.begin(), partial.end(), 0L);
    });
    long want = 0;
    for (long i = 1; i <= 1'000'000; ++i) want += i % 1000;
    std::printf("sum = %ld on %u workers\n", total, rt.worker_count());
    if (total != want) {
        std::fprintf(stderr, "wrong: expected %ld\n", want);
        return 1;
    }
    return 0;
}
}  // namespace

int main(int, char** argv) {
    try {
        return run_example();
    } catch (const std::exception& e) {  // a bad FORKLINE_* setting, a failed system call
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 2;
    }
}

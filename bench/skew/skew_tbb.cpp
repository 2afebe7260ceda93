// bench/skew/skew_tbb.cpp: skew on oneTBB: one task_group, every task run() from one thread.
#include <tbb/global_control.h>  // global_control
#include <tbb/task_arena.h>      // task_arena
#include <tbb/task_group.h>      // task_group

#include <cstdint>  // uint64_t, int64_t
#include <vector>   // vector

#include "skew.hpp"  // run_skew_tbb, skew_spin, skew_seed

namespace forkline_bench {

sample run_skew_tbb(unsigned tasks, std::uint64_t iterations, unsigned workers) {
    const int threads = static_cast<int>(workers);
    // As for fib: the cap and the arena both count the calling thread.
    tbb::global_control cap(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    arena.initialize();
    std::vector<std::uint64_t> results(tasks);
    return warm_up_then_time([&] {
        return arena.execute([&] {
            tbb::task_group tg;
            for (unsigned t = 0; t < tasks; ++t) {
                tg.run([&results, t, iterations] { results[t] = skew_spin(skew_seed(t), iterations); });
            }
            tg.wait();
            std::uint64_t sum = 0;
            for (const std::uint64_t r : results) sum += r;
            return static_cast<std::int64_t>(sum);
        });
    });
}

}  // namespace forkline_bench

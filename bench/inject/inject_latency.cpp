// forkline-inject-latency: how long a job submitted from outside waits to
// start while every worker is busy with fork-join that never runs dry
// ("Injection bound" in runtime/DESIGN.md). Prints median, p99 and max of
// submit-to-start over the samples, beside the same figure with the workers
// idle (parked), per worker count.
//   forkline-inject-latency [--workers 1,2] [--samples 400] [--leaf-ns 2000]
#include <algorithm>  // sort
#include <atomic>     // atomic
#include <chrono>     // steady_clock
#include <cstdio>     // printf
#include <cstdlib>    // strtol
#include <cstring>    // strcmp
#include <future>     // future
#include <string>     // string
#include <thread>     // sleep_for
#include <vector>     // vector

#include "forkline/forkline.hpp"  // runtime, invoke

namespace {

using clock_type = std::chrono::steady_clock;

long g_leaf_iterations = 1000;

void busy_tree(int depth, const std::atomic<bool>& stop) {
    if (stop.load(std::memory_order_relaxed)) return;  // relaxed: a flag
    if (depth == 0) {
        volatile long x = 0;
        for (long i = 0; i < g_leaf_iterations; ++i) x = x + i;
        return;
    }
    forkline::invoke([&] { busy_tree(depth - 1, stop); }, [&] { busy_tree(depth - 1, stop); });
}

struct figures {
    double median_us, p99_us, max_us;
};

figures measure(forkline::runtime& rt, int samples, bool busy) {
    std::atomic<bool> stop{false};
    std::future<void> load;
    if (busy) {
        load = rt.submit([&] {
            while (!stop.load(std::memory_order_relaxed)) busy_tree(16, stop);
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::vector<double> waits;
    waits.reserve(static_cast<std::size_t>(samples));
    for (int i = 0; i < samples; ++i) {
        const auto sent = clock_type::now();
        auto f = rt.submit([] { return clock_type::now(); });
        const auto started = f.get();
        waits.push_back(std::chrono::duration<double, std::micro>(started - sent).count());
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    stop.store(true, std::memory_order_relaxed);
    if (busy) load.get();
    std::sort(waits.begin(), waits.end());
    const auto at = [&](double q) { return waits[static_cast<std::size_t>(q * static_cast<double>(waits.size() - 1))]; };
    return {at(0.5), at(0.99), waits.back()};
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<unsigned> counts{1, 2};
    int samples = 400;
    long leaf_ns = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--workers") == 0) {
            counts.clear();
            for (const char* p = argv[i + 1]; *p != '\0';) {
                char* end = nullptr;
                counts.push_back(static_cast<unsigned>(std::strtol(p, &end, 10)));
                p = (*end == ',') ? end + 1 : end;
            }
        } else if (std::strcmp(argv[i], "--samples") == 0) {
            samples = static_cast<int>(std::strtol(argv[i + 1], nullptr, 10));
        } else if (std::strcmp(argv[i], "--leaf-ns") == 0) {
            leaf_ns = std::strtol(argv[i + 1], nullptr, 10);
        } else {
            std::fprintf(stderr, "usage: forkline-inject-latency [--workers L] [--samples N] [--leaf-ns NS]\n");
            return 64;
        }
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    g_leaf_iterations = leaf_ns;  // about 1 ns an iteration on current x86
    std::printf("submit-to-start of a job from outside, %d samples each (leaf ~%ld ns, tree depth 16)\n", samples,
                leaf_ns);
    std::printf("workers  state   median_us    p99_us    max_us\n");
    for (unsigned n : counts) {
        forkline::runtime_config c;
        c.placement.workers = n;
        c.placement.oversubscribe = true;
        c.read_environment = false;
        forkline::runtime rt(c);
        for (bool busy : {false, true}) {
            const figures f = measure(rt, samples, busy);
            std::printf("%7u  %-5s %10.1f %9.1f %9.1f\n", n, busy ? "busy" : "idle", f.median_us, f.p99_us, f.max_us);
        }
    }
    return 0;
}

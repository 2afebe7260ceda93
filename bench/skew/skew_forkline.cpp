// bench/skew/skew_forkline.cpp: skew on forkline: one task_group, every task spawned before any runs.
#include <cstdint>  // uint64_t, int64_t
#include <vector>   // vector

#include <forkline/runtime.hpp>     // runtime, runtime_config
#include <forkline/task_group.hpp>  // task_group

#include "skew.hpp"  // run_skew_forkline, skew_spin, skew_seed

namespace forkline_bench {

sample run_skew_forkline(unsigned tasks, std::uint64_t iterations, unsigned workers) {
    forkline::runtime_config cfg;
    cfg.placement.workers = workers;
    cfg.placement.oversubscribe = true;  // as for fib: a sweep past the core count still runs
    cfg.read_environment = false;        // the command line decides
    forkline::runtime rt(cfg);
    std::vector<std::uint64_t> results(tasks);  // one slot per task, written once
    return warm_up_then_time([&] {
        return rt.run([&] {
            forkline::task_group tg;
            // The spawning worker pushes them all on its own deque, then
            // joins in from wait(); the others get theirs by stealing.
            for (unsigned t = 0; t < tasks; ++t) {
                tg.spawn([&results, t, iterations] { results[t] = skew_spin(skew_seed(t), iterations); });
            }
            tg.wait();
            std::uint64_t sum = 0;
            for (const std::uint64_t r : results) sum += r;
            return static_cast<std::int64_t>(sum);
        });
    });
}

}  // namespace forkline_bench

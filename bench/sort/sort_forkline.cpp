// bench/sort/sort_forkline.cpp: the sort as forkline::parallel_sort (a parallel merge sort).
//
// parallel_sort allocates its merge buffer of n keys inside each call, so the
// timed run includes that allocation and its first touch.
#include <cstddef>  // size_t
#include <cstdint>  // uint64_t

#include <forkline/parallel_sort.hpp>  // parallel_sort
#include <forkline/runtime.hpp>        // runtime, runtime_config

#include "sort.hpp"  // run_sort_forkline, time_sort

namespace forkline_bench {

sample run_sort_forkline(std::size_t n, unsigned workers) {
    forkline::runtime_config cfg;
    cfg.placement.workers = workers;
    cfg.placement.oversubscribe = true;  // as for fib: a sweep past the core count still runs
    cfg.read_environment = false;        // the command line decides
    forkline::runtime rt(cfg);
    return time_sort(n, [&](std::uint64_t* first, std::uint64_t* last) {
        rt.run([&] { forkline::parallel_sort(first, last); });
    });
}

}  // namespace forkline_bench

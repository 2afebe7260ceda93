// bench/reduce/reduce_forkline.cpp: the sum on forkline::parallel_reduce (lazy splitting).
//
// The fill uses static_affinity. The sum's pieces follow stealing, not a
// fixed partition, so after the first steal a worker may read pages another
// placed; on one socket that costs nothing.
#include <cstddef>     // size_t
#include <functional>  // plus

#include <forkline/affinity.hpp>         // static_affinity
#include <forkline/parallel_for.hpp>     // parallel_for
#include <forkline/parallel_reduce.hpp>  // parallel_reduce
#include <forkline/runtime.hpp>          // runtime, runtime_config

#include "reduce.hpp"  // run_reduce_forkline, time_reduce, reduce_value

namespace forkline_bench {

sample run_reduce_forkline(std::size_t n, unsigned workers) {
    forkline::runtime_config cfg;
    cfg.placement.workers = workers;
    cfg.placement.oversubscribe = true;  // as for fib: a sweep past the core count still runs
    cfg.read_environment = false;        // the command line decides
    forkline::runtime rt(cfg);
    return time_reduce(
        n,
        [&](double* x, std::size_t size) {
            rt.run([&] {
                forkline::parallel_for(std::size_t{0}, size, [x](std::size_t i) { x[i] = reduce_value(i); },
                                       forkline::static_affinity);
            });
        },
        [&](const double* x, std::size_t size) {
            return rt.run([&] {
                return forkline::parallel_reduce(
                    std::size_t{0}, size, 0.0,
                    [x](std::size_t lo, std::size_t hi, double acc) {
                        for (std::size_t i = lo; i < hi; ++i) acc += x[i];
                        return acc;
                    },
                    std::plus<>{});
            });
        });
}

}  // namespace forkline_bench

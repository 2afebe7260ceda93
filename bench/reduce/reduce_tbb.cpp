// bench/reduce/reduce_tbb.cpp: the sum on tbb::parallel_reduce with its default (auto) partitioner.
//
// The fill uses static_partitioner, one piece per thread; the sum uses TBB's
// default auto_partitioner, which, like forkline's lazy splitting, cuts
// pieces as threads steal. TBB does not pin its threads.
#include <tbb/blocked_range.h>    // blocked_range
#include <tbb/global_control.h>   // global_control
#include <tbb/parallel_for.h>     // parallel_for
#include <tbb/parallel_reduce.h>  // parallel_reduce
#include <tbb/partitioner.h>      // static_partitioner
#include <tbb/task_arena.h>       // task_arena

#include <cstddef>     // size_t
#include <functional>  // plus

#include "reduce.hpp"  // run_reduce_tbb, time_reduce, reduce_value

namespace forkline_bench {

sample run_reduce_tbb(std::size_t n, unsigned workers) {
    const int threads = static_cast<int>(workers);
    // As in fib_tbb.cpp: `workers` threads in all, the caller included.
    tbb::global_control cap(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    arena.initialize();
    using range = tbb::blocked_range<std::size_t>;
    return time_reduce(
        n,
        [&](double* x, std::size_t size) {
            arena.execute([&] {
                tbb::parallel_for(
                    range(0, size),
                    [x](const range& r) {
                        for (std::size_t i = r.begin(); i < r.end(); ++i) x[i] = reduce_value(i);
                    },
                    tbb::static_partitioner());
            });
        },
        [&](const double* x, std::size_t size) {
            return arena.execute([&] {
                return tbb::parallel_reduce(
                    range(0, size), 0.0,
                    [x](const range& r, double acc) {
                        for (std::size_t i = r.begin(); i < r.end(); ++i) acc += x[i];
                        return acc;
                    },
                    std::plus<>{});
            });
        });
}

}  // namespace forkline_bench

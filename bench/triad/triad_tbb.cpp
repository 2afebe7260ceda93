// bench/triad/triad_tbb.cpp: triad on tbb::parallel_for with tbb::static_partitioner.
//
// static_partitioner cuts the range into one piece per thread of the arena
// and maps pieces to threads by a fixed affinity pattern: the TBB reading of
// OpenMP's schedule(static), and the peer of forkline-affinity. It is used
// for the first touch and for every pass, so the same thread streams the
// pages it placed. TBB does not pin its threads.
#include <tbb/blocked_range.h>   // blocked_range
#include <tbb/global_control.h>  // global_control
#include <tbb/parallel_for.h>    // parallel_for
#include <tbb/partitioner.h>     // static_partitioner
#include <tbb/task_arena.h>      // task_arena

#include <cstddef>  // size_t

#include "triad.hpp"  // run_triad_tbb, time_triad, triad_first_touch, k_triad_scalar

namespace forkline_bench {

sample run_triad_tbb(std::size_t n, unsigned passes, unsigned workers) {
    const int threads = static_cast<int>(workers);
    // As in fib_tbb.cpp: `workers` threads in all, the caller included.
    tbb::global_control cap(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    arena.initialize();
    using range = tbb::blocked_range<std::size_t>;
    return time_triad(
        n, passes,
        [&](const triad_arrays& t) {
            arena.execute([&] {
                tbb::parallel_for(
                    range(0, t.n()),
                    [&t](const range& r) {
                        for (std::size_t i = r.begin(); i < r.end(); ++i) triad_first_touch(t, i);
                    },
                    tbb::static_partitioner());
            });
        },
        [&](const triad_arrays& t, unsigned k) {
            arena.execute([&] {
                double* const a = t.a();
                const double* const b = t.b();
                const double* const c = t.c();
                for (unsigned pass = 0; pass < k; ++pass) {
                    tbb::parallel_for(
                        range(0, t.n()),
                        [a, b, c](const range& r) {
                            for (std::size_t i = r.begin(); i < r.end(); ++i) a[i] = b[i] + k_triad_scalar * c[i];
                        },
                        tbb::static_partitioner());
                }
            });
        });
}

}  // namespace forkline_bench

// bench/loops/loops_tbb.cpp: K tbb::parallel_for loops in one arena, with
// the default (auto) partitioner or static_partitioner.
#include <tbb/blocked_range.h>   // blocked_range
#include <tbb/global_control.h>  // global_control
#include <tbb/parallel_for.h>    // parallel_for
#include <tbb/partitioner.h>     // static_partitioner
#include <tbb/task_arena.h>      // task_arena

#include <cstddef>  // size_t
#include <cstdint>  // uint64_t

#include "loops.hpp"  // run_loops_tbb*, time_loops, loops_step

namespace forkline_bench {
namespace {

template <class Partitioner>
sample run(const loops_shape& shape, unsigned workers) {
    // As in fib_tbb.cpp: `workers` threads in all, the caller included.
    tbb::global_control cap(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(workers));
    tbb::task_arena arena(static_cast<int>(workers));
    arena.initialize();
    using range = tbb::blocked_range<std::size_t>;
    return time_loops(shape, [&](std::uint64_t* x, const loops_shape& s) {
        arena.execute([&] {
            for (unsigned k = 0; k < s.loops; ++k) {
                tbb::parallel_for(
                    range(0, s.elements),
                    [x](const range& r) {
                        for (std::size_t i = r.begin(); i < r.end(); ++i) x[i] = loops_step(x[i]);
                    },
                    Partitioner());
            }
        });
    });
}

}  // namespace

sample run_loops_tbb(const loops_shape& shape, unsigned workers) { return run<tbb::auto_partitioner>(shape, workers); }

sample run_loops_tbb_static(const loops_shape& shape, unsigned workers) {
    return run<tbb::static_partitioner>(shape, workers);
}

}  // namespace forkline_bench

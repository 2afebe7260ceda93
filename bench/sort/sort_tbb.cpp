// bench/sort/sort_tbb.cpp: the sort as tbb::parallel_sort (a parallel quicksort, in place).
#include <tbb/global_control.h>  // global_control
#include <tbb/parallel_sort.h>   // parallel_sort
#include <tbb/task_arena.h>      // task_arena

#include <cstddef>  // size_t
#include <cstdint>  // uint64_t

#include "sort.hpp"  // run_sort_tbb, time_sort

namespace forkline_bench {

sample run_sort_tbb(std::size_t n, unsigned workers) {
    const int threads = static_cast<int>(workers);
    // As in fib_tbb.cpp: `workers` threads in all, the caller included.
    tbb::global_control cap(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    arena.initialize();
    return time_sort(n, [&](std::uint64_t* first, std::uint64_t* last) {
        arena.execute([&] { tbb::parallel_sort(first, last); });
    });
}

}  // namespace forkline_bench

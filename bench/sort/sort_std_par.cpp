// bench/sort/sort_std_par.cpp: the sort as std::sort(std::execution::par, ...),
// what most C++ users try first: libstdc++'s parallel algorithms, which run
// on oneTBB (the only parallel backend libstdc++ ships), hence built with it.
#include <tbb/global_control.h>  // global_control

#include <algorithm>  // sort
#include <cstddef>    // size_t
#include <cstdint>    // uint64_t
#include <execution>  // execution::par

#include "sort.hpp"  // run_sort_std_par, time_sort

namespace forkline_bench {

sample run_sort_std_par(std::size_t n, unsigned workers) {
    // The policy takes no thread count: oneTBB's global cap is how a user
    // limits it, `workers` threads in all.
    tbb::global_control cap(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(workers));
    return time_sort(n, [&](std::uint64_t* first, std::uint64_t* last) {
        std::sort(std::execution::par, first, last);
    });
}

}  // namespace forkline_bench

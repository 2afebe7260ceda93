// bench/sort/sort_serial.cpp: the sort as std::sort on one thread.
#include <algorithm>  // sort
#include <cstddef>    // size_t
#include <cstdint>    // uint64_t

#include "sort.hpp"  // run_sort_serial, time_sort

namespace forkline_bench {

sample run_sort_serial(std::size_t n) {
    return time_sort(n, [](std::uint64_t* first, std::uint64_t* last) { std::sort(first, last); });
}

}  // namespace forkline_bench

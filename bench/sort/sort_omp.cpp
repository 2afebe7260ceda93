// bench/sort/sort_omp.cpp: the sort as __gnu_parallel::sort, libstdc++'s OpenMP parallel mode.
//
// Built into forkline-bench-openmp.so (see bench/openmp_module.hpp), and
// only by g++ (bench/sort/meson.build). With its default settings it runs a
// multiway merge sort on omp_get_max_threads() threads, and falls back to
// std::sort below 1000 keys or when that is 1.
#include <omp.h>  // omp_set_dynamic, omp_set_num_threads

#include <cstddef>             // size_t
#include <cstdint>             // uint64_t
#include <parallel/algorithm>  // __gnu_parallel::sort

#include "sort.hpp"  // forkline_bench_sort_omp, time_sort

extern "C" void forkline_bench_sort_omp(std::size_t n, unsigned workers, forkline_bench::sample* out) {
    using namespace forkline_bench;
    omp_set_dynamic(0);  // exactly `workers` in each team, never fewer
    omp_set_num_threads(static_cast<int>(workers));
    *out = time_sort(n, [](std::uint64_t* first, std::uint64_t* last) { __gnu_parallel::sort(first, last); });
}

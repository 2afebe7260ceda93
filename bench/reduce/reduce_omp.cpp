// bench/reduce/reduce_omp.cpp: the sum as `parallel for reduction(+:s) schedule(static)`.
//
// Built into forkline-bench-openmp.so (see bench/openmp_module.hpp). The fill
// uses the same schedule(static) partition, so each bound thread sums the
// pages it placed.
#include <omp.h>  // omp_set_dynamic

#include <cstddef>  // size_t

#include "reduce.hpp"  // forkline_bench_reduce_omp, time_reduce, reduce_value

extern "C" void forkline_bench_reduce_omp(std::size_t n, unsigned workers, forkline_bench::sample* out) {
    using namespace forkline_bench;
    const int threads = static_cast<int>(workers);
    omp_set_dynamic(0);  // exactly `threads` in each team, never fewer
    *out = time_reduce(
        n,
        [threads](double* x, std::size_t size) {
#pragma omp parallel for schedule(static) num_threads(threads)
            for (std::size_t i = 0; i < size; ++i) x[i] = reduce_value(i);
        },
        [threads](const double* x, std::size_t size) {
            double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static) num_threads(threads)
            for (std::size_t i = 0; i < size; ++i) s += x[i];
            return s;
        });
}

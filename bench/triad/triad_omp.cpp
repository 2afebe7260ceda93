// bench/triad/triad_omp.cpp: triad as `parallel for schedule(static)`, STREAM's own form.
//
// Built into forkline-bench-openmp.so (see bench/openmp_module.hpp). The
// first touch uses the same schedule(static) partition as the passes, and
// the threads are bound (OMP_PROC_BIND=close, OMP_PLACES=cores), so each
// thread streams the pages it placed.
#include <omp.h>  // omp_set_dynamic

#include <cstddef>  // size_t

#include "triad.hpp"  // forkline_bench_triad_omp, time_triad, triad_first_touch, k_triad_scalar

extern "C" void forkline_bench_triad_omp(std::size_t n, unsigned passes, unsigned workers,
                                         forkline_bench::sample* out) {
    using namespace forkline_bench;
    const int threads = static_cast<int>(workers);
    omp_set_dynamic(0);  // exactly `threads` in each team, never fewer
    *out = time_triad(
        n, passes,
        [threads](const triad_arrays& t) {
            const std::size_t size = t.n();
#pragma omp parallel for schedule(static) num_threads(threads)
            for (std::size_t i = 0; i < size; ++i) triad_first_touch(t, i);
        },
        [threads](const triad_arrays& t, unsigned k) {
            double* const a = t.a();
            const double* const b = t.b();
            const double* const c = t.c();
            const std::size_t size = t.n();
            for (unsigned pass = 0; pass < k; ++pass) {
#pragma omp parallel for schedule(static) num_threads(threads)
                for (std::size_t i = 0; i < size; ++i) a[i] = b[i] + k_triad_scalar * c[i];
            }
        });
}

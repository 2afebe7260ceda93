// bench/triad/triad_serial.cpp: triad as a plain loop on one thread, the single-core bandwidth.
#include <cstddef>  // size_t

#include "triad.hpp"  // run_triad_serial, time_triad, triad_first_touch, k_triad_scalar

namespace forkline_bench {

sample run_triad_serial(std::size_t n, unsigned passes) {
    return time_triad(
        n, passes,
        [](const triad_arrays& t) {
            for (std::size_t i = 0; i < t.n(); ++i) triad_first_touch(t, i);
        },
        [](const triad_arrays& t, unsigned k) {
            double* const a = t.a();
            const double* const b = t.b();
            const double* const c = t.c();
            const std::size_t size = t.n();
            for (unsigned pass = 0; pass < k; ++pass) {
                for (std::size_t i = 0; i < size; ++i) a[i] = b[i] + k_triad_scalar * c[i];
                // Every pass stores the same values; the clobber keeps the
                // compiler from proving the later ones redundant, as the
                // parallel variants' opaque calls into their runtimes do.
                asm volatile("" : : : "memory");
            }
        });
}

}  // namespace forkline_bench

// bench/loops/loops_omp.cpp: one parallel region, K `omp for
// schedule(static)` loops, each ended by its implied barrier: the team stays
// together (and spins, as libgomp's barrier does first) between loops.
//
// Built into forkline-bench-openmp.so (see bench/openmp_module.hpp).
#include <omp.h>  // omp_set_dynamic

#include <cstddef>  // size_t
#include <cstdint>  // uint64_t

#include "loops.hpp"  // forkline_bench_loops_omp, time_loops, loops_step

extern "C" void forkline_bench_loops_omp(std::size_t elements, unsigned loops, unsigned workers,
                                         forkline_bench::sample* out) {
    using namespace forkline_bench;
    const int threads = static_cast<int>(workers);
    omp_set_dynamic(0);  // exactly `threads` in the team, never fewer
    *out = time_loops(loops_shape{elements, loops}, [threads](std::uint64_t* x, const loops_shape& s) {
        const auto n = static_cast<long long>(s.elements);
#pragma omp parallel num_threads(threads)
        for (unsigned k = 0; k < s.loops; ++k) {
#pragma omp for schedule(static)
            for (long long i = 0; i < n; ++i) x[i] = loops_step(x[i]);
        }
    });
}

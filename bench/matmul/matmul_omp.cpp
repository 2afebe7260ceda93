// bench/matmul/matmul_omp.cpp: matmul on OpenMP tasks, halves of C forked, inner halves in order.
//
// Built into forkline-bench-openmp.so (see bench/openmp_module.hpp).
#include <omp.h>  // omp_set_dynamic

#include <cstddef>  // size_t

#include "matmul.hpp"  // forkline_bench_matmul_omp, choose_matmul_split, multiply_block, time_matmul

namespace forkline_bench {
namespace {

void multiply(const double* a, const double* b, double* c, std::size_t m, std::size_t n, std::size_t k,
              std::size_t ld) {
    switch (choose_matmul_split(m, n, k)) {
        case matmul_split::none:
            multiply_block(a, b, c, ld);
            return;
        case matmul_split::rows: {
            const std::size_t h = m / 2;
#pragma omp task firstprivate(a, b, c, h, m, n, k, ld)
            multiply(a + h * ld, b, c + h * ld, m - h, n, k, ld);
            multiply(a, b, c, h, n, k, ld);
#pragma omp taskwait
            return;
        }
        case matmul_split::cols: {
            const std::size_t h = n / 2;
#pragma omp task firstprivate(a, b, c, h, m, n, k, ld)
            multiply(a, b + h, c + h, m, n - h, k, ld);
            multiply(a, b, c, m, h, k, ld);
#pragma omp taskwait
            return;
        }
        case matmul_split::inner: {
            const std::size_t h = k / 2;
            multiply(a, b, c, m, n, h, ld);
            multiply(a + h, b + h * ld, c, m, n, k - h, ld);
            return;
        }
    }
}

}  // namespace
}  // namespace forkline_bench

extern "C" void forkline_bench_matmul_omp(std::size_t n, unsigned workers, forkline_bench::sample* out) {
    using namespace forkline_bench;
    const int threads = static_cast<int>(workers);
    omp_set_dynamic(0);  // exactly `threads` in each team, never fewer
    *out = time_matmul(n, [&](double* c, const matmul_problem& p) {
        const double* a = p.a();
        const double* b = p.b();
        const std::size_t size = p.n();
        const std::size_t ld = p.ld();
#pragma omp parallel num_threads(threads) firstprivate(a, b, c, size, ld)
#pragma omp single
        multiply(a, b, c, size, size, size, ld);
    });
}

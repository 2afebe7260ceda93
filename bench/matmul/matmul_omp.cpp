// bench/matmul/matmul_omp.cpp: matmul on OpenMP tasks, halves of C forked, inner halves in order.
//
// Built into forkline-bench-openmp.so (see bench/openmp_module.hpp).
#include <omp.h>  // omp_set_dynamic

#include <cstddef>  // size_t

#include "matmul.hpp"  // forkline_bench_matmul_omp, multiply_recursive, time_matmul

namespace forkline_bench {
namespace {

struct omp_fork {
    template <class F, class G>
    void operator()(F&& first, G&& second) const {
        // shared: `second` lives in the caller's frame until the taskwait.
#pragma omp task shared(second)
        second();
        first();
#pragma omp taskwait
    }
};

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
        multiply_recursive(omp_fork{}, a, b, c, size, size, size, ld);
    });
}

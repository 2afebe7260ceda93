// bench/fib/fib_omp.cpp: fib on OpenMP tasks, forking as forkline::invoke does.
//
// Built into forkline-bench-openmp.so, which only the omp variant's child
// loads, after it has set OMP_PROC_BIND and OMP_PLACES: see
// bench/openmp_module.hpp.
#include <omp.h>  // omp_set_dynamic

#include "fib.hpp"  // forkline_bench_fib_omp

namespace forkline_bench {
namespace {

long fib(int n) {
    if (n < 2) return n;
    long a = 0;
    long b = 0;
#pragma omp task shared(b) firstprivate(n)
    b = fib(n - 2);
    a = fib(n - 1);
#pragma omp taskwait
    return a + b;
}

}  // namespace
}  // namespace forkline_bench

extern "C" void forkline_bench_fib_omp(int n, unsigned workers, forkline_bench::sample* out) {
    using namespace forkline_bench;
    const int threads = static_cast<int>(workers);
    omp_set_dynamic(0);  // exactly `threads` in each team, never fewer
    *out = warm_up_then_time([&] {
        const int arg = opaque(n);
        long result = 0;
#pragma omp parallel num_threads(threads) shared(result) firstprivate(arg)
#pragma omp single
        result = fib(arg);
        return result;
    });
}

// bench/fib/fib_omp.cpp: fib on OpenMP tasks, forking as forkline::invoke does.
//
// OMP_PROC_BIND=close and OMP_PLACES=cores are put in the environment by the
// driver, which re-executes itself when it has to set them: GCC's libgomp
// reads its environment in a constructor when the program loads, so a
// setenv() here, in the child, would come too late for it.
#include <omp.h>  // omp_set_dynamic

#include "fib.hpp"  // run_fib_omp

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

sample run_fib_omp(int n, unsigned workers) {
    const int threads = static_cast<int>(workers);
    omp_set_dynamic(0);  // exactly `threads` in each team, never fewer
    return warm_up_then_time([&] {
        const int arg = opaque(n);
        long result = 0;
#pragma omp parallel num_threads(threads) shared(result) firstprivate(arg)
#pragma omp single
        result = fib(arg);
        return result;
    });
}

}  // namespace forkline_bench

// bench/fib/fib.hpp: fork-join Fibonacci with a spawn at every call with n >= 2.
//
// Every parallel variant forks the same way forkline::invoke(f, g) does:
// g = fib(n - 2) becomes a task that others may steal, f = fib(n - 1) runs at
// once on the spawning thread, then the join waits for g. No serial cutoff,
// so the figure is almost pure spawn and join overhead.
#pragma once

#include <memory>  // unique_ptr

#include "timing.hpp"    // sample
#include "workload.hpp"  // workload

namespace forkline_bench {

std::unique_ptr<workload> make_fib_workload();

// One source file per variant, so that only fib_tbb.cpp sees TBB's flags and
// only fib_omp.cpp is built with -fopenmp. Each sets up its implementation
// with `workers` threads in all, warms up with one fib(n), times a second.
sample run_fib_forkline(int n, unsigned workers);
sample run_fib_serial(int n);
sample run_fib_tbb(int n, unsigned workers);

}  // namespace forkline_bench

/// In forkline-bench-openmp.so, found by name (see bench/openmp_module.hpp).
extern "C" void forkline_bench_fib_omp(int n, unsigned workers, forkline_bench::sample* out);

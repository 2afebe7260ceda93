// bench/fib/fib_forkline.cpp: fib on forkline::invoke.
#include <forkline/invoke.hpp>   // invoke
#include <forkline/runtime.hpp>  // runtime, runtime_config

#include "fib.hpp"  // run_fib_forkline

namespace forkline_bench {
namespace {

long fib(int n) {
    if (n < 2) return n;
    long a = 0;
    long b = 0;
    forkline::invoke([&] { a = fib(n - 1); }, [&] { b = fib(n - 2); });
    return a + b;
}

}  // namespace

sample run_fib_forkline(int n, unsigned workers) {
    forkline::runtime_config cfg;
    cfg.placement.workers = workers;
    // More workers than cores still runs, so a sweep past the core count
    // shows the cost of oversubscription instead of stopping.
    cfg.placement.oversubscribe = true;
    // The command line decides, not a FORKLINE_WORKERS left in the shell.
    cfg.read_environment = false;
    forkline::runtime rt(cfg);
    return warm_up_then_time([&] { return rt.run([&] { return fib(opaque(n)); }); });
}

}  // namespace forkline_bench

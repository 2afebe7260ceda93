// bench/fib/fib_tbb.cpp: fib on oneTBB task_group, forking as forkline::invoke does.
#include <tbb/global_control.h>  // global_control
#include <tbb/task_arena.h>      // task_arena
#include <tbb/task_group.h>      // task_group

#include "fib.hpp"  // run_fib_tbb

namespace forkline_bench {
namespace {

long fib(int n) {
    if (n < 2) return n;
    long a = 0;
    long b = 0;
    tbb::task_group tg;
    tg.run([&] { b = fib(n - 2); });
    a = fib(n - 1);
    tg.wait();
    return a + b;
}

}  // namespace

sample run_fib_tbb(int n, unsigned workers) {
    const int threads = static_cast<int>(workers);
    // The cap and the arena both count the calling thread, which joins the
    // arena in execute(): `workers` threads in all, as for forkline.
    tbb::global_control cap(tbb::global_control::max_allowed_parallelism,
                            static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    arena.initialize();
    return warm_up_then_time([&] { return arena.execute([&] { return fib(opaque(n)); }); });
}

}  // namespace forkline_bench

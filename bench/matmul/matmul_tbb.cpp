// bench/matmul/matmul_tbb.cpp: matmul on oneTBB task_group, halves of C forked, inner halves in order.
#include <tbb/global_control.h>  // global_control
#include <tbb/task_arena.h>      // task_arena
#include <tbb/task_group.h>      // task_group

#include <cstddef>  // size_t

#include "matmul.hpp"  // run_matmul_tbb, multiply_recursive, time_matmul

namespace forkline_bench {
namespace {

struct tbb_fork {
    template <class F, class G>
    void operator()(F&& first, G&& second) const {
        tbb::task_group tg;
        tg.run([&] { second(); });
        first();
        tg.wait();
    }
};

}  // namespace

sample run_matmul_tbb(std::size_t n, unsigned workers) {
    const int threads = static_cast<int>(workers);
    // As for fib: the cap and the arena both count the calling thread.
    tbb::global_control cap(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    arena.initialize();
    return time_matmul(n, [&](double* c, const matmul_problem& p) {
        arena.execute([&] { multiply_recursive(tbb_fork{}, p.a(), p.b(), c, p.n(), p.n(), p.n(), p.ld()); });
    });
}

}  // namespace forkline_bench

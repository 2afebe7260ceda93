// bench/matmul/matmul_tbb.cpp: matmul on oneTBB task_group, halves of C forked, inner halves in order.
#include <tbb/global_control.h>  // global_control
#include <tbb/task_arena.h>      // task_arena
#include <tbb/task_group.h>      // task_group

#include <cstddef>  // size_t

#include "matmul.hpp"  // run_matmul_tbb, choose_matmul_split, multiply_block, time_matmul

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
            tbb::task_group tg;
            tg.run([&] { multiply(a + h * ld, b, c + h * ld, m - h, n, k, ld); });
            multiply(a, b, c, h, n, k, ld);
            tg.wait();
            return;
        }
        case matmul_split::cols: {
            const std::size_t h = n / 2;
            tbb::task_group tg;
            tg.run([&] { multiply(a, b + h, c + h, m, n - h, k, ld); });
            multiply(a, b, c, m, h, k, ld);
            tg.wait();
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

sample run_matmul_tbb(std::size_t n, unsigned workers) {
    const int threads = static_cast<int>(workers);
    // As for fib: the cap and the arena both count the calling thread.
    tbb::global_control cap(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    arena.initialize();
    return time_matmul(n, [&](double* c, const matmul_problem& p) {
        arena.execute([&] { multiply(p.a(), p.b(), c, p.n(), p.n(), p.n(), p.ld()); });
    });
}

}  // namespace forkline_bench

// bench/nqueens/nqueens_tbb.cpp: nqueens on oneTBB task_group, one task per placement.
#include <tbb/global_control.h>  // global_control
#include <tbb/task_arena.h>      // task_arena
#include <tbb/task_group.h>      // task_group

#include <cstdint>  // int64_t

#include "nqueens.hpp"  // run_nqueens_tbb, queens_board, queen_fits, with_queen

namespace forkline_bench {
namespace {

std::int64_t count_below(int n, int row, const queens_board& b) {
    if (row == n) return 1;
    std::int64_t found[k_nqueens_max_n] = {};
    tbb::task_group tg;
    for (int col = 0; col < n; ++col) {
        if (!queen_fits(b, row, col)) continue;
        tg.run([n, row, next = with_queen(b, row, col), slot = &found[col]] {
            *slot = count_below(n, row + 1, next);
        });
    }
    tg.wait();
    std::int64_t total = 0;
    for (int col = 0; col < n; ++col) total += found[col];
    return total;
}

}  // namespace

sample run_nqueens_tbb(int n, unsigned workers) {
    const int threads = static_cast<int>(workers);
    // As for fib: the cap and the arena both count the calling thread.
    tbb::global_control cap(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    arena.initialize();
    return warm_up_then_time(
        [&] { return arena.execute([&] { return count_below(opaque(n), 0, queens_board{}); }); });
}

}  // namespace forkline_bench

// bench/nqueens/nqueens_forkline.cpp: nqueens on forkline::task_group, one spawn per placement.
#include <cstdint>  // int64_t

#include <forkline/runtime.hpp>     // runtime, runtime_config
#include <forkline/task_group.hpp>  // task_group

#include "nqueens.hpp"  // run_nqueens_forkline, queens_board, queen_fits, with_queen

namespace forkline_bench {
namespace {

std::int64_t count_below(int n, int row, const queens_board& b) {
    if (row == n) return 1;
    std::int64_t found[k_nqueens_max_n] = {};  // one slot per column, written by its task
    forkline::task_group tg;
    for (int col = 0; col < n; ++col) {
        if (!queen_fits(b, row, col)) continue;
        // By value: 32 bytes, well inside a pooled task slot.
        tg.spawn([n, row, next = with_queen(b, row, col), slot = &found[col]] {
            *slot = count_below(n, row + 1, next);
        });
    }
    tg.wait();
    std::int64_t total = 0;
    for (int col = 0; col < n; ++col) total += found[col];
    return total;
}

}  // namespace

sample run_nqueens_forkline(int n, unsigned workers) {
    forkline::runtime_config cfg;
    cfg.placement.workers = workers;
    cfg.placement.oversubscribe = true;  // as for fib: a sweep past the core count still runs
    cfg.read_environment = false;        // the command line decides
    forkline::runtime rt(cfg);
    return warm_up_then_time([&] { return rt.run([&] { return count_below(opaque(n), 0, queens_board{}); }); });
}

}  // namespace forkline_bench

// bench/nqueens/nqueens_serial.cpp: the same search with calls instead of spawns, the limit.
#include <cstdint>  // int64_t

#include "nqueens.hpp"  // run_nqueens_serial, queens_board, queen_fits, with_queen

namespace forkline_bench {
namespace {

// Same shape as the task versions: a board copy per child and a slot per
// column, so that the difference is the spawn and join alone.
std::int64_t count_below(int n, int row, const queens_board& b) {
    if (row == n) return 1;
    std::int64_t found[k_nqueens_max_n] = {};
    for (int col = 0; col < n; ++col) {
        if (!queen_fits(b, row, col)) continue;
        const queens_board next = with_queen(b, row, col);
        found[col] = count_below(n, row + 1, next);
    }
    std::int64_t total = 0;
    for (int col = 0; col < n; ++col) total += found[col];
    return total;
}

}  // namespace

sample run_nqueens_serial(int n) {
    return warm_up_then_time([&] { return count_below(opaque(n), 0, queens_board{}); });
}

}  // namespace forkline_bench

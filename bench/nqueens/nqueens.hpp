// bench/nqueens/nqueens.hpp: count every placement of N non-attacking queens, a task per placement.
//
// The search places one queen per row. At every row, each column that the
// queens above do not attack becomes a task (as in the BOTS nqueens): it gets
// its own copy of the board, counts the solutions below it, and writes the
// count to a slot in its parent's frame; the parent waits for all of them and
// adds the slots up. No cutoff, so the last row spawns too: the task count is
// the number of valid partial boards, and the time is mostly spawn and join
// of small tasks with an irregular fan-out (1 to N children).
#pragma once

#include <array>    // array
#include <cstdint>  // int8_t, int64_t
#include <memory>   // unique_ptr

#include "timing.hpp"    // sample
#include "workload.hpp"  // workload

namespace forkline_bench {

/// Largest N the workload takes: its solution count is in the table, and the
/// board below has room for it.
inline constexpr int k_nqueens_max_n = 15;

/// Queens in rows [0, row): column[r] is the column of row r's queen. Fixed
/// size and trivially copyable, so that a task carries it by value and no
/// spawn allocates.
struct queens_board {
    std::array<std::int8_t, 16> column{};
};

/// True when a queen at (row, col) is attacked by none in rows [0, row).
inline bool queen_fits(const queens_board& b, int row, int col) noexcept {
    for (int r = 0; r < row; ++r) {
        const int c = b.column[static_cast<std::size_t>(r)];
        const int rows_apart = row - r;
        if (c == col || c - col == rows_apart || col - c == rows_apart) return false;
    }
    return true;
}

/// `b` with a queen added at (row, col).
inline queens_board with_queen(queens_board b, int row, int col) noexcept {
    b.column[static_cast<std::size_t>(row)] = static_cast<std::int8_t>(col);
    return b;
}

std::unique_ptr<workload> make_nqueens_workload();

// One source file per variant, as for fib. Each sets up its implementation
// with `workers` threads in all, warms up with one search, times a second.
sample run_nqueens_forkline(int n, unsigned workers);
sample run_nqueens_serial(int n);
sample run_nqueens_tbb(int n, unsigned workers);

}  // namespace forkline_bench

/// In forkline-bench-openmp.so, found by name (see bench/openmp_module.hpp).
extern "C" void forkline_bench_nqueens_omp(int n, unsigned workers, forkline_bench::sample* out);

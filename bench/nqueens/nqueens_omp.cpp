// bench/nqueens/nqueens_omp.cpp: nqueens on OpenMP tasks, one task per placement.
//
// Built into forkline-bench-openmp.so (see bench/openmp_module.hpp).
#include <omp.h>  // omp_set_dynamic

#include <cstdint>  // int64_t

#include "nqueens.hpp"  // forkline_bench_nqueens_omp, queens_board, queen_fits, with_queen

namespace forkline_bench {
namespace {

std::int64_t count_below(int n, int row, const queens_board& b) {
    if (row == n) return 1;
    std::int64_t found[k_nqueens_max_n] = {};
    for (int col = 0; col < n; ++col) {
        if (!queen_fits(b, row, col)) continue;
        const queens_board next = with_queen(b, row, col);
#pragma omp task firstprivate(next, col, n, row) shared(found)
        found[col] = count_below(n, row + 1, next);
    }
#pragma omp taskwait
    std::int64_t total = 0;
    for (int col = 0; col < n; ++col) total += found[col];
    return total;
}

}  // namespace
}  // namespace forkline_bench

extern "C" void forkline_bench_nqueens_omp(int n, unsigned workers, forkline_bench::sample* out) {
    using namespace forkline_bench;
    const int threads = static_cast<int>(workers);
    omp_set_dynamic(0);  // exactly `threads` in each team, never fewer
    *out = warm_up_then_time([&] {
        const int arg = opaque(n);
        std::int64_t result = 0;
#pragma omp parallel num_threads(threads) shared(result) firstprivate(arg)
#pragma omp single
        result = count_below(arg, 0, queens_board{});
        return result;
    });
}

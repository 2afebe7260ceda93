// bench/matmul/matmul_serial.cpp: the same recursion with calls instead of forks, the limit.
#include <cstddef>  // size_t

#include "matmul.hpp"  // run_matmul_serial, choose_matmul_split, multiply_block, time_matmul

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
            multiply(a, b, c, h, n, k, ld);
            multiply(a + h * ld, b, c + h * ld, m - h, n, k, ld);
            return;
        }
        case matmul_split::cols: {
            const std::size_t h = n / 2;
            multiply(a, b, c, m, h, k, ld);
            multiply(a, b + h, c + h, m, n - h, k, ld);
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

sample run_matmul_serial(std::size_t n) {
    return time_matmul(n, [](double* c, const matmul_problem& p) {
        multiply(p.a(), p.b(), c, p.n(), p.n(), p.n(), p.ld());
    });
}

}  // namespace forkline_bench

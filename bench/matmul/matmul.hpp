// bench/matmul/matmul.hpp: C += A * B by recursive halving, the same splits and base kernel for every variant.
//
// Square N x N row-major doubles, N a power of two. Each step halves the
// largest of the three dimensions (rows of C, columns of C, the inner one;
// ties in that order) until all are k_matmul_block. A row or column split
// gives two products that write disjoint halves of C: the parallel variants
// fork them. An inner split gives two products that add into the same C:
// every variant runs them one after the other. The base case is one
// 64 x 64 x 64 block product, the same function for all variants.
//
// The inputs are small whole numbers (-8 to 8) from a counter-based hash, so
// every sum is exact whatever the order of additions, and the parent can work
// out any entry (and the sum of all of C) without the child's matrices. The
// answer is a checksum of the sum of C and 64 sampled entries, which the
// parent compares with naive dot products.
#pragma once

#include <algorithm>  // fill
#include <cstddef>    // size_t
#include <cstdint>    // int64_t, uint64_t
#include <memory>     // unique_ptr (make_*_workload)
#include <string>     // to_string

#include "aligned_buffer.hpp"  // double_buffer, allocate_doubles
#include "timing.hpp"    // sample, warm_up_then_time
#include "workload.hpp"  // workload

namespace forkline_bench {

/// Edge of the base block. N must be a multiple: N is a power of two >= 128.
inline constexpr std::size_t k_matmul_block = 64;
/// Each row is padded by one cache line, so that the rows of a block do not
/// all fall into the same cache sets when N is a power of two.
inline constexpr std::size_t k_matmul_row_pad = 8;
/// Entries of C the parent recomputes as naive dot products.
inline constexpr unsigned k_matmul_samples = 64;

enum class matmul_split { none, rows, cols, inner };

/// Which dimension of an m x n (+= m x k times k x n) product to halve.
constexpr matmul_split choose_matmul_split(std::size_t m, std::size_t n, std::size_t k) noexcept {
    if (m <= k_matmul_block && n <= k_matmul_block && k <= k_matmul_block) return matmul_split::none;
    if (m >= n && m >= k) return matmul_split::rows;
    if (n >= k) return matmul_split::cols;
    return matmul_split::inner;
}

/// The base case: c[0..64)[0..64) += a[0..64)[0..64) * b[0..64)[0..64), all
/// with row stride `ld`. i-k-j order with k taken four at a time, so each
/// pass over a row of C adds four products; the fixed trip counts let the
/// compiler vectorise the j loop at -O2. noinline: one copy, the same machine
/// code, for every variant that the executable holds.
[[gnu::noinline]] inline void multiply_block(const double* __restrict a, const double* __restrict b,
                                             double* __restrict c, std::size_t ld) noexcept {
    for (std::size_t i = 0; i < k_matmul_block; ++i) {
        double* __restrict ci = c + i * ld;
        const double* ai = a + i * ld;
        for (std::size_t k = 0; k < k_matmul_block; k += 4) {
            const double a0 = ai[k];
            const double a1 = ai[k + 1];
            const double a2 = ai[k + 2];
            const double a3 = ai[k + 3];
            const double* b0 = b + k * ld;
            const double* b1 = b0 + ld;
            const double* b2 = b1 + ld;
            const double* b3 = b2 + ld;
            for (std::size_t j = 0; j < k_matmul_block; ++j) {
                ci[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
            }
        }
    }
}

/// The recursion every variant runs: c += a * b for an m x n x k product,
/// halving by choose_matmul_split. A row or column split hands its two
/// independent halves to `fork(first, second)`, which runs both (the
/// parallel variants run `first` at once and make `second` stealable) and
/// returns when both are done; an inner split runs its halves in order.
template <class Fork>
void multiply_recursive(const Fork& fork, const double* a, const double* b, double* c, std::size_t m,
                        std::size_t n, std::size_t k, std::size_t ld) {
    switch (choose_matmul_split(m, n, k)) {
        case matmul_split::none:
            multiply_block(a, b, c, ld);
            return;
        case matmul_split::rows: {
            const std::size_t h = m / 2;
            fork([&] { multiply_recursive(fork, a, b, c, h, n, k, ld); },
                 [&] { multiply_recursive(fork, a + h * ld, b, c + h * ld, m - h, n, k, ld); });
            return;
        }
        case matmul_split::cols: {
            const std::size_t h = n / 2;
            fork([&] { multiply_recursive(fork, a, b, c, m, h, k, ld); },
                 [&] { multiply_recursive(fork, a, b + h, c + h, m, n - h, k, ld); });
            return;
        }
        case matmul_split::inner: {
            const std::size_t h = k / 2;
            multiply_recursive(fork, a, b, c, m, n, h, ld);
            multiply_recursive(fork, a + h, b + h * ld, c, m, n, k - h, ld);
            return;
        }
    }
}

inline std::uint64_t matmul_mix(std::uint64_t x) noexcept {
    // splitmix64's finaliser: every input bit reaches every output bit.
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/// Entry (i, j) of input `matrix` (0: A, 1: B) of an n x n product: a whole
/// number from -8 to 8, so that products and sums of them stay exact.
inline double matmul_input(unsigned matrix, std::size_t i, std::size_t j, std::size_t n) noexcept {
    const std::uint64_t h = matmul_mix((std::uint64_t{matrix} + 1) * 0x632be59bd9b4e019u + i * n + j);
    return static_cast<double>(static_cast<int>(h % 17) - 8);
}

/// The `s`th sampled entry of C: row in the low half of the hash, column in the high.
inline void matmul_sample_position(unsigned s, std::size_t n, std::size_t& row, std::size_t& col) noexcept {
    const std::uint64_t h = matmul_mix(0x5eed0000u + s);
    row = static_cast<std::size_t>(h & 0xffffffffu) % n;
    col = static_cast<std::size_t>(h >> 32) % n;
}

/// Folds the sum of C and the sampled entries, in sample order, into one number.
inline std::int64_t matmul_checksum(std::int64_t sum_of_c, const std::int64_t (&samples)[k_matmul_samples]) noexcept {
    std::uint64_t h = static_cast<std::uint64_t>(sum_of_c);
    for (const std::int64_t v : samples) h = matmul_mix(h ^ static_cast<std::uint64_t>(v));
    return static_cast<std::int64_t>(h & 0x7fffffffffffffffu);  // non-negative: easier to read
}

/// A, B and two result matrices (one for the warm-up, one for the timed
/// run, so that neither is cleared inside the timed interval), in the child.
class matmul_problem {
public:
    explicit matmul_problem(std::size_t n) : m_n(n), m_ld(n + k_matmul_row_pad) {
        for (unsigned m = 0; m < 4; ++m) m_data[m] = allocate();
        for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t j = 0; j < m_ld; ++j) {
                const bool pad = j >= n;
                m_data[0].get()[i * m_ld + j] = pad ? 0.0 : matmul_input(0, i, j, n);
                m_data[1].get()[i * m_ld + j] = pad ? 0.0 : matmul_input(1, i, j, n);
            }
        }
        // Touched here, so that no page fault lands in the timed run.
        std::fill(m_data[2].get(), m_data[2].get() + n * m_ld, 0.0);
        std::fill(m_data[3].get(), m_data[3].get() + n * m_ld, 0.0);
    }

    std::size_t n() const noexcept { return m_n; }
    std::size_t ld() const noexcept { return m_ld; }
    const double* a() const noexcept { return m_data[0].get(); }
    const double* b() const noexcept { return m_data[1].get(); }
    double* c(unsigned which) const noexcept { return m_data[2 + which].get(); }

    /// matmul_checksum of result matrix `which`.
    std::int64_t checksum(unsigned which) const noexcept {
        const double* c = m_data[2 + which].get();
        std::int64_t sum = 0;
        for (std::size_t i = 0; i < m_n; ++i) {
            for (std::size_t j = 0; j < m_n; ++j) sum += static_cast<std::int64_t>(c[i * m_ld + j]);
        }
        std::int64_t samples[k_matmul_samples];
        for (unsigned s = 0; s < k_matmul_samples; ++s) {
            std::size_t row = 0;
            std::size_t col = 0;
            matmul_sample_position(s, m_n, row, col);
            samples[s] = static_cast<std::int64_t>(c[row * m_ld + col]);
        }
        return matmul_checksum(sum, samples);
    }

private:
    double_buffer allocate() const {
        return allocate_doubles(m_n * m_ld, "matmul: cannot allocate a " + std::to_string(m_n) + " x " +
                                                std::to_string(m_n) + " matrix (four are needed)");
    }

    std::size_t m_n;
    std::size_t m_ld;
    double_buffer m_data[4];  // A, B, C for the warm-up, C for the timed run
};

/// Sets up the problem, then calls `multiply(c, problem)` once into each
/// result matrix (warm-up, then timed); the checksums are taken after the
/// clock has stopped. `multiply` must add A * B into c.
template <class Multiply>
sample time_matmul(std::size_t n, Multiply&& multiply) {
    const matmul_problem p(n);
    unsigned next = 0;
    sample s = warm_up_then_time([&] {
        multiply(p.c(next++), p);
        return 0;
    });
    s.warmup_result = p.checksum(0);
    s.result = p.checksum(1);
    return s;
}

std::unique_ptr<workload> make_matmul_workload();

// One source file per variant, as for fib.
sample run_matmul_forkline(std::size_t n, unsigned workers);
sample run_matmul_serial(std::size_t n);
sample run_matmul_tbb(std::size_t n, unsigned workers);

}  // namespace forkline_bench

/// In forkline-bench-openmp.so, found by name (see bench/openmp_module.hpp).
extern "C" void forkline_bench_matmul_omp(std::size_t n, unsigned workers, forkline_bench::sample* out);

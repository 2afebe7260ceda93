// bench/reduce/reduce.hpp: the sum of an array of doubles, one streaming read.
//
// x[i] = i % 17 + 1: small positive whole numbers, so every partial sum is a
// whole number below 2^53 and exact in any grouping. The parallel variants
// may add in any order and must still hit the exact total, and a dropped or
// doubled index always changes it. Every variant uses the plain
// `acc += x[i]` loop, one dependent add per element, as
// `reduction(+:s)` does: the same kernel everywhere, so the ratios measure
// the runtimes, not the compiler's reassociation.
//
// The array is filled in parallel before the clock starts (a first touch with
// the variant's own partition, where it has a fixed one); only the sum is
// timed, after one warm-up sum.
#pragma once

#include <cstddef>    // size_t
#include <cstdint>    // int64_t
#include <memory>     // unique_ptr (make_*_workload)
#include <string>     // to_string

#include "aligned_buffer.hpp"  // double_buffer, allocate_doubles
#include "timing.hpp"    // sample, warm_up_then_time
#include "workload.hpp"  // workload

namespace forkline_bench {

inline constexpr std::size_t k_reduce_period = 17;

inline double reduce_value(std::size_t i) noexcept { return static_cast<double>(i % k_reduce_period + 1); }

/// The exact sum of x[0..n), without the array.
constexpr std::int64_t reduce_exact_sum(std::size_t n) noexcept {
    const auto periods = static_cast<std::int64_t>(n / k_reduce_period);
    const auto rest = static_cast<std::int64_t>(n % k_reduce_period);
    const auto per_period = static_cast<std::int64_t>(k_reduce_period * (k_reduce_period + 1) / 2);
    return periods * per_period + rest * (rest + 1) / 2;
}

/// The array of one child, allocated but not touched.
class reduce_array {
public:
    explicit reduce_array(std::size_t n) : m_n(n), m_x(allocate(n)) {}
    std::size_t n() const noexcept { return m_n; }
    double* x() const noexcept { return m_x.get(); }

private:
    static double_buffer allocate(std::size_t n) {
        return allocate_doubles(n, "reduce: cannot allocate " + std::to_string(n) + " doubles");
    }

    std::size_t m_n;
    double_buffer m_x;
};

/// Runs one variant: `fill(x, n)` writes x[i] = reduce_value(i) in
/// parallel, then `sum(x, n)` is called once to warm up and once timed.
template <class Fill, class Sum>
sample time_reduce(std::size_t n, Fill&& fill, Sum&& sum) {
    const reduce_array array(n);
    double* const x = array.x();
    fill(x, n);
    // Exact by construction, so the conversion loses nothing.
    return warm_up_then_time([&] { return static_cast<std::int64_t>(sum(static_cast<const double*>(x), n)); });
}

std::unique_ptr<workload> make_reduce_workload();

// One source file per variant, as for fib.
sample run_reduce_forkline(std::size_t n, unsigned workers);
sample run_reduce_serial(std::size_t n);
sample run_reduce_tbb(std::size_t n, unsigned workers);

}  // namespace forkline_bench

/// In forkline-bench-openmp.so, found by name (see bench/openmp_module.hpp).
extern "C" void forkline_bench_reduce_omp(std::size_t n, unsigned workers, forkline_bench::sample* out);

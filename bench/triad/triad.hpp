// bench/triad/triad.hpp: the STREAM triad a[i] = b[i] + s * c[i], K passes over three arrays.
//
// Memory bandwidth, not scheduling: each pass streams 2 loads and 1 store of
// a double per index, and STREAM counts that as 24 bytes (the write-allocate
// read of a[i] is not counted), so GB/s = 24 * N * K / seconds.
//
// Every variant first touches the three arrays with the partition its passes
// use, so that each page lands where (on the node of the worker that) will
// stream it. Only the K passes are timed: allocation, first touch and the
// checksum are not. b and c hold small whole numbers that depend on the
// index, so a[i] after any number of passes is b[i] + 3 c[i] exactly, and the
// parent works the checksum out from the index alone.
#pragma once

#include <chrono>     // steady_clock, duration
#include <cstddef>    // size_t
#include <cstdint>    // int64_t
#include <memory>     // unique_ptr (make_*_workload)
#include <string>     // to_string

#include "aligned_buffer.hpp"  // double_buffer, allocate_doubles
#include "timing.hpp"    // sample
#include "workload.hpp"  // workload

namespace forkline_bench {

/// STREAM's scalar. Every variant's loop names this constant rather than a
/// captured copy: g++ reloads a double captured in the functor that
/// parallel_for calls per index on every element (the store to a[i] might
/// alias it), which costs about 8% at one worker, and only the functor-based
/// variants (forkline, tbb) would pay it. See bench/README.md, triad.
inline constexpr double k_triad_scalar = 3.0;

/// b[i] and c[i]: whole numbers below 2^11, so b + 3 c is exact.
inline double triad_b(std::size_t i) noexcept { return static_cast<double>(i % 1024); }
inline double triad_c(std::size_t i) noexcept { return static_cast<double>(i % 7 + 1); }

/// The weight of a[i] in the checksum, so that a value written to the wrong
/// index shows as well as a value left out.
inline std::int64_t triad_weight(std::size_t i) noexcept { return static_cast<std::int64_t>(i % 61 + 1); }

/// The three arrays of one child, allocated but not touched: the variant's
/// first touch places the pages.
class triad_arrays {
public:
    explicit triad_arrays(std::size_t n) : m_n(n), m_a(allocate(n)), m_b(allocate(n)), m_c(allocate(n)) {}

    std::size_t n() const noexcept { return m_n; }
    double* a() const noexcept { return m_a.get(); }
    double* b() const noexcept { return m_b.get(); }
    double* c() const noexcept { return m_c.get(); }

    /// sum of a[i] * triad_weight(i); every a[i] is a whole number well below 2^53.
    std::int64_t checksum() const noexcept {
        const double* a = m_a.get();
        std::int64_t sum = 0;
        for (std::size_t i = 0; i < m_n; ++i) sum += static_cast<std::int64_t>(a[i]) * triad_weight(i);
        return sum;
    }

private:
    static double_buffer allocate(std::size_t n) {
        return allocate_doubles(n, "triad: cannot allocate an array of " + std::to_string(n) +
                                       " doubles (three are needed)");
    }

    std::size_t m_n;
    double_buffer m_a;
    double_buffer m_b;
    double_buffer m_c;
};

/// The body of every variant's first touch, for index i.
inline void triad_first_touch(const triad_arrays& t, std::size_t i) noexcept {
    t.a()[i] = 0.0;
    t.b()[i] = triad_b(i);
    t.c()[i] = triad_c(i);
}

/// Runs one variant: `touch(t)` first-touches all three arrays with
/// triad_first_touch, `passes(t, k)` runs k triad passes with k_triad_scalar.
/// Warm-up: touch, K passes, checksum. Then touch again (so a is all zero
/// and the timed passes must rewrite every element), and time K passes
/// alone. Both checksums are taken with the clock stopped.
template <class Touch, class Passes>
sample time_triad(std::size_t n, unsigned k, Touch&& touch, Passes&& passes) {
    const triad_arrays t(n);
    sample s;
    touch(t);
    passes(t, k);
    s.warmup_result = t.checksum();
    touch(t);
    const auto start = std::chrono::steady_clock::now();
    passes(t, k);
    const auto stop = std::chrono::steady_clock::now();
    s.seconds = std::chrono::duration<double>(stop - start).count();
    s.result = t.checksum();
    return s;
}

std::unique_ptr<workload> make_triad_workload();

// One source file per variant, as for fib; forkline's two share one.
sample run_triad_forkline_affinity(std::size_t n, unsigned passes, unsigned workers);
sample run_triad_forkline(std::size_t n, unsigned passes, unsigned workers);
sample run_triad_serial(std::size_t n, unsigned passes);
sample run_triad_tbb(std::size_t n, unsigned passes, unsigned workers);

}  // namespace forkline_bench

/// In forkline-bench-openmp.so, found by name (see bench/openmp_module.hpp).
extern "C" void forkline_bench_triad_omp(std::size_t n, unsigned passes, unsigned workers,
                                         forkline_bench::sample* out);

// bench/sort/sort.hpp: sort N 64-bit keys, each variant with its own parallel sort.
//
// The keys are a counter-based hash of (seed, i), so the parent can recompute
// the input without storing it. Each child builds the input once, then for the
// warm-up and again for the timed run copies it into a work array and sorts
// that copy: only the sort is timed, never the copy. After each sort the child
// checks that the output is in order (throwing where it is not) and returns an
// order-independent checksum of it, which the parent compares with the
// input's: equal sums and xors of hashed keys mean a permutation, up to hash
// collisions.
#pragma once

#include <algorithm>  // copy, is_sorted_until
#include <chrono>     // steady_clock, duration
#include <cstddef>    // size_t
#include <cstdint>    // int64_t, uint64_t
#include <memory>     // unique_ptr
#include <new>        // bad_alloc
#include <stdexcept>  // runtime_error
#include <string>     // to_string
#include <vector>     // vector

#include "timing.hpp"    // sample
#include "workload.hpp"  // workload

namespace forkline_bench {

inline constexpr std::uint64_t k_sort_seed = 0x5eed'0f'50'47ULL;

/// SplitMix64's finaliser: a bijection on 64 bits that mixes every bit.
constexpr std::uint64_t sort_mix(std::uint64_t x) noexcept {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/// Key i of the input.
constexpr std::uint64_t sort_key(std::size_t i) noexcept {
    return sort_mix(k_sort_seed + 0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(i) + 1));
}

/// Folds keys into a checksum that does not depend on their order: a sum and
/// an xor of two different hashes of each key. A dropped, doubled or altered
/// key changes it (up to a collision of both).
class sort_checksum {
public:
    void add(std::uint64_t key) noexcept {
        m_sum += sort_mix(key ^ 0xa5a5a5a5a5a5a5a5ULL);
        m_xor ^= sort_mix(key + 0x632be59bd9b4e019ULL);
    }
    std::int64_t value() const noexcept {
        return static_cast<std::int64_t>(sort_mix(m_sum) ^ m_xor);
    }

private:
    std::uint64_t m_sum = 0;
    std::uint64_t m_xor = 0;
};

/// Sorts a fresh copy of the input once to warm up and once timed, with
/// `sort(first, last)` on uint64_t*; see the top of this file. A template in
/// the header because the OpenMP module, a separate shared object, uses it too.
template <class Sort>
sample time_sort(std::size_t n, Sort&& sort) {
    std::vector<std::uint64_t> input;
    std::vector<std::uint64_t> work;
    try {
        input.resize(n);
        work.resize(n);
    } catch (const std::bad_alloc&) {
        throw std::runtime_error("sort: cannot allocate 2 x " + std::to_string(n) + " keys (" +
                                 std::to_string(2 * n * sizeof(std::uint64_t) >> 20) + " MiB); try a smaller --n");
    }
    for (std::size_t i = 0; i < n; ++i) input[i] = sort_key(i);

    // Copies (untimed), sorts (timed into *seconds), checks order, sums.
    auto once = [&](double* seconds) {
        std::copy(input.begin(), input.end(), work.begin());
        std::uint64_t* const first = work.data();
        std::uint64_t* const last = first + n;
        const auto start = std::chrono::steady_clock::now();
        sort(first, last);
        const auto stop = std::chrono::steady_clock::now();
        if (seconds != nullptr) *seconds = std::chrono::duration<double>(stop - start).count();
        const std::uint64_t* bad = std::is_sorted_until(first, last);
        if (bad != last) {
            throw std::runtime_error("sort: output out of order at index " + std::to_string(bad - first) + " of " +
                                     std::to_string(n));
        }
        sort_checksum sum;
        for (const std::uint64_t* p = first; p != last; ++p) sum.add(*p);
        return sum.value();
    };
    sample s;
    s.warmup_result = once(nullptr);
    s.result = once(&s.seconds);
    return s;
}

std::unique_ptr<workload> make_sort_workload();

// One source file per variant, as for fib.
sample run_sort_forkline(std::size_t n, unsigned workers);
sample run_sort_serial(std::size_t n);
sample run_sort_tbb(std::size_t n, unsigned workers);
/// std::sort(std::execution::par, ...) on libstdc++'s oneTBB backend (sort_std_par.cpp).
sample run_sort_std_par(std::size_t n, unsigned workers);

}  // namespace forkline_bench

/// In forkline-bench-openmp.so, found by name (see bench/openmp_module.hpp); g++ builds only.
extern "C" void forkline_bench_sort_omp(std::size_t n, unsigned workers, forkline_bench::sample* out);

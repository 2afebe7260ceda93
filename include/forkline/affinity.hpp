/// @file forkline/affinity.hpp
/// The static affinity partition.
///
/// Worker i of P always gets the same contiguous block of an index range, so
/// data a worker first touched stays in its cache and on its NUMA node across
/// repeated loops (parallel_for with static_affinity, numa_array's placement).
#pragma once

#include <concepts>     // integral
#include <cstddef>      // size_t
#include <type_traits>  // make_unsigned_t
#include <utility>      // pair

namespace forkline {

namespace detail {

/// end - begin for begin <= end, computed in the unsigned type: the width of
/// a wide signed range (INT64_MIN to INT64_MAX) does not fit its own type.
template <std::integral I>
constexpr std::size_t range_size(I begin, I end) noexcept {
    using U = std::make_unsigned_t<I>;
    return static_cast<std::size_t>(static_cast<U>(static_cast<U>(end) - static_cast<U>(begin)));
}

/// begin + n for n <= range_size(begin, end), without signed overflow (the
/// conversion back to I is modular in C++20).
template <std::integral I>
constexpr I range_at(I begin, std::size_t n) noexcept {
    using U = std::make_unsigned_t<I>;
    return static_cast<I>(static_cast<U>(static_cast<U>(begin) + static_cast<U>(n)));
}

}  // namespace detail

/// The type of static_affinity, which selects the affinity mode of
/// parallel_for. The explicit constructor keeps a stray `{}` from selecting it.
struct static_affinity_t {
    /// Makes the tag; use the static_affinity constant instead.
    explicit static_affinity_t() = default;
};
/// Pass as parallel_for's last argument: worker i then runs the same block on
/// every call, so the data it touched last time is still in its cache.
/// @code
/// for (int step = 0; step < steps; ++step)
///     forkline::parallel_for(std::size_t{0}, n, [&](std::size_t i) { x[i] = relax(x[i]); }, forkline::static_affinity);
/// @endcode
inline constexpr static_affinity_t static_affinity{};

/// The block of [begin, end) that worker `worker` of `workers` owns:
/// [begin + n*i/P, begin + n*(i+1)/P), n = end - begin. Blocks are
/// contiguous, in worker order, cover the range exactly and differ in size by
/// at most one. An empty range gives empty blocks; a worker number past the
/// last gives the empty block at `end`.
/// @code
/// auto [lo, hi] = forkline::affinity_block(0, 10, 2, 4);  // {5, 7}: worker 2 of 4
/// @endcode
template <std::integral I>
constexpr std::pair<I, I> affinity_block(I begin, I end, unsigned worker, unsigned workers) noexcept {
    if (!(begin < end) || workers == 0) return {begin, begin};
    if (worker >= workers) return {end, end};
    // n*i/P without the overflow of n*i: with n = q*P + r, n*i/P = q*i + r*i/P.
    const std::size_t n = detail::range_size(begin, end);
    const std::size_t q = n / workers;
    const std::size_t r = n % workers;
    auto edge = [&](std::size_t i) { return q * i + r * i / workers; };
    return {detail::range_at(begin, edge(worker)), detail::range_at(begin, edge(worker + 1))};
}

}  // namespace forkline

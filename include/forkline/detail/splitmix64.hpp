// forkline/detail/splitmix64.hpp: a small, fast, seedable random generator
// with a fixed output sequence, and uniform integers drawn from it.
//
// splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
// generators", 2014): a Weyl sequence (add the golden-ratio increment) put
// through a bijective 64-bit finalizer. One add, two multiplies and three
// shifts per draw, 8 bytes of state, every seed (0 included) good, period
// 2^64. Not for cryptography; for jitter and simulations, where the same seed
// must give the same sequence on every platform (std::uniform_*_distribution
// does not promise that).
#pragma once

#include <cstdint>  // uint64_t

namespace forkline::detail {

class splitmix64 {
public:
    explicit constexpr splitmix64(std::uint64_t seed) noexcept : m_state(seed) {}

    /// The next 64 uniformly distributed bits.
    constexpr std::uint64_t next() noexcept {
        std::uint64_t z = (m_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    /// A uniform integer in [lo, hi] (both ends included; lo <= hi).
    /// Lemire's multiply-shift: the top 64 bits of next() * (hi - lo + 1),
    /// one multiply and no division. Its bias, below (hi - lo + 1) / 2^64,
    /// is far under anything a jitter or a simulation could notice.
    constexpr std::uint64_t between(std::uint64_t lo, std::uint64_t hi) noexcept {
        const std::uint64_t span = hi - lo;
        if (span == ~std::uint64_t{0}) return next();
        __extension__ using u128 = unsigned __int128;
        return lo + static_cast<std::uint64_t>((static_cast<u128>(next()) * (span + 1)) >> 64);
    }

    /// A uniform double in [0, 1), from the top 53 bits.
    constexpr double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

private:
    std::uint64_t m_state;
};

}  // namespace forkline::detail

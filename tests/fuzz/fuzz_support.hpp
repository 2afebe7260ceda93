// tests/fuzz/fuzz_support.hpp: what the libFuzzer targets share: a property
// check that stops the run with a message (libFuzzer keeps the input that
// failed), and a small generator for the sizes a target draws.
#pragma once

#include <cstdint>  // uint64_t
#include <cstdio>   // fprintf
#include <cstdlib>  // abort

namespace forkline_fuzz {

/// A property the code must keep for every input: a failure is a finding.
#define FORKLINE_FUZZ_CHECK(cond)                                                              \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);  \
            std::abort();                                                                      \
        }                                                                                      \
    } while (0)

/// splitmix64: sizes drawn from a seed the input gives, so that an input
/// replays exactly and a few bytes describe many sizes.
class sizes {
public:
    explicit sizes(std::uint64_t seed) noexcept : m_state(seed) {}
    /// A number in [lo, hi].
    std::uint64_t in(std::uint64_t lo, std::uint64_t hi) noexcept {
        return lo + next() % (hi - lo + 1);
    }

private:
    std::uint64_t next() noexcept {
        std::uint64_t z = (m_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    std::uint64_t m_state;
};

}  // namespace forkline_fuzz

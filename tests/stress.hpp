// tests/stress.hpp: iteration counts scaled for slow (sanitizer) builds.
#pragma once

#include <cstddef>  // size_t

#ifndef FORKLINE_STRESS_SCALE
#define FORKLINE_STRESS_SCALE 100
#endif

/// `n` scaled by the build's stress_scale percent, at least `floor`.
constexpr std::size_t scaled(std::size_t n, std::size_t floor = 1) {
    const std::size_t s = n * FORKLINE_STRESS_SCALE / 100;
    return s < floor ? floor : s;
}

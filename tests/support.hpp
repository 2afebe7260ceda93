// tests/support.hpp: what several test programs share: iteration counts
// scaled for slow (sanitizer) builds, a runtime config for N workers, and
// fib with its closed loop to check it.
#pragma once

#include <cstddef>  // size_t

#include "forkline/forkline.hpp"  // runtime_config, invoke

#ifndef FORKLINE_STRESS_SCALE
#define FORKLINE_STRESS_SCALE 100
#endif

/// `n` scaled by the build's stress_scale percent, at least `floor`.
constexpr std::size_t scaled(std::size_t n, std::size_t floor = 1) {
    const std::size_t s = n * FORKLINE_STRESS_SCALE / 100;
    return s < floor ? floor : s;
}

/// `workers` workers, oversubscribing this machine if need be, and deaf to
/// FORKLINE_* variables so that a developer's environment cannot skew a test.
inline forkline::runtime_config config_for(unsigned workers, std::size_t injection = 1024) {
    forkline::runtime_config c;
    c.placement.workers = workers;
    c.placement.oversubscribe = true;
    c.read_environment = false;
    c.injection_capacity = injection;
    return c;
}

/// fib with a spawn at every level.
inline long fib(int n) {
    if (n < 2) return n;
    long a = 0;
    long b = 0;
    forkline::invoke([&] { a = fib(n - 1); }, [&] { b = fib(n - 2); });
    return a + b;
}

inline long fib_loop(int n) {
    long a = 0, b = 1;
    for (int i = 0; i < n; ++i) {
        const long t = a + b;
        a = b;
        b = t;
    }
    return a;
}

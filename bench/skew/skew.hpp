// bench/skew/skew.hpp: many equal compute tasks, all spawned by one worker while the others are idle.
//
// One worker puts every task on its own deque before it runs any; the other
// workers start idle and can only get work by stealing it. Each task spins a
// dependent chain of multiply-adds for about --task-us microseconds (no
// memory traffic, no calls), so the only thing that can make the run slower
// than total_work / workers is how fast idle workers find and take the work:
// wake-up latency, the steal protocol, stealing one task at a time.
#pragma once

#include <cstdint>  // uint64_t
#include <memory>   // unique_ptr

#include "timing.hpp"    // sample
#include "workload.hpp"  // workload

namespace forkline_bench {

// x' = a x + c mod 2^64, Knuth's MMIX constants. A chain of these cannot be
// vectorised, folded or shortened by the compiler, and it can be jumped ahead
// in closed form, so the parent checks every task's result cheaply.
inline constexpr std::uint64_t k_skew_multiplier = 6364136223846793005u;
inline constexpr std::uint64_t k_skew_increment = 1442695040888963407u;

/// One task's work: `iterations` steps of the chain from `seed`. noinline:
/// one copy of the loop for every variant in the executable.
[[gnu::noinline]] inline std::uint64_t skew_spin(std::uint64_t seed, std::uint64_t iterations) noexcept {
    std::uint64_t x = seed;
    for (std::uint64_t i = 0; i < iterations; ++i) x = x * k_skew_multiplier + k_skew_increment;
    return x;
}

/// Task t's starting point.
inline std::uint64_t skew_seed(unsigned t) noexcept { return 0x243f6a8885a308d3u + t; }

std::unique_ptr<workload> make_skew_workload();

// One source file per variant, as for fib. Each spawns `tasks` tasks of
// `iterations` steps from one thread, waits for all, and returns the sum of
// their results (mod 2^64).
sample run_skew_forkline(unsigned tasks, std::uint64_t iterations, unsigned workers);
sample run_skew_serial(unsigned tasks, std::uint64_t iterations);
sample run_skew_tbb(unsigned tasks, std::uint64_t iterations, unsigned workers);

}  // namespace forkline_bench

/// In forkline-bench-openmp.so, found by name (see bench/openmp_module.hpp).
extern "C" void forkline_bench_skew_omp(unsigned tasks, std::uint64_t iterations, unsigned workers,
                                        forkline_bench::sample* out);

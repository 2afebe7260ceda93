// bench/loops/loops.hpp: K parallel loops back to back, each a short burst of
// work: the cost of ending one loop and starting the next.
//
// Every loop steps each of E elements once (x[i] = step(x[i]), a dependent
// chain of k_loops_chain multiply-adds, the same cost per element), and the
// next loop needs all of the previous one done: a join (or barrier) between
// every two loops. `--us L` sets each loop's ideal time at the run's worker
// count, so E = L x workers / (ns per element): at 2 workers and L = 20 a
// loop is 40 us of work cut in two. The parent measures the ns per element
// once (loops_element_ns) before the children are forked, so every variant
// of a run gets the same E for a worker count.
//
// A run's answer is K when every sampled element holds step^K of its start
// (checked with the clock stopped), and -(mismatches) otherwise; so the
// check needs no E in the parent.
#pragma once

#include <chrono>   // steady_clock, duration
#include <cstddef>  // size_t
#include <cstdint>  // int64_t, uint64_t
#include <memory>   // unique_ptr
#include <vector>   // vector

#include "timing.hpp"    // sample
#include "workload.hpp"  // workload

namespace forkline_bench {

/// Multiply-adds per element and loop: about 20 ns on a 2-3 GHz core.
inline constexpr unsigned k_loops_chain = 16;

/// One loop's work on one element. Unrolled by request: left to itself,
/// g++ unrolled the chain in some variants' loops and not in others (the
/// forkline ones, inside parallel_for's chunk loop), and the rolled chain,
/// with twice the instructions, overlapped less across elements: 1.45x the
/// time at 1 worker for the same work. The benchmark measures the joins,
/// not that choice.
inline std::uint64_t loops_step(std::uint64_t x) noexcept {
#pragma GCC unroll 16
    for (unsigned i = 0; i < k_loops_chain; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
}

/// Each element's value before the first loop.
inline std::uint64_t loops_start(std::size_t i) noexcept { return (i + 1) * 0x9e3779b97f4a7c15ULL; }

/// The run's shape, as a variant gets it.
struct loops_shape {
    std::size_t elements = 0;  ///< E, per loop
    unsigned loops = 0;        ///< K
};

/// Nanoseconds per element of loops_step on one thread (measured once per
/// process, about 20 ms, then remembered).
double loops_element_ns();

/// K of `x` from loops_start, stepped K times each: K if every sampled
/// element (both ends included) is right, else -(wrong ones). Each sample
/// costs K steps, so the samples shrink as K grows: 1000 up to K = 4000,
/// then 4 x 10^6 / K, never under 16 (about 0.1 s at most here).
/// Inline: the OpenMP module calls it too and sees no symbol of the driver.
inline std::int64_t loops_check(const std::vector<std::uint64_t>& x, unsigned loops) {
    std::int64_t wrong = 0;
    const std::size_t n = x.size();
    std::size_t samples = loops > 0 ? 4'000'000 / loops : 1000;
    samples = samples > 1000 ? 1000 : (samples < 16 ? 16 : samples);
    const std::size_t stride = n / samples > 1 ? n / samples : 1;
    auto test = [&](std::size_t i) {
        std::uint64_t v = loops_start(i);
        for (unsigned k = 0; k < loops; ++k) v = loops_step(v);
        wrong += x[i] == v ? 0 : 1;
    };
    for (std::size_t i = 0; i < n; i += stride) test(i);
    if (n > 0 && (n - 1) % stride != 0) test(n - 1);
    return wrong == 0 ? static_cast<std::int64_t>(loops) : -wrong;
}

/// Fills x with loops_start, runs `passes(x.data(), shape)` once as a
/// warm-up, refills, and times one more call; both answers from loops_check.
template <class Passes>
sample time_loops(const loops_shape& shape, Passes&& passes) {
    std::vector<std::uint64_t> x(shape.elements);
    sample s;
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = loops_start(i);
    passes(x.data(), shape);
    s.warmup_result = loops_check(x, shape.loops);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = loops_start(i);
    const auto start = std::chrono::steady_clock::now();
    passes(x.data(), shape);
    const auto stop = std::chrono::steady_clock::now();
    s.seconds = std::chrono::duration<double>(stop - start).count();
    s.result = loops_check(x, shape.loops);
    return s;
}

std::unique_ptr<workload> make_loops_workload();

sample run_loops_forkline(const loops_shape& shape, unsigned workers);
sample run_loops_forkline_affinity(const loops_shape& shape, unsigned workers);
sample run_loops_spin(const loops_shape& shape, unsigned workers);
sample run_loops_tbb(const loops_shape& shape, unsigned workers);
sample run_loops_tbb_static(const loops_shape& shape, unsigned workers);

}  // namespace forkline_bench

/// In forkline-bench-openmp.so (see bench/openmp_module.hpp): one parallel
/// region, K `omp for schedule(static)` loops with their implied barriers.
extern "C" void forkline_bench_loops_omp(std::size_t elements, unsigned loops, unsigned workers,
                                         forkline_bench::sample* out);

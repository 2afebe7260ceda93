// bench/triad/triad_forkline.cpp: triad on forkline::parallel_for, with static affinity and with automatic grain.
//
// Both first-touch with static_affinity, so worker i owns the pages of block
// i (affinity_block). forkline-affinity keeps that partition for every pass;
// forkline lets lazy splitting cut the passes, so a worker may stream pages
// another worker touched. The loop body is the per-index f(i) that users
// write; parallel_for's own loop over a chunk calls it.
#include <cstddef>  // size_t

#include <forkline/affinity.hpp>      // static_affinity
#include <forkline/parallel_for.hpp>  // parallel_for
#include <forkline/runtime.hpp>       // runtime, runtime_config

#include "triad.hpp"  // run_triad_forkline*, time_triad, triad_first_touch, k_triad_scalar

namespace forkline_bench {
namespace {

forkline::runtime_config config_for(unsigned workers) {
    forkline::runtime_config cfg;
    cfg.placement.workers = workers;
    cfg.placement.oversubscribe = true;  // as for fib: a sweep past the core count still runs
    cfg.read_environment = false;        // the command line decides
    return cfg;
}

void touch_with_affinity(forkline::runtime& rt, const triad_arrays& t) {
    rt.run([&] {
        forkline::parallel_for(std::size_t{0}, t.n(), [&t](std::size_t i) { triad_first_touch(t, i); },
                               forkline::static_affinity);
    });
}

}  // namespace

sample run_triad_forkline_affinity(std::size_t n, unsigned passes, unsigned workers) {
    forkline::runtime rt(config_for(workers));
    return time_triad(
        n, passes, [&](const triad_arrays& t) { touch_with_affinity(rt, t); },
        [&](const triad_arrays& t, unsigned k) {
            rt.run([&] {
                double* const a = t.a();
                const double* const b = t.b();
                const double* const c = t.c();
                for (unsigned pass = 0; pass < k; ++pass) {
                    forkline::parallel_for(
                        std::size_t{0}, t.n(), [a, b, c](std::size_t i) { a[i] = b[i] + k_triad_scalar * c[i]; },
                        forkline::static_affinity);
                }
            });
        });
}

sample run_triad_forkline(std::size_t n, unsigned passes, unsigned workers) {
    forkline::runtime rt(config_for(workers));
    return time_triad(
        n, passes, [&](const triad_arrays& t) { touch_with_affinity(rt, t); },
        [&](const triad_arrays& t, unsigned k) {
            rt.run([&] {
                double* const a = t.a();
                const double* const b = t.b();
                const double* const c = t.c();
                for (unsigned pass = 0; pass < k; ++pass) {
                    forkline::parallel_for(std::size_t{0}, t.n(),
                                           [a, b, c](std::size_t i) { a[i] = b[i] + k_triad_scalar * c[i]; });
                }
            });
        });
}

}  // namespace forkline_bench

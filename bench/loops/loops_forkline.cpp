// bench/loops/loops_forkline.cpp: K forkline::parallel_for loops inside one
// runtime::run, lazy splitting or static affinity.
#include <cstddef>  // size_t
#include <cstdint>  // uint64_t

#include <forkline/affinity.hpp>      // static_affinity
#include <forkline/parallel_for.hpp>  // parallel_for
#include <forkline/runtime.hpp>       // runtime, runtime_config

#include "loops.hpp"  // run_loops_forkline*, time_loops, loops_step

namespace forkline_bench {
namespace {

forkline::runtime_config config(unsigned workers) {
    forkline::runtime_config cfg;
    cfg.placement.workers = workers;
    cfg.placement.oversubscribe = true;  // a sweep past the core count still runs
    cfg.read_environment = false;        // the command line decides
    return cfg;
}

}  // namespace

sample run_loops_forkline(const loops_shape& shape, unsigned workers) {
    forkline::runtime rt(config(workers));
    return time_loops(shape, [&](std::uint64_t* x, const loops_shape& s) {
        rt.run([&] {
            for (unsigned k = 0; k < s.loops; ++k) {
                forkline::parallel_for(std::size_t{0}, s.elements, [x](std::size_t i) { x[i] = loops_step(x[i]); });
            }
        });
    });
}

sample run_loops_forkline_affinity(const loops_shape& shape, unsigned workers) {
    forkline::runtime rt(config(workers));
    return time_loops(shape, [&](std::uint64_t* x, const loops_shape& s) {
        rt.run([&] {
            for (unsigned k = 0; k < s.loops; ++k) {
                forkline::parallel_for(std::size_t{0}, s.elements, [x](std::size_t i) { x[i] = loops_step(x[i]); },
                                       forkline::static_affinity);
            }
        });
    });
}

}  // namespace forkline_bench

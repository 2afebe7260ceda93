// bench/matmul/matmul_forkline.cpp: matmul on forkline::invoke, halves of C forked, inner halves in order.
#include <cstddef>  // size_t

#include <forkline/invoke.hpp>   // invoke
#include <forkline/runtime.hpp>  // runtime, runtime_config

#include "matmul.hpp"  // run_matmul_forkline, multiply_recursive, time_matmul

namespace forkline_bench {
namespace {

struct forkline_fork {
    template <class F, class G>
    void operator()(F&& first, G&& second) const {
        forkline::invoke(first, second);
    }
};

}  // namespace

sample run_matmul_forkline(std::size_t n, unsigned workers) {
    forkline::runtime_config cfg;
    cfg.placement.workers = workers;
    cfg.placement.oversubscribe = true;  // as for fib: a sweep past the core count still runs
    cfg.read_environment = false;        // the command line decides
    forkline::runtime rt(cfg);
    return time_matmul(n, [&](double* c, const matmul_problem& p) {
        rt.run([&] { multiply_recursive(forkline_fork{}, p.a(), p.b(), c, p.n(), p.n(), p.n(), p.ld()); });
    });
}

}  // namespace forkline_bench

// bench/uts/uts_omp.cpp: UTS on OpenMP tasks, splitting children as the forkline variant does.
//
// Built into forkline-bench-openmp.so, which only the omp variant's child
// loads, after it has set OMP_PROC_BIND, OMP_PLACES and OMP_STACKSIZE: see
// bench/openmp_module.hpp and uts_workload.cpp.
#include <omp.h>  // omp_set_dynamic

#include "uts.hpp"  // forkline_bench_uts_omp

namespace forkline_bench {
namespace {

uts::tree_counts visit(const uts::tree& t, const uts::node& n);

uts::tree_counts visit_children(const uts::tree& t, const uts::node& parent, int lo, int hi) {
    if (hi - lo == 1) return visit(t, t.child(parent, lo));
    const int mid = lo + (hi - lo) / 2;
    uts::tree_counts low;
    uts::tree_counts high;
#pragma omp task shared(t, parent, high) firstprivate(mid, hi)
    high = visit_children(t, parent, mid, hi);
    low = visit_children(t, parent, lo, mid);
#pragma omp taskwait
    return low + high;
}

uts::tree_counts visit(const uts::tree& t, const uts::node& n) {
    const int k = t.num_children(n);
    if (k == 0) return uts::leaf_counts(n.depth);
    uts::tree_counts below = visit_children(t, n, 0, k);
    below.nodes += 1;
    return below;
}

}  // namespace
}  // namespace forkline_bench

extern "C" void forkline_bench_uts_omp(const forkline_bench::uts::tree_params* p, unsigned workers,
                                       forkline_bench::uts_sample* out) {
    using namespace forkline_bench;
    const uts::tree t(*p);
    const int threads = static_cast<int>(workers);
    omp_set_dynamic(0);  // exactly `threads` in each team, never fewer
    bool warm = false;
    out->timing = warm_up_then_time([&] {
        uts::tree_counts c;
#pragma omp parallel num_threads(threads) shared(c, t)
#pragma omp single
        c = visit(t, t.root());
        (warm ? out->timed : out->warmup) = c;
        warm = true;
        return c.nodes;
    });
}

// bench/uts/uts_forkline.cpp: UTS on forkline::invoke.
#include <forkline/invoke.hpp>   // invoke
#include <forkline/runtime.hpp>  // runtime, runtime_config

#include "uts.hpp"  // run_uts_forkline, count_uts_forkline

namespace forkline_bench {
namespace {

uts::tree_counts visit(const uts::tree& t, const uts::node& n);

// Children [lo, hi) of *parent, hi - lo >= 1, counted into `counts`. The
// halves are callables held in this frame and handed to invoke() by
// reference (it keeps a pointer, not a copy); compared with two lambdas that
// capture everything by reference, the frame is about half the size (224
// bytes rather than 416 with g++ 12), which matters on T3, where the walk is
// 1572 levels deep and each level nests three or four of these frames.
struct children_walk {
    const uts::tree* t;
    const uts::node* parent;  // in the caller's frame, which the join keeps alive
    int lo;
    int hi;
    uts::tree_counts counts;

    void operator()();
};

// Out of line and not inlined: inlined into invoke(), g++ merges the frames
// of both halves' calls into one of 752 bytes per level.
[[gnu::noinline]] void children_walk::operator()() {
    if (hi - lo == 1) {
        counts = visit(*t, t->child(*parent, lo));
        return;
    }
    const int mid = lo + (hi - lo) / 2;
    children_walk low{t, parent, lo, mid, {}};
    children_walk high{t, parent, mid, hi, {}};
    forkline::invoke(low, high);
    counts = low.counts + high.counts;
}

uts::tree_counts visit(const uts::tree& t, const uts::node& n) {
    const int k = t.num_children(n);
    if (k == 0) return uts::leaf_counts(n.depth);
    children_walk all{&t, &n, 0, k, {}};
    all();
    all.counts.nodes += 1;
    return all.counts;
}

}  // namespace

uts::tree_counts count_uts_forkline(const uts::tree& t) { return visit(t, t.root()); }

uts_sample run_uts_forkline(const uts::tree_params& p, unsigned workers) {
    const uts::tree t(p);
    forkline::runtime_config cfg;
    cfg.placement.workers = workers;
    // As for fib: a sweep past the core count oversubscribes instead of
    // stopping, and the command line decides, not FORKLINE_WORKERS.
    cfg.placement.oversubscribe = true;
    cfg.read_environment = false;
    cfg.stack_bytes = k_uts_stack_bytes;
    forkline::runtime rt(cfg);
    uts_sample out;
    bool warm = false;
    out.timing = warm_up_then_time([&] {
        const uts::tree_counts c = rt.run([&] { return count_uts_forkline(t); });
        (warm ? out.timed : out.warmup) = c;
        warm = true;
        return c.nodes;
    });
    return out;
}

}  // namespace forkline_bench

// bench/uts/uts_tbb.cpp: UTS on oneTBB task_group, splitting children as the forkline variant does.
#include <tbb/global_control.h>  // global_control
#include <tbb/task_arena.h>      // task_arena
#include <tbb/task_group.h>      // task_group

#include "uts.hpp"  // run_uts_tbb

namespace forkline_bench {
namespace {

uts::tree_counts visit(const uts::tree& t, const uts::node& n);

uts::tree_counts visit_children(const uts::tree& t, const uts::node& parent, int lo, int hi) {
    if (hi - lo == 1) return visit(t, t.child(parent, lo));
    const int mid = lo + (hi - lo) / 2;
    uts::tree_counts low;
    uts::tree_counts high;
    tbb::task_group tg;
    tg.run([&] { high = visit_children(t, parent, mid, hi); });
    low = visit_children(t, parent, lo, mid);
    tg.wait();
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

uts_sample run_uts_tbb(const uts::tree_params& p, unsigned workers) {
    const uts::tree t(p);
    const int threads = static_cast<int>(workers);
    // The cap and the arena both count the calling thread, which joins the
    // arena in execute(): `workers` threads in all, as for forkline.
    tbb::global_control cap(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::global_control stack(tbb::global_control::thread_stack_size, k_uts_stack_bytes);
    tbb::task_arena arena(threads);
    arena.initialize();
    uts_sample out;
    bool warm = false;
    out.timing = warm_up_then_time([&] {
        const uts::tree_counts c = arena.execute([&] { return visit(t, t.root()); });
        (warm ? out.timed : out.warmup) = c;
        warm = true;
        return c.nodes;
    });
    return out;
}

}  // namespace forkline_bench

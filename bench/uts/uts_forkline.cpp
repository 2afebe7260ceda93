// bench/uts/uts_forkline.cpp: UTS on forkline::invoke_each.
#include <forkline/invoke.hpp>   // invoke_each
#include <forkline/runtime.hpp>  // runtime, runtime_config

#include <atomic>   // atomic
#include <cstddef>  // size_t
#include <cstdint>  // uint64_t
#include <deque>    // deque
#include <mutex>    // mutex, lock_guard

#include "uts.hpp"  // run_uts_forkline, count_uts_forkline

namespace forkline_bench {
namespace {

// Each thread adds what it visits to its own counts, summed at the end: a
// node's children need no place in its frame for their results, and a
// node's frame is one invoke_each, however many children it has (T3 is 1572
// levels deep; nested binary invokes cost four frames a level there, 1.1 KB,
// against 0.2 KB for the serial recursion). Slots are found by a
// thread_local, not a worker index, so the walk runs the same in the probe's
// measuring mode, where there is no runtime.
struct alignas(64) thread_counts {
    uts::tree_counts counts;
};

std::atomic<std::uint64_t> g_walks{0};  // ids, so that a new walk at an old address is not mistaken for it

class walk {
public:
    walk() : m_id(g_walks.fetch_add(1, std::memory_order_relaxed) + 1) {}

    void visit(const uts::node& n) {
        const int k = m_t->num_children(n);
        uts::tree_counts& mine = slot();
        if (k == 0) {
            mine = mine + uts::leaf_counts(n.depth);
            return;
        }
        mine.nodes += 1;
        forkline::invoke_each(static_cast<std::size_t>(k),
                              [this, &n](std::size_t i) { visit(m_t->child(n, static_cast<int>(i))); });
    }

    uts::tree_counts count(const uts::tree& t) {
        m_t = &t;
        visit(t.root());
        uts::tree_counts all;
        // The joins ordered every thread's additions before this read.
        for (const thread_counts& s : m_slots) all = all + s.counts;
        return all;
    }

private:
    uts::tree_counts& slot() {
        if (t_walk != m_id) [[unlikely]] {
            const std::lock_guard<std::mutex> hold(m_mutex);
            m_slots.emplace_back();  // a deque: earlier slots stay where they are
            t_slot = &m_slots.back().counts;
            t_walk = m_id;
        }
        return *t_slot;
    }

    static thread_local std::uint64_t t_walk;
    static thread_local uts::tree_counts* t_slot;

    const std::uint64_t m_id;
    const uts::tree* m_t = nullptr;
    std::mutex m_mutex;                 // guards m_slots' growth (once per thread)
    std::deque<thread_counts> m_slots;  // slot i written by its thread only
};

thread_local std::uint64_t walk::t_walk = 0;
thread_local uts::tree_counts* walk::t_slot = nullptr;

}  // namespace

uts::tree_counts count_uts_forkline(const uts::tree& t) {
    walk w;
    return w.count(t);
}

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

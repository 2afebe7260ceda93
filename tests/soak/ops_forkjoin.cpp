// tests/soak/ops_forkjoin.cpp: the fork-join ops: nested invoke with
// exceptions on either side, task groups (spawn, spawn_on, nested groups,
// cancel, throwing tasks, reuse after wait, a throwing copy constructor),
// and the loops (parallel_for, parallel_reduce, parallel_sort) with checked
// results.
#include <algorithm>  // sort, is_sorted
#include <array>      // array
#include <atomic>     // atomic
#include <cstdint>    // uint64_t
#include <memory>     // unique_ptr
#include <numeric>    // iota
#include <string>     // string, to_string
#include <utility>    // exchange
#include <vector>     // vector

#include "forkline/invoke.hpp"           // invoke
#include "forkline/parallel_for.hpp"     // parallel_for, static_affinity
#include "forkline/parallel_reduce.hpp"  // parallel_reduce, transform_reduce
#include "forkline/parallel_sort.hpp"    // parallel_sort
#include "forkline/task_group.hpp"       // task_group
#include "soak.hpp"

namespace soak {

namespace {

constexpr std::uint64_t k_none = ~std::uint64_t{0};

// ---- invoke ----

struct invoke_state {
    std::uint64_t seed;
    unsigned throw_pct;
    local_counts c;
};

/// One invoke of 2-4 callables, each a leaf or a nested invoke. Returns
/// normally or throws the planned_error that the invoke rethrew, after
/// checking that it is the one promised: the first, in argument order, of
/// those that threw; and that only callables after a thrower were skipped.
void invoke_node(invoke_state& s, std::uint64_t id, int depth) {
    const std::uint64_t h = mix(s.seed ^ id);
    const unsigned arity = 2 + static_cast<unsigned>(h % 3);
    std::array<std::atomic<unsigned>, 4> started{};
    std::array<std::uint64_t, 4> escaped{k_none, k_none, k_none, k_none};
    s.c.issued.fetch_add(arity, std::memory_order_relaxed);

    auto child = [&](unsigned i) {
        started[i].fetch_add(1, std::memory_order_relaxed);
        const std::uint64_t cid = id * 5 + i + 1;
        const std::uint64_t ch = mix(s.seed ^ cid);
        try {
            if (depth > 0 && (ch & 3) == 0) {
                invoke_node(s, cid, depth - 1);
            } else {
                spin(ch % 3000);
                if ((ch >> 8) % 100 < s.throw_pct) throw planned_error(cid);
            }
        } catch (const planned_error& e) {
            escaped[i] = e.id;  // this callable's own slot; read after the join
            s.c.threw.fetch_add(1, std::memory_order_relaxed);
            throw;
        }
        s.c.finished.fetch_add(1, std::memory_order_relaxed);
    };
    auto c0 = [&] { child(0); };
    auto c1 = [&] { child(1); };
    auto c2 = [&] { child(2); };
    auto c3 = [&] { child(3); };

    std::uint64_t caught = k_none;
    try {
        if (arity == 2) forkline::invoke(c0, c1);
        if (arity == 3) forkline::invoke(c0, c1, c2);
        if (arity == 4) forkline::invoke(c0, c1, c2, c3);
    } catch (const planned_error& e) {
        caught = e.id;
    }

    unsigned lowest = arity;
    for (unsigned i = 0; i < arity; ++i) {
        if (escaped[i] != k_none) {
            lowest = i;
            break;
        }
    }
    for (unsigned i = 0; i < arity; ++i) {
        const unsigned n = started[i].load(std::memory_order_relaxed);
        if (n > 1) fail("invoke", "callable " + std::to_string(i) + " ran " + std::to_string(n) + " times");
        if (n == 0) {
            if (i <= lowest) {
                fail("invoke", "callable " + std::to_string(i) + " of " + std::to_string(arity) +
                                   " skipped though no callable before it threw");
            }
            s.c.skipped.fetch_add(1, std::memory_order_relaxed);
        }
    }
    if (lowest == arity) {
        if (caught != k_none) fail("invoke", "an exception came out though no callable threw");
        return;
    }
    if (caught != escaped[lowest]) {
        fail("invoke", "rethrew unit " + (caught == k_none ? std::string("none") : std::to_string(caught)) +
                           ", expected the first thrower's " + std::to_string(escaped[lowest]));
    }
    throw planned_error(caught);
}

// ---- task_group ----

struct group_state;

/// One group's own figures, for the promises about that group.
struct level {
    std::atomic<std::uint32_t> threw{0};
    std::atomic<std::uint32_t> skipped{0};
    std::atomic<bool> cancelled{false};  ///< a task or the spawner called cancel()
};

struct group_state {
    std::uint64_t seed;
    unsigned throw_pct;
    bool throwing_copy;
    local_counts c;
    std::vector<std::atomic<std::uint8_t>> hits;
    std::atomic<std::uint32_t> next_id{0};

    explicit group_state(std::size_t capacity) : hits(capacity) {}
    /// A fresh task id, or k_full when the id space is used up.
    std::uint32_t allocate() {
        const std::uint32_t id = next_id.fetch_add(1, std::memory_order_relaxed);
        return id < hits.size() ? id : k_full;
    }
    static constexpr std::uint32_t k_full = ~std::uint32_t{0};
};

/// Counts a task as skipped when the callable that holds it is destroyed
/// without having run. Moves hand the duty on; a copy holds it as well, so
/// the spawner drops the original's after a successful lvalue spawn.
struct tally {
    group_state* s;
    level* lv;
    bool live = true;
    bool ran = false;
    tally(group_state* st, level* l) noexcept : s(st), lv(l) {}
    tally(tally&& o) noexcept : s(o.s), lv(o.lv), live(std::exchange(o.live, false)), ran(o.ran) {}
    tally(const tally& o) noexcept : s(o.s), lv(o.lv), live(o.live) {}
    tally& operator=(const tally&) = delete;
    ~tally() {
        if (live && !ran) {
            s->c.skipped.fetch_add(1, std::memory_order_relaxed);
            lv->skipped.fetch_add(1, std::memory_order_relaxed);
        }
    }
};

void group_body(group_state& s, level& lv, forkline::task_group& g, std::uint32_t id, int depth);

struct group_task {
    tally t;
    forkline::task_group* g;
    std::uint32_t id;
    int depth;
    void operator()() {
        t.ran = true;
        group_body(*t.s, *t.lv, *g, id, depth);
    }
};

/// Spawns n tasks into g the three ways (spawn, spawn_on, an lvalue spawn).
void spawn_tasks(group_state& s, level& lv, forkline::task_group& g, unsigned n, int depth,
                 std::uint64_t h) {
    for (unsigned i = 0; i < n; ++i) {
        const std::uint32_t id = s.allocate();
        if (id == group_state::k_full) return;
        s.c.issued.fetch_add(1, std::memory_order_relaxed);
        const std::uint64_t th = mix(h ^ id);
        switch (th % 3) {
            case 0: g.spawn(group_task{tally(&s, &lv), &g, id, depth}); break;
            case 1: g.spawn_on(static_cast<unsigned>(th >> 8) % 8, group_task{tally(&s, &lv), &g, id, depth}); break;
            default: {
                group_task t{tally(&s, &lv), &g, id, depth};
                g.spawn(t);  // copied: the copy is the task
                t.t.live = false;
                break;
            }
        }
        if ((th >> 16) % 2000 == 0) {
            lv.cancelled.store(true, std::memory_order_relaxed);
            g.cancel();
        }
    }
}

/// Checks what wait() (or the destructor) promised for one group.
void check_level(const char* what, level& lv, bool threw_out) {
    const bool threw = lv.threw.load(std::memory_order_relaxed) > 0;
    if (threw != threw_out) {
        fail("group", std::string(what) + (threw ? ": a task threw but wait() returned normally"
                                                 : ": wait() threw though no task of the group threw"));
    }
    if (!threw && !lv.cancelled.load(std::memory_order_relaxed) && lv.skipped.load(std::memory_order_relaxed) > 0) {
        fail("group", std::string(what) + ": " + std::to_string(lv.skipped.load()) +
                          " tasks skipped in a group neither cancelled nor failed");
    }
}

void group_body(group_state& s, level& lv, forkline::task_group& g, std::uint32_t id, int depth) {
    const std::uint8_t before = s.hits[id].fetch_add(1, std::memory_order_relaxed);
    if (before != 0) fail("group", "task " + std::to_string(id) + " ran twice");
    const std::uint64_t h = mix(s.seed ^ (std::uint64_t{id} << 20));
    try {
        spin(h % 2000);
        if (depth > 0 && (h >> 4) % 4 == 0) {
            level inner_lv;
            bool threw_out = false;
            {
                forkline::task_group inner;
                spawn_tasks(s, inner_lv, inner, 1 + static_cast<unsigned>((h >> 12) % 12), depth - 1, h);
                try {
                    inner.wait();
                } catch (const planned_error&) {
                    threw_out = true;
                }
                // A nested group is bound to the group of the task that made
                // it ("Cancellation" in DESIGN.md): the outer group's cancel
                // (or a sibling's failure) skips its tasks too. Cancellation
                // lasts until the outer wait(), which comes after this task.
                if (g.is_cancelled()) inner_lv.cancelled.store(true, std::memory_order_relaxed);
                check_level("nested group", inner_lv, threw_out);
            }
            if (threw_out) throw planned_error(id);  // passes the failure up, as a caller would
        }
        if ((h >> 24) % 500 == 0) {
            lv.cancelled.store(true, std::memory_order_relaxed);
            g.cancel();
        }
        if ((h >> 32) % 100 < s.throw_pct) throw planned_error(id);
    } catch (const planned_error&) {
        s.c.threw.fetch_add(1, std::memory_order_relaxed);
        lv.threw.fetch_add(1, std::memory_order_relaxed);
        throw;
    }
    s.c.finished.fetch_add(1, std::memory_order_relaxed);
}

void check_hits(const char* op, group_state& s) {
    std::uint64_t ran = 0;
    const std::uint32_t used = std::min<std::uint32_t>(s.next_id.load(), static_cast<std::uint32_t>(s.hits.size()));
    for (std::uint32_t i = 0; i < used; ++i) {
        const unsigned h = s.hits[i].load(std::memory_order_relaxed);
        if (h > 1) fail(op, "task " + std::to_string(i) + " ran " + std::to_string(h) + " times");
        ran += h;
    }
    const std::uint64_t counted = s.c.finished.load() + s.c.threw.load();
    if (ran != counted) {
        fail(op, std::to_string(ran) + " tasks ran but " + std::to_string(counted) + " finished or threw");
    }
}

// ---- throwing copy ----

struct copy_error : std::exception {
    const char* what() const noexcept override { return "soak: planned copy failure"; }
};

/// A task whose copy constructor throws when `boom` says so. `boom` comes
/// first, so that a throwing copy has made no tally yet.
struct fragile_task {
    bool boom;
    tally t;
    std::uint32_t id;
    fragile_task(bool b, tally tl, std::uint32_t i) : boom(b), t(std::move(tl)), id(i) {}
    fragile_task(fragile_task&&) noexcept = default;
    fragile_task(const fragile_task& o) : boom(copy_or_throw(o.boom)), t(o.t), id(o.id) {}
    static bool copy_or_throw(bool b) {
        if (b) throw copy_error();
        return b;
    }
    void operator()() {
        t.ran = true;
        if (t.s->hits[id].fetch_add(1, std::memory_order_relaxed) != 0) fail("throwing_copy", "a task ran twice");
        spin(id % 500);
        t.s->c.finished.fetch_add(1, std::memory_order_relaxed);
    }
};

}  // namespace

void op_invoke(context& cx, rng& r) {
    invoke_state s{r.next(), static_cast<unsigned>(r.chance(0.5) ? 0 : r.between(1, 15)), {}};
    const int depth = static_cast<int>(r.below(4));
    somewhere(cx, r, [&] {
        try {
            invoke_node(s, 0, depth);
        } catch (const planned_error&) {
        }
    });
    settle(cx, "invoke", k_invoke, s.c);
}

void op_group(context& cx, rng& r) {
    group_state s(4096);
    s.seed = r.next();
    s.throw_pct = r.chance(0.5) ? 0 : static_cast<unsigned>(r.between(1, 10));
    const unsigned n = static_cast<unsigned>(r.between(1, 300));
    const int depth = static_cast<int>(r.below(3));
    const bool quiet_destroy = r.chance(0.1);
    const bool spawner_cancels = r.chance(0.05);
    somewhere(cx, r, [&] {
        level lv;
        if (quiet_destroy) {
            // The destructor waits; an exception is discarded.
            forkline::task_group g;
            spawn_tasks(s, lv, g, n, depth, s.seed);
            return;
        }
        forkline::task_group g;
        spawn_tasks(s, lv, g, n, depth, s.seed);
        if (spawner_cancels) {
            lv.cancelled.store(true, std::memory_order_relaxed);
            g.cancel();
        }
        bool threw_out = false;
        try {
            g.wait();
        } catch (const planned_error&) {
            threw_out = true;
        }
        check_level("group", lv, threw_out);
        // Reuse: wait() cleared the cancellation; a plain batch must all run.
        group_state& st = s;
        const unsigned before = st.throw_pct;
        st.throw_pct = 0;
        const std::uint64_t finished_before = st.c.finished.load();
        unsigned spawned = 0;
        for (unsigned i = 0; i < 1 + n % 40; ++i) {
            const std::uint32_t id = st.allocate();
            if (id == group_state::k_full) break;
            st.c.issued.fetch_add(1, std::memory_order_relaxed);
            ++spawned;
            g.spawn([&st, id] {
                if (st.hits[id].fetch_add(1, std::memory_order_relaxed) != 0) fail("group", "a reused group's task ran twice");
                st.c.finished.fetch_add(1, std::memory_order_relaxed);
            });
        }
        g.wait();
        if (st.c.finished.load() - finished_before < spawned) {
            fail("group", "a group reused after wait() skipped some of " + std::to_string(spawned) + " tasks");
        }
        st.throw_pct = before;
    });
    check_hits("group", s);
    settle(cx, "group", k_group, s.c);
}

void op_throwing_copy(context& cx, rng& r) {
    group_state s(512);
    s.seed = r.next();
    const unsigned n = static_cast<unsigned>(r.between(1, 200));
    const bool may_throw = cx.opt.throwing_copy;
    somewhere(cx, r, [&] {
        level lv;
        forkline::task_group g;
        for (unsigned i = 0; i < n; ++i) {
            const std::uint32_t id = s.allocate();
            if (id == group_state::k_full) break;
            s.c.issued.fetch_add(1, std::memory_order_relaxed);
            const std::uint64_t h = mix(s.seed ^ id);
            fragile_task t(may_throw && h % 8 == 0, tally(&s, &lv), id);
            try {
                if ((h >> 8) % 2 == 0) {
                    g.spawn(t);
                } else {
                    g.spawn_on(static_cast<unsigned>(h >> 16) % 4, t);
                }
            } catch (const copy_error&) {
                s.c.refused.fetch_add(1, std::memory_order_relaxed);  // spawn is all or nothing
            }
            t.t.live = false;
        }
        g.wait();  // hangs if a failed spawn left the group's count raised
        if (lv.skipped.load() != 0) fail("throwing_copy", "tasks of an uncancelled group were skipped");
    });
    check_hits("throwing_copy", s);
    settle(cx, "throwing_copy", k_group, s.c);
}

void op_loops(context& cx, rng& r) {
    local_counts c;
    const unsigned which = static_cast<unsigned>(r.below(7));
    const std::size_t n = r.chance(0.2) ? r.below(50) : r.between(50, 40000);
    const bool throws = which <= 3 && n > 0 && r.chance(0.2);
    const std::size_t throw_at = throws ? r.below(n) : n;
    const std::uint64_t seed = r.next();
    c.issued.store(1);
    std::string what;
    try {
        somewhere(cx, r, [&] {
            if (which <= 3) {
                std::vector<std::atomic<std::uint8_t>> hits(n);
                auto body = [&](std::size_t i) {
                    if (hits[i].fetch_add(1, std::memory_order_relaxed) != 0) fail("loop", "index ran twice");
                    if (i % 997 == 1) {  // a nested loop now and then
                        std::atomic<std::uint64_t> inner{0};
                        forkline::parallel_for(0, 64, [&](int k) { inner.fetch_add(k, std::memory_order_relaxed); });
                        // A throw in the outer loop cancels it, and with it loops
                        // nested in its pieces ("Cancellation" in DESIGN.md).
                        if (!throws && inner.load() != 64 * 63 / 2) fail("loop", "nested parallel_for lost indices");
                    }
                    if (i == throw_at) throw planned_error(i);
                };
                bool threw_out = false;
                try {
                    switch (which) {
                        case 0: forkline::parallel_for(std::size_t{0}, n, body); break;
                        case 1: forkline::parallel_for(std::size_t{0}, n, 1 + seed % 512, body); break;
                        case 2: forkline::parallel_for(std::size_t{0}, n, body, forkline::static_affinity); break;
                        default: {
                            std::vector<std::size_t> idx(n);
                            std::iota(idx.begin(), idx.end(), std::size_t{0});
                            forkline::parallel_for(idx.begin(), idx.end(), [&](std::size_t& i) { body(i); });
                            break;
                        }
                    }
                } catch (const planned_error& e) {
                    if (!throws || e.id != throw_at) fail("loop", "parallel_for rethrew an exception not thrown");
                    threw_out = true;
                }
                if (throws && !threw_out) fail("loop", "parallel_for swallowed its body's exception");
                for (std::size_t i = 0; i < n; ++i) {
                    const unsigned hcount = hits[i].load(std::memory_order_relaxed);
                    if (!throws && hcount != 1) {
                        fail("loop", "index " + std::to_string(i) + " of " + std::to_string(n) + " ran " +
                                         std::to_string(hcount) + " times (kind " + std::to_string(which) + ")");
                    }
                }
                if (throws && hits[throw_at].load() != 1) fail("loop", "the throwing index did not run once");
                if (throws) throw planned_error(throw_at);
            } else if (which == 4) {
                // Pieces must be combined left before right, and cover [0, n).
                struct piece {
                    bool empty = true;
                    std::size_t lo = 0, hi = 0;
                    std::uint64_t sum = 0;
                };
                std::atomic<bool> disorder{false};
                auto fold = [&](std::size_t lo, std::size_t hi, piece acc) {
                    std::uint64_t s = 0;
                    for (std::size_t i = lo; i < hi; ++i) s += i * i % 7919;
                    if (acc.empty) return piece{false, lo, hi, s};
                    if (acc.hi != lo) disorder.store(true);
                    return piece{false, acc.lo, hi, acc.sum + s};
                };
                auto join = [&](piece a, piece b) {
                    if (a.empty) return b;
                    if (b.empty) return a;
                    if (a.hi != b.lo) disorder.store(true);
                    return piece{false, a.lo, b.hi, a.sum + b.sum};
                };
                const piece p = forkline::parallel_reduce(std::size_t{0}, n, piece{}, fold, join);
                std::uint64_t expect = 0;
                for (std::size_t i = 0; i < n; ++i) expect += i * i % 7919;
                if (disorder.load()) fail("loop", "parallel_reduce combined pieces out of order");
                if (n > 0 && (p.empty || p.lo != 0 || p.hi != n || p.sum != expect)) {
                    fail("loop", "parallel_reduce gave a wrong result over " + std::to_string(n) + " indices");
                }
            } else if (which == 5) {
                const std::uint64_t got = forkline::transform_reduce(
                    std::size_t{0}, n, std::uint64_t{0}, [](std::uint64_t a, std::uint64_t b) { return a + b; },
                    [](std::size_t i) { return std::uint64_t{i} * 3 + 1; });
                const std::uint64_t expect = n == 0 ? 0 : std::uint64_t{n} * (n - 1) / 2 * 3 + n;
                if (got != expect) fail("loop", "transform_reduce over " + std::to_string(n) + " indices is wrong");
            } else {
                std::vector<std::uint32_t> v(n);
                rng vr(seed);
                for (auto& x : v) x = static_cast<std::uint32_t>(vr.below(seed % 2 ? 100 : 1u << 30));
                std::vector<std::uint32_t> ref = v;
                const bool descending = seed % 3 == 0;
                if (descending) {
                    forkline::parallel_sort(v.begin(), v.end(), [](std::uint32_t a, std::uint32_t b) { return a > b; });
                    std::sort(ref.begin(), ref.end(), [](std::uint32_t a, std::uint32_t b) { return a > b; });
                } else {
                    forkline::parallel_sort(v.begin(), v.end());
                    std::sort(ref.begin(), ref.end());
                }
                if (v != ref) fail("loop", "parallel_sort of " + std::to_string(n) + " elements is wrong");
            }
        });
        c.finished.store(1);
    } catch (const planned_error&) {
        c.threw.store(1);
    }
    settle(cx, "loop", k_loop, c);
}

}  // namespace soak

// tests/explore.hpp: a small stateless model checker for the lock-free
// protocols (the deque, parking). See "Model checking" in runtime/DESIGN.md.
//
// The code under test is the production code, instantiated with the atomics
// policy `model_atomics` below: every atomic operation, fence and futex call
// becomes a scheduling point. Model threads are real threads serialised by a
// baton (one runs at a time, handing over through semaphores), so sanitizers
// see ordinary synchronisation.
//
// Memory model: a view-based operational model of C++ release/acquire with
// seq_cst fences (as in the promising semantics without promises). Each
// location keeps its history of stores in modification order; each thread a
// view (per location, the oldest store it may still read). A load may read
// any store at or after its view: which one is a choice of the explorer. A
// release store carries the writer's view, an acquire load joins it; an RMW
// reads the newest store and continues its release sequence; a seq_cst
// fence joins the thread's view with a global one, both ways. seq_cst
// loads, stores and RMWs are modelled as the access between two seq_cst
// fences (stronger than C++, never weaker). membarrier() is a seq_cst fence
// executed by every thread. futex_wait compares against the newest store.
//
// Exploration: depth-first over all choices (who runs next, which store a
// load reads, whom a futex wake wakes) with a preemption bound (switching
// away from a thread that could go on) and a bound on stale reads (reading a
// store older than the newest), re-running the scenario from scratch for
// each schedule; then randomised schedules from a seed beyond the bounds.
#pragma once

#include <sched.h>  // sched_setaffinity, sched_getcpu

#include <array>               // array
#include <atomic>              // memory_order
#include <cstdint>             // uint32_t, uint64_t
#include <cstdio>              // snprintf
#include <cstring>             // memcpy
#include <semaphore>           // binary_semaphore
#include <random>              // mt19937_64
#include <stdexcept>           // logic_error
#include <string>              // string
#include <thread>              // thread
#include <vector>              // vector

#include "forkline/detail/atomics.hpp"  // mutation

namespace explore {

inline constexpr int k_max_threads = 4;
inline constexpr int k_max_locations = 24;
inline constexpr int k_controller = -1;

using view = std::array<std::uint16_t, k_max_locations>;

inline void join(view& into, const view& from) noexcept {
    for (int i = 0; i < k_max_locations; ++i) {
        if (from[i] > into[i]) into[i] = from[i];
    }
}

struct options {
    int preemption_bound = 3;
    int stale_bound = 2;
    std::uint64_t max_dfs_schedules = 1'000'000;  ///< stop the depth-first search here (reported)
    std::uint64_t random_schedules = 0;
    std::uint64_t seed = 1;
    unsigned random_preempt_per_mille = 120;  ///< random mode: chance to switch at a point
    unsigned random_stale_per_mille = 250;    ///< random mode: chance to read an older store
    std::uint64_t max_steps = 4000;           ///< a schedule longer than this is abandoned
    bool stop_at_first_failure = true;
};

struct result {
    std::uint64_t dfs_schedules = 0;
    bool dfs_complete = false;  ///< every schedule within the bounds was run
    std::uint64_t random_schedules = 0;
    std::uint64_t abandoned = 0;  ///< schedules cut at max_steps
    std::uint64_t failures = 0;
    std::string first_failure;  ///< the property's message and the schedule's steps
    std::uint64_t schedules() const noexcept { return dfs_schedules + random_schedules; }
};

/// What a scenario sees at the end of a schedule.
struct quiescence {
    std::array<bool, k_max_threads> asleep{};  ///< blocked in futex_wait, never to be woken
    bool abandoned = false;
};

/// A scenario: builds fresh state (model atomics) in reset(), runs thread
/// `i`'s body in run(i), and judges the end state in check() ("" when fine).
class scenario {
public:
    virtual ~scenario() = default;
    virtual int threads() const = 0;
    virtual void reset() = 0;
    virtual void run(int thread) = 0;
    virtual std::string check(const quiescence& q) = 0;
};

class explorer;
inline explorer*& current_explorer() noexcept {
    static explorer* e = nullptr;
    return e;
}

class explorer {
public:
    explorer() {
        current_explorer() = this;
        // One thread runs at a time: keep them all on one cpu, so that a
        // hand-over is a switch on that cpu, not a wake-up across cpus.
        cpu_set_t one;
        CPU_ZERO(&one);
        const int cpu = sched_getcpu();
        CPU_SET(cpu < 0 ? 0 : cpu, &one);
        m_pinned = sched_getaffinity(0, sizeof m_saved_affinity, &m_saved_affinity) == 0 &&
                   sched_setaffinity(0, sizeof one, &one) == 0;
        for (int i = 0; i < k_max_threads; ++i) {
            m_workers[i] = std::thread([this, i] { worker_loop(i); });
        }
    }
    explorer(const explorer&) = delete;
    explorer& operator=(const explorer&) = delete;
    ~explorer() {
        m_shutdown = true;
        for (int i = 0; i < k_max_threads; ++i) m_baton[i].release();
        for (auto& t : m_workers) t.join();
        if (m_pinned) sched_setaffinity(0, sizeof m_saved_affinity, &m_saved_affinity);
        current_explorer() = nullptr;
    }

    result run(scenario& s, const options& opt) {
        m_scenario = &s;
        m_opt = opt;
        result r;
        m_mode = mode::dfs;
        m_path.clear();
        for (;;) {
            if (r.dfs_schedules >= opt.max_dfs_schedules) break;
            one_schedule(r);
            ++r.dfs_schedules;
            if (r.failures != 0 && opt.stop_at_first_failure) return r;
            if (!advance_path()) {
                r.dfs_complete = true;
                break;
            }
        }
        m_mode = mode::random;
        m_rng.seed(opt.seed);
        for (std::uint64_t k = 0; k < opt.random_schedules; ++k) {
            m_path.clear();
            one_schedule(r);
            ++r.random_schedules;
            if (r.failures != 0 && opt.stop_at_first_failure) return r;
        }
        return r;
    }

    // ---- called by the model atomics and environments ----

    bool tearing_down() const noexcept { return m_teardown || m_abandon; }

    int new_location(std::uint64_t init) {
        if (m_location_count == k_max_locations) throw std::logic_error("explore: too many locations");
        location& l = m_locations[m_location_count];
        l.history.clear();
        l.history.push_back({init, view{}});
        return m_location_count++;
    }

    std::uint64_t load(int loc, std::memory_order o) {
        point();
        if (o == std::memory_order_seq_cst) do_fence(me());
        view& cur = m_views[me_index()];
        const location& l = m_locations[loc];
        const int newest = static_cast<int>(l.history.size()) - 1;
        int idx = newest;
        const int oldest = cur[loc];
        if (newest > oldest && !tearing_down()) {
            // Alternative 0 reads the newest store; k reads the k-th older.
            const int stale = choose_stale(newest - oldest + 1);
            idx = newest - stale;
            if (stale != 0) note("r%d<%d>", loc, idx);
        }
        cur[loc] = static_cast<std::uint16_t>(idx);
        if (o == std::memory_order_acquire || o == std::memory_order_acq_rel || o == std::memory_order_seq_cst ||
            o == std::memory_order_consume) {
            join(cur, l.history[idx].v);
        }
        const std::uint64_t v = l.history[idx].value;
        if (o == std::memory_order_seq_cst) do_fence(me());
        return v;
    }

    void store(int loc, std::uint64_t value, std::memory_order o) {
        point();
        if (o == std::memory_order_seq_cst) do_fence(me());
        append(loc, value, o, nullptr);
        if (o == std::memory_order_seq_cst) do_fence(me());
    }

    /// Read-modify-write: `f(old, new&)` returns whether to write `new`.
    template <class F>
    std::uint64_t rmw(int loc, std::memory_order success, std::memory_order failure, F&& f) {
        point();
        const bool sc = success == std::memory_order_seq_cst;
        if (sc) do_fence(me());
        view& cur = m_views[me_index()];
        location& l = m_locations[loc];
        const int newest = static_cast<int>(l.history.size()) - 1;
        const message read = l.history[newest];
        std::uint64_t next = 0;
        const bool write = f(read.value, next);
        const std::memory_order o = write ? success : failure;
        cur[loc] = static_cast<std::uint16_t>(newest);
        if (o == std::memory_order_acquire || o == std::memory_order_acq_rel || o == std::memory_order_seq_cst) {
            join(cur, read.v);
        }
        if (write) append(loc, next, success, &read.v);
        if (sc) do_fence(me());
        return read.value;
    }

    void fence() {
        point();
        do_fence(me());
    }

    /// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): every thread executes a
    /// full barrier before it returns; the caller's first and last.
    void membarrier() {
        point();
        const int self = me();
        do_fence(self);
        for (int t = 0; t < m_thread_count; ++t) {
            if (t != self) do_fence(t);
        }
        do_fence(self);
    }

    void futex_wait(int loc, std::uint64_t expected) {
        point();
        const int self = me();
        do_fence(self);  // the kernel takes the bucket lock: a full barrier
        if (tearing_down()) return;
        if (m_locations[loc].history.back().value != expected) return;
        m_state[self] = state::blocked;
        m_blocked_on[self] = loc;
        note("T%d sleeps", self);
        switch_to(self, pick_next(self, false));
        do_fence(self);
    }

    void futex_wake(int loc, int count) {
        point();
        const int self = me();
        do_fence(self);
        if (tearing_down()) return;
        for (int woken = 0; woken < count; ++woken) {
            int cands[k_max_threads];
            int n = 0;
            for (int t = 0; t < m_thread_count; ++t) {
                if (m_state[t] == state::blocked && m_blocked_on[t] == loc) cands[n++] = t;
            }
            if (n == 0) break;
            const int pick = n == 1 ? 0 : choose_free(n);
            m_state[cands[pick]] = state::runnable;
            note("T%d wakes T%d", self, cands[pick]);
        }
    }

    /// The newest store to a location (for checks; not a scheduling point).
    std::uint64_t newest(int loc) const { return m_locations[loc].history.back().value; }

private:
    enum class state { runnable, blocked, finished };
    // dfs: bounded depth-first search; random: decisions from the seed, all
    // recorded in m_path; replay_all: every decision from m_path.
    enum class mode { dfs, random, replay_all };
    struct message {
        std::uint64_t value;
        view v;  // the view a release store carries
    };
    struct location {
        std::vector<message> history;
    };
    struct choice {
        std::uint32_t taken;
        std::uint32_t count;
    };

    int me() const noexcept { return m_running; }
    int me_index() const noexcept { return m_running == k_controller ? k_max_threads : m_running; }

    void append(int loc, std::uint64_t value, std::memory_order o, const view* continued) {
        view& cur = m_views[me_index()];
        location& l = m_locations[loc];
        if (l.history.size() >= 0xfff0) throw std::logic_error("explore: history too long");
        const auto ts = static_cast<std::uint16_t>(l.history.size());
        cur[loc] = ts;
        message m{value, view{}};
        if (o == std::memory_order_release || o == std::memory_order_acq_rel || o == std::memory_order_seq_cst) {
            m.v = cur;
        }
        // An RMW continues the release sequence of the store it read.
        if (continued != nullptr) join(m.v, *continued);
        m.v[loc] = ts;
        l.history.push_back(m);
    }

    void do_fence(int t) {
        view& v = m_views[t == k_controller ? k_max_threads : t];
        join(v, m_sc);
        m_sc = v;
    }

    void note(const char* fmt, int a, int b = 0) {
        if (!m_recording) return;
        char buf[64];
        std::snprintf(buf, sizeof buf, fmt, a, b);
        m_trace += buf;
        m_trace += ' ';
    }

    // -- choices --

    std::uint32_t choose_raw(std::uint32_t count) {
        if (m_depth < m_path.size()) {
            const choice c = m_path[m_depth++];
            if (c.count != count) throw std::logic_error("explore: the scenario is not deterministic");
            return c.taken;
        }
        m_path.push_back({0, count});
        ++m_depth;
        return 0;
    }

    bool advance_path() {
        while (!m_path.empty() && m_path.back().taken + 1 >= m_path.back().count) m_path.pop_back();
        if (m_path.empty()) return false;
        ++m_path.back().taken;
        return true;
    }

    /// A decision among n made at random (recorded for replay).
    int random_pick(std::uint64_t n, std::uint64_t k) {
        m_path.push_back({static_cast<std::uint32_t>(k), static_cast<std::uint32_t>(n)});
        ++m_depth;
        return static_cast<int>(k);
    }

    int choose_free(int n) {
        if (m_mode == mode::random) return random_pick(n, m_rng() % static_cast<std::uint64_t>(n));
        return static_cast<int>(choose_raw(static_cast<std::uint32_t>(n)));
    }

    int choose_stale(int n) {
        if (m_mode == mode::random) {
            if (m_rng() % 1000 >= m_opt.random_stale_per_mille) return random_pick(n, 0);
            return random_pick(n, 1 + m_rng() % static_cast<std::uint64_t>(n - 1));
        }
        if (m_mode == mode::dfs && m_stale_used >= m_opt.stale_bound) return 0;
        const int k = static_cast<int>(choose_raw(static_cast<std::uint32_t>(n)));
        if (k != 0) ++m_stale_used;
        return k;
    }

    /// Who runs next. `self_can_run`: the caller could go on (switching away
    /// is then a preemption).
    int pick_next(int self, bool self_can_run) {
        if (tearing_down()) return self_can_run ? self : k_controller;
        int cands[k_max_threads];
        int n = 0;
        if (self_can_run) cands[n++] = self;
        for (int t = 0; t < m_thread_count; ++t) {
            if (t != self && m_state[t] == state::runnable) cands[n++] = t;
        }
        if (n == 0) return k_controller;
        if (n == 1) return cands[0];
        if (!self_can_run) return cands[choose_free(n)];
        int k = 0;
        if (m_mode == mode::random) {
            k = m_rng() % 1000 >= m_opt.random_preempt_per_mille
                    ? random_pick(n, 0)
                    : random_pick(n, 1 + m_rng() % static_cast<std::uint64_t>(n - 1));
        } else if (m_mode == mode::dfs && m_preemptions >= m_opt.preemption_bound) {
            k = 0;
        } else {
            k = static_cast<int>(choose_raw(static_cast<std::uint32_t>(n)));
        }
        if (k != 0) ++m_preemptions;
        return cands[k];
    }

    /// A scheduling point, before every model operation.
    void point() {
        const int self = me();
        if (self == k_controller || tearing_down()) return;
        if (++m_steps > m_opt.max_steps) {
            m_abandon = true;
            return;
        }
        const int next = pick_next(self, true);
        if (next != self) {
            note("T%d>T%d", self, next);
            switch_to(self, next);
        }
    }

    /// Gives the baton to `next` and waits to get it back.
    void switch_to(int self, int next) {
        hand_to(next);
        m_baton[self].acquire();
    }

    // The baton: m_running is written only by its holder, before it releases
    // the next holder's semaphore (which orders everything it did before).
    void hand_to(int next) {
        m_running = next;
        m_baton[next == k_controller ? k_max_threads : next].release();
    }

    void worker_loop(int i) {
        for (;;) {
            m_baton[i].acquire();
            if (m_shutdown) return;
            m_scenario->run(i);
            m_state[i] = state::finished;
            note("T%d ends", i);
            hand_to(pick_next(i, false));
        }
    }

    void one_schedule(result& r) {
        m_depth = 0;
        m_steps = 0;
        m_preemptions = 0;
        m_stale_used = 0;
        m_teardown = false;
        m_abandon = false;
        m_recording = false;
        m_trace.clear();
        m_location_count = 0;
        m_sc = view{};
        for (auto& v : m_views) v = view{};
        m_scenario->reset();
        m_thread_count = m_scenario->threads();
        for (int t = 0; t < m_thread_count; ++t) m_state[t] = state::runnable;
        m_running = k_controller;
        run_until_quiet(pick_next(k_controller, false));
        quiescence q;
        q.abandoned = m_abandon;
        for (int t = 0; t < m_thread_count; ++t) q.asleep[t] = m_state[t] == state::blocked;
        std::string failure = m_abandon ? std::string() : m_scenario->check(q);
        if (m_abandon) ++r.abandoned;
        // Let every thread finish: blocked ones return from futex_wait, the
        // scenario's loops see tearing_down() and leave.
        m_teardown = true;
        for (int t = 0; t < m_thread_count; ++t) {
            if (m_state[t] != state::finished) {
                m_state[t] = state::runnable;
                run_until_quiet(t);
            }
        }
        if (!failure.empty()) {
            ++r.failures;
            if (r.first_failure.empty()) r.first_failure = failure + "\n  schedule: " + replay_trace();
        }
    }

    /// Runs the schedule just explored again, recording its steps.
    std::string replay_trace() {
        // Re-run with the same decisions, recording.
        const mode saved_mode = m_mode;
        if (m_mode == mode::random) m_mode = mode::replay_all;
        std::vector<choice> saved = m_path;
        m_path.resize(m_depth);
        m_depth = 0;
        m_steps = 0;
        m_preemptions = 0;
        m_stale_used = 0;
        m_teardown = false;
        m_abandon = false;
        m_trace.clear();
        m_recording = true;
        m_location_count = 0;
        m_sc = view{};
        for (auto& v : m_views) v = view{};
        m_scenario->reset();
        for (int t = 0; t < m_thread_count; ++t) m_state[t] = state::runnable;
        m_running = k_controller;
        const int first = pick_next(k_controller, false);
        note("T%d starts", first);
        run_until_quiet(first);
        m_teardown = true;
        m_recording = false;
        for (int t = 0; t < m_thread_count; ++t) {
            if (m_state[t] != state::finished) {
                m_state[t] = state::runnable;
                run_until_quiet(t);
            }
        }
        m_path = saved;
        m_mode = saved_mode;
        return m_trace;
    }

    void run_until_quiet(int first) {
        hand_to(first);
        m_baton[k_max_threads].acquire();
    }

    scenario* m_scenario = nullptr;
    options m_opt;
    std::array<std::thread, k_max_threads> m_workers;
    // One per model thread, and the controller's last.
    std::array<std::binary_semaphore, k_max_threads + 1> m_baton{
        std::binary_semaphore(0), std::binary_semaphore(0), std::binary_semaphore(0), std::binary_semaphore(0),
        std::binary_semaphore(0)};
    int m_running = k_controller;  // the baton holder
    bool m_shutdown = false;        // written before the final releases
    cpu_set_t m_saved_affinity{};
    bool m_pinned = false;

    // The state of one schedule, touched only by the baton holder.
    int m_thread_count = 0;
    std::array<state, k_max_threads> m_state{};
    std::array<int, k_max_threads> m_blocked_on{};
    std::array<view, k_max_threads + 1> m_views{};  // + the controller's
    view m_sc{};
    std::array<location, k_max_locations> m_locations{};
    int m_location_count = 0;
    std::vector<choice> m_path;
    std::size_t m_depth = 0;
    std::uint64_t m_steps = 0;
    int m_preemptions = 0;
    int m_stale_used = 0;
    bool m_teardown = false;
    bool m_abandon = false;
    mode m_mode = mode::dfs;
    bool m_recording = false;
    std::string m_trace;
    std::mt19937_64 m_rng;
};

/// std::atomic's interface over the explorer's memory model.
template <class U>
class model_atomic {
    static_assert(sizeof(U) <= sizeof(std::uint64_t));

public:
    model_atomic() : model_atomic(U{}) {}
    model_atomic(U v) : m_loc(current_explorer()->new_location(bits(v))) {}  // NOLINT: as std::atomic
    model_atomic(const model_atomic&) = delete;
    model_atomic& operator=(const model_atomic&) = delete;

    U load(std::memory_order o = std::memory_order_seq_cst) const {
        return value(current_explorer()->load(m_loc, o));
    }
    void store(U v, std::memory_order o = std::memory_order_seq_cst) { current_explorer()->store(m_loc, bits(v), o); }
    U exchange(U v, std::memory_order o = std::memory_order_seq_cst) {
        return value(current_explorer()->rmw(m_loc, o, o, [&](std::uint64_t, std::uint64_t& next) {
            next = bits(v);
            return true;
        }));
    }
    bool compare_exchange_strong(U& expected, U desired, std::memory_order success, std::memory_order failure) {
        bool ok = false;
        const U old = value(current_explorer()->rmw(m_loc, success, failure, [&](std::uint64_t cur, std::uint64_t& next) {
            ok = cur == bits(expected);
            next = bits(desired);
            return ok;
        }));
        if (!ok) expected = old;
        return ok;
    }
    bool compare_exchange_strong(U& expected, U desired, std::memory_order o = std::memory_order_seq_cst) {
        const std::memory_order f = o == std::memory_order_acq_rel   ? std::memory_order_acquire
                                    : o == std::memory_order_release ? std::memory_order_relaxed
                                                                     : o;
        return compare_exchange_strong(expected, desired, o, f);
    }
    U fetch_add(U d, std::memory_order o = std::memory_order_seq_cst) {
        return value(current_explorer()->rmw(m_loc, o, o, [&](std::uint64_t cur, std::uint64_t& next) {
            next = bits(static_cast<U>(value(cur) + d));
            return true;
        }));
    }
    U fetch_sub(U d, std::memory_order o = std::memory_order_seq_cst) {
        return value(current_explorer()->rmw(m_loc, o, o, [&](std::uint64_t cur, std::uint64_t& next) {
            next = bits(static_cast<U>(value(cur) - d));
            return true;
        }));
    }
    /// The newest store, for a scenario's check() (not a scheduling point).
    U newest() const { return value(current_explorer()->newest(m_loc)); }
    int location() const noexcept { return m_loc; }

private:
    static std::uint64_t bits(U v) noexcept {
        std::uint64_t b = 0;
        std::memcpy(&b, &v, sizeof v);
        return b;
    }
    static U value(std::uint64_t b) noexcept {
        U v;
        std::memcpy(&v, &b, sizeof v);
        return v;
    }
    const int m_loc;
};

/// The atomics policy of the code under test (see forkline/detail/atomics.hpp).
template <forkline::detail::mutation M = forkline::detail::mutation::none>
struct model_atomics {
    template <class U>
    using atomic = model_atomic<U>;
    static void fence() { current_explorer()->fence(); }
    static void compiler_fence() noexcept {}
    static constexpr forkline::detail::mutation k_mutation = M;
};

/// The environment of the parking protocol (forkline/detail/parking.hpp).
/// `membarrier`: the heavy barrier is membarrier(), else a seq_cst fence.
struct model_parking_env {
    bool membarrier = true;
    void futex_wait(const model_atomic<std::uint32_t>& word, std::uint32_t expected) const {
        current_explorer()->futex_wait(word.location(), expected);
    }
    void futex_wake(const model_atomic<std::uint32_t>& word, int count) const {
        current_explorer()->futex_wake(word.location(), count);
    }
    void heavy_barrier() const {
        if (membarrier) {
            current_explorer()->membarrier();
        } else {
            current_explorer()->fence();
        }
    }
};

}  // namespace explore

// tests/test_explore_parking.cpp: the parking protocol (detail/parking.hpp,
// steps P1-P6 and N1-N3), the production code itself, run by the model
// checker of tests/explore.hpp. A pusher publishes jobs and runs the wake
// check after each; workers take jobs (waking one more helper when work is
// left, as a steal does) and park when they find none.
// Properties, judged when every thread has finished or sleeps for good:
//  - no worker sleeps while a job is queued (a lost wake-up);
//  - no worker sleeps while the wake token is taken (every later wake_one()
//    would be skipped: defect 5 of issue 12).
// Mutation test: the order before the fix (token cleared before the epoch
// is read) must be caught. See "Model checking" in runtime/DESIGN.md.
#include <doctest/doctest.h>

#include <chrono>   // steady_clock
#include <cstdlib>  // getenv
#include <cstdint>  // uint32_t
#include <memory>   // unique_ptr
#include <string>   // string, to_string

#include "explore.hpp"                 // explorer, model_atomics, model_parking_env
#include "forkline/detail/parking.hpp" // parking_words, park, wake_one, wake_needed_after_push
#include "support.hpp"                 // scaled

namespace {

using forkline::detail::mutation;

struct parking_spec {
    const char* name;
    int jobs;          // pushed by the last thread
    int workers;       // threads 0..workers-1
    int quota;         // a worker leaves after this many jobs (it runs a long one); 0: never
    bool pusher_works; // the pusher becomes a worker after its pushes
    bool membarrier;   // heavy barrier: membarrier(), else a fence (and fenced pushes)
};

template <mutation M>
class parking_scenario final : public explore::scenario {
    using atomics = explore::model_atomics<M>;
    using words = forkline::detail::parking_words<atomics>;
    using counter = explore::model_atomic<std::uint32_t>;

public:
    explicit parking_scenario(const parking_spec& s) : m_spec(s) { m_env.membarrier = s.membarrier; }

    int threads() const override { return 1 + m_spec.workers; }

    void reset() override {
        m_words.reset();
        m_pushed.reset();
        m_taken.reset();
        m_words = std::make_unique<words>();
        m_words->push_needs_fence = !m_spec.membarrier;
        m_pushed = std::make_unique<counter>(0u);
        m_taken = std::make_unique<counter>(0u);
    }

    void run(int thread) override {
        if (thread == m_spec.workers) {  // the pusher
            for (int i = 0; i < m_spec.jobs; ++i) {
                // The push: one writer, a release store (as the deque's bottom).
                m_pushed->store(static_cast<std::uint32_t>(i + 1), std::memory_order_release);
                if (forkline::detail::wake_needed_after_push(*m_words)) {
                    forkline::detail::wake_one(*m_words, m_env);
                }
            }
            if (!m_spec.pusher_works) return;
        }
        int mine = 0;
        for (;;) {
            if (explore::current_explorer()->tearing_down()) return;
            if (take()) {
                // The ramp-up step of runtime.cpp's steal_from(): more left
                // and someone asleep, wake one more helper.
                if (m_pushed->load(std::memory_order_relaxed) > m_taken->load(std::memory_order_relaxed) &&
                    m_words->sleepers.load(std::memory_order_relaxed) != 0) {
                    forkline::detail::wake_one(*m_words, m_env);
                }
                if (++mine == m_spec.quota) return;
                continue;
            }
            forkline::detail::park(
                *m_words, m_env,
                [&] {
                    // relaxed, as the runtime's scan (size_estimate) after the heavy barrier.
                    return m_pushed->load(std::memory_order_relaxed) > m_taken->load(std::memory_order_relaxed);
                },
                [] {});
        }
    }

    std::string check(const explore::quiescence& q) override {
        for (int t = 0; t < threads(); ++t) {
            if (!q.asleep[t]) continue;
            if (m_pushed->newest() > m_taken->newest()) {
                return "lost wake-up: thread " + std::to_string(t) + " sleeps while " +
                       std::to_string(m_pushed->newest() - m_taken->newest()) + " job(s) are queued";
            }
            if (m_words->waking.newest() != 0) {
                return "thread " + std::to_string(t) +
                       " sleeps while the wake token is taken: every later wake_one() is skipped";
            }
        }
        return {};
    }

private:
    bool take() {
        std::uint32_t t = m_taken->load(std::memory_order_relaxed);
        for (;;) {
            // acquire: pairs with the push's release store.
            if (t >= m_pushed->load(std::memory_order_acquire)) return false;
            // seq_cst, as the steal's CAS on top.
            if (m_taken->compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) {
                return true;
            }
        }
    }

    parking_spec m_spec;
    explore::model_parking_env m_env;
    std::unique_ptr<words> m_words;
    std::unique_ptr<counter> m_pushed;
    std::unique_ptr<counter> m_taken;
};

constexpr parking_spec k_cases[] = {
    // The interleaving of defect 5: W2 between P1 and P2 (old order), the
    // pusher takes the token for W1, W1 backs out with the job.
    {"2 jobs; 2 workers that keep the job they take; membarrier", 2, 2, 1, false, true},
    {"2 jobs; 2 workers that keep the job they take; fenced pushes", 2, 2, 1, false, false},
    {"push then park; 1 more worker; membarrier", 1, 1, 0, true, true},
    {"2 jobs; 2 workers that go on; membarrier", 2, 2, 0, false, true},
};

template <mutation M>
explore::result explore_cases(const explore::options& opt, bool stop_at_failure) {
    explore::explorer ex;
    explore::result total;
    total.dfs_complete = true;
    for (const parking_spec& c : k_cases) {
        parking_scenario<M> s(c);
        const auto t0 = std::chrono::steady_clock::now();
        const explore::result r = ex.run(s, opt);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        MESSAGE(std::string(c.name) << ": " << r.dfs_schedules << " bounded schedules ("
                                    << std::string(r.dfs_complete      ? "all"
                                                   : r.failures != 0 ? "stopped at the first failure"
                                                                     : "cut at the cap")
                                    << "), " << r.random_schedules << " random, " << r.abandoned
                                    << " cut at the step limit, " << r.failures << " failing, " << secs << " s");
        total.dfs_schedules += r.dfs_schedules;
        total.random_schedules += r.random_schedules;
        total.abandoned += r.abandoned;
        total.failures += r.failures;
        total.dfs_complete = total.dfs_complete && r.dfs_complete;
        if (total.first_failure.empty() && !r.first_failure.empty()) {
            total.first_failure = std::string(c.name) + ": " + r.first_failure;
        }
        if (stop_at_failure && r.failures != 0) break;
    }
    return total;
}

/// FORKLINE_EXPLORE_FULL=1: run every schedule within the bounds (minutes)
/// instead of stopping each scenario's depth-first search at a cap.
bool full_search() {
    const char* v = std::getenv("FORKLINE_EXPLORE_FULL");
    return v != nullptr && *v != '\0' && *v != '0';
}

explore::options bounded(std::uint64_t random_schedules) {
    explore::options o;
    o.preemption_bound = 3;
    o.stale_bound = 1;
    o.max_dfs_schedules = full_search() ? 100'000'000 : scaled(40'000);
    o.random_schedules = random_schedules == 0 ? 0 : scaled(random_schedules);
    o.seed = 5;
    return o;
}

/// For a mutation: search until the first failure (not scaled down: the
/// search stops there).
explore::options hunting() {
    explore::options o = bounded(0);
    o.max_dfs_schedules = 2'000'000;
    return o;
}

}  // namespace

TEST_CASE("explore parking: no lost wake-up and no stranded wake token, in every schedule within the bounds") {
    const explore::result r = explore_cases<mutation::none>(bounded(8'000), false);
    MESSAGE("parking: " << r.schedules() << " schedules (" << r.dfs_schedules << " bounded, " << r.random_schedules
                        << " random)");
    INFO(r.first_failure);
    CHECK(r.failures == 0);
    CHECK(r.schedules() >= scaled(100'000));
}

TEST_CASE("explore parking, mutation: the token cleared before the epoch is read (defect 5 of issue 12) is caught") {
    const explore::result r = explore_cases<mutation::token_before_epoch>(hunting(), true);
    MESSAGE("found: " << r.first_failure);
    CHECK(r.failures > 0);
}

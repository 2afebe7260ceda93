// tests/test_explore_deque.cpp: the work-stealing deque (detail/deque.hpp),
// the production code itself, run by the model checker of tests/explore.hpp
// under every schedule within its bounds plus randomised ones. Property:
// every pushed item is taken exactly once (by a pop, a steal, or the owner
// running a refused push itself), and nothing else is ever taken.
// Mutation tests: the same code with a defect switched on through its
// atomics policy must be caught. See "Model checking" in runtime/DESIGN.md.
#include <doctest/doctest.h>

#include <chrono>   // steady_clock
#include <cstdlib>  // getenv
#include <cstdint>  // int64_t
#include <memory>   // unique_ptr
#include <string>   // string, to_string

#include "explore.hpp"                // explorer, model_atomics
#include "forkline/detail/deque.hpp"  // worker_deque, stealer
#include "support.hpp"                // scaled

namespace {

using forkline::detail::mutation;
using forkline::detail::steal_outcome;

/// One owner that pushes `pushes` items (popping once after `pop_after`
/// pushes, if set) then pops until empty; `thieves` thieves that each try
/// `steals` steals.
template <mutation M>
class deque_scenario final : public explore::scenario {
    using atomics = explore::model_atomics<M>;
    using deque = forkline::detail::worker_deque<int, atomics>;
    using stealer = forkline::detail::stealer<int, atomics>;
    static constexpr int k_capacity = 4;

public:
    deque_scenario(int pushes, int thieves, int steals, int pop_after = -1)
        : m_pushes(pushes), m_thieves(thieves), m_steals(steals), m_pop_after(pop_after) {}

    int threads() const override { return 1 + m_thieves; }

    void reset() override {
        m_deque.reset();
        m_slots = std::make_unique<explore::model_atomic<int*>[]>(k_capacity);  // each nullptr
        m_deque = std::make_unique<deque>(m_slots.get(), k_capacity);
        for (int& t : m_taken) t = 0;
        m_foreign = 0;
    }

    void run(int thread) override {
        if (thread == 0) {
            for (int i = 0; i < m_pushes; ++i) {
                if (!m_deque->push(&m_items[i])) take(&m_items[i]);  // full: run it ourselves
                if (i + 1 == m_pop_after) take(m_deque->pop());
            }
            while (int* item = m_deque->pop()) take(item);
        } else {
            stealer thief(m_deque->storage());
            for (int k = 0; k < m_steals; ++k) {
                const auto r = thief.steal();
                if (r.outcome == steal_outcome::taken) {
                    if (r.item == nullptr) ++m_foreign;  // a slot read before its item was visible
                    take(r.item);
                }
            }
        }
    }

    std::string check(const explore::quiescence&) override {
        if (m_foreign != 0) return "a steal took an item that was never pushed (or a null slot) (" + std::to_string(m_foreign) + ")";
        for (int i = 0; i < m_pushes; ++i) {
            if (m_taken[i] != 1) {
                return "item " + std::to_string(i) + " taken " + std::to_string(m_taken[i]) + " times";
            }
        }
        return {};
    }

private:
    void take(int* item) {
        if (item == nullptr) return;
        if (item < m_items || item >= m_items + m_pushes) {
            ++m_foreign;
            return;
        }
        ++m_taken[item - m_items];
    }

    int m_pushes, m_thieves, m_steals, m_pop_after;
    std::unique_ptr<explore::model_atomic<int*>[]> m_slots;
    std::unique_ptr<deque> m_deque;
    int m_items[8] = {};
    int m_taken[8] = {};
    int m_foreign = 0;
};

}  // namespace

namespace {

struct case_spec {
    const char* name;
    int pushes, thieves, steals, pop_after;
};

// owner + 2 thieves: the Dekker pair of pop and steal, and the last-item race.
constexpr case_spec k_cases[] = {
    {"push 2, pop until empty; 2 thieves steal once", 2, 2, 1, -1},
    {"push 3 with a pop after the 2nd; 1 thief steals twice", 3, 1, 2, 2},
    {"push 5 into 4 slots (a refused push); 1 thief steals twice", 5, 1, 2, -1},
};

template <mutation M>
explore::result explore_cases(const explore::options& opt, bool stop_at_failure) {
    explore::explorer ex;
    explore::result total;
    total.dfs_complete = true;
    for (const case_spec& c : k_cases) {
        deque_scenario<M> s(c.pushes, c.thieves, c.steals, c.pop_after);
        const auto t0 = std::chrono::steady_clock::now();
        const explore::result r = ex.run(s, opt);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        MESSAGE(std::string(c.name) << ": " << r.dfs_schedules << " bounded schedules ("
                       << std::string(r.dfs_complete ? "all" : r.failures != 0 ? "stopped at the first failure" : "cut at the cap") << "), " << r.random_schedules
                       << " random, " << r.failures << " failing, " << secs << " s");
        total.dfs_schedules += r.dfs_schedules;
        total.random_schedules += r.random_schedules;
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
    o.max_dfs_schedules = full_search() ? 100'000'000 : scaled(150'000);
    o.random_schedules = random_schedules == 0 ? 0 : scaled(random_schedules);
    o.seed = 12;
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

TEST_CASE("explore deque: every item taken exactly once, in every schedule within the bounds") {
    const explore::result r = explore_cases<mutation::none>(bounded(5'000), false);
    MESSAGE("deque: " << r.schedules() << " schedules (" << r.dfs_schedules << " bounded, "
                      << r.random_schedules << " random)");
    INFO(r.first_failure);
    CHECK(r.failures == 0);
    CHECK(r.schedules() >= scaled(100'000));
}

TEST_CASE("explore deque, mutation: steal() without its seq_cst fence is caught") {
    const explore::result r = explore_cases<mutation::steal_without_fence>(hunting(), true);
    MESSAGE("found: " << r.first_failure);
    CHECK(r.failures > 0);
}

TEST_CASE("explore deque, mutation: pop() storing bottom relaxed (defect 7 of issue 12) is caught") {
    const explore::result r = explore_cases<mutation::pop_relaxed_bottom>(hunting(), true);
    MESSAGE("found: " << r.first_failure);
    CHECK(r.failures > 0);
}

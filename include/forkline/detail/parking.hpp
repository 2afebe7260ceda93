// forkline/detail/parking.hpp: the parking protocol, steps P1-P6 and N1-N3.
//
// See "Parking protocol" in runtime/DESIGN.md. The steps live here, apart
// from the runtime's bookkeeping, and are written against an atomics policy
// (atomics.hpp) and an environment that supplies the futex and the heavy
// barrier, so that tests/test_explore_parking.cpp runs this very code under
// the model checker. runtime/runtime.cpp instantiates it with std::atomic,
// futex(2) and membarrier(2).
//
// An environment `Env` provides:
//   void futex_wait(const atomic<uint32_t>& word, uint32_t expected);  // may return spuriously
//   void futex_wake(const atomic<uint32_t>& word, int count);
//   void heavy_barrier();  // membarrier(), or a seq_cst fence in fallback mode
#pragma once

#include <atomic>   // memory_order
#include <climits>  // INT_MAX
#include <cstddef>  // size_t
#include <cstdint>  // uint32_t

#include "forkline/detail/atomics.hpp"  // std_atomics, has_mutation

namespace forkline::detail {

/// The shared words of the protocol.
template <class Atomics = std_atomics>
struct parking_words {
    template <class U>
    using atomic = typename Atomics::template atomic<U>;
    static constexpr std::size_t k_line = 64;

    // Parking workers (+1 at P3, -1 at P4's back-out or P6).
    // written by: parkers; read by: every push (the wake check N1)
    alignas(k_line) atomic<std::uint32_t> sleepers{0};
    // True when the heavy barrier is only a fence (no membarrier, or
    // ThreadSanitizer), so that pushes must pay a full fence for the check
    // N1. Set at start; goes from false to true once if membarrier fails
    // later ("When membarrier fails" in DESIGN.md). A plain std::atomic: a
    // mode, not a step of the protocol the explorer schedules. Beside
    // sleepers: a push reads both, nobody writes here on a push.
    std::atomic<bool> push_needs_fence{true};
    // True while the injection queue may hold a job that arrived when no
    // worker was parked: a worker at a fork-join's join then runs one
    // ("Injection bound" in DESIGN.md). A hint, not a step of the protocol:
    // a lost or stale value only delays or wastes one look at the queue.
    // written by: submitters (set), joiners that find the queue empty (clear);
    // read by: every join of invoke, beside the push's read of sleepers.
    std::atomic<bool> injected_waiting{false};
    // The futex word. written by: notifiers (N3, wake_all); read by: parkers (P1, P5)
    alignas(k_line) atomic<std::uint32_t> epoch{0};
    // The wake token: 1 while a wake is in flight.
    // written by: notifiers (N2, to 1), parkers (P2 and P6, to 0)
    alignas(k_line) atomic<std::uint32_t> waking{0};
};

/// N1: after a push, whether a worker may be asleep.
template <class Atomics>
inline bool wake_needed_after_push(parking_words<Atomics>& w) noexcept {
    // relaxed: a push that still reads false after a membarrier failure is
    // covered by timed parking ("When membarrier fails").
    if (w.push_needs_fence.load(std::memory_order_relaxed)) {
        Atomics::fence();
    } else {
        // Asymmetric fence, light side: the parker's membarrier() supplies the
        // hardware barrier on this thread; we only stop the compiler from
        // moving the load of sleepers above the store of bottom.
        Atomics::compiler_fence();
    }
    // relaxed: ordered by the fence above against the parker's fetch_add +
    // heavy barrier + scan (P3, P4).
    return w.sleepers.load(std::memory_order_relaxed) != 0;
}

/// N2-N3: wake one parked worker unless a wake is already in flight.
template <class Atomics, class Env>
inline void wake_one(parking_words<Atomics>& w, Env& env) noexcept {
    // N2. acq_rel: one wake in flight at a time, so a burst of pushes wakes
    // one worker, not a herd. The release publishes our push to whoever
    // takes the token back (P2, P6); as an RMW it also carries the pushes of
    // the notifiers whose exchange came before ours.
    if (w.waking.exchange(1, std::memory_order_acq_rel) != 0) return;
    // N3. release: pairs with the acquire load at P1.
    w.epoch.fetch_add(1, std::memory_order_release);
    env.futex_wake(w.epoch, 1);
}

/// Wakes every parked worker (stop, affinity posts).
template <class Atomics, class Env>
inline void wake_all(parking_words<Atomics>& w, Env& env) noexcept {
    // release: pairs with the acquire load at P1.
    w.epoch.fetch_add(1, std::memory_order_release);
    env.futex_wake(w.epoch, INT_MAX);
}

/// P1-P6. `work_visible()` is the scan of P4 (deques, injector, mailbox,
/// shutdown); `about_to_sleep()` runs between P4 and P5 (statistics).
/// Returns true when the worker slept (passed P5), false when P4 found work.
template <class Atomics, class Env, class Scan, class AboutToSleep>
inline bool park(parking_words<Atomics>& w, Env& env, Scan&& work_visible, AboutToSleep&& about_to_sleep) noexcept {
    std::uint32_t epoch;
    if constexpr (has_mutation<Atomics>(mutation::token_before_epoch)) {
        // The order before issue 12, kept for the mutation test only: a
        // notifier can take the token between these two steps, and this
        // worker then sleeps on the new epoch with the token still taken.
        w.waking.exchange(0, std::memory_order_acq_rel);
        epoch = w.epoch.load(std::memory_order_acquire);
    } else {
        // P1: acquire: pairs with the release increment at N3. Read before
        // P2, so that any notifier whose token P2 does not clear bumps the
        // epoch after this read, and P5 does not sleep through it.
        epoch = w.epoch.load(std::memory_order_acquire);
        // P2: a parker owns no pending wake; clearing the token keeps a token
        // whose target went back to work from blocking all later wakes.
        // acq_rel: see P6.
        w.waking.exchange(0, std::memory_order_acq_rel);
    }
    // P3: seq_cst: announce before the scan; then the heavy barrier, the
    // rare side of the asymmetric Dekker pair with N1.
    w.sleepers.fetch_add(1, std::memory_order_seq_cst);
    env.heavy_barrier();
    // P4: scan. Any push that did not see our announcement is visible here.
    if (work_visible()) {
        w.sleepers.fetch_sub(1, std::memory_order_seq_cst);
        return false;
    }
    about_to_sleep();
    // P5: sleep unless the epoch moved since P1.
    env.futex_wait(w.epoch, epoch);
    // P6: take over the wake token. acq_rel, an RMW: it reads the last
    // notifier's exchange, whose release makes that notifier's push (and
    // that of every notifier that found the token taken before it) visible
    // to the search this worker starts now.
    w.sleepers.fetch_sub(1, std::memory_order_seq_cst);
    w.waking.exchange(0, std::memory_order_acq_rel);
    return true;
}

}  // namespace forkline::detail

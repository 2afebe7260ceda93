// forkline/detail/atomics.hpp: the atomics policy the lock-free protocols are
// written against.
//
// The deque (deque.hpp) and the parking protocol (parking.hpp) take their
// atomic type and their fence from a policy, so that the tests can run the
// same code under a controlled scheduler with a model of weak memory
// (tests/explore.hpp). Production uses `std_atomics`: std::atomic with the
// orders written in the code, and full_fence(); it compiles to the same
// instructions as plain std::atomic. See "Model checking" in runtime/DESIGN.md.
#pragma once

#include <atomic>  // atomic, atomic_thread_fence, atomic_signal_fence, memory_order

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FORKLINE_DETAIL_HAS_TSAN 1
#endif
#endif
#ifndef FORKLINE_DETAIL_HAS_TSAN
#define FORKLINE_DETAIL_HAS_TSAN 0
#endif

namespace forkline::detail {

/// A sequentially consistent fence. On x86 a locked no-op RMW on the stack
/// is a full barrier and costs about half an mfence; g++ already emits it for
/// atomic_thread_fence(seq_cst), clang 14 emits mfence, which doubled the
/// cost of a spawn. Elsewhere (and under ThreadSanitizer) the standard fence.
inline void full_fence() noexcept {
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !FORKLINE_DETAIL_HAS_TSAN
    asm volatile("lock orq $0, (%%rsp)" ::: "memory", "cc");
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

/// The atomics of production code.
struct std_atomics {
    template <class U>
    using atomic = std::atomic<U>;
    static void fence() noexcept { full_fence(); }
    /// Orders the compiler only (the light side of an asymmetric fence).
    static void compiler_fence() noexcept { std::atomic_signal_fence(std::memory_order_seq_cst); }
};

/// Deliberate defects a test policy can switch on, to show that the model
/// checker finds them (mutation tests). A policy without a member
/// `k_mutation` (std_atomics) has none.
enum class mutation {
    none,
    steal_without_fence,       ///< stealer::steal() skips its seq_cst fence
    pop_relaxed_bottom,        ///< worker_deque::pop() stores bottom relaxed (before issue 12)
    token_before_epoch,        ///< park() clears the wake token before reading the epoch (before issue 12)
};

template <class Atomics>
constexpr bool has_mutation(mutation m) noexcept {
    if constexpr (requires { Atomics::k_mutation; }) {
        return Atomics::k_mutation == m;
    } else {
        return m == mutation::none;
    }
}

}  // namespace forkline::detail

// bench/timing.hpp: one warm-up, then one timed repetition, as every variant does it.
//
// A variant sets up its implementation (runtime, arena, thread team) with the
// requested worker count, then hands a "do the work once" callable to
// warm_up_then_time(). Setup and warm-up stay outside the timed interval.
#pragma once

#include <chrono>       // steady_clock, duration
#include <cstdint>      // int64_t
#include <type_traits>  // is_integral_v

namespace forkline_bench {

/// What a variant measured, in its child process.
struct sample {
    double seconds = 0.0;            ///< the timed repetition; setup and warm-up excluded
    std::int64_t result = 0;         ///< the timed repetition's answer
    std::int64_t warmup_result = 0;  ///< the warm-up's answer, checked as well
};

/// Returns `v` as a value the compiler cannot see through. A pure function of
/// it (the serial fib, say) can then be neither folded nor hoisted above the
/// clock read before it: the memory clobber orders the asm against that call.
template <class T>
T opaque(T v) noexcept {
    static_assert(std::is_integral_v<T>, "opaque() takes an integer");
    asm volatile("" : "+r"(v) : : "memory");
    return v;
}

/// Forces `v` to exist here, so the work that produced it cannot sink below
/// the clock read after it.
template <class T>
void keep(T v) noexcept {
    static_assert(std::is_integral_v<T>, "keep() takes an integer");
    asm volatile("" : : "r"(v) : "memory");
}

/// Calls `once` (which returns the answer as an integer) twice on an
/// implementation that is already set up: the first call warms it up
/// (threads woken, stacks and pools touched), the second is timed.
template <class F>
sample warm_up_then_time(F&& once) {
    sample s;
    s.warmup_result = static_cast<std::int64_t>(once());
    keep(s.warmup_result);
    const auto start = std::chrono::steady_clock::now();
    const auto result = once();
    keep(result);
    const auto stop = std::chrono::steady_clock::now();
    s.seconds = std::chrono::duration<double>(stop - start).count();
    s.result = static_cast<std::int64_t>(result);
    return s;
}

}  // namespace forkline_bench

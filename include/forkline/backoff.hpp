/// @file forkline/backoff.hpp
/// How long a caller whose request was refused should wait before it tries
/// again: exponential backoff with jitter, in two flavours.
///
/// @code
/// using namespace std::chrono_literals;
/// forkline::full_jitter_backoff wait(1ms, 200ms, /*seed=*/client_id);
/// while (!try_send(request))              // refused: the service is full
///     std::this_thread::sleep_for(wait.next());
/// wait.reset();   // the next refusal starts small again
/// @endcode
///
/// Why jitter. N callers refused at the same moment (a full queue, a restart,
/// a configuration change that woke them all) that retry after the same delay
/// arrive again together: the service sees N requests in one instant, refuses
/// most of them again, and the herd repeats at every step of the backoff.
/// With full jitter, retry k of each caller falls uniformly in [0, C_k],
/// C_k = min(cap, base * 2^k), independently of the others, so a window of
/// width w receives on average N * w / C_k of them (w <= C_k) instead of N:
/// the peak arrival rate drops by the factor C_k / w. 1,000 callers, C = 100
/// ms, a 1 ms window: about 10 arrivals per window instead of 1,000 (the
/// binomial spread around 10 is about +-3). The price is the expected wait,
/// C_k / 2 instead of C_k, and the spread itself (see bench/RESULTS.md,
/// "Thundering herd", for the measurement).
///
/// Seeds. Each caller needs its own seed (its id, say); callers with the same
/// seed draw the same delays and stampede together again. A given seed
/// always gives the same sequence of delays (the generator is
/// detail::splitmix64, whose output is fixed), so a run can be replayed.
/// next() draws from the generator: no system call, no lock, no allocation.
#pragma once

#include <algorithm>  // min
#include <chrono>     // nanoseconds
#include <cstdint>    // uint64_t, int64_t
#include <string>     // string (error messages)

#include "forkline/detail/splitmix64.hpp"  // splitmix64
#include "forkline/errors.hpp"             // config_error

namespace forkline {

namespace detail {

/// base > 0 and cap >= base, or config_error naming `who` and the values.
inline void check_backoff_bounds(const char* who, std::chrono::nanoseconds base, std::chrono::nanoseconds cap) {
    if (base.count() <= 0 || cap < base)
        throw config_error(std::string(who) + ": needs 0 < base <= cap, got base " + std::to_string(base.count()) +
                           " ns and cap " + std::to_string(cap.count()) +
                           " ns (a base of 0 would never grow; give a cap at least the base)");
}

}  // namespace detail

/// "Full jitter": the k-th delay after a reset (k = 0, 1, 2 ...) is uniform
/// in [0, C_k], C_k = min(cap, base * 2^k), both ends included.
///
/// Expected delay C_k / 2; before the cap is reached, the expected total of
/// the first k delays is base * (2^k - 1) / 2. Delays can be 0 (a caller may
/// retry at once); that is what spreads a herd over the whole of [0, C_k].
class full_jitter_backoff {
public:
    /// @throws config_error unless 0 < base <= cap.
    full_jitter_backoff(std::chrono::nanoseconds base, std::chrono::nanoseconds cap, std::uint64_t seed)
        : m_base(base.count()), m_cap(cap.count()), m_ceiling(m_base), m_random(seed) {
        detail::check_backoff_bounds("full_jitter_backoff", base, cap);
    }

    /// The next delay, in [0, ceiling()], and doubles the ceiling up to the cap.
    std::chrono::nanoseconds next() noexcept {
        const auto delay = static_cast<std::int64_t>(m_random.between(0, static_cast<std::uint64_t>(m_ceiling)));
        // Doubling saturates at the cap; no power of two is ever formed, so a
        // long run of refusals cannot overflow.
        m_ceiling = m_ceiling > m_cap / 2 ? m_cap : std::min(m_cap, m_ceiling * 2);
        return std::chrono::nanoseconds(delay);
    }

    /// The bound of the next delay: min(cap, base * 2^k) after k delays.
    std::chrono::nanoseconds ceiling() const noexcept { return std::chrono::nanoseconds(m_ceiling); }

    /// Back to the first delay's bound (the base), after a success. The
    /// random sequence goes on where it was: it is not replayed.
    void reset() noexcept { m_ceiling = m_base; }

private:
    std::int64_t m_base;
    std::int64_t m_cap;
    std::int64_t m_ceiling;
    detail::splitmix64 m_random;
};

/// "Decorrelated jitter": each delay is drawn from the one before it,
///     d_0 = min(cap, uniform(base, 3 * base)),  d_k = min(cap, uniform(base, 3 * d_(k-1))),
/// both ends included. Delays stay in [base, cap]: never below the base (a
/// minimum pause, unlike full jitter), and each at most 3 times the last.
///
/// Expectation: while the cap is not reached, E[d_k] = (base + 3 E[d_(k-1)]) / 2,
/// that is E[d_k] + base = 1.5 (E[d_(k-1)] + base); from d_(-1) = base,
/// E[d_k] + base = 2 base * 1.5^(k+1), so E[d_k] = 3 base * 1.5^k - base:
/// 2 base, 3.5 base, 5.75 base ... The growth is slower than full jitter's doubling, and
/// because every caller's next bound depends on its own last draw, callers
/// that started together drift apart at each step instead of sharing the
/// same [0, C_k].
class decorrelated_jitter_backoff {
public:
    /// @throws config_error unless 0 < base <= cap.
    decorrelated_jitter_backoff(std::chrono::nanoseconds base, std::chrono::nanoseconds cap, std::uint64_t seed)
        : m_base(base.count()), m_cap(cap.count()), m_last(m_base), m_random(seed) {
        detail::check_backoff_bounds("decorrelated_jitter_backoff", base, cap);
    }

    /// The next delay, in [base, min(cap, 3 * the last one)] (the first: in
    /// [base, min(cap, 3 * base)]).
    std::chrono::nanoseconds next() noexcept {
        const auto last = static_cast<std::uint64_t>(m_last);
        // 3 * last saturates rather than wrapping (last <= cap < 2^63).
        const std::uint64_t high = last > ~std::uint64_t{0} / 3 ? ~std::uint64_t{0} : 3 * last;
        const std::uint64_t draw = m_random.between(static_cast<std::uint64_t>(m_base), high);
        m_last = static_cast<std::int64_t>(std::min(draw, static_cast<std::uint64_t>(m_cap)));
        return std::chrono::nanoseconds(m_last);
    }

    /// Back to the start (the next delay is drawn from [base, 3 * base]),
    /// after a success. The random sequence goes on where it was.
    void reset() noexcept { m_last = m_base; }

private:
    std::int64_t m_base;
    std::int64_t m_cap;
    std::int64_t m_last;
    detail::splitmix64 m_random;
};

}  // namespace forkline

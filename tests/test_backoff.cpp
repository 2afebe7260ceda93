// tests/test_backoff.cpp: full_jitter_backoff and decorrelated_jitter_backoff:
// bounds, growth, determinism per seed, the distribution and the expectations
// the header states, and bad input. Seeds are fixed: the statistical checks
// see the same draws on every run and cannot flake.
#include <doctest/doctest.h>

#include <array>    // array
#include <chrono>   // nanoseconds
#include <cmath>    // pow
#include <cstdint>  // uint64_t, int64_t
#include <limits>   // numeric_limits
#include <vector>   // vector

#include "forkline/backoff.hpp"              // full_jitter_backoff, decorrelated_jitter_backoff
#include "forkline/detail/splitmix64.hpp"    // splitmix64
#include "forkline/errors.hpp"               // config_error

using forkline::decorrelated_jitter_backoff;
using forkline::full_jitter_backoff;
using std::chrono::nanoseconds;

namespace {

// Pearson's chi-square statistic of `counts` against equal expected counts.
double chi_square(const std::vector<std::uint64_t>& counts) {
    double total = 0;
    for (auto c : counts) total += static_cast<double>(c);
    const double expected = total / static_cast<double>(counts.size());
    double chi = 0;
    for (auto c : counts) {
        const double d = static_cast<double>(c) - expected;
        chi += d * d / expected;
    }
    return chi;
}

// 19 degrees of freedom: P(chi-square > 60) is about 3e-6. The seeds are
// fixed, so this is a check of the generator and the arithmetic, not a draw.
constexpr double k_chi_square_19_bound = 60.0;

}  // namespace

TEST_CASE("splitmix64: the published sequence for seed 0, between() within its ends") {
    forkline::detail::splitmix64 r(0);
    // The reference implementation's first outputs for seed 0.
    CHECK(r.next() == 0xe220a8397b1dcdafULL);
    CHECK(r.next() == 0x6e789e6aa1b965f4ULL);
    CHECK(r.next() == 0x06c45d188009454fULL);
    forkline::detail::splitmix64 s(7);
    bool saw_lo = false, saw_hi = false;
    for (int i = 0; i < 10000; ++i) {
        const auto v = s.between(10, 13);
        CHECK(v >= 10);
        CHECK(v <= 13);
        saw_lo = saw_lo || v == 10;
        saw_hi = saw_hi || v == 13;
    }
    CHECK(saw_lo);
    CHECK(saw_hi);
    CHECK(s.between(5, 5) == 5);
    (void)s.between(0, std::numeric_limits<std::uint64_t>::max());  // the whole range: no overflow
}

TEST_CASE("full_jitter_backoff smoke: bounds double from base to cap, delays within [0, bound]") {
    full_jitter_backoff b(nanoseconds(100), nanoseconds(1000), 1);
    const std::int64_t bounds[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (std::int64_t bound : bounds) {
        CHECK(b.ceiling().count() == bound);
        const auto d = b.next().count();
        CHECK(d >= 0);
        CHECK(d <= bound);
    }
    b.reset();
    CHECK(b.ceiling().count() == 100);
    CHECK(b.next().count() <= 100);
}

TEST_CASE("full_jitter_backoff: never above the cap nor below 0, over many steps and a huge cap") {
    full_jitter_backoff b(nanoseconds(1), nanoseconds(std::numeric_limits<std::int64_t>::max()), 99);
    std::int64_t last_ceiling = 0;
    for (int i = 0; i < 200; ++i) {  // 2^200 would overflow anything: the ceiling saturates
        const auto c = b.ceiling().count();
        CHECK(c >= last_ceiling);
        last_ceiling = c;
        const auto d = b.next().count();
        CHECK(d >= 0);
        CHECK(d <= c);
    }
    CHECK(last_ceiling == std::numeric_limits<std::int64_t>::max());
}

TEST_CASE("full_jitter_backoff: the same seed gives the same delays, another seed others; reset does not replay") {
    full_jitter_backoff a(nanoseconds(1000), nanoseconds(1'000'000), 42);
    full_jitter_backoff b(nanoseconds(1000), nanoseconds(1'000'000), 42);
    full_jitter_backoff c(nanoseconds(1000), nanoseconds(1'000'000), 43);
    std::vector<std::int64_t> first, same, other;
    for (int i = 0; i < 50; ++i) {
        first.push_back(a.next().count());
        same.push_back(b.next().count());
        other.push_back(c.next().count());
    }
    CHECK(first == same);
    CHECK(first != other);
    a.reset();
    std::vector<std::int64_t> after;
    for (int i = 0; i < 50; ++i) after.push_back(a.next().count());
    CHECK(after != first);
}

TEST_CASE("full_jitter_backoff: uniform over [0, ceiling], mean ceiling / 2 (chi-square, fixed seed)") {
    const std::int64_t cap = 1'000'000;
    full_jitter_backoff b{nanoseconds(cap), nanoseconds(cap), 2024};  // base = cap: the bound never moves
    std::vector<std::uint64_t> bins(20, 0);
    const int n = 200000;
    double sum = 0;
    for (int i = 0; i < n; ++i) {
        const auto d = b.next().count();
        REQUIRE(d >= 0);
        REQUIRE(d <= cap);
        sum += static_cast<double>(d);
        ++bins[static_cast<std::size_t>(std::min<std::int64_t>(d * 20 / cap, 19))];
    }
    CHECK(sum / n == doctest::Approx(cap / 2.0).epsilon(0.01));
    CHECK(chi_square(bins) < k_chi_square_19_bound);
}

TEST_CASE("full_jitter_backoff: a herd of 1,000 spreads over [0, C]: about N * w / C per window") {
    // The header's arithmetic: 1,000 callers, C = 100 ms, 1 ms windows:
    // 10 expected per window; none near the 1,000 of a synchronized retry.
    const std::int64_t c = 100'000'000;
    std::vector<std::uint64_t> per_ms(100, 0);
    for (std::uint64_t caller = 0; caller < 1000; ++caller) {
        full_jitter_backoff b{nanoseconds(c), nanoseconds(c), caller};
        ++per_ms[static_cast<std::size_t>(std::min<std::int64_t>(b.next().count() / 1'000'000, 99))];
    }
    std::uint64_t peak = 0;
    for (auto k : per_ms) peak = std::max(peak, k);
    CHECK(peak <= 30);  // Poisson(10): P(> 30) per window is about 1e-7
    CHECK(peak >= 10);
}

TEST_CASE("decorrelated_jitter_backoff: within [base, cap] and at most 3x the last delay") {
    const std::int64_t base = 1000, cap = 50'000;
    decorrelated_jitter_backoff b(nanoseconds(base), nanoseconds(cap), 5);
    std::int64_t last = base;
    bool reached_cap = false;
    for (int i = 0; i < 10000; ++i) {
        const auto d = b.next().count();
        CHECK(d >= base);
        CHECK(d <= cap);
        CHECK(d <= 3 * last);
        reached_cap = reached_cap || d == cap;
        last = d;
    }
    CHECK(reached_cap);
    b.reset();
    CHECK(b.next().count() <= 3 * base);
}

TEST_CASE("decorrelated_jitter_backoff: a huge cap does not overflow 3 * last") {
    const auto top = std::numeric_limits<std::int64_t>::max();
    decorrelated_jitter_backoff b(nanoseconds(top / 2), nanoseconds(top), 11);
    for (int i = 0; i < 1000; ++i) {
        const auto d = b.next().count();
        CHECK(d >= top / 2);
        CHECK(d <= top);
    }
}

TEST_CASE("decorrelated_jitter_backoff: the same seed gives the same delays") {
    decorrelated_jitter_backoff a(nanoseconds(100), nanoseconds(100'000), 7);
    decorrelated_jitter_backoff b(nanoseconds(100), nanoseconds(100'000), 7);
    decorrelated_jitter_backoff c(nanoseconds(100), nanoseconds(100'000), 8);
    bool differs = false;
    for (int i = 0; i < 100; ++i) {
        const auto x = a.next();
        CHECK(x == b.next());
        differs = differs || x != c.next();
    }
    CHECK(differs);
}

TEST_CASE("decorrelated_jitter_backoff: E[d_k] = 3 base 1.5^k - base while uncapped; the first delay uniform") {
    const std::int64_t base = 1'000'000;
    const int steps = 6;
    const int runs = 40000;
    std::array<double, steps> sum{};
    std::vector<std::uint64_t> bins(20, 0);
    decorrelated_jitter_backoff b(nanoseconds(base), nanoseconds(base * 1000), 31337);  // 3 * 1.5^5 << 1000: never capped
    for (int r = 0; r < runs; ++r) {
        b.reset();
        for (int k = 0; k < steps; ++k) {
            const auto d = b.next().count();
            sum[static_cast<std::size_t>(k)] += static_cast<double>(d);
            if (k == 0) ++bins[static_cast<std::size_t>(std::min<std::int64_t>((d - base) * 20 / (2 * base), 19))];
        }
    }
    for (int k = 0; k < steps; ++k) {
        INFO("step " << k);
        const double expected = 3.0 * base * std::pow(1.5, k) - base;  // 2, 3.5, 5.75 ... base
        CHECK(sum[static_cast<std::size_t>(k)] / runs == doctest::Approx(expected).epsilon(0.03));
    }
    CHECK(chi_square(bins) < k_chi_square_19_bound);
}

TEST_CASE("backoff failure: base 0, negative, cap below base: config_error; base == cap is allowed") {
    CHECK_THROWS_AS(full_jitter_backoff(nanoseconds(0), nanoseconds(10), 1), forkline::config_error);
    CHECK_THROWS_AS(full_jitter_backoff(nanoseconds(-5), nanoseconds(10), 1), forkline::config_error);
    CHECK_THROWS_AS(full_jitter_backoff(nanoseconds(10), nanoseconds(9), 1), forkline::config_error);
    CHECK_THROWS_AS(decorrelated_jitter_backoff(nanoseconds(0), nanoseconds(10), 1), forkline::config_error);
    CHECK_THROWS_AS(decorrelated_jitter_backoff(nanoseconds(10), nanoseconds(-1), 1), forkline::config_error);
    CHECK_THROWS_WITH_AS(full_jitter_backoff(nanoseconds(10), nanoseconds(9), 1),
                         doctest::Contains("base <= cap"), forkline::config_error);
    full_jitter_backoff f(nanoseconds(10), nanoseconds(10), 1);
    decorrelated_jitter_backoff d(nanoseconds(10), nanoseconds(10), 1);
    for (int i = 0; i < 100; ++i) {
        CHECK(f.next().count() <= 10);
        CHECK(d.next().count() == 10);
    }
}

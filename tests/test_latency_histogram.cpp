// tests/test_latency_histogram.cpp: latency_histogram's bucket arithmetic,
// its quantiles against an exact sorted reference within the stated error,
// the edges (empty, 0, 1, values past the last bucket, bad q), merge and copy,
// and a reader running beside the one writer.
#include <doctest/doctest.h>

#include <algorithm>  // sort, min
#include <atomic>     // atomic
#include <cmath>      // exp2, log, nan
#include <cstdint>    // uint64_t
#include <limits>     // numeric_limits
#include <random>     // mt19937_64 (its output sequence is fixed by the standard)
#include <thread>     // thread
#include <tuple>      // tuple
#include <vector>     // vector

#include "forkline/latency_histogram.hpp"  // latency_histogram, summarize
#include "support.hpp"                     // scaled

using forkline::latency_histogram;

namespace {

constexpr std::uint64_t k_u64_max = std::numeric_limits<std::uint64_t>::max();

// A uniform double in [0, 1) from the top 53 bits, the same on every library.
double unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// The exact value of rank ceil(q * n) (at least 1) of `sorted`, as the header defines it.
std::uint64_t exact_quantile(const std::vector<std::uint64_t>& sorted, double q) {
    if (!(q > 0.0)) return sorted.front();
    if (q >= 1.0) return sorted.back();
    auto r = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    r = std::clamp<std::size_t>(r, 1, sorted.size());
    return sorted[r - 1];
}

// The header's promise: never below the exact value, over by less than 1/128 of it.
void check_within_error(std::uint64_t reported, std::uint64_t exact, double q) {
    INFO("q = " << q << ", exact " << exact << ", reported " << reported);
    CHECK(reported >= exact);
    if (exact < latency_histogram::k_top_value) {
        CHECK((reported - exact) * 128 <= exact);
        if (exact < 256) CHECK(reported == exact);
    }
}

std::vector<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>> buckets_of(const latency_histogram& h) {
    std::vector<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>> out;
    h.for_each_bucket([&](std::uint64_t lo, std::uint64_t hi, std::uint64_t n) { out.emplace_back(lo, hi, n); });
    return out;
}

const std::vector<double> k_qs{0.0,  1e-6, 0.001, 0.01, 0.1,   0.25,  0.5,    0.75,
                               0.9,  0.95, 0.99,  0.999, 0.9999, 0.99999, 1.0};

}  // namespace

TEST_CASE("latency_histogram smoke: a few values") {
    latency_histogram h;
    for (std::uint64_t v : {10, 20, 30, 40, 1000}) h.record(v);
    CHECK(h.count() == 5);
    CHECK(h.min() == 10);
    CHECK(h.max() == 1000);
    CHECK(h.mean() == doctest::Approx(220.0));
    CHECK(h.quantile(0.5) == 30);   // rank 3
    CHECK(h.quantile(0.8) == 40);   // rank 4
    CHECK(h.quantile(1.0) == 1000);
    CHECK(h.quantile(0.0) == 10);
    const auto s = forkline::summarize(h);
    CHECK(s.count == 5);
    CHECK(s.p50 == 30);
    CHECK(s.p90 == 1000);  // rank ceil(4.5) = 5
    CHECK(s.max == 1000);
    CHECK(s.mean == doctest::Approx(220.0));
}

TEST_CASE("latency_histogram buckets: contiguous, every value in its own bucket, width at most low/128") {
    using H = latency_histogram;
    CHECK(H::k_buckets == 4097);
    CHECK(H::bucket_low(0) == 0);
    for (std::size_t i = 0; i < H::k_buckets; ++i) {
        INFO("bucket " << i);
        const std::uint64_t lo = H::bucket_low(i);
        const std::uint64_t hi = H::bucket_high(i);
        REQUIRE(lo < hi);
        CHECK(H::bucket_index(lo) == i);
        CHECK(H::bucket_index(hi - 1) == i);
        if (i + 1 < H::k_buckets) CHECK(H::bucket_low(i + 1) == hi);
        if (i < 256) CHECK(hi - lo == 1);
        else if (i + 1 < H::k_buckets) CHECK((hi - lo) * 128 <= lo);
    }
    CHECK(H::bucket_high(H::k_buckets - 2) == H::k_top_value);
    CHECK(H::bucket_low(H::k_buckets - 1) == H::k_top_value);
    CHECK(H::bucket_index(H::k_top_value - 1) == H::k_buckets - 2);
    CHECK(H::bucket_index(H::k_top_value) == H::k_buckets - 1);
    CHECK(H::bucket_index(k_u64_max) == H::k_buckets - 1);
}

TEST_CASE("latency_histogram quantiles against a sorted reference, within 1/128") {
    std::mt19937_64 rng(13);
    const std::size_t n = scaled(200000, 5000);
    SUBCASE("log-uniform over 1 ns .. 2^38 ns") {
        std::vector<std::uint64_t> values(n);
        for (auto& v : values) v = static_cast<std::uint64_t>(std::exp2(unit(rng) * 38.0));
        latency_histogram h;
        for (auto v : values) h.record(v);
        std::sort(values.begin(), values.end());
        for (double q : k_qs) check_within_error(h.quantile(q), exact_quantile(values, q), q);
        CHECK(h.min() == values.front());
        CHECK(h.max() == values.back());
    }
    SUBCASE("exponential, mean 50 us") {
        std::vector<std::uint64_t> values(n);
        for (auto& v : values) v = static_cast<std::uint64_t>(-std::log(1.0 - unit(rng)) * 50000.0);
        latency_histogram h;
        double sum = 0;
        for (auto v : values) {
            h.record(v);
            sum += static_cast<double>(v);
        }
        std::sort(values.begin(), values.end());
        for (double q : k_qs) check_within_error(h.quantile(q), exact_quantile(values, q), q);
        CHECK(h.mean() == doctest::Approx(sum / static_cast<double>(n)));
        const auto s = forkline::summarize(h);
        CHECK(s.p50 == h.quantile(0.5));
        CHECK(s.p90 == h.quantile(0.9));
        CHECK(s.p99 == h.quantile(0.99));
        CHECK(s.p999 == h.quantile(0.999));
        CHECK(s.max == values.back());
    }
    SUBCASE("few distinct small values: exact") {
        std::vector<std::uint64_t> values(n);
        for (auto& v : values) v = rng() % 256;
        latency_histogram h;
        for (auto v : values) h.record(v);
        std::sort(values.begin(), values.end());
        for (double q : k_qs) CHECK(h.quantile(q) == exact_quantile(values, q));
    }
}

TEST_CASE("latency_histogram edges: empty, 0, 1, past the last bucket, counts, bad q") {
    latency_histogram h;
    SUBCASE("empty") {
        CHECK(h.count() == 0);
        CHECK(h.min() == 0);
        CHECK(h.max() == 0);
        CHECK(h.mean() == 0.0);
        for (double q : k_qs) CHECK(h.quantile(q) == 0);
        const auto s = forkline::summarize(h);
        CHECK(s.count == 0);
        CHECK(s.p50 == 0);
        CHECK(s.p999 == 0);
        CHECK(s.max == 0);
        CHECK(buckets_of(h).empty());
    }
    SUBCASE("zero and one") {
        h.record(0);
        CHECK(h.count() == 1);
        CHECK(h.min() == 0);
        CHECK(h.max() == 0);
        CHECK(h.quantile(0.5) == 0);
        h.record(1);
        CHECK(h.min() == 0);
        CHECK(h.max() == 1);
        CHECK(h.quantile(0.5) == 0);
        CHECK(h.quantile(0.51) == 1);
        CHECK(h.mean() == doctest::Approx(0.5));
    }
    SUBCASE("values from 2^38 on land in the overflow bucket; max stays exact and is what its quantiles report") {
        h.record(latency_histogram::k_top_value - 1);
        h.record(latency_histogram::k_top_value);
        h.record(std::uint64_t{1} << 62);
        h.record(k_u64_max);
        CHECK(h.count() == 4);
        CHECK(h.max() == k_u64_max);
        CHECK(h.min() == latency_histogram::k_top_value - 1);
        CHECK(h.quantile(1.0) == k_u64_max);
        CHECK(h.quantile(0.5) == k_u64_max);  // rank 2: in the last bucket
        CHECK(h.quantile(0.25) == latency_histogram::k_top_value - 1);
        CHECK(h.mean() > 1e18);
        const auto b = buckets_of(h);
        REQUIRE(b.size() == 2);
        CHECK(std::get<1>(b[0]) == latency_histogram::k_top_value);
        CHECK(std::get<0>(b[1]) == latency_histogram::k_top_value);
        CHECK(std::get<2>(b[1]) == 3);
    }
    SUBCASE("record(v, n) is n records of v; record(v, 0) changes nothing") {
        latency_histogram ones;
        for (int i = 0; i < 1000; ++i) ones.record(777);
        h.record(777, 1000);
        h.record(5, 0);
        CHECK(h.count() == 1000);
        CHECK(h.min() == 777);
        CHECK(h.max() == 777);
        CHECK(buckets_of(h) == buckets_of(ones));
        CHECK(h.mean() == doctest::Approx(777.0));
    }
    SUBCASE("q below 0, NaN, above 1") {
        for (std::uint64_t v = 100; v <= 1000; v += 100) h.record(v);
        CHECK(h.quantile(-1.0) == 100);
        CHECK(h.quantile(std::nan("")) == 100);
        CHECK(h.quantile(2.0) == 1000);
        CHECK(h.quantile(std::numeric_limits<double>::infinity()) == 1000);
    }
    SUBCASE("reset forgets everything") {
        h.record(42);
        h.record(k_u64_max);
        h.reset();
        CHECK(h.count() == 0);
        CHECK(h.min() == 0);
        CHECK(h.max() == 0);
        CHECK(h.quantile(0.5) == 0);
        CHECK(buckets_of(h).empty());
        h.record(7);
        CHECK(h.min() == 7);
        CHECK(h.quantile(1.0) == 7);
    }
}

TEST_CASE("latency_histogram merge equals recording both; copy equals the original") {
    std::mt19937_64 rng(1313);
    latency_histogram a, b, both;
    for (int i = 0; i < 20000; ++i) {
        const auto v = static_cast<std::uint64_t>(std::exp2(unit(rng) * 30.0));
        ((i % 3 == 0) ? a : b).record(v);
        both.record(v);
    }
    b.record(k_u64_max);
    both.record(k_u64_max);
    latency_histogram merged;
    merged.merge(a);
    merged.merge(b);
    CHECK(merged.count() == both.count());
    CHECK(merged.min() == both.min());
    CHECK(merged.max() == both.max());
    CHECK(merged.mean() == doctest::Approx(both.mean()));
    CHECK(buckets_of(merged) == buckets_of(both));
    for (double q : k_qs) CHECK(merged.quantile(q) == both.quantile(q));

    SUBCASE("merging an empty histogram changes nothing; merging into an empty one copies") {
        latency_histogram empty;
        merged.merge(empty);
        CHECK(buckets_of(merged) == buckets_of(both));
        CHECK(merged.min() == both.min());
        empty.merge(a);
        CHECK(buckets_of(empty) == buckets_of(a));
        CHECK(empty.min() == a.min());
    }
    SUBCASE("merging into itself doubles every count") {
        latency_histogram twice = a;
        twice.merge(twice);
        CHECK(twice.count() == 2 * a.count());
        CHECK(twice.quantile(0.5) == a.quantile(0.5));
        CHECK(twice.min() == a.min());
        CHECK(twice.max() == a.max());
    }
    SUBCASE("copy and assignment") {
        const latency_histogram copy = both;
        CHECK(buckets_of(copy) == buckets_of(both));
        CHECK(copy.count() == both.count());
        CHECK(copy.min() == both.min());
        CHECK(copy.max() == both.max());
        latency_histogram assigned;
        assigned.record(1);
        assigned = both;
        CHECK(buckets_of(assigned) == buckets_of(both));
        CHECK(assigned.min() == both.min());
    }
}

TEST_CASE("latency_histogram stress: readers beside the one writer see counts that only grow, then all of them") {
    // The writer records 1..n in order; readers (quantiles, copies, merges
    // from it) run meanwhile. What a reader may see: counts that never go
    // down, values among those recorded. After the join: exactly 1..n.
    const std::uint64_t n = scaled(400000, 20000);
    // A reader may see a bucket's count before the new max (relaxed, two
    // places), and then reports that bucket's highest value: below this.
    const std::uint64_t bound = latency_histogram::bucket_high(latency_histogram::bucket_index(n));
    latency_histogram h;
    std::atomic<bool> done{false};
    std::thread writer([&] {
        for (std::uint64_t v = 1; v <= n; ++v) h.record(v);
        done.store(true, std::memory_order_release);  // pairs with the readers' acquire load
    });
    auto read_loop = [&](int which) {
        std::uint64_t last_count = 0;
        std::uint64_t rounds = 0;
        bool ok = true;
        while (!done.load(std::memory_order_acquire) || rounds < 2) {
            ++rounds;
            const std::uint64_t c = h.count();
            ok = ok && c >= last_count && c <= n;
            last_count = c;
            if (which == 0) {
                const std::uint64_t q = h.quantile(0.99);
                const std::uint64_t m = h.max();
                ok = ok && q < bound && m <= n;
            } else if (which == 1) {
                const latency_histogram snap = h;
                ok = ok && snap.count() <= n && snap.quantile(1.0) < bound && snap.min() <= 1;
            } else {
                latency_histogram local;
                local.merge(h);
                std::uint64_t in_buckets = 0;
                local.for_each_bucket([&](std::uint64_t, std::uint64_t, std::uint64_t k) { in_buckets += k; });
                ok = ok && local.count() == in_buckets && in_buckets <= n;
            }
        }
        return ok;
    };
    bool ok[3] = {false, false, false};
    std::thread r0([&] { ok[0] = read_loop(0); });
    std::thread r1([&] { ok[1] = read_loop(1); });
    std::thread r2([&] { ok[2] = read_loop(2); });
    writer.join();
    r0.join();
    r1.join();
    r2.join();
    CHECK(ok[0]);
    CHECK(ok[1]);
    CHECK(ok[2]);
    CHECK(h.count() == n);
    CHECK(h.min() == 1);
    CHECK(h.max() == n);
    CHECK(h.mean() == doctest::Approx(static_cast<double>(n + 1) / 2.0));
    std::vector<std::uint64_t> sorted(n);
    for (std::uint64_t v = 1; v <= n; ++v) sorted[v - 1] = v;
    for (double q : k_qs) check_within_error(h.quantile(q), exact_quantile(sorted, q), q);
}

/// @file forkline/latency_histogram.hpp
/// A log-linear histogram of durations in nanoseconds: cheap to record into,
/// readable while it is being written, mergeable, with quantiles.
///
/// @code
/// forkline::latency_histogram h;               // one per worker (one writer each)
/// h.record(elapsed_ns);
/// forkline::latency_histogram all;             // any thread, at any time
/// for (const auto& w : per_worker) all.merge(w);
/// forkline::latency_summary s = forkline::summarize(all);   // s.p99, s.max ...
/// @endcode
///
/// Buckets. Values 0..255 have a bucket each. Above, every power of two
/// [2^k, 2^(k+1)), 8 <= k <= 37, is cut into 128 buckets of width 2^(k-7). With
/// b = bit_width(v) and s = max(0, b - 8), the bucket of v is
///     index(v) = s * 128 + (v >> s)        (v < 2^38)
/// which runs over 0 .. 4095 (256 + 30 * 128); one more bucket, 4096, takes
/// every value from 2^38 on: 4097 counters, 32 KiB.
///
/// Error. A bucket of width w starts at lo >= 128 * w (or has w = 1), so a
/// value v that a quantile reports as its bucket's highest value hi - 1 is
/// off by at most w - 1 < v / 128: a reported quantile r and the exact one v
/// satisfy v <= r and (r - v) * 128 < v, a relative error under 1/128
/// (0.78%, about two and a half significant digits), exact below 256 ns.
/// This holds from 0 ns to 2^38 ns (about 275 s). A quantile that falls in
/// the overflow bucket (2^38 and above) reports the exact max().
/// When the max lies in the reported bucket, the max itself is reported,
/// which is closer and still not below the exact quantile.
///
/// Sharing. One thread at a time records (record, merge into, reset); any
/// number of threads read concurrently (count, quantile, a copy, a merge
/// from). Each count is a std::atomic written with a relaxed load and a
/// relaxed store, never a read-modify-write, so recording costs what a plain
/// increment costs. A reader sees each counter at some value it has held; it
/// does not see one instant of the whole (a copy taken during recording may
/// hold a bucket's new count but not yet the new total), which is what a
/// statistic needs and all relaxed counters can give. Once the writer has
/// stopped and the reader synchronised with it (a join, a mutex, a release
/// and acquire), the reader sees exactly what was recorded.
#pragma once

#include <algorithm>  // min, max
#include <array>      // array
#include <atomic>     // atomic, memory_order_relaxed
#include <bit>        // bit_width
#include <cmath>      // ceil
#include <cstddef>    // size_t
#include <cstdint>    // uint64_t
#include <limits>     // numeric_limits
#include <span>       // span

namespace forkline {

/// Log-linear histogram of durations in nanoseconds, 128 buckets per power of
/// two from 256 ns to 2^38 ns and one per nanosecond below: every recorded
/// value is known to within 1/128 of itself. One writer at a time, any number
/// of concurrent readers (see the file comment for what a reader sees).
class latency_histogram {
public:
    /// Buckets per power of two above 256 (2^7).
    static constexpr unsigned k_sub_bucket_bits = 7;
    /// Values from this one on share the last (overflow) bucket.
    static constexpr std::uint64_t k_top_value = std::uint64_t{1} << 38;
    /// 256 buckets of width 1, then 30 powers of two of 128 buckets each,
    /// then the overflow bucket.
    static constexpr std::size_t k_buckets = 256 + 30 * 128 + 1;

    /// The bucket that holds `ns`.
    static constexpr std::size_t bucket_index(std::uint64_t ns) noexcept {
        if (ns >= k_top_value) return k_buckets - 1;
        const int b = std::bit_width(ns);
        const int s = b > 8 ? b - 8 : 0;
        return (static_cast<std::size_t>(s) << k_sub_bucket_bits) + static_cast<std::size_t>(ns >> s);
    }
    /// The smallest value of bucket `i` (i < k_buckets).
    static constexpr std::uint64_t bucket_low(std::size_t i) noexcept {
        if (i < 256) return i;
        if (i >= k_buckets - 1) return k_top_value;
        const std::size_t s = (i >> k_sub_bucket_bits) - 1;
        return static_cast<std::uint64_t>(i - (s << k_sub_bucket_bits)) << s;
    }
    /// One past the largest value of bucket `i`; for the overflow bucket
    /// UINT64_MAX, which it holds as well.
    static constexpr std::uint64_t bucket_high(std::size_t i) noexcept {
        if (i < 256) return i + 1;
        if (i >= k_buckets - 1) return std::numeric_limits<std::uint64_t>::max();
        const std::size_t s = (i >> k_sub_bucket_bits) - 1;
        return bucket_low(i) + (std::uint64_t{1} << s);
    }

    /// Empty.
    latency_histogram() noexcept = default;
    /// A copy of `other`'s counters, each read once (relaxed): a snapshot
    /// when nobody records into `other`, a near one while somebody does.
    latency_histogram(const latency_histogram& other) noexcept { copy_from(other); }
    latency_histogram& operator=(const latency_histogram& other) noexcept {
        if (this != &other) copy_from(other);
        return *this;
    }
    ~latency_histogram() = default;

    /// Counts one value. Single writer.
    void record(std::uint64_t ns) noexcept { record(ns, 1); }

    /// Counts `count` values of `ns` (nothing when count is 0). Single writer.
    void record(std::uint64_t ns, std::uint64_t count) noexcept {
        if (count == 0) return;
        bump(m_counts[bucket_index(ns)], count);
        bump(m_total, count);
        // relaxed: single writer; readers pair with nothing (see the file comment).
        m_sum.store(m_sum.load(std::memory_order_relaxed) +
                        static_cast<double>(ns) * static_cast<double>(count),
                    std::memory_order_relaxed);
        if (ns < m_min.load(std::memory_order_relaxed)) m_min.store(ns, std::memory_order_relaxed);
        if (ns > m_max.load(std::memory_order_relaxed)) m_max.store(ns, std::memory_order_relaxed);
    }

    /// Adds `other`'s counts to this one's, as if every value recorded there
    /// had been recorded here. This histogram: single writer; `other` may be
    /// recorded into meanwhile (its records in flight may or may not count).
    /// Merging a histogram into itself doubles it.
    void merge(const latency_histogram& other) noexcept {
        std::uint64_t added = 0;
        for (std::size_t i = 0; i < k_buckets; ++i) {
            const std::uint64_t c = other.m_counts[i].load(std::memory_order_relaxed);
            if (c == 0) continue;
            bump(m_counts[i], c);
            added += c;
        }
        if (added == 0) return;
        // The total is what was added bucket by bucket, so that this
        // histogram stays consistent even when `other` was moving.
        bump(m_total, added);
        m_sum.store(m_sum.load(std::memory_order_relaxed) + other.m_sum.load(std::memory_order_relaxed),
                    std::memory_order_relaxed);
        const std::uint64_t lo = other.m_min.load(std::memory_order_relaxed);
        const std::uint64_t hi = other.m_max.load(std::memory_order_relaxed);
        if (lo < m_min.load(std::memory_order_relaxed)) m_min.store(lo, std::memory_order_relaxed);
        if (hi > m_max.load(std::memory_order_relaxed)) m_max.store(hi, std::memory_order_relaxed);
    }

    /// How many values were recorded.
    std::uint64_t count() const noexcept { return m_total.load(std::memory_order_relaxed); }
    /// The smallest value recorded, exactly; 0 when empty.
    std::uint64_t min() const noexcept {
        const std::uint64_t v = m_min.load(std::memory_order_relaxed);
        return v == k_no_min ? 0 : v;
    }
    /// The largest value recorded, exactly; 0 when empty.
    std::uint64_t max() const noexcept { return m_max.load(std::memory_order_relaxed); }
    /// The mean of the values recorded (summed in double: exact while the sum
    /// stays below 2^53 ns, about 104 days); 0 when empty.
    double mean() const noexcept {
        const std::uint64_t n = count();
        return n == 0 ? 0.0 : m_sum.load(std::memory_order_relaxed) / static_cast<double>(n);
    }

    /// The value at or below which a share `q` of the recorded values lies:
    /// the value of rank ceil(q * count) (at least 1) in sorted order, to
    /// within the error of the file comment (never below it, over by less
    /// than 1/128 of it). q <= 0 (or NaN) gives min(), q >= 1 gives max();
    /// 0 when empty.
    std::uint64_t quantile(double q) const noexcept {
        std::uint64_t out = 0;
        quantiles(std::span<const double>(&q, 1), std::span<std::uint64_t>(&out, 1));
        return out;
    }

    /// quantile() of each of `qs` (ascending) into `out` (as many), in one
    /// pass over the buckets.
    void quantiles(std::span<const double> qs, std::span<std::uint64_t> out) const noexcept {
        const std::size_t n = std::min(qs.size(), out.size());
        // The total of the buckets as read now: counts only grow while a
        // writer records, so the walk below reaches every rank of it.
        std::uint64_t total = 0;
        for (const auto& c : m_counts) total += c.load(std::memory_order_relaxed);
        std::size_t k = 0;
        for (; k < n && total == 0; ++k) out[k] = 0;
        for (; k < n && !(qs[k] > 0.0); ++k) out[k] = min();
        const std::uint64_t top = max();
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < k_buckets && k < n; ++i) {
            seen += m_counts[i].load(std::memory_order_relaxed);
            while (k < n && seen >= rank(qs[k], total)) out[k++] = reported_value(i, top);
        }
        for (; k < n; ++k) out[k] = top;  // the writer reset meanwhile
    }

    /// Calls fn(low, high, count) for each bucket holding values, in
    /// increasing order: `count` values lie in [low, high) (the overflow
    /// bucket: at or above low).
    template <class F>
    void for_each_bucket(F&& fn) const {
        for (std::size_t i = 0; i < k_buckets; ++i) {
            const std::uint64_t c = m_counts[i].load(std::memory_order_relaxed);
            if (c != 0) fn(bucket_low(i), bucket_high(i), c);
        }
    }

    /// Forgets everything. Single writer (the one that records, or anyone
    /// while nobody records).
    void reset() noexcept {
        for (auto& c : m_counts) c.store(0, std::memory_order_relaxed);
        m_total.store(0, std::memory_order_relaxed);
        m_sum.store(0.0, std::memory_order_relaxed);
        m_min.store(k_no_min, std::memory_order_relaxed);
        m_max.store(0, std::memory_order_relaxed);
    }

private:
    static constexpr std::uint64_t k_no_min = std::numeric_limits<std::uint64_t>::max();

    // The writer's increment: a relaxed load and store, no read-modify-write
    // (there is one writer; readers only load).
    static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    static std::uint64_t rank(double q, std::uint64_t total) noexcept {
        if (q >= 1.0) return total;
        const double r = std::ceil(q * static_cast<double>(total));
        const auto ri = static_cast<std::uint64_t>(r);
        return std::clamp<std::uint64_t>(ri, 1, total);
    }

    // Bucket i's highest value, or the exact max when it lies in bucket i
    // (always so for the overflow bucket, which has no upper end).
    static std::uint64_t reported_value(std::size_t i, std::uint64_t top) noexcept {
        const std::uint64_t high = bucket_high(i);
        if (top >= bucket_low(i) && (top < high || i == k_buckets - 1)) return top;
        return high - 1;
    }

    void copy_from(const latency_histogram& other) noexcept {
        for (std::size_t i = 0; i < k_buckets; ++i)
            m_counts[i].store(other.m_counts[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
        m_total.store(other.m_total.load(std::memory_order_relaxed), std::memory_order_relaxed);
        m_sum.store(other.m_sum.load(std::memory_order_relaxed), std::memory_order_relaxed);
        m_min.store(other.m_min.load(std::memory_order_relaxed), std::memory_order_relaxed);
        m_max.store(other.m_max.load(std::memory_order_relaxed), std::memory_order_relaxed);
    }

    // written by: the one writer; read by: anyone (relaxed, see the file comment).
    alignas(64) std::atomic<std::uint64_t> m_total{0};
    std::atomic<double> m_sum{0.0};
    std::atomic<std::uint64_t> m_min{k_no_min};
    std::atomic<std::uint64_t> m_max{0};
    alignas(64) std::array<std::atomic<std::uint64_t>, k_buckets> m_counts{};
};

/// The figures a report prints about one histogram.
struct latency_summary {
    std::uint64_t count = 0;  ///< values recorded
    std::uint64_t p50 = 0;    ///< median, ns
    std::uint64_t p90 = 0;    ///< 90th percentile, ns
    std::uint64_t p99 = 0;    ///< 99th percentile, ns
    std::uint64_t p999 = 0;   ///< 99.9th percentile, ns
    std::uint64_t max = 0;    ///< exact maximum, ns
    double mean = 0.0;        ///< mean, ns
};

/// count, p50, p90, p99, p99.9, max and mean of `h`, the quantiles in one pass.
inline latency_summary summarize(const latency_histogram& h) noexcept {
    static constexpr std::array<double, 4> qs{0.5, 0.9, 0.99, 0.999};
    std::array<std::uint64_t, 4> v{};
    h.quantiles(qs, v);
    latency_summary s;
    s.count = h.count();
    s.p50 = v[0];
    s.p90 = v[1];
    s.p99 = v[2];
    s.p999 = v[3];
    s.max = h.max();
    s.mean = h.mean();
    return s;
}

}  // namespace forkline

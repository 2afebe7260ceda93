/// @file forkline/latency_histogram.hpp
/// Stand-in for the log-linear latency histogram (replaced by the real one
/// when it lands): the agreed interface, coarse buckets (16 per power of two).
#pragma once

#include <algorithm>  // min, max
#include <atomic>     // atomic
#include <cstdint>    // uint64_t

namespace forkline {

class latency_histogram {
public:
    static constexpr unsigned k_sub = 16;
    static constexpr unsigned k_buckets = 64 * k_sub;
    latency_histogram() = default;
    latency_histogram(const latency_histogram& o) noexcept { merge(o); }
    latency_histogram& operator=(const latency_histogram& o) noexcept {
        if (this != &o) { reset(); merge(o); }
        return *this;
    }
    void record(std::uint64_t ns) noexcept { record(ns, 1); }
    void record(std::uint64_t ns, std::uint64_t n) noexcept {
        add(m_counts[index(ns)], n);
        add(m_count, n);
        add(m_sum, ns * n);
        if (ns > m_max.load(std::memory_order_relaxed)) m_max.store(ns, std::memory_order_relaxed);
        const std::uint64_t lo = m_min.load(std::memory_order_relaxed);
        if (lo == 0 || ns < lo) m_min.store(ns == 0 ? 1 : ns, std::memory_order_relaxed);
    }
    void merge(const latency_histogram& o) noexcept {
        for (unsigned i = 0; i < k_buckets; ++i) add(m_counts[i], o.m_counts[i].load(std::memory_order_relaxed));
        add(m_count, o.count());
        add(m_sum, o.m_sum.load(std::memory_order_relaxed));
        m_max.store(std::max(max(), o.max()), std::memory_order_relaxed);
        const std::uint64_t a = min(), b = o.min();
        m_min.store(a == 0 ? b : (b == 0 ? a : std::min(a, b)), std::memory_order_relaxed);
    }
    std::uint64_t count() const noexcept { return m_count.load(std::memory_order_relaxed); }
    std::uint64_t min() const noexcept { return m_min.load(std::memory_order_relaxed); }
    std::uint64_t max() const noexcept { return m_max.load(std::memory_order_relaxed); }
    double mean() const noexcept {
        const std::uint64_t c = count();
        return c == 0 ? 0.0 : static_cast<double>(m_sum.load(std::memory_order_relaxed)) / static_cast<double>(c);
    }
    std::uint64_t quantile(double q) const noexcept {
        const std::uint64_t c = count();
        if (c == 0) return 0;
        const auto want = static_cast<std::uint64_t>(q * static_cast<double>(c));
        std::uint64_t seen = 0;
        for (unsigned i = 0; i < k_buckets; ++i) {
            seen += m_counts[i].load(std::memory_order_relaxed);
            if (seen > want || seen == c) return std::min(upper(i), max());
        }
        return max();
    }
    void reset() noexcept {
        for (auto& c : m_counts) c.store(0, std::memory_order_relaxed);
        m_count.store(0, std::memory_order_relaxed);
        m_sum.store(0, std::memory_order_relaxed);
        m_max.store(0, std::memory_order_relaxed);
        m_min.store(0, std::memory_order_relaxed);
    }

private:
    static void add(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    static unsigned index(std::uint64_t ns) noexcept {
        if (ns < k_sub) return static_cast<unsigned>(ns);
        const unsigned p = 63u - static_cast<unsigned>(__builtin_clzll(ns));
        const unsigned sub = static_cast<unsigned>((ns >> (p - 4)) & (k_sub - 1));
        return std::min(p * k_sub + sub, k_buckets - 1);
    }
    static std::uint64_t upper(unsigned i) noexcept {
        if (i < k_sub) return i;
        const unsigned p = i / k_sub;
        return ((std::uint64_t{k_sub} + i % k_sub + 1) << (p - 4)) - 1;
    }
    std::atomic<std::uint64_t> m_counts[k_buckets]{};
    std::atomic<std::uint64_t> m_count{0}, m_sum{0}, m_max{0}, m_min{0};
};

struct latency_summary {
    std::uint64_t count = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
    double mean = 0;
};

inline latency_summary summarize(const latency_histogram& h) noexcept {
    return {h.count(), h.quantile(0.5), h.quantile(0.9), h.quantile(0.99), h.quantile(0.999), h.max(), h.mean()};
}

}  // namespace forkline

/// @file forkline/route.hpp
/// Which worker a keyed piece of work should go to.
///
/// @code
/// forkline::key_router router(rt.worker_count());
/// unsigned w = router.route(order.customer_id);   // same customer, same worker
/// @endcode
///
/// jump_hash() gives each key a stable home worker (its cache holds that key's
/// state), moving as few keys as possible when the worker count changes. A
/// key_router adds hot-key relief: a key that draws much more than its share
/// of the traffic is spread over several neighbouring workers, so one
/// "celebrity" key cannot pile onto one worker. Its tasks then no longer meet
/// in one cache; that is the trade. Cold keys keep their home.
/// See "Keyed routing" in runtime/DESIGN.md.
#pragma once

#include <atomic>   // atomic (sketch counters)
#include <cstddef>  // size_t
#include <cstdint>  // uint32_t, uint64_t
#include <memory>   // unique_ptr

namespace forkline {

namespace detail {

/// A bijective 64-bit mixer (splitmix64's step: add the golden-ratio
/// increment, then its finalizer): every input bit affects every output bit,
/// so sequential or patterned keys spread out. The increment keeps key 0 from
/// being a fixed point.
constexpr std::uint64_t mix_key(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ULL;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/// Lamping and Veach's jump consistent hash of an already mixed key.
constexpr unsigned jump_mixed(std::uint64_t k, unsigned buckets) noexcept {
    std::uint64_t b = 0;
    std::uint64_t j = 0;
    while (j < buckets) {
        b = j;
        k = k * 2862933555777941757ULL + 1;
        // The paper computes (b + 1) * (2^31 / ((k >> 33) + 1)) in double; we
        // take the exact integer floor of the same quotient, which needs no
        // floating point and so gives the same bucket on every platform and
        // compiler. (b + 1) << 31 < 2^63 because b < buckets < 2^32.
        j = ((b + 1) << 31) / ((k >> 33) + 1);
    }
    return static_cast<unsigned>(b);
}

}  // namespace detail

/// The bucket in [0, buckets) of `key` by jump consistent hash (Lamping and
/// Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm", 2014), after
/// mixing the key. Stable across runs, processes and platforms. When buckets
/// grows from n to n + 1, about 1/(n + 1) of the keys move, all to the new
/// bucket n. buckets == 0 is treated as 1.
/// @code
/// unsigned shard = forkline::jump_hash(user_id, 16);  // the same shard in every process
/// @endcode
constexpr unsigned jump_hash(std::uint64_t key, unsigned buckets) noexcept {
    return buckets <= 1 ? 0u : detail::jump_mixed(detail::mix_key(key), buckets);
}

/// How a key_router relieves hot keys. The defaults suit skewed (Zipf-like)
/// traffic over a few to a few dozen workers.
struct route_options {
    /// Spread hot keys. Off: route() is jump_hash() and keeps no counts.
    bool relief = true;
    /// A key is hot when its recent count exceeds hot_factor * recent total /
    /// workers, that is, hot_factor of one worker's fair share. The default 1/32
    /// keeps a Zipf(1.1) stream of a million keys over 4 to 64 workers within
    /// about 1.2x of the mean load, spreading only its top few dozen keys;
    /// raise it to keep more keys at home, lower it to balance harder.
    double hot_factor = 1.0 / 32;
    /// Counts decay by half every `window` routes, so "recent" means roughly
    /// the last 2 * window routes. At most 2^30.
    std::uint32_t window = std::uint32_t{1} << 16;
};

/// Maps keys to workers: jump_hash() for cold keys, a spread for hot ones.
/// route() may be called from any number of threads at once; it takes no
/// lock and allocates nothing. Not copyable or movable (it is shared state).
/// @code
/// forkline::key_router router(rt.worker_count());
/// forkline::task_group tg;
/// for (const order& o : orders) tg.spawn_on(router.route(o.customer_id), [&o] { apply(o); });
/// tg.wait();
/// @endcode
class key_router {
public:
    /// Throws config_error when workers is 0, hot_factor is not a positive
    /// finite number, or window is 0 or above 2^30.
    explicit key_router(unsigned workers, route_options options = {});
    ~key_router();
    key_router(const key_router&) = delete;
    key_router& operator=(const key_router&) = delete;

    /// The worker for one piece of work on `key`. A cold key always gets its
    /// home; successive calls for a hot key go to pseudo-random members of
    /// its spread set (see spread()).
    unsigned route(std::uint64_t key) noexcept;

    /// The key's stable worker: jump_hash(key, workers()).
    unsigned home(std::uint64_t key) const noexcept { return jump_hash(key, m_workers); }

    /// How many workers route(key) currently chooses from: 1 for a cold key
    /// (or with relief off); for a hot key ceil(4 * count / threshold), at
    /// most workers(). The set is home(key), home(key) + 1, ... modulo
    /// workers(): under compact placement neighbouring workers share a cache.
    unsigned spread(std::uint64_t key) const noexcept;

    /// The key's approximate recent count (count-min sketch: never below the
    /// true decayed count, above it by collisions). 0 with relief off.
    std::uint64_t estimate(std::uint64_t key) const noexcept;

    unsigned workers() const noexcept { return m_workers; }                ///< the worker count keys map onto
    const route_options& options() const noexcept { return m_options; }  ///< as given to the constructor

private:
    unsigned spread_for(std::uint64_t count, std::uint64_t routes) const noexcept;
    std::uint64_t decayed_total(std::uint64_t routes) const noexcept;
    std::size_t cell_index(unsigned row, std::uint64_t mixed) const noexcept;
    void decay() noexcept;

    // Set by the constructor, then only read (by every route()).
    unsigned m_workers;
    route_options m_options;
    unsigned m_width_shift = 0;  // a row has 2^(64 - m_width_shift) cells
    std::size_t m_width = 0;
    // rows x width counters. written by: every route() (relaxed fetch_add),
    // and the route() that closes a window (halving); read by: route(), spread().
    std::unique_ptr<std::atomic<std::uint32_t>[]> m_cells;

    // Routes since construction, the clock of the decay windows. Alone on its
    // line: every route() writes it, and the fields above must stay shared.
    // written by: every route() (relaxed fetch_add); read by: spread().
    struct alignas(64) route_clock {
        std::atomic<std::uint64_t> routes{0};
    };
    route_clock m_clock;
};

}  // namespace forkline

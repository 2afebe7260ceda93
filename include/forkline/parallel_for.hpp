/// @file forkline/parallel_for.hpp
/// Loops over index ranges and iterator ranges.
///
/// @code
/// forkline::parallel_for(0, n, [&](std::size_t i) { y[i] += a * x[i]; });   // automatic grain
/// forkline::parallel_for(0, n, 1024, body);                                 // explicit grain
/// forkline::parallel_for(v.begin(), v.end(), [](auto& x) { x *= 2; });      // iterators
/// forkline::parallel_for(0, n, body, forkline::static_affinity);            // same block, same worker
/// @endcode
///
/// Automatic grain is lazy splitting: a worker runs small chunks of its range
/// one after another and halves what is left only when the half it pushed
/// earlier has been stolen, i.e. when thieves are hungry. An explicit grain
/// halves eagerly down to pieces of at most `grain` indices. Static affinity
/// gives worker i the block affinity_block(begin, end, i, P) on every call.
/// See "Loops" in runtime/DESIGN.md.
#pragma once

#include <concepts>     // integral
#include <cstddef>      // size_t
#include <cstdint>      // int64_t
#include <iterator>     // random_access_iterator
#include <limits>       // numeric_limits
#include <type_traits>  // common_type_t, is_trivially_copyable_v

#include "forkline/affinity.hpp"    // affinity_block, static_affinity
#include "forkline/invoke.hpp"      // invoke, default_runtime
#include "forkline/task_group.hpp"  // task_group (affinity blocks)

namespace forkline {

namespace detail {

/// Indices per chunk under lazy splitting: small enough that a hungry thief
/// waits little, large enough that the inner loop is a plain loop.
inline std::size_t lazy_chunk(std::size_t n, unsigned workers) noexcept {
    const std::size_t c = n / (static_cast<std::size_t>(workers) * 64);
    return c < 1 ? 1 : (c > 1024 ? 1024 : c);
}

/// Runs f(i) for i in [lo, hi). A small trivially copyable f is copied
/// first: the loop's stores cannot alias a local copy, so the compiler keeps
/// values f captured by copy in registers instead of reloading them from
/// *f after every store (g++ otherwise did, costing 8% on STREAM triad).
template <class I, class F>
inline void run_chunk(F& f, I lo, I hi) {
    if constexpr (std::is_trivially_copyable_v<F> && sizeof(F) <= 64) {
        F local = f;
        for (I i = lo; i < hi; ++i) local(i);
    } else {
        for (I i = lo; i < hi; ++i) f(i);
    }
}

template <class I, class F>
void eager_split(I begin, I end, std::size_t grain, F& f) {
    if (static_cast<std::size_t>(end - begin) > grain) {
        const I mid = static_cast<I>(begin + (end - begin) / 2);
        invoke([&] { eager_split(begin, mid, grain, f); }, [&] { eager_split(mid, end, grain, f); });
        return;
    }
    run_chunk(f, begin, end);
}

/// `mark`: the deque index just above the half this range's parent pushed;
/// once top passes it, that half was stolen and we may split again.
template <class I, class F>
void lazy_split(I begin, I end, std::size_t chunk, std::int64_t mark, F& f) {
    worker& w = *current_worker();
    while (begin < end) {
        const auto left = static_cast<std::size_t>(end - begin);
        if (left > chunk && w.deque.top_relaxed() >= mark) {
            const I mid = static_cast<I>(begin + (end - begin) / 2);
            const std::int64_t next_mark = w.deque.bottom() + 1;  // the right half goes at bottom()
            invoke([&] { lazy_split(begin, mid, chunk, next_mark, f); },
                   [&] { lazy_split(mid, end, chunk, std::numeric_limits<std::int64_t>::min(), f); });
            return;
        }
        const I stop = static_cast<I>(begin + static_cast<I>(left < chunk ? left : chunk));
        run_chunk(f, begin, stop);
        begin = stop;
    }
}

template <class I, class F>
void affinity_blocks(I begin, I end, F& f) {
    worker& w = *current_worker();
    const unsigned p = w.peers;
    task_group tg;
    for (unsigned i = 0; i < p; ++i) {
        if (i == w.index) continue;
        const auto [lo, hi] = affinity_block(begin, end, i, p);
        if (lo < hi) {
            tg.spawn_on(i, [lo = lo, hi = hi, &f] { run_chunk(f, lo, hi); });
        }
    }
    const auto [lo, hi] = affinity_block(begin, end, w.index, p);
    run_chunk(f, lo, hi);
    tg.wait();
}

/// Runs body() on a worker: here if this thread is one, else on the default runtime.
template <class Body>
void on_a_worker(Body& body) {
    if (current_worker() != nullptr) {
        body();
    } else {
        default_runtime().run(body);
    }
}

}  // namespace detail

/// Calls f(i) for every i in [begin, end), in parallel, with automatic grain.
/// The first exception thrown by f is rethrown; pieces not yet started are
/// then skipped. begin and end may differ in type: i has their common type.
/// @code
/// forkline::parallel_for(std::size_t{0}, n, [&](std::size_t i) { y[i] += a * x[i]; });
/// @endcode
template <std::integral B, std::integral E, class F>
void parallel_for(B begin, E end, F&& f) {
    using I = std::common_type_t<B, E>;
    const I b = static_cast<I>(begin);
    const I e = static_cast<I>(end);
    if (!(b < e)) return;
    auto body = [&] {
        const std::size_t chunk = detail::lazy_chunk(static_cast<std::size_t>(e - b), detail::current_worker()->peers);
        detail::lazy_split(b, e, chunk, std::numeric_limits<std::int64_t>::min(), f);
    };
    detail::on_a_worker(body);
}

/// As above, with pieces of at most `grain` indices (0: automatic). For
/// iterations of very unequal cost, where a fixed grain balances better.
/// @code
/// forkline::parallel_for(0, rows, 1, [&](int r) { render_row(r); });  // one row per piece
/// @endcode
template <std::integral B, std::integral E, std::integral G, class F>
void parallel_for(B begin, E end, G grain, F&& f) {
    if (grain <= G{0}) {
        parallel_for(begin, end, std::forward<F>(f));
        return;
    }
    using I = std::common_type_t<B, E>;
    const I b = static_cast<I>(begin);
    const I e = static_cast<I>(end);
    if (!(b < e)) return;
    auto body = [&] { detail::eager_split(b, e, static_cast<std::size_t>(grain), f); };
    detail::on_a_worker(body);
}

/// Static affinity: worker i runs f(k) for k in affinity_block(begin, end, i, P)
/// on every call, so repeated loops over the same data find it in the same
/// caches and NUMA node. A block whose worker's mailbox is busy (another
/// affinity loop is waiting there) runs on the caller instead.
template <std::integral B, std::integral E, class F>
void parallel_for(B begin, E end, F&& f, static_affinity_t) {
    using I = std::common_type_t<B, E>;
    const I b = static_cast<I>(begin);
    const I e = static_cast<I>(end);
    if (!(b < e)) return;
    auto body = [&] { detail::affinity_blocks(b, e, f); };
    detail::on_a_worker(body);
}

/// Calls f(*it) for every it in [first, last), in parallel, automatic grain.
/// @code
/// forkline::parallel_for(v.begin(), v.end(), [](double& x) { x = std::sqrt(x); });
/// @endcode
template <std::random_access_iterator It, class F>
    requires(!std::integral<It>)
void parallel_for(It first, It last, F&& f) {
    forkline::parallel_for(std::ptrdiff_t{0}, last - first, [&](std::ptrdiff_t i) { f(first[i]); });
}

}  // namespace forkline

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
/// Cancellation: a loop running in a task of a cancelled task_group (or under
/// runtime::run with a stop_token whose stop was requested) stops splitting
/// and skips its unstarted chunks; it polls once per chunk (at most 1024
/// indices, or one piece of an explicit grain), never per index, and returns
/// normally. See "Cancellation" in runtime/DESIGN.md.
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
#include <exception>    // exception_ptr, current_exception, rethrow_exception
#include <iterator>     // random_access_iterator
#include <limits>       // numeric_limits
#include <memory>       // unique_ptr (the blocks of an affinity loop)
#include <tuple>        // tie
#include <type_traits>  // common_type_t, is_trivially_copyable_v

#include "forkline/detail/measure.hpp"  // measured_spawn, measured_sync (measuring mode)
#include "forkline/affinity.hpp"       // affinity_block, static_affinity, range_size, range_at
#include "forkline/detail/cancel.hpp"  // cancel_context
#include "forkline/detail/worker.hpp"  // worker, join_job, post_to_worker, join_stolen, context_scope
#include "forkline/invoke.hpp"         // invoke, default_runtime

namespace forkline {

namespace detail {

/// Indices per chunk under lazy splitting: small enough that a hungry thief
/// waits little, large enough that the inner loop is a plain loop.
inline std::size_t lazy_chunk(std::size_t n, unsigned workers) noexcept {
    const std::size_t c = n / (static_cast<std::size_t>(workers) * 64);
    return c < 1 ? 1 : (c > 1024 ? 1024 : c);
}

/// Indices between two polls of the cancellation context where the loop
/// itself sets no chunk size (static-affinity blocks). C7 in "Cancellation".
inline constexpr std::size_t k_poll_chunk = 1024;

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

/// run_chunk in pieces of k_poll_chunk, stopping when `context` is cancelled.
template <class I, class F>
void run_polled(F& f, I lo, I hi, const cancel_context* context) {
    while (lo < hi) {
        if (is_cancelled(context)) return;
        const std::size_t left = range_size(lo, hi);
        const I stop = range_at(lo, left < k_poll_chunk ? left : k_poll_chunk);
        run_chunk(f, lo, stop);
        lo = stop;
    }
}

template <class I, class F>
void eager_split(I begin, I end, std::size_t grain, F& f, const cancel_context* context) {
    if (is_cancelled(context)) return;  // C7: once per piece and per split
    const std::size_t n = range_size(begin, end);
    if (n > grain) {
        const I mid = range_at(begin, n / 2);
        invoke([&] { eager_split(begin, mid, grain, f, context); },
               [&] { eager_split(mid, end, grain, f, context); });
        return;
    }
    run_chunk(f, begin, end);
}

/// `mark`: the deque index just above the half this range's parent pushed;
/// once top passes it, that half was stolen and we may split again.
template <class I, class F>
void lazy_split(I begin, I end, std::size_t chunk, std::int64_t mark, F& f, const cancel_context* context) {
    worker& w = *current_worker();
    while (begin < end) {
        if (is_cancelled(context)) return;  // C7: once per chunk, never per index
        const std::size_t left = range_size(begin, end);
        if (left > chunk && w.deque.top_relaxed() >= mark) {
            const I mid = range_at(begin, left / 2);
            const std::int64_t next_mark = w.deque.bottom() + 1;  // the right half goes at bottom()
            invoke([&] { lazy_split(begin, mid, chunk, next_mark, f, context); },
                   [&] { lazy_split(mid, end, chunk, std::numeric_limits<std::int64_t>::min(), f, context); });
            return;
        }
        const I stop = range_at(begin, left < chunk ? left : chunk);
        run_chunk(f, begin, stop);
        begin = stop;
    }
}

/// One block of a static-affinity loop, posted to its worker's mailbox. It
/// lives in the caller's frame, which joins it as invoke() joins a stolen half.
template <class I, class F>
struct affinity_job : join_job {
    affinity_job() noexcept { execute = &run; }

    static void run(job* self) noexcept {
        auto* me = static_cast<affinity_job*>(self);
        worker* w = current_worker();
        // relaxed: a hint for the joiner's choice of victim, as in fork_job.
        me->thief.store(w->index, std::memory_order_relaxed);
        {
            const context_scope scope(*w, me->m_loop);
            try {
                run_polled(*me->m_fn, me->m_lo, me->m_hi, me->m_loop);
            } catch (...) {
                me->error = std::current_exception();
                me->m_loop->request();  // the other blocks stop at their next poll
            }
        }
        // acq_rel: release publishes the block's effects and `error` to the
        // joiner's acquire (as in fork_job::run).
        if (me->state.exchange(k_done, std::memory_order_acq_rel) == k_sleeping) wake_joiner(me->state);
    }

    I m_lo{};
    I m_hi{};
    F* m_fn = nullptr;
    cancel_context* m_loop = nullptr;
    bool m_posted = false;
};

/// Worker i runs block i if its mailbox takes the block; otherwise the
/// caller runs it, after its own. Never a third worker (the mailbox is the
/// only way a block leaves the caller).
template <class I, class F>
void affinity_blocks(I begin, I end, F& f) {
    worker& w = *current_worker();
    const unsigned p = w.peers;
    cancel_context loop(w.context);  // a failing block cancels the rest
    std::unique_ptr<affinity_job<I, F>[]> blocks(new affinity_job<I, F>[p]);
    for (unsigned i = 0; i < p; ++i) {
        affinity_job<I, F>& b = blocks[i];
        std::tie(b.m_lo, b.m_hi) = affinity_block(begin, end, i, p);
        b.m_fn = &f;
        b.m_loop = &loop;
        if (i != w.index && b.m_lo < b.m_hi) {
            if (w.measure != nullptr) [[unlikely]] {
                // Measuring work and span: a block is a spawn that a thief
                // (its worker) would take; it runs here, in order.
                measured_spawn(w, &b, &loop);
                b.m_posted = true;
            } else {
                b.m_posted = post_to_worker(w, i, &b);
            }
        }
    }
    std::exception_ptr first_error;
    auto run_here = [&](const affinity_job<I, F>& b) {
        try {
            run_polled(f, b.m_lo, b.m_hi, &loop);
        } catch (...) {
            if (!first_error) first_error = std::current_exception();
            loop.request();
        }
    };
    run_here(blocks[w.index]);
    for (unsigned i = 0; i < p; ++i) {
        if (i != w.index && !blocks[i].m_posted) run_here(blocks[i]);
    }
    if (w.measure != nullptr) [[unlikely]] measured_sync(w, &loop);
    for (unsigned i = 0; i < p; ++i) {
        affinity_job<I, F>& b = blocks[i];
        if (!b.m_posted) continue;
        // acquire: pairs with the block's exchange to k_done.
        if (b.state.load(std::memory_order_acquire) != k_done) join_stolen(w, b);
        if (!first_error && b.error) first_error = b.error;
    }
    if (first_error) std::rethrow_exception(first_error);
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
        const detail::worker& w = *detail::current_worker();
        const std::size_t chunk = detail::lazy_chunk(detail::range_size(b, e), w.peers);
        detail::lazy_split(b, e, chunk, std::numeric_limits<std::int64_t>::min(), f, w.context);
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
    auto body = [&] {
        detail::eager_split(b, e, static_cast<std::size_t>(grain), f, detail::current_worker()->context);
    };
    detail::on_a_worker(body);
}

/// Static affinity: worker i runs f(k) for k in affinity_block(begin, end, i, P)
/// on every call, so repeated loops over the same data find it in the same
/// caches and NUMA node. A block whose worker's mailbox is busy (another
/// affinity loop is waiting there) runs on the caller instead, never on a
/// third worker.
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

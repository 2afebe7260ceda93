/// @file forkline/parallel_reduce.hpp
/// Reductions over index and iterator ranges.
///
/// @code
/// double s = forkline::parallel_reduce(0, n, 0.0,
///     [&](std::size_t lo, std::size_t hi, double acc) { for (auto i = lo; i < hi; ++i) acc += x[i]; return acc; },
///     std::plus<>{});
/// double dot = forkline::transform_reduce(0, n, 0.0, std::plus<>{}, [&](std::size_t i) { return x[i] * y[i]; });
/// @endcode
///
/// Splitting is lazy, as in parallel_for, and so is cancellation: under a
/// cancelled task_group or stop_token (see parallel_for.hpp) a reduction
/// skips its unstarted chunks and returns a partial result. Partial results are combined in
/// index order (left before right), so `combine` must be associative but need
/// not be commutative. The split points depend on stealing, so a
/// floating-point result may differ in its last bits from run to run.
#pragma once

#include <concepts>     // integral
#include <cstddef>      // size_t, ptrdiff_t
#include <cstdint>      // int64_t
#include <iterator>     // random_access_iterator
#include <limits>       // numeric_limits
#include <optional>     // optional (partial results without a default constructor)
#include <type_traits>  // common_type_t, decay_t
#include <utility>      // move

#include "forkline/parallel_for.hpp"  // lazy_chunk, on_a_worker, invoke

namespace forkline {

namespace detail {

/// Calls fold(args...) out of line. The fold of one chunk is kept out of the
/// splitting function: inlined there, g++ kept a double accumulator in a
/// general register across the split's call and moved it to and from an xmm
/// register around every add (3x slower than a plain loop).
template <class Fold, class... Args>
__attribute__((noinline)) auto fold_chunk(Fold& fold, Args... args) {
    return fold(std::move(args)...);
}

/// Folds the non-empty range [begin, end): `start(lo, hi)` folds a first
/// chunk, `extend(lo, hi, acc)` folds a later chunk into acc,
/// `combine(left, right)` joins two partial results.
/// Under a cancelled `context` (C7 in "Cancellation", runtime/DESIGN.md) it
/// returns what it folded so far: each piece folds at least one chunk.
template <class T, class I, class Start, class Extend, class Combine>
T lazy_reduce(I begin, I end, std::size_t chunk, std::int64_t mark, Start& start, Extend& extend,
              Combine& combine, const cancel_context* context) {
    worker& w = *current_worker();
    auto take = [&](I from) {
        const std::size_t left = range_size(from, end);
        return range_at(from, left < chunk ? left : chunk);
    };
    I stop = take(begin);
    T acc = fold_chunk(start, begin, stop);
    begin = stop;
    while (begin < end) {
        if (is_cancelled(context)) return acc;  // once per chunk
        const std::size_t left = range_size(begin, end);
        if (left > chunk && w.deque.top_relaxed() >= mark) {
            const I mid = range_at(begin, left / 2);
            const std::int64_t next_mark = w.deque.bottom() + 1;
            std::optional<T> lo_part;
            std::optional<T> hi_part;
            invoke([&] { lo_part.emplace(lazy_reduce<T>(begin, mid, chunk, next_mark, start, extend, combine, context)); },
                   [&] {
                       hi_part.emplace(lazy_reduce<T>(mid, end, chunk, std::numeric_limits<std::int64_t>::min(),
                                                      start, extend, combine, context));
                   });
            // A thief skips a cancelled half (C6): then only the left part counts.
            if (!hi_part) return combine(std::move(acc), std::move(*lo_part));
            return combine(combine(std::move(acc), std::move(*lo_part)), std::move(*hi_part));
        }
        stop = take(begin);
        acc = fold_chunk(extend, begin, stop, std::move(acc));
        begin = stop;
    }
    return acc;
}

template <class T, class I, class Start, class Extend, class Combine>
T reduce_on_a_worker(I b, I e, Start& start, Extend& extend, Combine& combine) {
    std::optional<T> out;
    auto body = [&] {
        const worker& w = *current_worker();
        const std::size_t chunk = lazy_chunk(range_size(b, e), w.peers);
        out.emplace(lazy_reduce<T>(b, e, chunk, std::numeric_limits<std::int64_t>::min(), start, extend, combine,
                                   w.context));
    };
    on_a_worker(body);
    return std::move(*out);
}

}  // namespace detail

/// Reduces [begin, end): body(lo, hi, acc) folds the indices [lo, hi) into
/// acc and returns it (each piece starts from `identity`); combine(a, b)
/// joins the results of adjacent pieces, a before b. Returns identity for an
/// empty range. The first exception thrown is rethrown. Folding a whole piece
/// in one call keeps the inner loop a plain loop the compiler can vectorise.
/// @code
/// std::size_t evens = forkline::parallel_reduce(std::size_t{0}, v.size(), std::size_t{0},
///     [&](std::size_t lo, std::size_t hi, std::size_t acc) { for (auto i = lo; i < hi; ++i) acc += v[i] % 2 == 0; return acc; },
///     std::plus<>{});
/// @endcode
template <std::integral B, std::integral E, class T, class Body, class Combine>
T parallel_reduce(B begin, E end, T identity, Body&& body, Combine&& combine) {
    using I = std::common_type_t<B, E>;
    const I b = static_cast<I>(begin);
    const I e = static_cast<I>(end);
    if (!(b < e)) return identity;
    auto start = [&](I lo, I hi) -> T { return body(lo, hi, T(identity)); };
    auto extend = [&](I lo, I hi, T acc) -> T { return body(lo, hi, std::move(acc)); };
    auto join = [&](T x, T y) -> T { return combine(std::move(x), std::move(y)); };
    return detail::reduce_on_a_worker<T>(b, e, start, extend, join);
}

/// reduce(init, transform(begin), ..., transform(end - 1)) in some grouping:
/// std::transform_reduce over indices. `reduce` must be associative.
/// @code
/// double dot = forkline::transform_reduce(std::size_t{0}, n, 0.0, std::plus<>{},
///                                         [&](std::size_t i) { return x[i] * y[i]; });
/// @endcode
template <std::integral B, std::integral E, class T, class Reduce, class Transform>
T transform_reduce(B begin, E end, T init, Reduce&& reduce, Transform&& transform) {
    using I = std::common_type_t<B, E>;
    const I b = static_cast<I>(begin);
    const I e = static_cast<I>(end);
    if (!(b < e)) return init;
    auto extend = [&](I lo, I hi, T acc) -> T {
        for (I i = lo; i < hi; ++i) acc = reduce(std::move(acc), transform(i));
        return acc;
    };
    auto start = [&](I lo, I hi) -> T { return extend(static_cast<I>(lo + 1), hi, T(transform(lo))); };
    auto join = [&](T x, T y) -> T { return reduce(std::move(x), std::move(y)); };
    return reduce(std::move(init), detail::reduce_on_a_worker<T>(b, e, start, extend, join));
}

/// std::transform_reduce over a random-access iterator range: transform(*it).
/// @code
/// std::size_t total = forkline::transform_reduce(words.begin(), words.end(), std::size_t{0}, std::plus<>{},
///                                                [](const std::string& w) { return w.size(); });
/// @endcode
template <std::random_access_iterator It, class T, class Reduce, class Transform>
    requires(!std::integral<It>)
T transform_reduce(It first, It last, T init, Reduce&& reduce, Transform&& transform) {
    return forkline::transform_reduce(std::ptrdiff_t{0}, last - first, std::move(init), reduce,
                            [&](std::ptrdiff_t i) { return transform(first[i]); });
}

}  // namespace forkline

// forkline/parallel_for.hpp: a loop over an index range, split by fork-join.
//
//   forkline::parallel_for(0, n, [&](std::size_t i) { y[i] += a * x[i]; });
//   forkline::parallel_for(0, n, 1024, body);   // explicit grain
//
// The range is halved recursively with invoke() until a piece holds at most
// `grain` indices; thieves take the large halves first. Grain 0 (or the
// overload without one) picks n / (8 * workers), at least 1.
#pragma once

#include <concepts>     // integral
#include <cstddef>      // size_t
#include <type_traits>  // common_type_t

#include "forkline/invoke.hpp"  // invoke, default_runtime

namespace forkline {

namespace detail {

template <class I, class F>
void split_range(I begin, I end, I grain, F& f) {
    if (static_cast<std::size_t>(end - begin) > static_cast<std::size_t>(grain)) {
        const I mid = begin + (end - begin) / 2;
        invoke([&] { split_range(begin, mid, grain, f); }, [&] { split_range(mid, end, grain, f); });
        return;
    }
    for (I i = begin; i < end; ++i) f(i);
}

}  // namespace detail

/// Calls f(i) for every i in [begin, end), in parallel. The first exception
/// thrown by f is rethrown; pieces not yet started are then skipped.
template <std::integral B, std::integral E, std::integral G, class F>
void parallel_for(B begin, E end, G grain, F&& f) {
    using I = std::common_type_t<B, E>;
    const I b = static_cast<I>(begin);
    const I e = static_cast<I>(end);
    if (!(b < e)) return;
    auto body = [&] {
        detail::worker* w = detail::current_worker();
        I g = static_cast<I>(grain);
        if (!(g > 0)) {
            const std::size_t n = static_cast<std::size_t>(e - b);
            const std::size_t pieces = 8u * w->peers;
            g = static_cast<I>(n / pieces > 0 ? n / pieces : 1);
        }
        detail::split_range(b, e, g, f);
    };
    if (detail::current_worker() != nullptr) {
        body();
    } else {
        default_runtime().run(body);
    }
}

template <std::integral B, std::integral E, class F>
void parallel_for(B begin, E end, F&& f) {
    parallel_for(begin, end, 0, std::forward<F>(f));
}

}  // namespace forkline

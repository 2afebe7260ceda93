/// @file forkline/parallel_sort.hpp
/// A parallel merge sort.
///
/// @code
/// forkline::parallel_sort(v.begin(), v.end());
/// forkline::parallel_sort(v.begin(), v.end(), std::greater<>{});
/// @endcode
///
/// Halves are sorted in parallel and merged in parallel (each merge splits at
/// the middle of the longer run and the matching point of the shorter one, so
/// its span is logarithmic). Leaves of about n / 16P elements (at least 2048)
/// are sorted with std::sort; merges below 2048 elements use std::merge. Stable
/// merges, but the std::sort leaves are not stable: not a stable sort. Needs
/// one buffer of the range's size (elements are moved there and back), so the
/// element type must be move-constructible and move-assignable. If comp
/// throws, the exception reaches the caller and, as with std::sort, the
/// range is left valid but in an unspecified state; so it is when the sort
/// is cancelled (a cancelled task_group or stop_token, see parallel_for.hpp),
/// which skips the leaves and merges not yet started (a leaf's std::sort
/// itself is not interrupted).
#pragma once

#include <algorithm>   // sort, merge, lower_bound, upper_bound, move
#include <cstddef>     // ptrdiff_t
#include <functional>  // less
#include <iterator>    // random_access_iterator, iter_value_t, make_move_iterator
#include <memory>      // unique_ptr (the scratch buffer of plain values)
#include <type_traits> // is_trivially_copyable_v, is_trivially_default_constructible_v
#include <vector>      // vector (the merge buffer of other values)

#include "forkline/invoke.hpp"        // invoke
#include "forkline/parallel_for.hpp"  // on_a_worker

namespace forkline {

namespace detail {

inline constexpr std::ptrdiff_t k_sort_cutoff = 2048;

/// Merges sorted [a, a+na) and [b, b+nb) into out by moving.
template <class It, class Out, class Comp>
void parallel_merge(It a, std::ptrdiff_t na, It b, std::ptrdiff_t nb, Out out, Comp& comp,
                    const cancel_context* context) {
    if (is_cancelled(context)) return;  // C7: once per piece
    if (na + nb <= k_sort_cutoff) {
        std::merge(std::make_move_iterator(a), std::make_move_iterator(a + na), std::make_move_iterator(b),
                   std::make_move_iterator(b + nb), out, comp);
        return;
    }
    if (na >= nb) {
        const std::ptrdiff_t ma = na / 2;
        // Elements of b equal to a[ma] go after it: the merge stays stable.
        const std::ptrdiff_t mb = std::lower_bound(b, b + nb, a[ma], comp) - b;
        invoke([&] { parallel_merge(a, ma, b, mb, out, comp, context); },
               [&] { parallel_merge(a + ma, na - ma, b + mb, nb - mb, out + ma + mb, comp, context); });
    } else {
        const std::ptrdiff_t mb = nb / 2;
        const std::ptrdiff_t ma = std::upper_bound(a, a + na, b[mb], comp) - a;
        invoke([&] { parallel_merge(a, ma, b, mb, out, comp, context); },
               [&] { parallel_merge(a + ma, na - ma, b + mb, nb - mb, out + ma + mb, comp, context); });
    }
}

/// Sorts [data, data+n); the result ends in `data` when !into_buf, else in buf.
/// Runs of at most `leaf` elements are left to std::sort.
template <class It, class Buf, class Comp>
void merge_sort(It data, Buf buf, std::ptrdiff_t n, std::ptrdiff_t leaf, bool into_buf, Comp& comp,
                const cancel_context* context) {
    if (is_cancelled(context)) return;  // C7: once per leaf and per split
    if (n <= leaf) {
        std::sort(data, data + n, comp);
        if (into_buf) std::move(data, data + n, buf);
        return;
    }
    const std::ptrdiff_t m = n / 2;
    invoke([&] { merge_sort(data, buf, m, leaf, !into_buf, comp, context); },
           [&] { merge_sort(data + m, buf + m, n - m, leaf, !into_buf, comp, context); });
    if (into_buf) {
        parallel_merge(data, m, data + m, n - m, buf, comp, context);
    } else {
        parallel_merge(buf, m, buf + m, n - m, data, comp, context);
    }
}

}  // namespace detail

/// Sorts [first, last) by comp (default <), in parallel. Not stable. Ranges
/// of 2048 elements or fewer are simply std::sort-ed on the calling thread.
/// @code
/// forkline::parallel_sort(people.begin(), people.end(),
///                         [](const person& a, const person& b) { return a.age < b.age; });
/// @endcode
template <std::random_access_iterator It, class Comp = std::less<>>
void parallel_sort(It first, It last, Comp comp = {}) {
    const std::ptrdiff_t n = last - first;
    if (n <= detail::k_sort_cutoff) {
        std::sort(first, last, comp);
        return;
    }
    auto leaf_size = [n] {
        // About 16 leaves per worker: enough pieces to balance, and only
        // log2(16 P) merge passes over the data (each a full read and write,
        // which is what a merge sort pays over an in-place std::sort).
        const std::ptrdiff_t per_leaf = n / (16 * static_cast<std::ptrdiff_t>(detail::current_worker()->peers));
        return per_leaf > detail::k_sort_cutoff ? per_leaf : detail::k_sort_cutoff;
    };
    using value = std::iter_value_t<It>;
    if constexpr (std::is_trivially_default_constructible_v<value> && std::is_trivially_copyable_v<value>) {
        // Plain values: an uninitialised scratch buffer, the leaves sorted in
        // place, no pass to fill the buffer first.
        std::unique_ptr<value[]> buf(new value[static_cast<std::size_t>(n)]);
        auto body = [&] {
            detail::merge_sort(first, buf.get(), n, leaf_size(), /*into_buf=*/false, comp,
                               detail::current_worker()->context);
        };
        detail::on_a_worker(body);
    } else {
        // The values move to the buffer; the (moved-from) range becomes the
        // scratch space and receives the sorted result.
        std::vector<value> buf(std::make_move_iterator(first), std::make_move_iterator(last));
        auto body = [&] {
            detail::merge_sort(buf.begin(), first, n, leaf_size(), /*into_buf=*/true, comp,
                               detail::current_worker()->context);
        };
        detail::on_a_worker(body);
    }
}

}  // namespace forkline

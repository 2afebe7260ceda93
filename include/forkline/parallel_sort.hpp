/// @file forkline/parallel_sort.hpp
/// A parallel, in-place quicksort.
///
/// @code
/// forkline::parallel_sort(v.begin(), v.end());
/// forkline::parallel_sort(v.begin(), v.end(), std::greater<>{});
/// @endcode
///
/// Each step picks a pivot (the median of three medians of three, spread
/// over the range), partitions around it and sorts both sides in parallel;
/// large ranges are partitioned in parallel too (blocks partitioned on their
/// own, then the misplaced elements swapped across in parallel), so the top
/// of the recursion is not a serial pass. Pieces of about n / 16P elements
/// (at least 2048) are left to std::sort, and so is a piece whose recursion
/// went deeper than 2 log2 n (bad pivots): the work stays O(n log n). Keys
/// equal to the pivot are set apart when they are many, so runs of equal
/// keys do not make the recursion deep.
///
/// In place: elements are only swapped, no buffer of the range's size (a few
/// words per block of a parallel partition). Not stable. The element type
/// must be swappable (std::iter_swap) and comp must be a strict weak order.
/// If comp throws, the exception reaches the caller and, as with std::sort,
/// the range is left valid (a permutation of the input) but in an unspecified
/// order; so it is when the sort is cancelled (a cancelled task_group or
/// stop_token, see parallel_for.hpp), which skips the pieces not yet started
/// (a std::sort of a piece is not interrupted).
#pragma once

#include <algorithm>   // sort, partition, iter_swap, upper_bound
#include <bit>         // bit_width
#include <cstddef>     // ptrdiff_t, size_t
#include <functional>  // less
#include <iterator>    // random_access_iterator
#include <vector>      // vector (a parallel partition's per-block counts)

#include "forkline/invoke.hpp"        // invoke
#include "forkline/parallel_for.hpp"  // parallel_for, on_a_worker

namespace forkline {

namespace detail {

inline constexpr std::ptrdiff_t k_sort_cutoff = 2048;
// Below this many elements a partition is one serial pass: a parallel one
// costs two passes over the misplaced elements and a join per block.
inline constexpr std::ptrdiff_t k_parallel_partition_min = std::ptrdiff_t{1} << 16;

/// The index (into first[]) of the median of first[a], first[b], first[c].
template <class It, class Comp>
std::ptrdiff_t median_of_three(It first, std::ptrdiff_t a, std::ptrdiff_t b, std::ptrdiff_t c, Comp& comp) {
    if (comp(first[a], first[b])) {
        if (comp(first[b], first[c])) return b;
        return comp(first[a], first[c]) ? c : a;
    }
    if (comp(first[a], first[c])) return a;
    return comp(first[b], first[c]) ? c : b;
}

/// Tukey's ninther: the median of three medians of three, over nine
/// elements spread across [first, first + n), n >= 9.
template <class It, class Comp>
std::ptrdiff_t ninther(It first, std::ptrdiff_t n, Comp& comp) {
    const std::ptrdiff_t s = n / 9;
    const std::ptrdiff_t m1 = median_of_three(first, 0, s, 2 * s, comp);
    const std::ptrdiff_t m2 = median_of_three(first, 3 * s, 4 * s, 5 * s, comp);
    const std::ptrdiff_t m3 = median_of_three(first, 6 * s, 7 * s, n - 1, comp);
    return median_of_three(first, m1, m2, m3, comp);
}

/// std::partition's result (the trues first; returns the first false) with
/// few mispredicted branches, after Edelkamp and Weiss's BlockQuicksort:
/// from each end a block of 64 elements is classified into a list of
/// misplaced offsets (a compare and an add per element, no branch on the
/// outcome), then the two lists are swapped pairwise. What is left, under
/// two blocks, goes to std::partition. For cheap comparisons (numbers) this
/// is about twice as fast as a branching partition on random input.
template <class It, class Pred>
It block_partition(It first, It last, Pred& pred) {
    constexpr int k_block = 64;
    unsigned char off_l[k_block];
    unsigned char off_r[k_block];
    int num_l = 0;
    int num_r = 0;
    int start_l = 0;
    int start_r = 0;
    while (last - first > 2 * k_block) {
        if (num_l == 0) {
            start_l = 0;
            for (int i = 0; i < k_block; ++i) {
                off_l[num_l] = static_cast<unsigned char>(i);
                num_l += !pred(first[i]);  // a false on the left: misplaced
            }
        }
        if (num_r == 0) {
            start_r = 0;
            for (int i = 0; i < k_block; ++i) {
                off_r[num_r] = static_cast<unsigned char>(i);
                num_r += pred(*(last - 1 - i)) ? 1 : 0;  // a true on the right: misplaced
            }
        }
        const int num = num_l < num_r ? num_l : num_r;
        for (int j = 0; j < num; ++j) {
            std::iter_swap(first + off_l[start_l + j], last - 1 - off_r[start_r + j]);
        }
        num_l -= num;
        num_r -= num;
        start_l += num;
        start_r += num;
        if (num_l == 0) first += k_block;
        if (num_r == 0) last -= k_block;
    }
    // Left of first all trues, right of last all falses; the blocks still
    // holding misplaced offsets lie inside [first, last) and are redone whole.
    return std::partition(first, last, pred);
}

/// Sorts [first, first + n) on this thread: quicksort with block partitions,
/// std::sort for pieces of up to 1024 elements and past depth_left levels.
template <class It, class Comp>
void sequential_sort(It first, std::ptrdiff_t n, int depth_left, Comp& comp) {
    constexpr std::ptrdiff_t k_small = 1024;
    while (n > k_small && depth_left > 0) {
        --depth_left;
        std::iter_swap(first, first + ninther(first, n, comp));
        It rest = first + 1;
        auto below = [&](const auto& x) { return comp(x, *first); };
        const std::ptrdiff_t m = block_partition(rest, first + n, below) - rest;
        std::iter_swap(first, first + m);
        std::ptrdiff_t right = m + 1;
        if (m < n / 8) {
            It p = first + m;
            auto not_above = [&](const auto& x) { return !comp(*p, x); };
            right += block_partition(first + right, first + n, not_above) - (first + right);
        }
        // The smaller side by recursion, the larger by the loop: the stack
        // stays O(log n) deep.
        if (m < n - right) {
            sequential_sort(first, m, depth_left, comp);
            first += right;
            n -= right;
        } else {
            sequential_sort(first + right, n - right, depth_left, comp);
            n = m;
        }
    }
    std::sort(first, first + n, comp);
}

/// Moves the elements of [first, first + n) for which pred holds to the front,
/// in parallel, and returns how many there are (as std::partition, not stable).
/// Each of `blocks` blocks is partitioned on its own; then, with L the total
/// count, the false elements left of L and the true ones right of it (as many
/// of each) are swapped pairwise, in parallel pieces.
template <class It, class Pred>
std::ptrdiff_t parallel_partition(It first, std::ptrdiff_t n, Pred& pred, std::ptrdiff_t blocks) {
    std::vector<std::ptrdiff_t> begin(static_cast<std::size_t>(blocks) + 1);
    for (std::ptrdiff_t b = 0; b <= blocks; ++b) begin[static_cast<std::size_t>(b)] = n * b / blocks;
    // trues[b]: how many of block b satisfy pred (at its front once partitioned).
    std::vector<std::ptrdiff_t> trues(static_cast<std::size_t>(blocks));
    parallel_for(std::ptrdiff_t{0}, blocks, 1, [&](std::ptrdiff_t b) {
        const auto k = static_cast<std::size_t>(b);
        trues[k] = block_partition(first + begin[k], first + begin[k + 1], pred) - (first + begin[k]);
    });
    std::ptrdiff_t total = 0;
    for (const std::ptrdiff_t t : trues) total += t;

    // The misplaced elements, as intervals in increasing position: falses in
    // [0, total) and trues in [total, n). pos: start; sum: elements before it.
    struct interval {
        std::ptrdiff_t pos;
        std::ptrdiff_t len;
        std::ptrdiff_t sum;
    };
    std::vector<interval> wrong_left;
    std::vector<interval> wrong_right;
    std::ptrdiff_t misplaced = 0;
    std::ptrdiff_t misplaced_right = 0;
    for (std::ptrdiff_t b = 0; b < blocks; ++b) {
        const auto k = static_cast<std::size_t>(b);
        const std::ptrdiff_t split = begin[k] + trues[k];  // block's trues: [begin, split)
        // Falses of this block that lie left of total.
        const std::ptrdiff_t fl_begin = split;
        const std::ptrdiff_t fl_end = std::min(begin[k + 1], total);
        if (fl_end > fl_begin) {
            wrong_left.push_back({fl_begin, fl_end - fl_begin, misplaced});
            misplaced += fl_end - fl_begin;
        }
        // Trues of this block that lie right of total.
        const std::ptrdiff_t tr_begin = std::max(begin[k], total);
        const std::ptrdiff_t tr_end = split;
        if (tr_end > tr_begin) {
            wrong_right.push_back({tr_begin, tr_end - tr_begin, misplaced_right});
            misplaced_right += tr_end - tr_begin;
        }
    }
    // misplaced == misplaced_right: both count the falses in [0, total).
    if (misplaced == 0) return total;
    constexpr std::ptrdiff_t k_swap_piece = std::ptrdiff_t{1} << 14;
    const std::ptrdiff_t pieces = (misplaced + k_swap_piece - 1) / k_swap_piece;
    auto at = [](const std::vector<interval>& v, std::ptrdiff_t rank) {
        // The interval holding the rank-th misplaced element.
        auto it = std::upper_bound(v.begin(), v.end(), rank,
                                   [](std::ptrdiff_t r, const interval& i) { return r < i.sum; });
        return static_cast<std::size_t>(it - v.begin()) - 1;
    };
    parallel_for(std::ptrdiff_t{0}, pieces, 1, [&](std::ptrdiff_t p) {
        std::ptrdiff_t rank = p * k_swap_piece;
        const std::ptrdiff_t end = std::min(misplaced, rank + k_swap_piece);
        std::size_t li = at(wrong_left, rank);
        std::size_t ri = at(wrong_right, rank);
        while (rank < end) {
            const interval& l = wrong_left[li];
            const interval& r = wrong_right[ri];
            const std::ptrdiff_t lo = rank - l.sum;  // offset within l
            const std::ptrdiff_t ro = rank - r.sum;
            const std::ptrdiff_t run = std::min({l.len - lo, r.len - ro, end - rank});
            for (std::ptrdiff_t k = 0; k < run; ++k) std::iter_swap(first + (l.pos + lo + k), first + (r.pos + ro + k));
            rank += run;
            if (lo + run == l.len) ++li;
            if (ro + run == r.len) ++ri;
        }
    });
    return total;
}

/// Sorts [first, first + n): see the file's comment.
template <class It, class Comp>
void quick_sort(It first, std::ptrdiff_t n, std::ptrdiff_t leaf, int depth_left, unsigned peers, Comp& comp,
                const cancel_context* context) {
    if (is_cancelled(context)) return;  // C7: once per piece
    if (n <= leaf || depth_left <= 0) {
        sequential_sort(first, n, depth_left, comp);
        return;
    }
    // The pivot goes to the front and stays there while the rest is
    // partitioned, so it is compared in place, never copied.
    std::iter_swap(first, first + ninther(first, n, comp));
    It rest = first + 1;
    const std::ptrdiff_t rest_n = n - 1;
    auto below = [&](const auto& x) { return comp(x, *first); };
    std::ptrdiff_t m = 0;  // elements of rest below the pivot
    if (rest_n >= k_parallel_partition_min && peers > 1) {
        const std::ptrdiff_t blocks = std::min<std::ptrdiff_t>(4 * static_cast<std::ptrdiff_t>(peers),
                                                               rest_n / (k_parallel_partition_min / 4));
        m = parallel_partition(rest, rest_n, below, blocks);
    } else {
        m = block_partition(rest, rest + rest_n, below) - rest;
    }
    // The pivot between the two sides: [0, m) below it, m the pivot, then the rest.
    std::iter_swap(first, first + m);
    std::ptrdiff_t right = m + 1;
    if (m < n / 8) {
        // Few below the pivot: perhaps many equal to it. Set the equal ones
        // apart (they are in place) so that they are not sorted again; with
        // all keys equal this is what ends the recursion.
        It p = first + m;
        auto not_above = [&](const auto& x) { return !comp(*p, x); };
        right += block_partition(first + right, first + n, not_above) - (first + right);
    }
    invoke([&] { quick_sort(first, m, leaf, depth_left - 1, peers, comp, context); },
           [&] { quick_sort(first + right, n - right, leaf, depth_left - 1, peers, comp, context); });
}

}  // namespace detail

/// Sorts [first, last) by comp (default <), in parallel and in place. Not
/// stable. Ranges of 2048 elements or fewer are simply std::sort-ed on the
/// calling thread.
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
    auto body = [&] {
        const detail::worker& w = *detail::current_worker();
        // About 16 pieces per worker: enough to balance unequal partitions
        // (and, on one worker, places to notice a cancellation).
        const std::ptrdiff_t per_leaf = n / (16 * static_cast<std::ptrdiff_t>(w.peers));
        const std::ptrdiff_t leaf = per_leaf > detail::k_sort_cutoff ? per_leaf : detail::k_sort_cutoff;
        const int depth = 2 * static_cast<int>(std::bit_width(static_cast<std::size_t>(n)));
        detail::quick_sort(first, n, leaf, depth, w.peers, comp, w.context);
    };
    detail::on_a_worker(body);
}

}  // namespace forkline

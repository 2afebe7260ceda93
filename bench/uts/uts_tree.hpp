// bench/uts/uts_tree.hpp: the Unbalanced Tree Search tree, generated on the fly.
//
// UTS (Olivier et al., LCPC 2006) defines a family of trees that no one
// stores: a node is a 20-byte SHA-1 digest and a depth, its number of
// children follows from its digest, and child i's digest is
// SHA-1(parent digest || i as 4 big-endian bytes). Any subtree can therefore
// be handed to another thread as 24 bytes, and every traversal order counts
// the same tree. The rules here are those of the reference implementation,
// UTS 2.1 with its "BRG SHA-1" random number generator, so the sample trees
// come out at their published sizes (T1: 4,130,071 nodes; T3: 4,112,897).
//
// This header is shared by forkline-bench (every variant, the OpenMP module
// included) and tests/test_uts.cpp.
#pragma once

#include <array>        // array
#include <cstdint>      // uint8_t, uint32_t, uint64_t
#include <span>         // span
#include <stdexcept>    // invalid_argument
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

namespace forkline_bench::uts {

/// The UTS flag -t.
enum class tree_type : int {
    binomial = 0,   ///< root: b_0 children; below: m children with probability q, else none
    geometric = 1,  ///< children ~ geometric with mean b_i, b_i set by the shape from b_0 and the depth
    hybrid = 2,     ///< geometric above depth f * d, binomial below
};

/// The UTS flag -a: how a geometric tree's expected branching b_i falls with depth i.
enum class geo_shape : int {
    linear = 0,  ///< b_0 (1 - i/d)
    expdec = 1,  ///< b_0 i^(-log b_0 / log d)
    cyclic = 2,  ///< b_0^sin(2 pi i / d), and none below depth 5d
    fixed = 3,   ///< b_0 down to depth d, none below
};

/// One tree, as the UTS command line gives it. Defaults are the reference's.
struct tree_params {
    tree_type type = tree_type::geometric;  ///< -t
    double root_branching = 4.0;            ///< -b: b_0
    int root_seed = 0;                      ///< -r
    int nonleaf_children = 4;               ///< -m: binomial m
    double nonleaf_probability = 15.0 / 64.0;  ///< -q: binomial q
    int gen_mx = 6;                         ///< -d: the depth the geometric shapes are scaled to
    geo_shape shape = geo_shape::linear;    ///< -a
    double shift_depth = 0.5;               ///< -f: hybrid: geometric above f * d
    int compute_granularity = 1;            ///< -g: SHA-1 evaluations per child (all give the same digest)
};

/// A --uts string that does not parse: the message names the flag and the value.
class param_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// Parses UTS flags such as "-t 1 -a 3 -d 10 -b 4 -r 19" (each flag, then its
/// value, separated by blanks); flags not given keep the reference's
/// defaults. Throws param_error on an unknown or repeated flag, a missing
/// value, or a value that is not a number in the flag's range.
tree_params parse_params(std::string_view text);

/// The flags that shape this tree, in a fixed order: equal strings, equal trees.
std::string format_params(const tree_params& p);

/// What a traversal counts. `depth` is the greatest depth of any node; the root is at 0.
struct tree_counts {
    std::uint64_t nodes = 0;
    std::uint64_t leaves = 0;
    int depth = 0;

    friend bool operator==(const tree_counts&, const tree_counts&) = default;
};

/// The counts of two disjoint sets of nodes together.
inline tree_counts operator+(const tree_counts& a, const tree_counts& b) noexcept {
    return {a.nodes + b.nodes, a.leaves + b.leaves, a.depth > b.depth ? a.depth : b.depth};
}

/// A single leaf at `depth`.
inline tree_counts leaf_counts(int depth) noexcept { return {1, 1, depth}; }

/// "4130071 nodes, 3305118 leaves, depth 10".
std::string describe(const tree_counts& c);

/// One of the UTS sample trees and its published size.
struct named_tree {
    std::string_view name;    ///< "T1"
    std::string_view params;  ///< as the UTS distribution lists it
    tree_counts published;
};

/// T1, T3, T1L, T3L.
std::span<const named_tree> named_trees();

/// The sample tree called `name`, or nullptr.
const named_tree* find_named_tree(std::string_view name);

/// The sample tree with exactly these parameters (as format_params sees them), or nullptr.
const named_tree* find_named_tree(const tree_params& p);

/// SHA-1 as FIPS 180-4 defines it.
using sha1_digest = std::array<std::uint8_t, 20>;
sha1_digest sha1(std::span<const std::uint8_t> message);

/// One SHA-1 compression: folds the 16 big-endian words of `block` into `state`.
void sha1_compress(std::uint32_t (&state)[5], const std::uint32_t (&block)[16]) noexcept;

/// A node: its digest as SHA-1's five big-endian words, and its depth.
struct node {
    std::uint32_t state[5];
    int depth;
};

/// A tree's parameters and what the generator derives from them once.
class tree {
public:
    /// The reference caps every node's children at 100, except a binomial root's.
    static constexpr int k_max_children = 100;

    explicit tree(const tree_params& p);

    const tree_params& params() const noexcept { return m_params; }

    /// The root: SHA-1 of 16 zero bytes and the seed as 4 big-endian bytes.
    node root() const noexcept;

    /// How many children `n` has.
    int num_children(const node& n) const noexcept;

    /// Child `index` (0-based) of `parent`.
    node child(const node& parent, int index) const noexcept;

private:
    int geometric_children(const node& n) const noexcept;
    int binomial_children(const node& n) const noexcept;

    tree_params m_params;
    // log(1 - p) by depth, where p = 1 / (1 + b_i) makes the geometric
    // distribution's mean b_i: the per-node work then is one log, as in the
    // reference, and the same doubles come out. Depths past the end are computed.
    std::vector<double> m_log_one_minus_p;
};

/// Counts the whole tree with plain recursion on the calling thread.
tree_counts count_serial(const tree& t);

}  // namespace forkline_bench::uts

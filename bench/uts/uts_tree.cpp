// bench/uts/uts_tree.cpp: SHA-1, the UTS parameters and the rules that grow the tree.
#include "uts_tree.hpp"

#include <bit>           // rotl
#include <charconv>      // from_chars, to_chars
#include <cmath>         // floor, log, pow, sin, isfinite
#include <cstddef>       // size_t
#include <limits>        // numeric_limits
#include <system_error>  // errc
#include <utility>       // index_sequence, make_index_sequence

namespace forkline_bench::uts {
namespace {

// ---- SHA-1 (FIPS 180-4, sections 4.1.1, 4.2.1, 5.1.1, 6.1) ----

constexpr std::uint32_t k_sha1_initial[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u};

// Round T of the 80. The working variables a..e are not shifted along each
// round; instead round T reads a from v[(0 - T) mod 5], b from v[(1 - T) mod 5]
// and so on, and writes only the two that change (the new a lands in e's
// slot, ROTL30(b) in b's). After 80 rounds the mapping is back where it began.
// Fully unrolled at compile time, the array becomes five registers.
template <std::size_t T>
[[gnu::always_inline]] inline void sha1_round(std::uint32_t (&v)[5], std::uint32_t (&w)[16]) noexcept {
    constexpr std::size_t ia = (5 - T % 5) % 5;
    constexpr std::size_t ib = (ia + 1) % 5;
    constexpr std::size_t ic = (ia + 2) % 5;
    constexpr std::size_t id = (ia + 3) % 5;
    constexpr std::size_t ie = (ia + 4) % 5;
    std::uint32_t wt;
    if constexpr (T < 16) {
        wt = w[T];
    } else {
        // The message schedule kept as a 16-word ring (FIPS 180-4, 6.1.3).
        wt = std::rotl(w[(T - 3) & 15] ^ w[(T - 8) & 15] ^ w[(T - 14) & 15] ^ w[T & 15], 1);
        w[T & 15] = wt;
    }
    const std::uint32_t b = v[ib], c = v[ic], d = v[id];
    std::uint32_t f;
    std::uint32_t k;
    if constexpr (T < 20) {
        f = (b & c) ^ (~b & d);  // Ch
        k = 0x5a827999u;
    } else if constexpr (T < 40) {
        f = b ^ c ^ d;  // Parity
        k = 0x6ed9eba1u;
    } else if constexpr (T < 60) {
        f = (b & c) ^ (b & d) ^ (c & d);  // Maj
        k = 0x8f1bbcdcu;
    } else {
        f = b ^ c ^ d;  // Parity
        k = 0xca62c1d6u;
    }
    v[ie] = std::rotl(v[ia], 5) + f + v[ie] + k + wt;
    v[ib] = std::rotl(b, 30);
}

template <std::size_t... T>
[[gnu::always_inline]] inline void sha1_rounds(std::uint32_t (&v)[5], std::uint32_t (&w)[16],
                                               std::index_sequence<T...>) noexcept {
    (sha1_round<T>(v, w), ...);
}

std::uint32_t load_big_endian(const std::uint8_t* p) noexcept {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// ---- the UTS rules (uts.c and rng/brg_sha1.c of UTS 2.1) ----

// Bits 0..30 of the digest's last word (bytes 16..19 read big-endian) as a
// number in [0, 1). The reference masks the sign bit and divides by 2^31.
double node_probability(const node& n) noexcept {
    return static_cast<double>(n.state[4] & 0x7fffffffu) / 2147483648.0;
}

// The shape's target mean branching factor at `depth`. The expressions keep
// the reference's order of operations, so the doubles match it bit for bit.
double target_branching(const tree_params& p, int depth) noexcept {
    const double b0 = p.root_branching;
    if (depth == 0) return b0;
    const double i = static_cast<double>(depth);
    const double d = static_cast<double>(p.gen_mx);
    switch (p.shape) {
        case geo_shape::expdec:
            return b0 * std::pow(i, -std::log(b0) / std::log(d));
        case geo_shape::cyclic:
            if (depth > 5 * p.gen_mx) return 0.0;
            return std::pow(b0, std::sin(2.0 * 3.141592653589793 * i / d));
        case geo_shape::fixed:
            return depth < p.gen_mx ? b0 : 0.0;
        case geo_shape::linear:
            break;
    }
    return b0 * (1.0 - i / d);
}

// log(1 - p) for the geometric distribution whose mean is b_i: p = 1 / (1 + b_i).
double log_one_minus_p(const tree_params& params, int depth) noexcept {
    const double p = 1.0 / (1.0 + target_branching(params, depth));
    return std::log(1.0 - p);
}

// Depths whose log(1 - p) is computed once per tree; past them (an
// exponentially decreasing shape, or a -d in the hundreds) it is computed per node.
constexpr int k_precomputed_depths = 1024;

// ---- parameters ----

constexpr std::string_view k_known_flags = "-t -b -r -m -q -d -a -f -g";
constexpr double k_max_root_branching = 1e6;  // keeps every geometric draw far inside an int
constexpr int k_max_gen_mx = 1'000'000;
constexpr int k_max_granularity = 1'000'000;

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

int parse_int_value(std::string_view flag, std::string_view value, int lo, int hi, std::string_view meaning) {
    int v = 0;
    const char* end = value.data() + value.size();
    const auto [ptr, ec] = std::from_chars(value.data(), end, v);
    if (ec != std::errc{} || ptr != end || v < lo || v > hi) {
        throw param_error("UTS " + std::string(flag) + " takes " + std::string(meaning) + ", not " + quoted(value));
    }
    return v;
}

double parse_double_value(std::string_view flag, std::string_view value, double lo, double hi,
                          std::string_view meaning) {
    double v = 0.0;
    const char* end = value.data() + value.size();
    const auto [ptr, ec] = std::from_chars(value.data(), end, v);
    if (ec != std::errc{} || ptr != end || !std::isfinite(v) || v < lo || v > hi) {
        throw param_error("UTS " + std::string(flag) + " takes " + std::string(meaning) + ", not " + quoted(value));
    }
    return v;
}

std::string format_double(double v) {
    char buf[64];
    const auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
    return ec == std::errc{} ? std::string(buf, ptr) : std::string("?");
}

std::vector<std::string_view> split_blanks(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')) ++i;
        const std::size_t start = i;
        while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != '\n') ++i;
        if (i > start) out.push_back(text.substr(start, i - start));
    }
    return out;
}

// The sizes that the UTS distribution's sample_trees.sh lists for them.
constexpr named_tree k_named_trees[] = {
    {"T1", "-t 1 -a 3 -d 10 -b 4 -r 19", {4'130'071, 3'305'118, 10}},
    {"T3", "-t 0 -b 2000 -q 0.124875 -m 8 -r 42", {4'112'897, 3'599'034, 1'572}},
    {"T1L", "-t 1 -a 3 -d 13 -b 4 -r 29", {102'181'082, 81'746'377, 13}},
    {"T3L", "-t 0 -b 2000 -q 0.200014 -m 5 -r 7", {111'345'631, 89'076'904, 17'844}},
};

tree_counts count_below(const tree& t, const node& n) {
    const int k = t.num_children(n);
    if (k == 0) return leaf_counts(n.depth);
    tree_counts sum{1, 0, n.depth};
    for (int i = 0; i < k; ++i) sum = sum + count_below(t, t.child(n, i));
    return sum;
}

}  // namespace

void sha1_compress(std::uint32_t (&state)[5], const std::uint32_t (&block)[16]) noexcept {
    std::uint32_t w[16];
    for (int i = 0; i < 16; ++i) w[i] = block[i];
    std::uint32_t v[5] = {state[0], state[1], state[2], state[3], state[4]};
    sha1_rounds(v, w, std::make_index_sequence<80>{});
    for (int i = 0; i < 5; ++i) state[i] += v[i];
}

sha1_digest sha1(std::span<const std::uint8_t> message) {
    std::uint32_t state[5];
    for (int i = 0; i < 5; ++i) state[i] = k_sha1_initial[i];
    std::uint32_t block[16];
    std::size_t pos = 0;
    for (; message.size() - pos >= 64; pos += 64) {
        for (int i = 0; i < 16; ++i) block[i] = load_big_endian(message.data() + pos + 4 * i);
        sha1_compress(state, block);
    }
    // Padding (5.1.1): the rest, a 1 bit, zeros, and the length in bits as
    // 64 bits big-endian; one block, or two when the rest leaves no room.
    std::uint8_t tail[128] = {};
    const std::size_t rest = message.size() - pos;
    for (std::size_t i = 0; i < rest; ++i) tail[i] = message[pos + i];
    tail[rest] = 0x80;
    const std::size_t tail_size = rest < 56 ? 64 : 128;
    const std::uint64_t bits = static_cast<std::uint64_t>(message.size()) * 8;
    for (std::size_t i = 0; i < 8; ++i) tail[tail_size - 1 - i] = static_cast<std::uint8_t>(bits >> (8 * i));
    for (std::size_t off = 0; off < tail_size; off += 64) {
        for (int i = 0; i < 16; ++i) block[i] = load_big_endian(tail + off + 4 * static_cast<std::size_t>(i));
        sha1_compress(state, block);
    }
    sha1_digest out{};
    for (std::size_t i = 0; i < 5; ++i) {
        for (std::size_t b = 0; b < 4; ++b) out[4 * i + b] = static_cast<std::uint8_t>(state[i] >> (24 - 8 * b));
    }
    return out;
}

tree_params parse_params(std::string_view text) {
    const std::vector<std::string_view> tokens = split_blanks(text);
    if (tokens.empty()) throw param_error("no UTS flags given; for example \"-t 1 -a 3 -d 10 -b 4 -r 19\" (T1)");
    tree_params p;
    std::string seen;
    for (std::size_t i = 0; i < tokens.size(); i += 2) {
        const std::string_view flag = tokens[i];
        if (flag.size() != 2 || flag[0] != '-' || k_known_flags.find(flag) == std::string_view::npos) {
            throw param_error("unknown UTS flag " + quoted(flag) + "; known: " + std::string(k_known_flags));
        }
        if (seen.find(flag[1]) != std::string::npos) {
            throw param_error("UTS flag " + std::string(flag) + " given twice");
        }
        seen += flag[1];
        if (i + 1 >= tokens.size()) throw param_error("UTS flag " + std::string(flag) + " needs a value");
        const std::string_view value = tokens[i + 1];
        switch (flag[1]) {
            case 't':
                p.type = static_cast<tree_type>(
                    parse_int_value(flag, value, 0, 2, "0 (binomial), 1 (geometric) or 2 (hybrid)"));
                break;
            case 'b':
                p.root_branching =
                    parse_double_value(flag, value, 0.0, k_max_root_branching, "a number from 0 to 1000000");
                break;
            case 'r':
                p.root_seed = parse_int_value(flag, value, std::numeric_limits<int>::min(),
                                              std::numeric_limits<int>::max(), "a 32-bit whole number");
                break;
            case 'm':
                p.nonleaf_children =
                    parse_int_value(flag, value, 0, tree::k_max_children, "a whole number from 0 to 100");
                break;
            case 'q':
                p.nonleaf_probability = parse_double_value(flag, value, 0.0, 1.0, "a probability from 0 to 1");
                break;
            case 'd':
                p.gen_mx = parse_int_value(flag, value, 1, k_max_gen_mx, "a whole number from 1 to 1000000");
                break;
            case 'a':
                p.shape = static_cast<geo_shape>(parse_int_value(
                    flag, value, 0, 3, "0 (linear), 1 (exponential decrease), 2 (cyclic) or 3 (fixed)"));
                break;
            case 'f':
                p.shift_depth = parse_double_value(flag, value, 0.0, 1.0, "a fraction from 0 to 1");
                break;
            case 'g':
                p.compute_granularity =
                    parse_int_value(flag, value, 1, k_max_granularity, "a whole number from 1 to 1000000");
                break;
        }
    }
    return p;
}

std::string format_params(const tree_params& p) {
    std::string out = "-t " + std::to_string(static_cast<int>(p.type));
    if (p.type != tree_type::binomial) {
        out += " -a " + std::to_string(static_cast<int>(p.shape)) + " -d " + std::to_string(p.gen_mx);
    }
    out += " -b " + format_double(p.root_branching);
    if (p.type != tree_type::geometric) {
        out += " -q " + format_double(p.nonleaf_probability) + " -m " + std::to_string(p.nonleaf_children);
    }
    if (p.type == tree_type::hybrid) out += " -f " + format_double(p.shift_depth);
    out += " -r " + std::to_string(p.root_seed);
    if (p.compute_granularity != 1) out += " -g " + std::to_string(p.compute_granularity);
    return out;
}

std::string describe(const tree_counts& c) {
    return std::to_string(c.nodes) + " nodes, " + std::to_string(c.leaves) + " leaves, depth " +
           std::to_string(c.depth);
}

std::span<const named_tree> named_trees() { return k_named_trees; }

const named_tree* find_named_tree(std::string_view name) {
    for (const named_tree& t : k_named_trees) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

const named_tree* find_named_tree(const tree_params& p) {
    const std::string want = format_params(p);
    for (const named_tree& t : k_named_trees) {
        if (format_params(parse_params(t.params)) == want) return &t;
    }
    return nullptr;
}

tree::tree(const tree_params& p) : m_params(p) {
    if (p.type != tree_type::binomial) {
        m_log_one_minus_p.reserve(k_precomputed_depths);
        for (int d = 0; d < k_precomputed_depths; ++d) m_log_one_minus_p.push_back(log_one_minus_p(p, d));
    }
}

node tree::root() const noexcept {
    std::uint8_t message[20] = {};
    const auto seed = static_cast<std::uint32_t>(m_params.root_seed);
    for (int i = 0; i < 4; ++i) message[16 + i] = static_cast<std::uint8_t>(seed >> (24 - 8 * i));
    const sha1_digest digest = sha1(message);
    node r{};
    for (std::size_t i = 0; i < 5; ++i) r.state[i] = load_big_endian(digest.data() + 4 * i);
    r.depth = 0;
    return r;
}

node tree::child(const node& parent, int index) const noexcept {
    // The message is the parent's 20-byte digest and the index as 4
    // big-endian bytes: 24 bytes, so one padded block whose words are the
    // parent's state words, the index, the 1 bit, zeros and the length, 192.
    const std::uint32_t block[16] = {parent.state[0], parent.state[1], parent.state[2], parent.state[3],
                                     parent.state[4], static_cast<std::uint32_t>(index), 0x80000000u, 0, 0, 0, 0,
                                     0, 0, 0, 0, 24 * 8};
    node c;
    // -g repeats the same hash to make each node cost more; the digest does not change.
    for (int g = 0; g < m_params.compute_granularity; ++g) {
        for (int i = 0; i < 5; ++i) c.state[i] = k_sha1_initial[i];
        sha1_compress(c.state, block);
    }
    c.depth = parent.depth + 1;
    return c;
}

int tree::geometric_children(const node& n) const noexcept {
    const double log_q = n.depth < k_precomputed_depths ? m_log_one_minus_p[static_cast<std::size_t>(n.depth)]
                                                        : log_one_minus_p(m_params, n.depth);
    // The inverse of the geometric distribution's CDF at u.
    const double x = std::floor(std::log(1.0 - node_probability(n)) / log_q);
    // Not a number only for degenerate shapes (b_0 = 1 with d = 1, say),
    // where the reference's cast to int yields a negative count: no children.
    if (!(x >= 0.0)) return 0;
    return x >= k_max_children ? k_max_children : static_cast<int>(x);
}

int tree::binomial_children(const node& n) const noexcept {
    if (!(node_probability(n) < m_params.nonleaf_probability)) return 0;
    return m_params.nonleaf_children < k_max_children ? m_params.nonleaf_children : k_max_children;
}

int tree::num_children(const node& n) const noexcept {
    switch (m_params.type) {
        case tree_type::binomial:
            // The root alone has b_0 children, and alone is exempt from the cap.
            if (n.depth == 0) return static_cast<int>(std::floor(m_params.root_branching));
            return binomial_children(n);
        case tree_type::geometric:
            return geometric_children(n);
        case tree_type::hybrid:
            if (static_cast<double>(n.depth) < m_params.shift_depth * m_params.gen_mx) return geometric_children(n);
            return binomial_children(n);
    }
    return 0;
}

tree_counts count_serial(const tree& t) { return count_below(t, t.root()); }

}  // namespace forkline_bench::uts

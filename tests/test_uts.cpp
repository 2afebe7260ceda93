// tests/test_uts.cpp: the UTS tree generator of bench/uts/ and the forkline traversal of it.
//
// Smoke: SHA-1 against the FIPS 180 examples; the generator's child step
// against plain SHA-1. Stress: small trees of every type counted by forkline
// at 1, 2 and 4 workers equal the serial count (every build). The published
// sample trees T1 and T3, serial and forkline, in the release build only
// (FORKLINE_STRESS_SCALE 100: a sanitizer build would take minutes). Failure:
// bad UTS flags throw param_error naming the flag and the value.
#include <doctest/doctest.h>

#include <cmath>        // floor, log, pow, sin
#include <cstddef>      // size_t
#include <cstdint>      // uint8_t, uint32_t
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

#include "forkline/forkline.hpp"  // runtime
#include "support.hpp"            // config_for
#include "uts/uts.hpp"            // count_uts_forkline
#include "uts/uts_tree.hpp"       // tree, parse_params, count_serial, sha1

namespace uts = forkline_bench::uts;

namespace {

std::string hex(const uts::sha1_digest& d) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    for (const std::uint8_t b : d) {
        out += k_digits[b >> 4];
        out += k_digits[b & 15];
    }
    return out;
}

std::string sha1_hex(std::string_view text) {
    const std::vector<std::uint8_t> bytes(text.begin(), text.end());
    return hex(uts::sha1(bytes));
}

void append_big_endian(std::vector<std::uint8_t>& out, std::uint32_t word) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(word >> shift));
}

// A node's state as the 20 digest bytes the reference keeps.
uts::sha1_digest digest_of(const uts::node& n) {
    std::vector<std::uint8_t> bytes;
    for (const std::uint32_t word : n.state) append_big_endian(bytes, word);
    uts::sha1_digest d{};
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = bytes[i];
    return d;
}

// The message the reference's rng_spawn hashes: the parent's 20 digest bytes, then the index big-endian.
std::vector<std::uint8_t> spawn_message(const uts::node& parent, std::uint32_t index) {
    const uts::sha1_digest d = digest_of(parent);
    std::vector<std::uint8_t> m(d.begin(), d.end());
    append_big_endian(m, index);
    return m;
}

// What the reference's error message must name, and that it threw the right type.
void check_rejected(std::string_view flags, std::string_view must_mention) {
    CAPTURE(flags);
    std::string message;
    try {
        (void)uts::parse_params(flags);
    } catch (const uts::param_error& e) {
        message = e.what();
    }
    REQUIRE_MESSAGE(!message.empty(), "no param_error");
    CAPTURE(message);
    CHECK(message.find(must_mention) != std::string::npos);
}

// Small trees of every type and shape, up to a quarter of a million nodes. The counts
// are this generator's (it reproduces the published T1, T3, T1L and T3L); they
// guard against a regression in the builds that cannot afford the big trees.
struct small_tree {
    std::string_view flags;
    uts::tree_counts counts;
};
const small_tree k_small_trees[] = {
    {"-t 1 -a 3 -d 6 -b 4 -r 19", {16'000, 12'839, 6}},                        // geometric, fixed
    {"-t 1 -a 3 -d 8 -b 4 -r 19", {257'042, 205'878, 8}},                      // the same, two levels more
    {"-t 1 -a 0 -d 8 -b 4 -r 7", {7'377, 4'217, 8}},                           // geometric, linear
    {"-t 1 -a 1 -d 6 -b 4 -r 1", {1'055, 549, 16}},                            // geometric, exp. decrease
    {"-t 1 -a 2 -d 6 -b 4 -r 4", {1'914, 1'139, 31}},                          // geometric, cyclic
    {"-t 0 -b 20 -q 0.124875 -m 8 -r 42", {6'213, 5'438, 67}},                 // binomial, T3's first 20 subtrees
    {"-t 0 -b 100 -q 0.124875 -m 8 -r 3", {58'301, 51'025, 208}},              // binomial, a deeper one
    {"-t 2 -a 0 -d 8 -b 4 -q 0.234375 -m 4 -r 1", {3'443, 2'575, 42}},         // hybrid
};

}  // namespace

TEST_CASE("SHA-1 gives the FIPS 180 example digests") {
    CHECK(sha1_hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    CHECK(sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
    // 56 bytes: the padding needs a second block.
    CHECK(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    // 112 bytes: a full block, then a second with the padding.
    CHECK(sha1_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                   "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu") == "a49b2446a02c645bf419f995b67091253a04a259");
    CHECK(sha1_hex("The quick brown fox jumps over the lazy dog") == "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
    CHECK(sha1_hex(std::string(1'000'000, 'a')) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST_CASE("a child's state is SHA-1 of the parent's digest and its index, however often -g repeats it") {
    for (const int granularity : {1, 3}) {
        CAPTURE(granularity);
        uts::tree_params p = uts::parse_params("-t 1 -a 3 -d 10 -b 4 -r 19");
        p.compute_granularity = granularity;
        const uts::tree t(p);
        const uts::node root = t.root();
        CHECK(root.depth == 0);
        for (const int index : {0, 1, 3, 99, 0x01020304}) {
            CAPTURE(index);
            const uts::node c = t.child(root, index);
            CHECK(c.depth == 1);
            const uts::sha1_digest want = uts::sha1(spawn_message(root, static_cast<std::uint32_t>(index)));
            CHECK(hex(digest_of(c)) == hex(want));
        }
    }
}

TEST_CASE("the number of children follows the reference's rules at every depth and shape") {
    // Restated here from the UTS 2.1 reference (uts.c), independently of
    // uts_tree.cpp: u = (last digest word & 0x7fffffff) / 2^31; geometric:
    // floor(log(1 - u) / log(1 - p)) with p = 1 / (1 + b_i), capped at 100;
    // binomial: m children when u < q, else none; a binomial root: floor(b_0).
    auto u_of = [](const uts::node& n) { return static_cast<double>(n.state[4] & 0x7fffffffu) / 2147483648.0; };
    auto b_at = [](uts::geo_shape shape, double b0, int gen_mx, int depth) {
        const double i = depth, d = gen_mx;
        if (depth == 0) return b0;
        switch (shape) {
            case uts::geo_shape::linear: return b0 * (1.0 - i / d);
            case uts::geo_shape::expdec: return b0 * std::pow(i, -std::log(b0) / std::log(d));
            case uts::geo_shape::cyclic:
                return depth > 5 * gen_mx ? 0.0 : std::pow(b0, std::sin(2.0 * 3.141592653589793 * i / d));
            case uts::geo_shape::fixed: return depth < gen_mx ? b0 : 0.0;
        }
        return 0.0;
    };
    // Depths on both sides of the generator's table of per-depth constants.
    const int depths[] = {0, 1, 2, 7, 500, 1023, 1024, 1025, 1999, 2000, 2001, 4000};
    for (const uts::geo_shape shape :
         {uts::geo_shape::linear, uts::geo_shape::expdec, uts::geo_shape::cyclic, uts::geo_shape::fixed}) {
        uts::tree_params p;
        p.type = uts::tree_type::geometric;
        p.shape = shape;
        p.root_branching = 6.0;
        p.gen_mx = 2000;
        const uts::tree t(p);
        const uts::node root = t.root();
        for (int i = 0; i < 40; ++i) {
            for (const int depth : depths) {
                uts::node n = t.child(root, i);
                n.depth = depth;
                CAPTURE(static_cast<int>(shape));
                CAPTURE(depth);
                const double prob = 1.0 / (1.0 + b_at(shape, 6.0, 2000, depth));
                const double x = std::floor(std::log(1.0 - u_of(n)) / std::log(1.0 - prob));
                const int want = !(x >= 0.0) ? 0 : x >= 100.0 ? 100 : static_cast<int>(x);
                CHECK(t.num_children(n) == want);
            }
        }
    }
    uts::tree_params bin = uts::parse_params("-t 0 -b 2000.7 -q 0.3 -m 5 -r 1");
    const uts::tree b(bin);
    CHECK(b.num_children(b.root()) == 2000);
    int nonleaves = 0;
    for (int i = 0; i < 200; ++i) {
        const uts::node c = b.child(b.root(), i);
        CHECK(b.num_children(c) == (u_of(c) < 0.3 ? 5 : 0));
        nonleaves += b.num_children(c) != 0 ? 1 : 0;
    }
    CHECK(nonleaves > 20);  // about 60 of 200: both outcomes were exercised
    CHECK(nonleaves < 120);
}

TEST_CASE("UTS flags parse, print back canonically, and name the sample trees") {
    const uts::tree_params t1 = uts::parse_params("-t 1 -a 3 -d 10 -b 4 -r 19");
    CHECK(t1.type == uts::tree_type::geometric);
    CHECK(t1.shape == uts::geo_shape::fixed);
    CHECK(t1.gen_mx == 10);
    CHECK(t1.root_branching == 4.0);
    CHECK(t1.root_seed == 19);
    CHECK(uts::format_params(t1) == "-t 1 -a 3 -d 10 -b 4 -r 19");

    const uts::tree_params t3 = uts::parse_params("  -t 0\t-b 2000 -q 0.124875 -m 8 -r 42 ");
    CHECK(t3.type == uts::tree_type::binomial);
    CHECK(t3.nonleaf_probability == 0.124875);
    CHECK(t3.nonleaf_children == 8);
    CHECK(uts::format_params(t3) == "-t 0 -b 2000 -q 0.124875 -m 8 -r 42");

    // Flags that do not shape a tree of this type do not change its name.
    const uts::named_tree* found = uts::find_named_tree(uts::parse_params("-r 19 -b 4 -d 10 -a 3 -t 1 -q 0.5"));
    REQUIRE(found != nullptr);
    CHECK(found->name == "T1");
    REQUIRE(uts::find_named_tree("T3") != nullptr);
    CHECK(uts::find_named_tree("T3")->published == uts::tree_counts{4'112'897, 3'599'034, 1'572});
    CHECK(uts::find_named_tree("T9") == nullptr);
    CHECK(uts::find_named_tree(uts::parse_params("-t 1 -a 3 -d 10 -b 4 -r 20")) == nullptr);

    // Defaults are the reference's: geometric, linear, b_0 4, d 6, q 15/64, m 4, f 0.5.
    const uts::tree_params d = uts::parse_params("-r 1");
    CHECK(uts::format_params(d) == "-t 1 -a 0 -d 6 -b 4 -r 1");
    CHECK(d.nonleaf_probability == 15.0 / 64.0);
    CHECK(d.shift_depth == 0.5);
}

TEST_CASE("bad UTS flags throw param_error naming the flag and the value") {
    check_rejected("", "no UTS flags");
    check_rejected("-t 1 -z 3", "'-z'");
    check_rejected("-t 1 -a 3 -d", "-d needs a value");
    check_rejected("-t 5", "'5'");
    check_rejected("-t 0 -q 1.5", "-q");
    check_rejected("-t 0 -q 1.5", "'1.5'");
    check_rejected("-t 0 -b abc", "'abc'");
    check_rejected("-t 0 -m 101", "-m");
    check_rejected("-t 1 -d 0", "-d");
    check_rejected("-t 1 -a 4", "-a");
    check_rejected("-t 1 -t 0", "-t given twice");
    check_rejected("t 1", "'t'");
    check_rejected("-t 1 -r 99999999999", "-r");
    check_rejected("-t 1 -b nan", "-b");
}

TEST_CASE("small trees of every type: forkline at 1, 2 and 4 workers counts what serial counts") {
    for (const small_tree& s : k_small_trees) {
        CAPTURE(s.flags);
        const uts::tree t(uts::parse_params(s.flags));
        const uts::tree_counts serial = uts::count_serial(t);
        CHECK(serial == s.counts);
        for (const unsigned w : {1u, 2u, 4u}) {
            CAPTURE(w);
            forkline::runtime rt(config_for(w));
            // Twice per runtime: the second walk starts with warm deques and pools.
            for (int round = 0; round < 2; ++round) {
                CHECK(rt.run([&] { return forkline_bench::count_uts_forkline(t); }) == serial);
            }
        }
    }
}

TEST_CASE("the published sample trees T1 and T3 come out at their published sizes") {
    if (FORKLINE_STRESS_SCALE < 100) {
        MESSAGE("skipped: T1 and T3 (4 million nodes each) run in the release build only");
        return;
    }
    for (const std::string_view name : {"T1", "T3"}) {
        CAPTURE(name);
        const uts::named_tree* named = uts::find_named_tree(name);
        REQUIRE(named != nullptr);
        const uts::tree t(uts::parse_params(named->params));
        CHECK(uts::count_serial(t) == named->published);
        for (const unsigned w : {2u, 4u}) {
            CAPTURE(w);
            forkline::runtime rt(config_for(w));
            CHECK(rt.run([&] { return forkline_bench::count_uts_forkline(t); }) == named->published);
        }
    }
}

// examples/logstat_core.hpp: what logstat and its oneTBB peer
// (bench/logstat/logstat_tbb.cpp) share, so that both count the same way and
// differ only in how chunks reach the workers: the options, the access-log
// line parser, the per-worker count table, the merge and the output.
//
// The map-reduce with combiners: each worker parses whole-line chunks and adds
// into its own count_table (no lock, no atomic per line); at the end the
// tables are merged into the largest, ranked and printed.
#pragma once

#include <unistd.h>  // write, ssize_t

#include <algorithm>    // sort, partial_sort
#include <array>        // array (byte classes)
#include <cerrno>       // errno, EINTR
#include <charconv>     // to_chars, from_chars
#include <cstddef>      // size_t
#include <cstdint>      // uint64_t, uint32_t
#include <cstdio>       // fputs, fprintf (finish, start)
#include <cstring>      // memchr, memcmp, memcpy, strerror
#include <memory>       // unique_ptr, make_unique_for_overwrite
#include <span>         // span
#include <stdexcept>    // invalid_argument
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

#include "hyperloglog.hpp"  // hyperloglog (--distinct)

namespace logstat {

// ---------------------------------------------------------------- options

enum class key_kind { ip, status, path };

struct options {
    key_kind by = key_kind::ip;
    std::size_t top = 0;       ///< 0: print every key
    unsigned workers = 0;      ///< 0: the library's default
    std::size_t chunk_bytes = std::size_t{1} << 20;
    std::string input = "-";   ///< "-": standard input
    bool distinct = false;     ///< print the number of distinct keys instead of the counts
    bool stream = false;       ///< --stream: a regular file too through io::reader (logstat)
    bool help = false;
};

/// A command line that cannot be honoured; what() says why.
class usage_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// The --help text for `program`.
inline std::string usage(std::string_view program) {
    std::string u;
    u += "usage: ";
    u += program;
    u += " [--by ip|status|path] [--top K] [--distinct] [-p N] [--chunk-kib K] [--stream] [FILE|-]\n"
         "\n"
         "Counts the requests of a web-server access log (Common or Combined Log\n"
         "Format) per client address, status or request target, and prints\n"
         "COUNT<TAB>KEY lines, the largest count first, equal counts by key\n"
         "(bytewise).\n"
         "\n"
         "  --by ip        the client address: the line's first field (default)\n"
         "  --by status    the 3-digit status\n"
         "  --by path      the request target as logged, query string included\n"
         "  --top K        print only the first K lines\n"
         "  --distinct     print the number of distinct keys instead: exact, then\n"
         "                 a HyperLogLog estimate (16384 registers) and its\n"
         "                 expected error (\"distinct\", \"hll_estimate\",\n"
         "                 \"hll_expected_error\" lines, TAB, the value)\n"
         "  -p N           count on N worker threads (default: one per core)\n"
         "  --chunk-kib K  read the input in chunks of K KiB (default 1024)\n"
         "  --stream       read a regular file as a pipe is read, through one\n"
         "                 reader thread, instead of each worker reading its own\n"
         "                 pieces (positional reads; logstat only)\n"
         "  -h, --help     print this help\n"
         "\n"
         "No FILE, or \"-\", reads standard input. A line is counted when it is\n"
         "  HOST IDENT USER [DATE] \"METHOD TARGET PROTOCOL\" STATUS BYTES\n"
         "or that followed by ' \"REFERER\" \"AGENT\"': printable ASCII, fields\n"
         "apart by one space, STATUS 3 digits, BYTES digits or \"-\", 32 KiB at\n"
         "most. Other lines (empty, truncated, binary) are malformed: not\n"
         "counted; their number and the first one's line number go to standard\n"
         "error.\n"
         "\n"
         "Exit status: 0 on success (malformed lines included), 1 when the input\n"
         "cannot be read or the output written, 2 on a usage error.\n";
    return u;
}

namespace detail {

inline std::size_t parse_count(std::string_view flag, std::string_view text, std::size_t max) {
    std::size_t v = 0;
    const char* const end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc{} || ptr != end || v == 0 || v > max) {
        throw usage_error(std::string(flag) + " takes a whole number from 1 to " + std::to_string(max) +
                          ", not '" + std::string(text) + "'");
    }
    return v;
}

}  // namespace detail

/// Parses argv. Throws usage_error.
inline options parse_args(int argc, char** argv) {
    options o;
    bool have_input = false;
    bool only_operands = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (only_operands || arg == "-" || arg.empty() || arg[0] != '-') {
            if (have_input) throw usage_error("more than one input file ('" + o.input + "', '" + std::string(arg) + "')");
            o.input = std::string(arg);
            have_input = true;
            continue;
        }
        if (arg == "--") {
            only_operands = true;
            continue;
        }
        if (arg == "-h" || arg == "--help") {
            o.help = true;
            continue;
        }
        if (arg == "--distinct") {
            o.distinct = true;
            continue;
        }
        if (arg == "--stream") {
            o.stream = true;
            continue;
        }
        // "--flag value" and "--flag=value" alike.
        std::string_view flag = arg;
        std::string_view value;
        bool inline_value = false;
        if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            flag = arg.substr(0, eq);
            value = arg.substr(eq + 1);
            inline_value = true;
        }
        if (flag != "--by" && flag != "--top" && flag != "-p" && flag != "--chunk-kib") {
            throw usage_error("unknown option '" + std::string(arg) + "'");
        }
        if (!inline_value) {
            if (i + 1 >= argc) throw usage_error(std::string(flag) + " needs a value");
            value = argv[++i];
        }
        if (flag == "--by") {
            if (value == "ip") {
                o.by = key_kind::ip;
            } else if (value == "status") {
                o.by = key_kind::status;
            } else if (value == "path") {
                o.by = key_kind::path;
            } else {
                throw usage_error("--by takes ip, status or path, not '" + std::string(value) + "'");
            }
        } else if (flag == "--top") {
            o.top = detail::parse_count(flag, value, std::size_t{1} << 40);
        } else if (flag == "-p") {
            o.workers = static_cast<unsigned>(detail::parse_count(flag, value, 4096));
        } else {
            o.chunk_bytes = detail::parse_count(flag, value, std::size_t{1} << 20) << 10;
        }
    }
    return o;
}

// ---------------------------------------------------------------- parsing

/// Longer lines are malformed: far beyond any request line a server accepts
/// (8 KiB by default) plus referer and agent, and a bound keeps junk without
/// newlines from becoming a key.
inline constexpr std::size_t k_max_line_bytes = std::size_t{32} << 10;

namespace detail {

enum : unsigned char {
    k_printable = 1,  ///< 0x20..0x7e
    k_graphic = 2,    ///< 0x21..0x7e: a bare field (host, ident, user)
    k_token = 4,      ///< graphic but not '"' or '\\': a request word
    k_quoted = 8,     ///< printable but not '"' or '\\': referer, agent
    k_date = 16,      ///< printable but not ']'
    k_digit = 32,
};

constexpr std::array<unsigned char, 256> make_byte_classes() {
    std::array<unsigned char, 256> t{};
    for (unsigned c = 0x20; c <= 0x7e; ++c) {
        unsigned char k = k_printable;
        if (c != ' ') k |= k_graphic;
        if (c != ' ' && c != '"' && c != '\\') k |= k_token;
        if (c != '"' && c != '\\') k |= k_quoted;
        if (c != ']') k |= k_date;
        if (c >= '0' && c <= '9') k |= k_digit;
        t[c] = k;
    }
    return t;
}

inline constexpr std::array<unsigned char, 256> k_byte_classes = make_byte_classes();

inline bool is(char c, unsigned char cls) noexcept {
    return (k_byte_classes[static_cast<unsigned char>(c)] & cls) != 0;
}

/// True when each of the 8 bytes in x is in Lo..0x7e and is neither Ex1 nor
/// Ex2. Each test sets a byte's high bit where it fails; borrows and carries
/// can only add failures above a real one, so "none failed" is exact, which
/// is all the caller needs (on a failure it looks byte by byte).
template <unsigned char Lo, unsigned char Ex1, unsigned char Ex2>
inline bool word_in_range(std::uint64_t x) noexcept {
    constexpr std::uint64_t k_ones = 0x0101010101010101ULL;
    constexpr std::uint64_t k_highs = 0x8080808080808080ULL;
    const std::uint64_t below = (x - k_ones * Lo) & ~x;  // a byte < Lo
    const std::uint64_t above = (x + k_ones) | x;        // a byte > 0x7e
    const std::uint64_t e1 = x ^ (k_ones * Ex1);
    const std::uint64_t e2 = x ^ (k_ones * Ex2);
    const std::uint64_t is_e1 = (e1 - k_ones) & ~e1;     // a byte == Ex1
    const std::uint64_t is_e2 = (e2 - k_ones) & ~e2;
    return ((below | above | is_e1 | is_e2) & k_highs) == 0;
}

/// Skips the bytes of class Cls = {Lo..0x7e} minus {Ex1, Ex2} and, when
/// Escaped != 0, "\X" pairs with X of class Escaped (servers write a '"'
/// inside a quoted field as \" and a backslash as \\). Returns the first
/// byte that ends the run. Eight bytes at a time while they all belong: the
/// agent and referer strings are most of a line's bytes.
template <unsigned char Cls, unsigned char Lo, unsigned char Ex1, unsigned char Ex2, unsigned char Escaped = 0>
inline const char* skip_run(const char* p, const char* end) noexcept {
    for (;;) {
        while (end - p >= 8) {
            std::uint64_t x;
            std::memcpy(&x, p, 8);
            if (!word_in_range<Lo, Ex1, Ex2>(x)) break;
            p += 8;
        }
        const char* const stop = end - p >= 8 ? p + 8 : end;
        while (p != stop && is(*p, Cls)) ++p;
        if (p == end) return p;
        if (p != stop) {
            if constexpr (Escaped != 0) {
                if (*p == '\\' && end - p >= 2 && is(p[1], Escaped)) {
                    p += 2;
                    continue;
                }
            }
            return p;
        }
    }
}

// The runs of parse_line(); each class above spelt as a range and exclusions.
inline const char* skip_graphic(const char* p, const char* end) noexcept {
    return skip_run<k_graphic, 0x21, ' ', ' '>(p, end);
}
inline const char* skip_date(const char* p, const char* end) noexcept {
    return skip_run<k_date, 0x20, ']', ']'>(p, end);
}
inline const char* skip_token(const char* p, const char* end) noexcept {
    return skip_run<k_token, 0x21, '"', '\\', k_graphic>(p, end);
}
inline const char* skip_quoted(const char* p, const char* end) noexcept {
    return skip_run<k_quoted, 0x20, '"', '\\', k_printable>(p, end);
}
inline const char* skip_digits(const char* p, const char* end) noexcept {
    while (p != end && is(*p, k_digit)) ++p;
    return p;
}

inline bool at(const char* p, const char* end, char c) noexcept { return p != end && *p == c; }

}  // namespace detail

/// The key of one line (without its '\n') for `by`, or an empty view when
/// the line is malformed. A well-formed line never has an empty key. See
/// usage() for the accepted shape: it is the Common Log Format, optionally
/// with the Combined format's referer and agent, and a final '\r' (CRLF
/// files) is ignored. The path key is the request target as logged: query
/// strings are kept, escapes are not undone.
inline std::string_view parse_line(const char* line, const char* end, key_kind by) noexcept {
    using namespace detail;
    if (static_cast<std::size_t>(end - line) > k_max_line_bytes) return {};
    if (end != line && end[-1] == '\r') --end;
    const char* p = line;
    const char* field = p;

    // HOST IDENT USER, each one or more graphic bytes, then one space.
    const char* const host = p;
    const char* host_end = nullptr;
    for (int i = 0; i < 3; ++i) {
        field = p;
        p = skip_graphic(p, end);
        if (p == field || !at(p, end, ' ')) return {};
        if (i == 0) host_end = p;
        ++p;
    }
    // [DATE]
    if (!at(p, end, '[')) return {};
    field = ++p;
    p = skip_date(p, end);
    if (p == field || !at(p, end, ']')) return {};
    ++p;
    // "METHOD TARGET PROTOCOL"
    if (end - p < 2 || p[0] != ' ' || p[1] != '"') return {};
    p += 2;
    field = p;
    p = skip_token(p, end);
    if (p == field || !at(p, end, ' ')) return {};
    const char* const target = ++p;
    p = skip_token(p, end);
    const char* const target_end = p;
    if (p == target || !at(p, end, ' ')) return {};
    field = ++p;
    p = skip_token(p, end);
    if (p == field || !at(p, end, '"')) return {};
    ++p;
    // STATUS: exactly three digits.
    if (end - p < 5 || p[0] != ' ' || !is(p[1], k_digit) || !is(p[2], k_digit) || !is(p[3], k_digit) ||
        p[4] != ' ') {
        return {};
    }
    const char* const status = p + 1;
    p += 5;
    // BYTES: digits, or "-" for none.
    if (at(p, end, '-')) {
        ++p;
    } else {
        field = p;
        p = skip_digits(p, end);
        if (p == field) return {};
    }
    // End of a Common line, or the Combined format's "REFERER" "AGENT".
    if (p != end) {
        for (int i = 0; i < 2; ++i) {
            if (end - p < 2 || p[0] != ' ' || p[1] != '"') return {};
            p = skip_quoted(p + 2, end);
            if (!at(p, end, '"')) return {};
            ++p;
        }
        if (p != end) return {};
    }
    switch (by) {
        case key_kind::ip: return {host, static_cast<std::size_t>(host_end - host)};
        case key_kind::status: return {status, 3};
        case key_kind::path: return {target, static_cast<std::size_t>(target_end - target)};
    }
    return {};
}

// ---------------------------------------------------------------- the table

/// A 64-bit hash of a short string: 8 bytes at a time, each word folded in
/// with a multiply and a shift, then a final avalanche so that the low bits
/// (the slot index) depend on every byte. Keys here are short (addresses,
/// paths), so one multiply per word beats a general-purpose hash's setup.
inline std::uint64_t hash_key(std::string_view key) noexcept {
    constexpr std::uint64_t k_mul = 0xbf58476d1ce4e5b9ULL;
    std::uint64_t h = 0x9e3779b97f4a7c15ULL ^ (key.size() * 0xff51afd7ed558ccdULL);
    const char* p = key.data();
    std::size_t n = key.size();
    for (; n >= 8; p += 8, n -= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        h = (h ^ w) * k_mul;
        h ^= h >> 31;
    }
    if (n != 0) {
        std::uint64_t w = 0;
        std::memcpy(&w, p, n);
        h = (h ^ w) * k_mul;
        h ^= h >> 31;
    }
    h ^= h >> 29;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 32;
    return h;
}

/// Bytes of keys, copied in once and never moved, so that slots can point at
/// them while the slot array grows.
class key_arena {
public:
    const char* copy(std::string_view s) {
        if (s.size() > m_left) {
            if (s.size() > k_block_bytes / 4) {
                // A large key gets a block of its own; the current one stays open.
                m_blocks.push_back(std::make_unique_for_overwrite<char[]>(s.size() + 1));
                std::memcpy(m_blocks.back().get(), s.data(), s.size());
                return m_blocks.back().get();
            }
            m_blocks.push_back(std::make_unique_for_overwrite<char[]>(k_block_bytes));
            m_next = m_blocks.back().get();
            m_left = k_block_bytes;
        }
        char* const at = m_next;
        std::memcpy(at, s.data(), s.size());
        m_next += s.size();
        m_left -= s.size();
        return at;
    }

private:
    static constexpr std::size_t k_block_bytes = std::size_t{64} << 10;
    std::vector<std::unique_ptr<char[]>> m_blocks;
    char* m_next = nullptr;
    std::size_t m_left = 0;
};

/// Counts per string key: open addressing with linear probing, at most half
/// full. Keys of up to 16 bytes (every IPv4 and most IPv6 addresses, every
/// status, short paths) live in the slot itself, so that a lookup touches one
/// cache line; longer ones are copied into the arena. One owner at a time (a
/// worker's table is touched only by that worker).
class count_table {
public:
    count_table() : m_slots(k_initial_slots), m_mask(k_initial_slots - 1) {}
    count_table(count_table&&) noexcept = default;
    count_table& operator=(count_table&&) noexcept = default;

    /// Adds n (> 0; 0 does nothing) to key's count.
    void add(std::string_view key, std::uint64_t n = 1) { add_hashed(key, hash_key(key), n); }

    /// Starts loading the slot where a key of hash h is looked up first, so
    /// that a batch of lookups waits for memory once rather than once each.
    void prefetch(std::uint64_t h) const noexcept { __builtin_prefetch(&m_slots[h & m_mask]); }

    /// add() with h = hash_key(key) already computed.
    void add_hashed(std::string_view key, std::uint64_t h, std::uint64_t n = 1) {
        if (n == 0) return;
        const auto tag = static_cast<std::uint32_t>(h >> 32);
        const auto length = static_cast<std::uint32_t>(key.size());
        if (key.size() <= k_inline_bytes) {
            std::uint64_t words[2] = {0, 0};
            if (!key.empty()) std::memcpy(words, key.data(), key.size());
            for (std::size_t i = h & m_mask;; i = (i + 1) & m_mask) {
                slot& s = m_slots[i];
                if (s.count == 0) {
                    insert(key, h, n);
                    return;
                }
                if (s.tag == tag && s.length == length && s.words[0] == words[0] && s.words[1] == words[1]) {
                    s.count += n;
                    return;
                }
            }
        }
        for (std::size_t i = h & m_mask;; i = (i + 1) & m_mask) {
            slot& s = m_slots[i];
            if (s.count == 0) {
                insert(key, h, n);
                return;
            }
            if (s.tag == tag && s.length == length && std::memcmp(s.long_key(), key.data(), key.size()) == 0) {
                s.count += n;
                return;
            }
        }
    }

    std::size_t size() const noexcept { return m_used; }

    /// f(std::string_view key, std::uint64_t count) for every key, in no
    /// order. The views stay valid until the table is changed or destroyed.
    template <class F>
    void for_each(F&& f) const {
        for (const slot& s : m_slots) {
            if (s.count != 0) f(s.key(), s.count);
        }
    }

    /// The combine step: adds every count of `other` into this table.
    void merge_from(const count_table& other) {
        other.for_each([this](std::string_view k, std::uint64_t c) { add(k, c); });
    }

private:
    static constexpr std::size_t k_initial_slots = 1024;
    static constexpr std::size_t k_inline_bytes = 16;

    // 32 bytes: two slots per cache line, none across two.
    struct alignas(32) slot {
        /// The key's bytes, zero-padded, when length <= 16; else a pointer
        /// to them in the arena (in words[0]).
        std::uint64_t words[2] = {0, 0};
        std::uint32_t length = 0;
        std::uint32_t tag = 0;      ///< the hash's high half: most mismatches end here
        std::uint64_t count = 0;    ///< 0: the slot is empty

        const char* long_key() const noexcept {
            const char* p;
            std::memcpy(&p, &words[0], sizeof p);
            return p;
        }
        std::string_view key() const noexcept {
            if (length <= k_inline_bytes) return {reinterpret_cast<const char*>(words), length};
            return {long_key(), length};
        }
    };

    void insert(std::string_view key, std::uint64_t h, std::uint64_t n) {
        if ((m_used + 1) * 2 > m_slots.size()) grow();
        std::size_t i = h & m_mask;
        while (m_slots[i].count != 0) i = (i + 1) & m_mask;
        slot& s = m_slots[i];
        if (key.size() <= k_inline_bytes) {
            if (!key.empty()) std::memcpy(s.words, key.data(), key.size());
        } else {
            const char* const p = m_arena.copy(key);
            std::memcpy(&s.words[0], &p, sizeof p);
        }
        s.length = static_cast<std::uint32_t>(key.size());
        s.tag = static_cast<std::uint32_t>(h >> 32);
        s.count = n;
        ++m_used;
    }

    void grow() {
        std::vector<slot> old(m_slots.size() * 2);
        old.swap(m_slots);
        m_mask = m_slots.size() - 1;
        for (const slot& s : old) {
            if (s.count == 0) continue;
            std::size_t i = hash_key(s.key()) & m_mask;
            while (m_slots[i].count != 0) i = (i + 1) & m_mask;
            m_slots[i] = s;
        }
    }

    std::vector<slot> m_slots;
    std::size_t m_mask;
    std::size_t m_used = 0;
    key_arena m_arena;
};

/// One worker's table, on cache lines of its own: the table's header (slot
/// pointer, size, arena cursor) is written as keys arrive and must not share
/// a line with a neighbour's.
struct alignas(64) worker_table {
    count_table table;
};

// ---------------------------------------------------------------- chunks

/// What one chunk held, for the malformed-line report.
struct chunk_tally {
    std::uint64_t lines = 0;
    std::uint64_t malformed = 0;
    std::uint64_t first_malformed = 0;  ///< 1-based line within the chunk; 0: none
};

/// Parses the whole lines in [data, data + size) and counts their keys into
/// `table`. A chunk holds whole lines; only the input's last chunk may end
/// without '\n', and that last piece is a line too.
inline chunk_tally count_chunk(const char* data, std::size_t size, key_kind by, count_table& table) {
    // Keys are added in batches: parse a batch, prefetch each key's slot,
    // then add. A table of many keys (clients) is larger than the caches,
    // and a rare key's slot is a miss; this way the misses overlap.
    constexpr std::size_t k_batch = 16;
    std::string_view keys[k_batch];
    std::uint64_t hashes[k_batch];
    std::size_t batched = 0;
    const auto flush = [&] {
        for (std::size_t i = 0; i < batched; ++i) table.add_hashed(keys[i], hashes[i]);
        batched = 0;
    };
    chunk_tally t;
    const char* p = data;
    const char* const end = data + size;
    while (p != end) {
        const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
        const char* const line_end = nl != nullptr ? static_cast<const char*>(nl) : end;
        ++t.lines;
        const std::string_view key = parse_line(p, line_end, by);
        if (key.empty()) {
            if (t.malformed++ == 0) t.first_malformed = t.lines;
        } else {
            keys[batched] = key;
            hashes[batched] = hash_key(key);
            table.prefetch(hashes[batched]);
            if (++batched == k_batch) flush();
        }
        p = nl != nullptr ? line_end + 1 : end;
    }
    flush();
    return t;
}

/// The chunks' tallies combined in input order, so that the first malformed
/// line's number is right although chunks were parsed in any order.
class malformed_report {
public:
    /// Call once per chunk, in sequence order.
    void add(const chunk_tally& t) noexcept {
        if (t.malformed != 0 && m_malformed == 0) m_first_line = m_lines + t.first_malformed;
        m_malformed += t.malformed;
        m_lines += t.lines;
    }
    std::uint64_t lines() const noexcept { return m_lines; }
    std::uint64_t malformed() const noexcept { return m_malformed; }
    std::uint64_t first_line() const noexcept { return m_first_line; }

    /// "PROGRAM: N malformed lines (first: line L)\n", or "" when there were none.
    std::string message(std::string_view program) const {
        if (m_malformed == 0) return {};
        return std::string(program) + ": " + std::to_string(m_malformed) +
               (m_malformed == 1 ? " malformed line" : " malformed lines") + " (first: line " +
               std::to_string(m_first_line) + ")\n";
    }

private:
    std::uint64_t m_lines = 0;
    std::uint64_t m_malformed = 0;
    std::uint64_t m_first_line = 0;
};

// ---------------------------------------------------------------- output

/// Merges the tables into the one with the most keys (the combiners' reduce)
/// and returns it; the others keep their contents.
inline count_table& merge_tables(std::span<count_table* const> tables) {
    count_table* largest = tables.front();
    for (count_table* t : tables) {
        if (t->size() > largest->size()) largest = t;
    }
    for (count_table* t : tables) {
        if (t != largest) largest->merge_from(*t);
    }
    return *largest;
}

struct key_count {
    std::uint64_t count;
    std::string_view key;  ///< points into the table
};

/// The table's keys by count descending, then key ascending (bytewise); only
/// the first `top` when top > 0.
inline std::vector<key_count> rank(const count_table& table, std::size_t top) {
    std::vector<key_count> v;
    v.reserve(table.size());
    table.for_each([&v](std::string_view k, std::uint64_t c) { v.push_back({c, k}); });
    // string_view compares as unsigned bytes (char_traits<char>::lt), like LC_ALL=C sort.
    const auto before = [](const key_count& a, const key_count& b) {
        return a.count != b.count ? a.count > b.count : a.key < b.key;
    };
    if (top > 0 && top < v.size()) {
        std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(top), v.end(), before);
        v.resize(top);
    } else {
        std::sort(v.begin(), v.end(), before);
    }
    return v;
}

/// Writes all of [data, data + size) to fd. Returns 0 or the errno.
inline int write_all(int fd, const char* data, std::size_t size) noexcept {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return 0;
}

/// Writes "COUNT\tKEY\n" lines to fd in large blocks. Returns 0 or the errno
/// of the failed write.
inline int write_ranked(int fd, std::span<const key_count> ranked) {
    constexpr std::size_t k_flush_bytes = std::size_t{64} << 10;
    std::string out;
    out.reserve(k_flush_bytes + 64);
    char digits[24];
    for (const key_count& kc : ranked) {
        const auto r = std::to_chars(digits, digits + sizeof digits, kc.count);
        out.append(digits, r.ptr);
        out += '\t';
        out += kc.key;
        out += '\n';
        if (out.size() >= k_flush_bytes) {
            if (const int err = write_all(fd, out.data(), out.size()); err != 0) return err;
            out.clear();
        }
    }
    return write_all(fd, out.data(), out.size());
}

/// "PROGRAM: FILE: CALL: strerror(err)\n", the form of every I/O error.
inline std::string io_message(std::string_view program, std::string_view file, std::string_view call, int err) {
    std::string m(program);
    m += ": ";
    m += file;
    m += ": ";
    m += call;
    m += ": ";
    m += std::strerror(err);
    m += '\n';
    return m;
}

/// --distinct's output: "distinct\tN\nhll_estimate\tE\nhll_expected_error\t0.81%\n".
inline std::string distinct_lines(std::uint64_t exact, const hyperloglog& h) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "distinct\t%llu\nhll_estimate\t%.0f\nhll_expected_error\t%.2f%%\n",
                  static_cast<unsigned long long>(exact), h.estimate(), 100.0 * hyperloglog::expected_error());
    return buf;
}

/// The end of a run, the same for every version of the program: merges the
/// per-worker tables, writes the ranking to stdout and the malformed-line
/// report to stderr. Returns the exit status (1 when stdout failed, said on
/// stderr).
inline int finish(std::vector<count_table*> tables, const options& o, const malformed_report& report,
                  std::string_view program) {
    count_table empty;
    if (tables.empty()) tables.push_back(&empty);
    const count_table& merged = merge_tables(tables);
    if (o.distinct) {
        hyperloglog h;
        merged.for_each([&h](std::string_view k, std::uint64_t) { h.add(k); });
        const std::string out = distinct_lines(merged.size(), h);
        if (const int err = write_all(1, out.data(), out.size()); err != 0) {
            std::fputs(io_message(program, "standard output", "write", err).c_str(), stderr);
            return 1;
        }
        std::fputs(report.message(program).c_str(), stderr);
        return 0;
    }
    const auto ranked = rank(merged, o.top);
    if (const int err = write_ranked(1, ranked); err != 0) {
        std::fputs(io_message(program, "standard output", "write", err).c_str(), stderr);
        return 1;
    }
    std::fputs(report.message(program).c_str(), stderr);
    return 0;
}

/// The start of main(), the same for every version: parses the command line
/// into *o. Returns the exit status to leave with at once (a usage error: 2,
/// --help: 0), or -1 to go on.
inline int start(int argc, char** argv, const char* program, options* o) {
    try {
        *o = parse_args(argc, argv);
    } catch (const usage_error& e) {
        std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", program, e.what(), program);
        return 2;
    }
    if (o->help) {
        const std::string u = usage(program);
        return write_all(1, u.data(), u.size()) == 0 ? 0 : 1;
    }
    return -1;
}

}  // namespace logstat

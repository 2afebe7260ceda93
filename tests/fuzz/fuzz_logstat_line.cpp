// tests/fuzz/fuzz_logstat_line.cpp: logstat's access-log line parser on
// arbitrary bytes, against a byte-at-a-time reading of the grammar its usage
// text gives (the parser itself skips eight bytes at a time). The input is a
// chunk of lines: each line's key must match for --by ip, status and path,
// and count_chunk's counts and tallies must match counting by the reference.
#include "logstat_core.hpp"  // parse_line, count_chunk, count_table, rank

#include "fuzz_support.hpp"  // FORKLINE_FUZZ_CHECK

#include <cstddef>      // size_t
#include <cstdint>      // uint8_t, uint64_t
#include <map>          // map
#include <string>       // string
#include <string_view>  // string_view

namespace {

using logstat::key_kind;

bool printable(char c) { return c >= 0x20 && c <= 0x7e; }
bool graphic(char c) { return c > 0x20 && c <= 0x7e; }
bool digit(char c) { return c >= '0' && c <= '9'; }

// The grammar, one byte at a time:
//   HOST IDENT USER [DATE] "METHOD TARGET PROTOCOL" STATUS BYTES
//   optionally followed by ' "REFERER" "AGENT"'; one '\r' at the end ignored.
class reference_line {
public:
    explicit reference_line(std::string_view line) : m_s(line) {}

    // The key, or "" for a malformed line.
    std::string_view key(key_kind by) {
        if (m_s.size() > logstat::k_max_line_bytes) return {};
        if (!m_s.empty() && m_s.back() == '\r') m_s.remove_suffix(1);
        std::string_view host, target, status;
        if (!bare(host) || !skip(' ')) return {};
        std::string_view ident, user;
        if (!bare(ident) || !skip(' ') || !bare(user) || !skip(' ')) return {};
        if (!skip('[')) return {};
        const std::size_t date = m_at;
        while (m_at < m_s.size() && printable(m_s[m_at]) && m_s[m_at] != ']') ++m_at;
        if (m_at == date || !skip(']') || !skip(' ') || !skip('"')) return {};
        std::string_view method, protocol;
        if (!word(method) || !skip(' ') || !word(target) || !skip(' ') || !word(protocol) || !skip('"'))
            return {};
        if (!skip(' ')) return {};
        if (m_s.size() - m_at < 3 || !digit(m_s[m_at]) || !digit(m_s[m_at + 1]) || !digit(m_s[m_at + 2]))
            return {};
        status = m_s.substr(m_at, 3);
        m_at += 3;
        if (!skip(' ')) return {};
        if (!skip('-')) {
            const std::size_t bytes = m_at;
            while (m_at < m_s.size() && digit(m_s[m_at])) ++m_at;
            if (m_at == bytes) return {};
        }
        if (m_at != m_s.size()) {
            for (int i = 0; i < 2; ++i)
                if (!skip(' ') || !skip('"') || !quoted() || !skip('"')) return {};
            if (m_at != m_s.size()) return {};
        }
        switch (by) {
            case key_kind::ip: return host;
            case key_kind::status: return status;
            case key_kind::path: return target;
        }
        return {};
    }

private:
    bool skip(char c) {
        if (m_at < m_s.size() && m_s[m_at] == c) {
            ++m_at;
            return true;
        }
        return false;
    }
    // One or more graphic bytes.
    bool bare(std::string_view& out) {
        const std::size_t from = m_at;
        while (m_at < m_s.size() && graphic(m_s[m_at])) ++m_at;
        out = m_s.substr(from, m_at - from);
        return m_at > from;
    }
    // One or more of: a graphic byte but '"' and '\', or '\' and a graphic byte.
    bool word(std::string_view& out) {
        const std::size_t from = m_at;
        for (;;) {
            if (m_at < m_s.size() && graphic(m_s[m_at]) && m_s[m_at] != '"' && m_s[m_at] != '\\') {
                ++m_at;
            } else if (m_at + 1 < m_s.size() && m_s[m_at] == '\\' && graphic(m_s[m_at + 1])) {
                m_at += 2;
            } else {
                break;
            }
        }
        out = m_s.substr(from, m_at - from);
        return m_at > from;
    }
    // Zero or more of: a printable byte but '"' and '\', or '\' and a printable byte.
    bool quoted() {
        for (;;) {
            if (m_at < m_s.size() && printable(m_s[m_at]) && m_s[m_at] != '"' && m_s[m_at] != '\\') {
                ++m_at;
            } else if (m_at + 1 < m_s.size() && m_s[m_at] == '\\' && printable(m_s[m_at + 1])) {
                m_at += 2;
            } else {
                return true;
            }
        }
    }

    std::string_view m_s;
    std::size_t m_at = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const char* const begin = reinterpret_cast<const char*>(data);
    const char* const end = begin + size;
    const key_kind kinds[] = {key_kind::ip, key_kind::status, key_kind::path};
    const key_kind by = kinds[size % 3];

    std::map<std::string, std::uint64_t> expected;
    logstat::chunk_tally tally;
    for (const char* p = begin; p != end;) {
        const char* nl = p;
        while (nl != end && *nl != '\n') ++nl;
        ++tally.lines;
        for (const key_kind k : kinds) {
            const std::string_view got = logstat::parse_line(p, nl, k);
            const std::string_view want = reference_line({p, static_cast<std::size_t>(nl - p)}).key(k);
            FORKLINE_FUZZ_CHECK(got == want);
            // A key is a view into the line itself.
            if (!got.empty()) FORKLINE_FUZZ_CHECK(got.data() >= p && got.data() + got.size() <= nl);
            if (k == by) {
                if (want.empty()) {
                    if (tally.malformed++ == 0) tally.first_malformed = tally.lines;
                } else {
                    ++expected[std::string(want)];
                }
            }
        }
        p = nl == end ? end : nl + 1;
    }

    logstat::count_table table;
    const logstat::chunk_tally t = logstat::count_chunk(begin, size, by, table);
    FORKLINE_FUZZ_CHECK(t.lines == tally.lines);
    FORKLINE_FUZZ_CHECK(t.malformed == tally.malformed);
    FORKLINE_FUZZ_CHECK(t.first_malformed == tally.first_malformed);
    FORKLINE_FUZZ_CHECK(table.size() == expected.size());
    table.for_each([&](std::string_view k, std::uint64_t c) {
        const auto it = expected.find(std::string(k));
        FORKLINE_FUZZ_CHECK(it != expected.end() && it->second == c);
    });
    const auto ranked = logstat::rank(table, 0);
    for (std::size_t i = 1; i < ranked.size(); ++i)
        FORKLINE_FUZZ_CHECK(ranked[i - 1].count > ranked[i].count ||
                            (ranked[i - 1].count == ranked[i].count && ranked[i - 1].key < ranked[i].key));
    return 0;
}

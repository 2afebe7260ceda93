// runtime/json_writer.cpp: the one JSON string escape, numbers, and the
// streaming writer of json_writer.hpp.
#include "json_writer.hpp"

#include <algorithm>  // clamp
#include <charconv>   // to_chars, chars_format
#include <cmath>      // isfinite
#include <ostream>    // ostream, streamsize

namespace forkline::detail::json {
namespace {

constexpr std::string_view k_replacement = "\xef\xbf\xbd";  // U+FFFD, as UTF-8

/// Printable ASCII that goes into a string literal as it is.
constexpr bool plain(unsigned char c) noexcept { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; }

/// Length of the well-formed UTF-8 sequence at s[i], or 0 if it is not one
/// (overlong forms, surrogates and code points past U+10FFFF included).
/// Table 3-7 of the Unicode standard: the bounds of the second byte rule out
/// the overlong and surrogate forms without decoding.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b0 = byte(i);
    std::size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;  // bounds of the second byte
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        len = 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        len = 3;
        if (b0 == 0xe0) lo = 0xa0;  // overlong
        if (b0 == 0xed) hi = 0x9f;  // surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        len = 4;
        if (b0 == 0xf0) lo = 0x90;  // overlong
        if (b0 == 0xf4) hi = 0x8f;  // past U+10FFFF
    } else {
        return 0;  // a continuation byte, 0xc0, 0xc1 or 0xf5 and up
    }
    if (i + len > s.size()) return 0;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < len; ++k) {
        if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
    }
    return len;
}

}  // namespace

void append_quoted(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t i = 0;
    while (i < s.size()) {
        // A run of bytes that need nothing, in one append: traces hold
        // millions of names, nearly all plain ASCII.
        std::size_t plain_end = i;
        while (plain_end < s.size() && plain(static_cast<unsigned char>(s[plain_end]))) ++plain_end;
        out.append(s.data() + i, plain_end - i);
        i = plain_end;
        if (i == s.size()) break;

        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            // One U+FFFD per byte that is not part of a well-formed
            // sequence: the next byte may start a good one.
            const std::size_t len = utf8_sequence(s, i);
            if (len == 0) {
                out.append(k_replacement);
                ++i;
            } else {
                out.append(s.substr(i, len));
                i += len;
            }
            continue;
        }
        switch (c) {
            case '"': out.append("\\\""); break;
            case '\\': out.append("\\\\"); break;
            case '\b': out.append("\\b"); break;
            case '\f': out.append("\\f"); break;
            case '\n': out.append("\\n"); break;
            case '\r': out.append("\\r"); break;
            case '\t': out.append("\\t"); break;
            default: {  // the other bytes below 0x20, and DEL
                const char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                out.append(esc, sizeof esc);
            }
        }
        ++i;
    }
    out.push_back('"');
}

std::string quoted(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    append_quoted(out, s);
    return out;
}

void append_double(std::string& out, double v, int digits) {
    if (!std::isfinite(v)) {
        out.append("null");
        return;
    }
    // 17 digits tell every double apart; the clamp also bounds the length
    // (%g goes to exponent form past `digits` integer digits).
    char buf[40];
    const std::to_chars_result r =
        std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, std::clamp(digits, 1, 17));
    out.append(buf, r.ptr);
}

// ---- writer ----

writer& writer::key(std::string_view k) {
    separate();
    std::string& t = target();
    append_quoted(t, k);
    t.append(": ");
    flush_target();
    m_after_key = true;
    return *this;
}

void writer::value(double v, int digits) {
    separate();
    append_double(target(), v, digits);
    flush_target();
}

void writer::value(std::string_view s) {
    separate();
    append_quoted(target(), s);
    flush_target();
}

void writer::integer(std::int64_t v) {
    char digits[24];
    const std::to_chars_result r = std::to_chars(digits, digits + sizeof digits, v);
    literal(std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
}

void writer::integer(std::uint64_t v) {
    char digits[24];
    const std::to_chars_result r = std::to_chars(digits, digits + sizeof digits, v);
    literal(std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
}

void writer::literal(std::string_view text) {
    separate();
    put(text);
}

void writer::put(std::string_view text) {
    if (m_text != nullptr) {
        m_text->append(text);
    } else {
        m_stream->write(text.data(), static_cast<std::streamsize>(text.size()));
    }
}

std::string& writer::target() {
    if (m_text != nullptr) return *m_text;
    m_scratch.clear();
    return m_scratch;
}

void writer::flush_target() {
    if (m_text == nullptr) put(m_scratch);
}

/// Before a member or element: the comma after the previous one and the
/// line break, unless it follows its key.
void writer::separate() {
    if (m_after_key) {
        m_after_key = false;
        return;
    }
    if (m_levels.empty()) return;
    level& l = m_levels.back();
    if (!l.empty) put(",");
    if (l.inline_) {
        if (!l.empty) put(" ");
    } else {
        newline(m_levels.size());
    }
    l.empty = false;
}

void writer::open(char c, bool inline_) {
    separate();
    put(std::string_view(&c, 1));
    // Inside an inline container everything stays on its line.
    const bool in_inline = !m_levels.empty() && m_levels.back().inline_;
    m_levels.push_back({inline_ || in_inline});
}

void writer::close(char c) {
    const level l = m_levels.back();
    m_levels.pop_back();
    if (!l.inline_ && !l.empty) newline(m_levels.size());
    put(std::string_view(&c, 1));
}

void writer::newline(std::size_t depth) {
    put("\n");
    for (std::size_t i = 0; i < depth; ++i) put("  ");
}

}  // namespace forkline::detail::json

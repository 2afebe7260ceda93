// tests/json_read.hpp: one strict JSON reader for the tests that read back
// what forkline writes (test_json: every escape and report; test_trace: the
// traces), written apart from the library's writer so the two cannot share a
// mistake. It rejects what a strict RFC 8259 parser rejects: raw control
// bytes or bytes that are not UTF-8 inside strings (checked by decoding each
// code point, not by the byte-bounds table the library uses), bad escapes,
// numbers outside the grammar, a missing or extra comma, trailing text; it
// throws std::runtime_error naming the offset.
#pragma once

#include <cstddef>      // size_t
#include <cstdint>      // uint32_t
#include <stdexcept>    // runtime_error
#include <string>       // string, to_string
#include <string_view>  // string_view
#include <utility>      // move
#include <vector>       // vector

namespace forkline_test {

/// Length of the well-formed UTF-8 sequence at s[i] (s[i] >= 0x80), or 0
/// for a continuation byte, an overlong form, a surrogate or past U+10FFFF.
inline std::size_t code_point_length(std::string_view s, std::size_t i) {
    const auto lead = static_cast<unsigned char>(s[i]);
    std::size_t more = 0;
    std::uint32_t cp = 0;
    if ((lead & 0xe0) == 0xc0) {
        more = 1;
        cp = lead & 0x1fu;
    } else if ((lead & 0xf0) == 0xe0) {
        more = 2;
        cp = lead & 0x0fu;
    } else if ((lead & 0xf8) == 0xf0) {
        more = 3;
        cp = lead & 0x07u;
    } else {
        return 0;  // a continuation byte, or 0xf8 and up
    }
    for (std::size_t k = 1; k <= more; ++k) {
        if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3fu);
    }
    static constexpr std::uint32_t smallest[] = {0, 0x80, 0x800, 0x10000};
    if (cp < smallest[more]) return 0;           // overlong
    if (cp >= 0xd800 && cp <= 0xdfff) return 0;  // surrogate
    if (cp > 0x10ffff) return 0;                 // past the last code point
    return more + 1;
}

/// A document read back: its kind and, by kind, the value.
struct json {
    enum class kind { null, boolean, number, string, array, object };
    kind k = kind::null;
    bool flag = false;
    std::string text;  ///< a number's literal text, or a string's decoded value
    std::vector<json> items;
    std::vector<std::string> keys;  ///< an object's members: keys[i] names values[i]
    std::vector<json> values;

    /// The member named `key`, or null when there is none.
    const json* get(std::string_view key) const {
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (keys[i] == key) return &values[i];
        }
        return nullptr;
    }
};

class json_reader {
public:
    explicit json_reader(std::string_view s) : m_s(s) {}

    /// The one document that is all of the input.
    json document() {
        json v = value();
        skip_space();
        if (m_at != m_s.size()) fail("text after the document");
        return v;
    }

    /// The decoded text of the one string literal that is all of the input.
    std::string string_document() {
        skip_space();
        if (peek() != '"') fail("not a string");
        std::string out = string_body();
        skip_space();
        if (m_at != m_s.size()) fail("text after the string");
        return out;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("JSON: " + what + " at offset " + std::to_string(m_at));
    }

    char peek() const { return m_at < m_s.size() ? m_s[m_at] : '\0'; }

    void skip_space() {
        while (m_at < m_s.size() && (m_s[m_at] == ' ' || m_s[m_at] == '\n' || m_s[m_at] == '\r' || m_s[m_at] == '\t')) {
            ++m_at;
        }
    }

    void expect(char c) {
        skip_space();
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++m_at;
    }

    json value() {
        skip_space();
        json v;
        const char c = peek();
        if (c == '{') {
            v.k = json::kind::object;
            ++m_at;
            skip_space();
            if (peek() == '}') {
                ++m_at;
                return v;
            }
            for (;;) {
                skip_space();
                if (peek() != '"') fail("expected a key");
                v.keys.push_back(string_body());
                expect(':');
                v.values.push_back(value());
                skip_space();
                if (peek() == ',') {
                    ++m_at;
                    continue;
                }
                expect('}');
                return v;
            }
        }
        if (c == '[') {
            v.k = json::kind::array;
            ++m_at;
            skip_space();
            if (peek() == ']') {
                ++m_at;
                return v;
            }
            for (;;) {
                v.items.push_back(value());
                skip_space();
                if (peek() == ',') {
                    ++m_at;
                    continue;
                }
                expect(']');
                return v;
            }
        }
        if (c == '"') {
            v.k = json::kind::string;
            v.text = string_body();
            return v;
        }
        for (const std::string_view word : {"true", "false", "null"}) {
            if (m_s.substr(m_at, word.size()) == word) {
                m_at += word.size();
                v.k = word == "null" ? json::kind::null : json::kind::boolean;
                v.flag = word == "true";
                return v;
            }
        }
        v.k = json::kind::number;
        const std::size_t from = m_at;
        number();
        v.text = std::string(m_s.substr(from, m_at - from));
        return v;
    }

    /// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    void number() {
        const auto digit = [&] { return m_at < m_s.size() && m_s[m_at] >= '0' && m_s[m_at] <= '9'; };
        const auto digits = [&] {
            if (!digit()) fail("expected a digit");
            while (digit()) ++m_at;
        };
        if (peek() == '-') ++m_at;
        if (peek() == '0') {
            ++m_at;
        } else {
            digits();
        }
        if (peek() == '.') {
            ++m_at;
            digits();
        }
        if (peek() == 'e' || peek() == 'E') {
            ++m_at;
            if (peek() == '+' || peek() == '-') ++m_at;
            digits();
        }
    }

    static void put_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xc0 | cp >> 6));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else {
            out.push_back(static_cast<char>(0xe0 | cp >> 12));
            out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        }
    }

    std::string string_body() {
        ++m_at;  // the opening quote
        std::string out;
        for (;;) {
            if (m_at >= m_s.size()) fail("unterminated string");
            const auto c = static_cast<unsigned char>(m_s[m_at]);
            if (c == '"') {
                ++m_at;
                return out;
            }
            if (c < 0x20) fail("a raw control byte in a string");
            if (c >= 0x80) {
                const std::size_t n = code_point_length(m_s, m_at);
                if (n == 0) fail("bytes that are not UTF-8");
                out.append(m_s.substr(m_at, n));
                m_at += n;
                continue;
            }
            ++m_at;
            if (c != '\\') {
                out.push_back(static_cast<char>(c));
                continue;
            }
            if (m_at >= m_s.size()) fail("unterminated escape");
            switch (m_s[m_at++]) {
                case '"': out.push_back('"'); break;
                case '\\': out.push_back('\\'); break;
                case '/': out.push_back('/'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u': {
                    std::uint32_t cp = 0;
                    for (int k = 0; k < 4; ++k) {
                        const char h = peek();
                        ++m_at;
                        if (h >= '0' && h <= '9') {
                            cp = cp * 16 + static_cast<std::uint32_t>(h - '0');
                        } else if (h >= 'a' && h <= 'f') {
                            cp = cp * 16 + static_cast<std::uint32_t>(h - 'a' + 10);
                        } else if (h >= 'A' && h <= 'F') {
                            cp = cp * 16 + static_cast<std::uint32_t>(h - 'A' + 10);
                        } else {
                            fail("a bad \\u escape");
                        }
                    }
                    if (cp >= 0xd800 && cp <= 0xdfff) fail("a surrogate escape (forkline writes none)");
                    put_utf8(out, cp);
                    break;
                }
                default: fail("a bad escape");
            }
        }
    }

    std::string_view m_s;
    std::size_t m_at = 0;
};

}  // namespace forkline_test

// runtime/json_writer.hpp: the one JSON string escape and the streaming
// writer behind every JSON file forkline writes (probe reports, FORKLINE_STATS,
// FORKLINE_TRACE). Internal: not installed. Hand-written, so that the library
// needs no JSON dependency.
#pragma once

#include <concepts>     // integral, same_as
#include <cstddef>      // size_t
#include <cstdint>      // int64_t, uint64_t
#include <iosfwd>       // ostream
#include <string>       // string
#include <string_view>  // string_view
#include <type_traits>  // is_signed_v
#include <vector>       // vector

namespace forkline::detail::json {

/// Significant digits of a double unless told otherwise: nine keep
/// nanoseconds of a 1-second median and small fitted coefficients alike.
inline constexpr int k_double_digits = 9;

/// Appends s as a JSON string literal, quotes included. Every JSON file
/// forkline writes goes through here, so that any name a program chose or
/// any bytes a command printed give a document every parser takes:
/// - well-formed UTF-8 is kept as it is;
/// - each byte that is not part of a well-formed sequence (a stray
///   continuation byte, a bad lead byte, an overlong form, a surrogate, a
///   code point past U+10FFFF, a sequence cut short) becomes U+FFFD;
/// - `"` and `\` are escaped; \b \f \n \r \t in their short forms; other
///   bytes below 0x20, and DEL, as \u00XX.
void append_quoted(std::string& out, std::string_view s);

/// append_quoted into a fresh string.
std::string quoted(std::string_view s);

/// Appends v with `digits` significant digits (%g style, shortest of fixed
/// and exponent form), or null when v is NaN or infinite: JSON has no
/// spelling for those. Never locale-dependent: a program's locale cannot
/// turn the decimal point into a comma.
void append_double(std::string& out, double v, int digits = k_double_digits);

/// Writes a JSON document as it goes: commas, line breaks, indentation and
/// ": " come from the nesting, so that its callers say only what goes where.
/// A container opened `inline_` keeps its members on one line, separated by
/// ", ", and so does everything inside it. Members of other containers go
/// one per line, indented by two spaces per level.
///
/// The caller keeps the calls balanced (each begin_* has its end_*, each
/// key() is followed by one value or container); nothing checks it.
class writer {
public:
    /// Writes to out as it goes (unformatted writes: the stream's width and
    /// locale play no part).
    explicit writer(std::ostream& out) noexcept : m_stream(&out) {}
    /// Appends to out.
    explicit writer(std::string& out) noexcept : m_text(&out) {}

    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;

    void begin_object(bool inline_ = false) { open('{', inline_); }
    void end_object() { close('}'); }
    void begin_array(bool inline_ = false) { open('[', inline_); }
    void end_array() { close(']'); }

    /// The next member's key; the value or container that follows is its value.
    writer& key(std::string_view k);

    /// See append_double: non-finite values come out null.
    void value(double v, int digits = k_double_digits);
    void value(std::string_view s);
    /// Without it a string literal would convert to bool.
    void value(const char* s) { value(std::string_view(s)); }
    void value(bool b) { literal(b ? "true" : "false"); }
    /// Any integer type but bool and char (a char is more likely a mistake
    /// than a number).
    template <std::integral T>
        requires(!std::same_as<T, bool> && !std::same_as<T, char>)
    void value(T v) {
        if constexpr (std::is_signed_v<T>) {
            integer(static_cast<std::int64_t>(v));
        } else {
            integer(static_cast<std::uint64_t>(v));
        }
    }
    void null() { literal("null"); }

    /// Ends the document with a newline.
    void finish() { put("\n"); }

private:
    struct level {
        bool inline_;
        bool empty = true;
    };

    void integer(std::int64_t v);
    void integer(std::uint64_t v);
    void literal(std::string_view text);
    void put(std::string_view text);
    /// The pieces of a value (a quoted string, a number) go to `m_text`
    /// directly, or through m_scratch to the stream.
    std::string& target();
    void flush_target();

    void separate();
    void open(char c, bool inline_);
    void close(char c);
    void newline(std::size_t depth);

    std::ostream* m_stream = nullptr;  // exactly one of m_stream and m_text is set
    std::string* m_text = nullptr;
    std::string m_scratch;
    std::vector<level> m_levels;
    bool m_after_key = false;
};

}  // namespace forkline::detail::json

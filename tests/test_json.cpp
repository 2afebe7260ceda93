// tests/test_json.cpp: the one JSON escape and writer (runtime/json_writer.hpp)
// that probe reports, FORKLINE_STATS and FORKLINE_TRACE go through: every
// class of byte escaped or replaced as documented, the writer's nesting,
// commas and inline containers, non-finite numbers as null, and the stats
// and probe reports valid JSON whatever bytes a program put in its names.
#include <doctest/doctest.h>

#include <cmath>        // nextafter
#include <cstdint>      // int64_t, uint64_t, uint32_t
#include <cstdlib>      // strtod
#include <limits>       // numeric_limits
#include <locale>       // locale, numpunct
#include <random>       // mt19937
#include <span>         // span
#include <sstream>      // ostringstream
#include <stdexcept>    // runtime_error
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

#include "forkline/probe.hpp"  // result, write_json
#include "forkline/stats.hpp"  // runtime_report, write_stats_json
#include "json_read.hpp"       // json_reader, code_point_length
#include "json_writer.hpp"     // append_quoted, quoted, append_double, writer

namespace {

namespace json = forkline::detail::json;
using namespace std::string_literals;

const std::string k_fffd = "\xef\xbf\xbd";  // U+FFFD as UTF-8

using forkline_test::code_point_length;
using strict_reader = forkline_test::json_reader;

/// Whether s is one valid JSON document; the reader's complaint otherwise.
std::string check_document(std::string_view s) {
    try {
        (void)strict_reader(s).document();
        return "";
    } catch (const std::runtime_error& e) {
        return e.what();
    }
}

bool is_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        const std::size_t n = code_point_length(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

/// What a reader should get back from quoted(s): s, with U+FFFD for each
/// byte that is not part of a well-formed sequence.
std::string repaired(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = static_cast<unsigned char>(s[i]) < 0x80 ? 1 : code_point_length(s, i);
        if (n == 0) {
            out += k_fffd;
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

/// The quoted form of s, with its quotes checked and taken off.
std::string body(std::string_view s) {
    const std::string q = json::quoted(s);
    REQUIRE(q.size() >= 2);
    REQUIRE(q.front() == '"');
    REQUIRE(q.back() == '"');
    return q.substr(1, q.size() - 2);
}

std::string repeat(const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
}

/// Groups digits in threes with ',' and writes ',' as the decimal point: a
/// locale that would break numbers written through operator<<.
struct comma_numpunct : std::numpunct<char> {
    char do_decimal_point() const override { return ','; }
    char do_thousands_sep() const override { return '.'; }
    std::string do_grouping() const override { return "\3"; }
};

}  // namespace

// ---- the escape ----

TEST_CASE("append_quoted: printable ASCII goes through as it is, but the quote and the backslash") {
    std::string all;
    for (int c = 0x20; c < 0x7f; ++c) {
        if (c != '"' && c != '\\') all.push_back(static_cast<char>(c));
    }
    CHECK(body(all) == all);
    CHECK(body("\"") == "\\\"");
    CHECK(body("\\") == "\\\\");
    CHECK(body("a\"b\\c") == "a\\\"b\\\\c");
    CHECK(body("/") == "/");  // JSON allows it unescaped
    CHECK(json::quoted("") == "\"\"");
}

TEST_CASE("append_quoted: each control byte and DEL escaped, five in their short forms") {
    static constexpr char hex[] = "0123456789abcdef";
    for (int c = 0; c < 0x20; ++c) {
        INFO("byte " << c);
        std::string expected;
        switch (c) {
            case '\b': expected = "\\b"; break;
            case '\f': expected = "\\f"; break;
            case '\n': expected = "\\n"; break;
            case '\r': expected = "\\r"; break;
            case '\t': expected = "\\t"; break;
            default: expected = "\\u00"s + hex[c >> 4] + hex[c & 15];
        }
        CHECK(body(std::string(1, static_cast<char>(c))) == expected);
        // Between other text too: the plain runs around it are kept.
        CHECK(body("x" + std::string(1, static_cast<char>(c)) + "y") == "x" + expected + "y");
    }
    CHECK(body("\x7f") == "\\u007f");
    CHECK(body(std::string_view("\0", 1)) == "\\u0000");  // a NUL does not end the string
}

TEST_CASE("append_quoted: well-formed UTF-8 of 2, 3 and 4 bytes is kept, the edges of each length included") {
    const std::vector<std::string> kept = {
        "\xc2\x80",          // U+0080, the smallest 2-byte
        "\xc3\xa9",          // é
        "\xdf\xbf",          // U+07FF, the largest 2-byte
        "\xe0\xa0\x80",      // U+0800, the smallest 3-byte
        "\xe2\x82\xac",      // €
        "\xed\x9f\xbf",      // U+D7FF, just below the surrogates
        "\xee\x80\x80",      // U+E000, just above them
        "\xef\xbf\xbd",      // U+FFFD itself
        "\xef\xbf\xbf",      // U+FFFF, the largest 3-byte
        "\xf0\x90\x80\x80",  // U+10000, the smallest 4-byte
        "\xf0\x9f\x98\x80",  // 😀
        "\xf4\x8f\xbf\xbf",  // U+10FFFF, the largest code point
    };
    for (const std::string& s : kept) {
        INFO("sequence of " << s.size() << " bytes");
        REQUIRE(is_utf8(s));
        CHECK(body(s) == s);
        CHECK(body("a" + s + "b" + s) == "a" + s + "b" + s);
    }
}

TEST_CASE("append_quoted: each byte that is not part of a well-formed sequence becomes U+FFFD") {
    struct bad {
        const char* what;
        std::string in;
        std::string out;
    };
    const std::vector<bad> cases = {
        {"overlong '/' in two bytes (0xc0 0xaf)", "\xc0\xaf", repeat(k_fffd, 2)},
        {"overlong lead 0xc1", "\xc1\xbf", repeat(k_fffd, 2)},
        {"overlong 3-byte form of '/'", "\xe0\x80\xaf", repeat(k_fffd, 3)},
        {"overlong 4-byte form of U+FFFF", "\xf0\x8f\xbf\xbf", repeat(k_fffd, 4)},
        {"surrogate U+D800 (0xed 0xa0 0x80)", "\xed\xa0\x80", repeat(k_fffd, 3)},
        {"surrogate U+DFFF", "\xed\xbf\xbf", repeat(k_fffd, 3)},
        {"past U+10FFFF (0xf4 0x90 0x80 0x80)", "\xf4\x90\x80\x80", repeat(k_fffd, 4)},
        {"lead 0xf5, never in UTF-8", "\xf5\x80\x80\x80", repeat(k_fffd, 4)},
        {"0xff", "\xff", k_fffd},
        {"0xfe", "\xfe", k_fffd},
        {"a lone continuation byte", "a\x80z", "a" + k_fffd + "z"},
        {"a continuation byte after a whole sequence", "\xc3\xa9\xbf", "\xc3\xa9" + k_fffd},
        {"a 3-byte sequence cut at the end", "end\xe2\x82", "end" + repeat(k_fffd, 2)},
        {"a 4-byte sequence cut at the end", "\xf0\x9f\x98", repeat(k_fffd, 3)},
        {"a 2-byte lead alone at the end", "x\xc3", "x" + k_fffd},
        {"a sequence cut by ASCII", "\xe2\x82x", repeat(k_fffd, 2) + "x"},
        {"a sequence cut by a quote", "\xe2\"", k_fffd + "\\\""},
        {"a cut sequence, then a good one", "\xe2\xe2\x82\xac", k_fffd + "\xe2\x82\xac"},
    };
    for (const bad& b : cases) {
        INFO(b.what);
        CHECK(body(b.in) == b.out);
        CHECK(check_document(json::quoted(b.in)) == "");
    }
}

TEST_CASE("append_quoted appends; quoted() is the same into a fresh string") {
    std::string out = "[";
    json::append_quoted(out, "a\n");
    out += ',';
    json::append_quoted(out, "\xff");
    out += ']';
    CHECK(out == "[\"a\\n\",\"" + k_fffd + "\"]");
    CHECK(json::quoted("tab\there") == "\"tab\\there\"");
}

TEST_CASE("append_quoted: any bytes give a valid string that reads back as the bytes, each bad one replaced") {
    for (int c = 0; c < 256; ++c) {
        INFO("byte " << c);
        CHECK(check_document(json::quoted(std::string(1, static_cast<char>(c)))) == "");
    }
    std::mt19937 rng(20240611);
    // Bytes biased towards the interesting ones: controls, leads, continuations.
    const std::string alphabet = "a\"\\\n\x01\x7f\x80\xbf\xc0\xc2\xdf\xe0\xed\xef\xf0\xf4\xf5\xff\xa0\x9f\x90\x8f";
    for (int round = 0; round < 20000; ++round) {
        std::string s(rng() % 12, '\0');
        for (char& c : s) c = alphabet[rng() % alphabet.size()];
        const std::string q = json::quoted(s);
        std::string back;
        try {
            back = strict_reader(q).string_document();
        } catch (const std::runtime_error& e) {
            INFO("bytes in: " << s.size() << ", error: " << e.what());
            FAIL("an invalid string literal");
        }
        // Escapes decode to the bytes they stand for; the rest is s, repaired.
        CHECK(back == repaired(s));
    }
}

// ---- numbers ----

TEST_CASE("append_double: nine significant digits by default, other counts on request, non-finite as null") {
    const auto text = [](double v, int digits = json::k_double_digits) {
        std::string out;
        json::append_double(out, v, digits);
        return out;
    };
    CHECK(text(0) == "0");
    CHECK(text(-0.0) == "-0");
    CHECK(text(0.1) == "0.1");
    CHECK(text(1.0 / 3) == "0.333333333");
    CHECK(text(1.0 / 3, 6) == "0.333333");
    CHECK(text(1e-9) == "1e-09");
    CHECK(text(123456789.123) == "123456789");
    CHECK(text(1234567890123.0) == "1.23456789e+12");
    CHECK(text(-2.5) == "-2.5");
    CHECK(text(std::numeric_limits<double>::quiet_NaN()) == "null");
    CHECK(text(std::numeric_limits<double>::infinity()) == "null");
    CHECK(text(-std::numeric_limits<double>::infinity()) == "null");
    // Out-of-range digit counts are clamped: 17 tells every double apart.
    CHECK(text(1.0 / 3, 0) == "0.3");
    const double tiny = std::nextafter(1.0, 2.0);
    CHECK(std::strtod(text(tiny, 100).c_str(), nullptr) == tiny);
    CHECK(std::strtod(text(std::numeric_limits<double>::max(), 17).c_str(), nullptr) ==
          std::numeric_limits<double>::max());
    CHECK(std::strtod(text(std::numeric_limits<double>::denorm_min(), 17).c_str(), nullptr) ==
          std::numeric_limits<double>::denorm_min());
    CHECK(check_document(text(-std::numeric_limits<double>::max(), 17)) == "");
}

// ---- the writer ----

TEST_CASE("writer: nesting, commas, indentation and inline containers") {
    std::string out;
    json::writer j(out);
    j.begin_object();
    j.key("name").value("x");
    j.key("n").value(3);
    j.key("list").begin_array();
    j.value(1);
    j.begin_object();
    j.key("deep").value(true);
    j.end_object();
    j.begin_array(true);
    j.value(1.5);
    j.begin_object();  // inside an inline container: inline too
    j.key("a").value(false);
    j.key("b").null();
    j.end_object();
    j.begin_array();
    j.end_array();
    j.end_array();
    j.end_array();
    j.key("point").begin_object(true);
    j.key("x").value(std::uint64_t{1});
    j.key("y").value(-2L);
    j.end_object();
    j.key("empty_object").begin_object();
    j.end_object();
    j.key("empty_array").begin_array();
    j.end_array();
    j.key("empty_inline").begin_array(true);
    j.end_array();
    j.end_object();
    j.finish();
    const std::string expected =
        "{\n"
        "  \"name\": \"x\",\n"
        "  \"n\": 3,\n"
        "  \"list\": [\n"
        "    1,\n"
        "    {\n"
        "      \"deep\": true\n"
        "    },\n"
        "    [1.5, {\"a\": false, \"b\": null}, []]\n"
        "  ],\n"
        "  \"point\": {\"x\": 1, \"y\": -2},\n"
        "  \"empty_object\": {},\n"
        "  \"empty_array\": [],\n"
        "  \"empty_inline\": []\n"
        "}\n";
    CHECK(out == expected);
    CHECK(check_document(out) == "");
}

TEST_CASE("writer: a top-level array, and a string and a stream get the same bytes") {
    const auto write = [](json::writer& j) {
        j.begin_array();
        j.value(std::string("a\"b"));
        j.value(std::string_view("\xff"));
        j.value(std::numeric_limits<double>::quiet_NaN());
        j.end_array();
        j.finish();
    };
    std::string text;
    json::writer to_text(text);
    write(to_text);
    std::ostringstream stream;
    json::writer to_stream(stream);
    write(to_stream);
    CHECK(text == "[\n  \"a\\\"b\",\n  \"" + k_fffd + "\",\n  null\n]\n");
    CHECK(stream.str() == text);
    // Appends to what the string held.
    std::string more = "x";
    json::writer after(more);
    after.value(1);
    CHECK(more == "x1");
}

TEST_CASE("writer: keys are escaped like values; every integer type and the literals") {
    std::string out;
    json::writer j(out);
    j.begin_object(true);
    j.key("k\"\x01\xc0").value(std::numeric_limits<std::int64_t>::min());
    j.key("u64").value(std::numeric_limits<std::uint64_t>::max());
    j.key("short").value(static_cast<short>(-7));
    j.key("uchar").value(static_cast<unsigned char>(200));
    j.key("unsigned").value(4000000000u);
    j.key("t").value(true);
    j.key("f").value(false);
    j.key("s").value("lit");  // a literal stays a string, not a bool
    j.key("inf").value(-std::numeric_limits<double>::infinity());
    j.key("six").value(2.0 / 3, 6);
    j.end_object();
    CHECK(out ==
          "{\"k\\\"\\u0001" + k_fffd +
              "\": -9223372036854775808, \"u64\": 18446744073709551615, \"short\": -7, \"uchar\": 200, "
              "\"unsigned\": 4000000000, \"t\": true, \"f\": false, \"s\": \"lit\", \"inf\": null, \"six\": 0.666667}");
    CHECK(check_document(out) == "");
}

TEST_CASE("writer: a stream's locale and width play no part") {
    std::ostringstream stream;
    stream.imbue(std::locale(std::locale::classic(), new comma_numpunct));
    stream << 1234567;  // the locale does bite through operator<<
    REQUIRE(stream.str() == "1.234.567");
    stream.str("");
    stream.width(12);  // nor does a width left set: nothing is padded
    json::writer j(stream);
    j.begin_array(true);
    j.value(1234567);
    j.value(0.5);
    j.value(std::uint64_t{9876543210});
    j.end_array();
    CHECK(stream.str() == "[1234567, 0.5, 9876543210]");
}

// ---- the library's reports ----

TEST_CASE("write_stats_json: stage, pipeline and stream names with bad UTF-8 and control bytes give valid JSON") {
    forkline::runtime_report r;
    r.workers = 1;
    r.uptime_s = 0.25;
    r.per_worker.resize(1);
    r.total = forkline::total_of(r.per_worker);
    const std::string stage = "bad\xff\x01name\x7f";
    const std::string pipeline = "src\xc0\xaf|" + stage + "|\xed\xa0\x80sink\n";
    r.stages.push_back({pipeline, stage, forkline::stage_mode::serial_in_order, 1, 2, 3, 4});
    forkline::stream_stats s;
    s.name = "orders\t\xe2\x82";  // a tab and a cut euro sign
    s.latency.resize(1);
    s.utilisation = std::numeric_limits<double>::quiet_NaN();  // 0 / 0 before any pump ran
    r.streams.push_back(s);

    std::ostringstream out;
    forkline::write_stats_json(out, std::span<const forkline::runtime_report>(&r, 1));
    const std::string text = out.str();
    INFO(text);
    CHECK(check_document(text) == "");
    const std::string stage_written = "\"bad" + k_fffd + "\\u0001name\\u007f\"";
    CHECK(text.find("\"stage\": " + stage_written) != std::string::npos);
    CHECK(text.find("\"pipeline\": \"src" + repeat(k_fffd, 2) + "|bad" + k_fffd + "\\u0001name\\u007f|" +
                    repeat(k_fffd, 3) + "sink\\n\"") != std::string::npos);
    CHECK(text.find("\"name\": \"orders\\t" + repeat(k_fffd, 2) + "\"") != std::string::npos);
    CHECK(text.find("\"utilisation\": null") != std::string::npos);
    // The keys and shape the header documents.
    for (const char* key : {"\"runtimes\": [", "\"workers\": 1", "\"uptime_s\": 0.25", "\"total\": {", "\"per_worker\": [",
                            "\"stages\": [", "\"streams\": [", "\"classes\": [", "\"streams_dropped\": 0",
                            "\"mode\": \"serial_in_order\"", "\"runs\": 1, \"items\": 2, \"busy_ns\": 3, \"wall_ns\": 4"}) {
        INFO(key);
        CHECK(text.find(key) != std::string::npos);
    }
}

TEST_CASE("probe::write_json: names, commands and errors with bad UTF-8 and control bytes give valid JSON") {
    forkline::probe::result r;
    r.name = "w\x80\x1b[31m";
    r.command = "cmd \xf4\x90\x80\x80";
    r.why = "because\r\n";
    r.error = "stderr: \xc3";
    forkline::probe::point p;
    p.workers = 1;
    p.seconds = {0.5};
    p.speedup = std::numeric_limits<double>::quiet_NaN();
    r.points.push_back(p);
    std::ostringstream out;
    forkline::probe::write_json(out, std::span<const forkline::probe::result>(&r, 1));
    const std::string text = out.str();
    INFO(text);
    CHECK(check_document(text) == "");
    CHECK(text.find("\"name\": \"w" + k_fffd + "\\u001b[31m\"") != std::string::npos);
    CHECK(text.find("\"command\": \"cmd " + repeat(k_fffd, 4) + "\"") != std::string::npos);
    CHECK(text.find("\"why\": \"because\\r\\n\"") != std::string::npos);
    CHECK(text.find("\"error\": \"stderr: " + k_fffd + "\"") != std::string::npos);
    CHECK(text.find("\"speedup\": null") != std::string::npos);
}

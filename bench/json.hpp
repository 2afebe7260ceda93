// bench/json.hpp: the one JSON string escaper and number format every bench
// program writes through (report.cpp's tables, the herd's results).
#pragma once

#include <cstdio>       // snprintf
#include <string>       // string
#include <string_view>  // string_view

namespace forkline_bench {

/// `s` as a JSON string literal, quotes included.
inline std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

/// `v` with 9 significant digits.
inline std::string json_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

}  // namespace forkline_bench

// tests/fuzz/fuzz_worker_counts.cpp: forkline-probe's --workers list
// (probe::parse_worker_counts) on arbitrary bytes. A list it accepts is
// sorted, without duplicates, every count in 1..65536, and is exactly what
// a plain reading of probe.hpp's forms gives ("1,2,4", "1-8", "1-16:2": a
// range steps from its start and always ends at its end); anything else is
// a config_error.
#include <forkline/errors.hpp>  // config_error
#include <forkline/probe.hpp>   // parse_worker_counts

#include "fuzz_support.hpp"  // FORKLINE_FUZZ_CHECK

#include <algorithm>    // sort, unique
#include <cstddef>      // size_t
#include <cstdint>      // uint8_t, uint64_t
#include <optional>     // optional
#include <string_view>  // string_view
#include <vector>       // vector

namespace {

constexpr std::uint64_t k_max = 65536;

// A count: decimal digits, 1..65536. nullopt otherwise.
std::optional<std::uint64_t> count(std::string_view s) {
    if (s.empty()) return std::nullopt;
    std::uint64_t v = 0;
    for (const char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
        if (v > k_max) return std::nullopt;
    }
    if (v == 0) return std::nullopt;
    return v;
}

std::optional<std::vector<unsigned>> reference(std::string_view text) {
    std::vector<unsigned> out;
    if (text.empty()) return std::nullopt;
    for (;;) {
        const std::size_t comma = text.find(',');
        const std::string_view part = text.substr(0, comma);
        const std::size_t dash = part.find('-');
        if (dash == std::string_view::npos) {
            const auto n = count(part);
            if (!n) return std::nullopt;
            out.push_back(static_cast<unsigned>(*n));
        } else {
            std::string_view end = part.substr(dash + 1);
            std::uint64_t step = 1;
            if (const std::size_t colon = end.find(':'); colon != std::string_view::npos) {
                const auto s = count(end.substr(colon + 1));
                if (!s) return std::nullopt;
                step = *s;
                end = end.substr(0, colon);
            }
            const auto lo = count(part.substr(0, dash));
            const auto hi = count(end);
            if (!lo || !hi || *hi < *lo) return std::nullopt;
            for (std::uint64_t n = *lo; n <= *hi; n += step) out.push_back(static_cast<unsigned>(n));
            out.push_back(static_cast<unsigned>(*hi));
        }
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::optional<std::vector<unsigned>> expected = reference(text);
    std::vector<unsigned> got;
    try {
        got = forkline::probe::parse_worker_counts(text);
    } catch (const forkline::config_error&) {
        FORKLINE_FUZZ_CHECK(!expected);
        return 0;
    }
    FORKLINE_FUZZ_CHECK(expected);
    FORKLINE_FUZZ_CHECK(!got.empty());
    for (std::size_t i = 0; i < got.size(); ++i) {
        FORKLINE_FUZZ_CHECK(got[i] >= 1 && got[i] <= k_max);
        if (i > 0) FORKLINE_FUZZ_CHECK(got[i - 1] < got[i]);
    }
    FORKLINE_FUZZ_CHECK(got == *expected);
    return 0;
}

// tests/fuzz/fuzz_environment.cpp: every environment value forkline parses,
// fed arbitrary bytes. The input is the values one after another, apart by
// NUL (which no value can hold), after a byte of flags saying which are set
// and how the base placement_config looks:
//   FORKLINE_WORKERS, FORKLINE_PLACES, FORKLINE_IO, FORKLINE_STATS,
//   FORKLINE_TRACE_EVENTS.
// Each parser returns a valid result or throws config_error, never anything
// else, and accepts exactly what a plain reference reading of its documented
// grammar accepts. An accepted placement is then planned on synthetic
// machines (no hwloc discovery per input): a plan or a config_error, and a
// plan keeps the request.
#include <forkline/errors.hpp>    // config_error
#include <forkline/topology.hpp>  // topology, with_environment, parse_cpu_list

#include "fuzz_support.hpp"  // FORKLINE_FUZZ_CHECK
#include "io_config.hpp"     // parse_io_setting
#include "stats_state.hpp"   // stats_state (FORKLINE_STATS)
#include "trace.hpp"         // parse_budget (FORKLINE_TRACE_EVENTS)

#include <cstddef>      // size_t
#include <cstdint>      // uint8_t
#include <cstdlib>      // unsetenv
#include <cstring>      // strcmp
#include <optional>     // optional
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

using namespace forkline;

namespace {

constexpr const char* k_names[] = {"FORKLINE_WORKERS", "FORKLINE_PLACES", "FORKLINE_IO", "FORKLINE_STATS",
                                   "FORKLINE_TRACE_EVENTS"};
constexpr std::size_t k_count = sizeof k_names / sizeof k_names[0];

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (const char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// Decimal digits as a number, saturating at `cap` + 1 so that "too large" stays too large.
std::uint64_t decimal(std::string_view s, std::uint64_t cap) {
    std::uint64_t v = 0;
    for (const char c : s) {
        v = v * 10 + static_cast<unsigned>(c - '0');
        if (v > cap) return cap + 1;
    }
    return v;
}

std::string_view trimmed(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// topology.hpp's cpu list: comma-separated entries N or N-M (spaces and tabs
// around entries and numbers ignored), N <= M, every cpu at most 65535 and
// named once. nullopt where parse_cpu_list must throw.
std::optional<std::vector<unsigned>> reference_cpu_list(std::string_view text) {
    constexpr std::uint64_t k_max = 65535;
    std::vector<unsigned> out;
    std::vector<bool> seen(k_max + 1);
    if (trimmed(text).empty()) return std::nullopt;
    for (;;) {
        const std::size_t comma = text.find(',');
        const std::string_view entry = trimmed(text.substr(0, comma));
        if (entry.empty()) return std::nullopt;
        const std::size_t dash = entry.find('-');
        const std::string_view a = trimmed(entry.substr(0, dash));
        const std::string_view b = dash == std::string_view::npos ? a : trimmed(entry.substr(dash + 1));
        if (!all_digits(a) || !all_digits(b)) return std::nullopt;
        const std::uint64_t first = decimal(a, k_max), last = decimal(b, k_max);
        if (first > k_max || last > k_max || last < first) return std::nullopt;
        for (std::uint64_t cpu = first; cpu <= last; ++cpu) {
            if (seen[cpu]) return std::nullopt;
            seen[cpu] = true;
            out.push_back(static_cast<unsigned>(cpu));
        }
        if (comma == std::string_view::npos) return out;
        text.remove_prefix(comma + 1);
    }
}

// The machines plans are made on: built once, they are read only after.
// Small (16 PUs), so that a plan costs little beside the parsing.
constexpr const char* k_machine = "pack:2 numa:2 l3:1 core:2 pu:2";
const topology& two_socket() {
    static const topology t = topology::synthetic(k_machine);
    return t;
}
const topology& restricted() {
    static const topology t = topology::synthetic(k_machine, "0-5,9,12-13");
    return t;
}

void check_plan(const topology& topo, const placement_config& c) {
    placement_plan plan;
    try {
        plan = topo.plan(c);
    } catch (const config_error&) {
        return;  // the documented refusal
    }
    const unsigned n = plan.worker_count();
    FORKLINE_FUZZ_CHECK(n > 0);
    if (c.workers != 0) FORKLINE_FUZZ_CHECK(n == c.workers);
    FORKLINE_FUZZ_CHECK(plan.distances.size() == std::size_t{n} * n);
    if (c.policy == placement_policy::list) {
        const std::vector<unsigned> cpus = parse_cpu_list(c.cpu_list);
        for (unsigned i = 0; i < n; ++i) FORKLINE_FUZZ_CHECK(plan.places[i].pu_os_index == cpus[i % cpus.size()]);
        FORKLINE_FUZZ_CHECK(c.workers != 0 || n == cpus.size());
    }
    for (unsigned i = 0; i < n; ++i) {
        FORKLINE_FUZZ_CHECK(plan.distance(i, i) == distance_class::same_core);
        for (unsigned j = 0; j < n; ++j) FORKLINE_FUZZ_CHECK(plan.distance(i, j) == plan.distance(j, i));
    }
    (void)plan.describe();
}

void check_placement(const char* workers, const char* places, std::uint8_t shape) {
    placement_config base;
    base.workers = shape & 3;  // 0: one per place
    base.use_smt = (shape & 4) != 0;
    base.oversubscribe = (shape & 8) != 0;
    const auto fake_getenv = [&](const char* name) -> const char* {
        if (std::strcmp(name, "FORKLINE_WORKERS") == 0) return workers;
        if (std::strcmp(name, "FORKLINE_PLACES") == 0) return places;
        return nullptr;
    };

    // What the documentation promises, worked out beside the parser.
    bool valid = true;
    placement_config expected = base;
    if (workers != nullptr) {
        const std::string_view w(workers);
        if (!all_digits(w) || decimal(w, 0xffffffffu) > 0xffffffffu || decimal(w, 0xffffffffu) == 0)
            valid = false;
        else
            expected.workers = static_cast<unsigned>(decimal(w, 0xffffffffu));
    }
    std::optional<std::vector<unsigned>> list;
    if (places != nullptr) {
        const std::string_view p(places);
        if (p == "compact" || p == "scatter" || p == "compact+smt" || p == "scatter+smt") {
            expected.policy = p.starts_with("scatter") ? placement_policy::scatter : placement_policy::compact;
            expected.use_smt = p.ends_with("+smt");
        } else if (!p.empty() && p.front() >= '0' && p.front() <= '9' && (list = reference_cpu_list(p))) {
            expected.policy = placement_policy::list;
            expected.cpu_list = std::string(p);
        } else {
            valid = false;
        }
    }

    placement_config got;
    try {
        got = with_environment(base, fake_getenv);
    } catch (const config_error&) {
        FORKLINE_FUZZ_CHECK(!valid);
        return;
    }
    FORKLINE_FUZZ_CHECK(valid);
    FORKLINE_FUZZ_CHECK(got.workers == expected.workers);
    FORKLINE_FUZZ_CHECK(got.policy == expected.policy);
    FORKLINE_FUZZ_CHECK(got.use_smt == expected.use_smt);
    FORKLINE_FUZZ_CHECK(got.cpu_list == expected.cpu_list);
    FORKLINE_FUZZ_CHECK(got.oversubscribe == expected.oversubscribe);
    if (list) FORKLINE_FUZZ_CHECK(parse_cpu_list(got.cpu_list) == *list);

    // A plan's size is workers squared (the distance matrix), and so is
    // the check: oversubscribed requests beyond the machine's 16 PUs say
    // nothing more.
    if (got.oversubscribe && got.workers > 64) return;
    check_plan(two_socket(), got);
    check_plan(restricted(), got);
}

void check_io(const char* value) {
    const std::string_view v = value != nullptr ? value : "";
    const bool valid = v.empty() || v == "auto" || v == "uring" || v == "psync";
    try {
        const io::detail::io_setting s = io::detail::parse_io_setting(value);
        FORKLINE_FUZZ_CHECK(valid);
        FORKLINE_FUZZ_CHECK((s == io::detail::io_setting::uring) == (v == "uring"));
        FORKLINE_FUZZ_CHECK((s == io::detail::io_setting::psync) == (v == "psync"));
    } catch (const config_error&) {
        FORKLINE_FUZZ_CHECK(!valid);
    }
}

void check_stats(const char* value) {
    // The process's own FORKLINE_STATS is unset (see LLVMFuzzerInitialize),
    // so an empty setting reads nothing.
    const std::string v = value != nullptr ? value : "";
    const bool valid = v.empty() || v == "0" || v == "off" || v == "1" || v == "text" ||
                       (v.starts_with("json:") && v.size() > 5);
    try {
        const detail::stats_state s(v);
        FORKLINE_FUZZ_CHECK(valid);
    } catch (const config_error&) {
        FORKLINE_FUZZ_CHECK(!valid);
    }
}

void check_trace_events(const char* value) {
    const std::string_view v = value != nullptr ? value : "";
    constexpr std::uint64_t k_max = ~std::uint64_t{0};
    bool valid = true;
    std::uint64_t n = trace::k_default_budget;
    if (!v.empty()) {
        // Digits only, a positive count that fits in 64 bits.
        std::uint64_t x = 0;
        valid = all_digits(v);
        for (const char c : v) {
            if (!valid) break;
            const unsigned d = static_cast<unsigned>(c - '0');
            if (x > (k_max - d) / 10) valid = false;
            x = x * 10 + d;
        }
        valid = valid && x != 0;
        n = x;
    }
    try {
        const std::size_t budget = trace::parse_budget(value);
        FORKLINE_FUZZ_CHECK(valid);
        FORKLINE_FUZZ_CHECK(budget == n);
    } catch (const config_error&) {
        FORKLINE_FUZZ_CHECK(!valid);
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    unsetenv("FORKLINE_STATS");
    (void)two_socket();
    (void)restricted();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::uint8_t set = data[0];    // bit i: k_names[i] is set (to the i-th value)
    const std::uint8_t shape = data[1];  // the base placement_config
    std::vector<std::string> values;
    const std::string rest(reinterpret_cast<const char*>(data + 2), size - 2);
    for (std::size_t start = 0; values.size() < k_count;) {
        const std::size_t nul = rest.find('\0', start);
        values.push_back(rest.substr(start, nul == std::string::npos ? std::string::npos : nul - start));
        if (nul == std::string::npos) break;
        start = nul + 1;
    }
    const char* v[k_count] = {};
    for (std::size_t i = 0; i < values.size(); ++i)
        if (((set >> i) & 1) != 0) v[i] = values[i].c_str();

    check_placement(v[0], v[1], shape);
    check_io(v[2]);
    check_stats(v[3]);
    check_trace_events(v[4]);
    return 0;
}

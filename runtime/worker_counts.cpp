// runtime/worker_counts.cpp: the worker counts a probe measures, by default
// and as a user writes them ("1,2,4", "1-16:2"). Apart from runtime/probe.cpp,
// which runs runtimes, so that the parsing links alone (tests/fuzz/).
// See "Probe" in runtime/DESIGN.md.
#include "forkline/probe.hpp"

#include <algorithm>  // sort, unique, max, min
#include <charconv>   // from_chars
#include <string>     // string
#include <vector>     // vector

#include "forkline/errors.hpp"    // config_error
#include "forkline/topology.hpp"  // topology, placement_config, placement_plan

namespace forkline::probe {

std::vector<unsigned> default_worker_counts(const topology& topo, bool use_smt) {
    const topology_summary sum = topo.summary();
    const unsigned p = std::max(1u, sum.cores);
    std::vector<unsigned> out;
    for (unsigned n = 1; n <= std::min(8u, p); ++n) out.push_back(n);
    for (unsigned q = 1; q <= 3; ++q) {
        const unsigned n = (p * q + 2) / 4;
        if (n > 8) out.push_back(n);
    }
    out.push_back(p);
    if (sum.numa_nodes > 1) {
        // Compact order fills one node before the next: where the node
        // index changes is where remote memory and far steals begin.
        placement_config all;
        all.workers = p;
        const placement_plan plan = topo.plan(all);
        for (unsigned i = 1; i < plan.worker_count(); ++i) {
            if (plan.places[i].numa_index != plan.places[i - 1].numa_index) out.push_back(i);
        }
    }
    if (use_smt && sum.pus > sum.cores) out.push_back(sum.pus);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::vector<unsigned> parse_worker_counts(std::string_view text) {
    auto fail = [&](std::string_view part, const char* why) {
        throw config_error("worker counts '" + std::string(text) + "': '" + std::string(part) + "' " + why +
                           " (expected forms: 1,2,4  1-8  1-16:2)");
    };
    auto number = [&](std::string_view part, std::string_view digits) {
        unsigned v = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
        if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
            fail(part, "is not a number");
        }
        if (v == 0) fail(part, "has a count of 0");
        if (v > 65536) fail(part, "is above 65536");
        return v;
    };
    std::vector<unsigned> out;
    if (text.empty()) fail(text, "is empty");
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t comma = std::min(text.find(',', pos), text.size());
        const std::string_view part = text.substr(pos, comma - pos);
        if (part.empty()) fail(part, "is empty");
        const std::size_t dash = part.find('-');
        if (dash == std::string_view::npos) {
            out.push_back(number(part, part));
        } else {
            std::string_view rest = part.substr(dash + 1);
            unsigned step = 1;
            if (const std::size_t colon = rest.find(':'); colon != std::string_view::npos) {
                step = number(part, rest.substr(colon + 1));
                rest = rest.substr(0, colon);
            }
            const unsigned lo = number(part, part.substr(0, dash));
            const unsigned hi = number(part, rest);
            if (hi < lo) fail(part, "is a reversed range");
            for (unsigned n = lo; n <= hi; n += step) out.push_back(n);
            if (out.back() != hi) out.push_back(hi);  // a range always ends at its end
        }
        pos = comma + 1;
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

}  // namespace forkline::probe

// tools/probe_compare.cpp: forkline-probe --compare. The reports are read
// with nlohmann-json (a tool-only dependency; libforkline writes JSON but
// never parses it).
#include "probe_compare.hpp"

#include <cerrno>       // errno
#include <cmath>        // isfinite
#include <cstdio>       // snprintf
#include <cstring>      // strerror
#include <filesystem>   // is_directory, path
#include <fstream>      // ifstream
#include <map>          // map
#include <ostream>      // ostream
#include <stdexcept>    // runtime_error
#include <string>       // string, to_string
#include <tuple>        // tuple
#include <vector>       // vector

#include <nlohmann/json.hpp>

#include "forkline/scaling.hpp"  // compare_medians

namespace forkline_probe {

namespace {

/// One point of a report: the repetition times of a workload at a count.
struct timed {
    std::vector<double> seconds;
    double median = 0;
};

/// Keyed by workload name, then (ranks, workers): ranks 0 for a plain run.
using points_by_key = std::map<std::string, std::map<std::pair<unsigned, unsigned>, timed>>;

struct report {
    std::string file;
    std::string host;
    points_by_key points;
    std::vector<std::string> order;  // workload names as the report lists them
};

report read_report(const std::string& given) {
    report r;
    std::filesystem::path p(given);
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) p /= "results.json";
    r.file = p.string();
    std::ifstream in(p);
    if (!in) {
        const int err = errno;
        throw std::runtime_error(r.file + ": cannot open it (open: " + std::strerror(err) + ", errno " +
                                 std::to_string(err) + ")");
    }
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(r.file + ": not a JSON document (" + e.what() + ")");
    }
    try {
        if (doc.contains("host") && doc["host"].is_object() && doc["host"].contains("hostname")) {
            r.host = doc["host"]["hostname"].get<std::string>();
        }
        const nlohmann::json& workloads = doc.at("workloads");
        if (!workloads.is_array()) throw std::runtime_error("\"workloads\" is not an array");
        for (const nlohmann::json& w : workloads) {
            const std::string name = w.at("name").get<std::string>();
            if (r.points.find(name) == r.points.end()) r.order.push_back(name);
            auto& by_count = r.points[name];
            for (const nlohmann::json& pt : w.at("points")) {
                const auto workers = pt.at("workers").get<unsigned>();
                const unsigned ranks = pt.contains("ranks") ? pt["ranks"].get<unsigned>() : 0;
                timed t;
                for (const nlohmann::json& s : pt.at("seconds")) t.seconds.push_back(s.get<double>());
                t.median = pt.contains("median_s") && pt["median_s"].is_number() ? pt["median_s"].get<double>() : 0;
                by_count[{ranks, workers}] = std::move(t);
            }
        }
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(r.file + ": not a forkline-probe report (" + e.what() + ")");
    } catch (const std::runtime_error& e) {
        throw std::runtime_error(r.file + ": not a forkline-probe report (" + e.what() + ")");
    }
    if (r.points.empty()) throw std::runtime_error(r.file + ": the report has no workloads");
    return r;
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string seconds_text(double s) {
    if (!std::isfinite(s)) return "-";
    if (s >= 1) return fmt("%.3g s", s);
    if (s >= 1e-3) return fmt("%.3g ms", s * 1e3);
    return fmt("%.3g us", s * 1e6);
}

}  // namespace

unsigned compare_reports(const std::string& a_file, const std::string& b_file, std::ostream& out) {
    const report a = read_report(a_file);
    const report b = read_report(b_file);
    out << "A: " << a.file << (a.host.empty() ? "" : " (" + a.host + ")") << "\n";
    out << "B: " << b.file << (b.host.empty() ? "" : " (" + b.host + ")") << "\n";
    out << "ratio = B's median / A's, 95% interval by bootstrap over each side's repetitions;\n"
           "below 1 is faster. A verdict needs the interval to exclude 1.\n";
    unsigned slower = 0, faster = 0, same = 0, unknown = 0;
    for (const std::string& name : a.order) {
        const auto other = b.points.find(name);
        if (other == b.points.end()) {
            out << "\n== " << name << ": only in A\n";
            continue;
        }
        out << "\n== " << name << "\n";
        char head[160];
        std::snprintf(head, sizeof head, "%8s %7s %11s %11s %8s %19s  %s\n", "workers", "ranks", "A median",
                      "B median", "ratio", "95% interval", "verdict");
        out << head;
        for (const auto& [key, pa] : a.points.at(name)) {
            const auto pb = other->second.find(key);
            if (pb == other->second.end()) {
                out << "  " << key.second << " workers" << (key.first ? " x " + std::to_string(key.first) + " ranks" : "")
                    << ": only in A\n";
                continue;
            }
            const forkline::median_ratio m = forkline::compare_medians(pa.seconds, pb->second.seconds);
            std::string verdict = forkline::to_string(m.verdict);
            if (m.verdict == forkline::change::faster || m.verdict == forkline::change::slower) {
                verdict += fmt(" (%.1f%%)", 100 * (m.ratio - 1));
            }
            if (m.verdict == forkline::change::unknown || m.verdict == forkline::change::bad_input) {
                verdict += ": " + m.note;
            }
            switch (m.verdict) {
                case forkline::change::slower: ++slower; break;
                case forkline::change::faster: ++faster; break;
                case forkline::change::within_noise: ++same; break;
                default: ++unknown; break;
            }
            const std::string interval = std::isfinite(m.ci_low)
                                             ? fmt("[%.3f, ", m.ci_low) + fmt("%.3f]", m.ci_high)
                                             : std::string("-");
            char line[320];
            std::snprintf(line, sizeof line, "%8u %7s %11s %11s %8s %19s  %s\n", key.second,
                          key.first == 0 ? "-" : std::to_string(key.first).c_str(),
                          seconds_text(pa.median > 0 ? pa.median : std::nan("")).c_str(),
                          seconds_text(pb->second.median > 0 ? pb->second.median : std::nan("")).c_str(),
                          std::isfinite(m.ratio) ? fmt("%.3f", m.ratio).c_str() : "-", interval.c_str(),
                          verdict.c_str());
            out << line;
        }
        for (const auto& [key, pb] : other->second) {
            if (a.points.at(name).find(key) == a.points.at(name).end()) {
                out << "  " << key.second << " workers" << (key.first ? " x " + std::to_string(key.first) + " ranks" : "")
                    << ": only in B\n";
            }
        }
    }
    for (const std::string& name : b.order) {
        if (a.points.find(name) == a.points.end()) out << "\n== " << name << ": only in B\n";
    }
    out << "\n" << faster << " faster, " << slower << " slower, " << same << " within noise";
    if (unknown > 0) out << ", " << unknown << " without a verdict";
    out << "\n";
    return slower;
}

}  // namespace forkline_probe

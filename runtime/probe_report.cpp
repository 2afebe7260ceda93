// runtime/probe_report.cpp: probe results as JSON and CSV (probe::write_json,
// probe::write_csv), the JSON through json::writer (json_writer.hpp); the
// shapes are the ones documented in forkline/probe.hpp.
#include <cmath>        // isfinite, isnan
#include <cstdint>      // uint64_t
#include <ctime>        // time, gmtime_r, strftime
#include <exception>    // exception
#include <fstream>      // ifstream (/proc/cpuinfo)
#include <optional>     // optional
#include <ostream>      // ostream
#include <span>         // span
#include <string>       // string, getline
#include <string_view>  // string_view

#include <sys/utsname.h>  // uname
#include <unistd.h>       // gethostname

#include "forkline/probe.hpp"     // result, point, write_json, write_csv
#include "forkline/scaling.hpp"   // to_string(fit_status)
#include "forkline/topology.hpp"  // topology::discover, topology_summary
#include "json_writer.hpp"        // json::writer, json::append_double

namespace forkline::probe {
namespace {

namespace json = forkline::detail::json;

const char* mode_name(stage_mode m) noexcept {
    switch (m) {
        case stage_mode::serial_in_order: return "serial_in_order";
        case stage_mode::serial_out_of_order: return "serial_out_of_order";
        case stage_mode::parallel: return "parallel";
    }
    return "unknown";
}

/// The value of the first "model name" line of /proc/cpuinfo (x86 has one;
/// many ARM kernels do not).
std::optional<std::string> cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) != 0) continue;
        const std::size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::size_t b = colon + 1;
        while (b < line.size() && (line[b] == ' ' || line[b] == '\t')) ++b;
        std::size_t e = line.size();
        while (e > b && (line[e - 1] == ' ' || line[e - 1] == '\t')) --e;
        return line.substr(b, e - b);
    }
    return std::nullopt;
}

void write_host(json::writer& j) {
    j.key("host").begin_object();

    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0) {
        j.key("hostname").value(std::string_view(name));
    } else {
        j.key("hostname").null();
    }

    if (const std::optional<std::string> model = cpu_model()) {
        j.key("cpu_model").value(*model);
    } else {
        j.key("cpu_model").null();
    }

    // A report is still worth writing when hwloc fails: the counts go null.
    std::optional<topology_summary> summary;
    try {
        summary = topology::discover().summary();
    } catch (const std::exception&) {
        summary.reset();
    }
    if (summary) {
        j.key("cores").value(summary->cores);
        j.key("pus").value(summary->pus);
        j.key("numa_nodes").value(summary->numa_nodes);
    } else {
        j.key("cores").null();
        j.key("pus").null();
        j.key("numa_nodes").null();
    }

    struct utsname u {};
    if (::uname(&u) == 0) {
        j.key("kernel").value(std::string(u.sysname) + " " + u.release + " " + u.machine);
    } else {
        j.key("kernel").null();
    }

    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    char date[32] = {};
    if (::gmtime_r(&now, &utc) != nullptr && std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &utc) > 0) {
        j.key("date").value(std::string_view(date));
    } else {
        j.key("date").null();
    }
    j.end_object();
}

void write_point(json::writer& j, const point& p) {
    j.begin_object();
    j.key("workers").value(p.workers);
    if (p.ranks > 0) {
        j.key("ranks").value(p.ranks);
        j.key("workers_per_rank").value(p.workers / p.ranks);
    }
    j.key("median_s").value(p.median_s);
    j.key("min_s").value(p.min_s);
    j.key("max_s").value(p.max_s);
    j.key("reps").value(static_cast<std::uint64_t>(p.seconds.size()));
    j.key("spread").value(p.spread);
    j.key("speedup").value(p.speedup);
    j.key("efficiency").value(p.efficiency);
    j.key("karp_flatt").value(p.karp_flatt);
    j.key("work_inflation").value(p.work_inflation);
    j.key("seconds").begin_array(true);
    for (const double s : p.seconds) j.value(s);
    j.end_array();
    if (!p.started_s.empty()) {
        j.key("started_s").begin_array(true);
        for (const double s : p.started_s) j.value(s);
        j.end_array();
    }
    if (p.shares) {
        const time_shares& s = *p.shares;
        j.key("shares").begin_object(true);
        j.key("working").value(s.working);
        j.key("stealing").value(s.stealing);
        j.key("failed_search").value(s.failed_search);
        j.key("parked").value(s.parked);
        j.key("join_waiting").value(s.join_waiting);
        j.end_object();
    }
    // Only the external mode knows these; in-process they are NaN / -1.
    if (!std::isnan(p.user_s)) j.key("user_s").value(p.user_s);
    if (!std::isnan(p.sys_s)) j.key("sys_s").value(p.sys_s);
    if (p.peak_rss_kb >= 0) j.key("peak_rss_kb").value(p.peak_rss_kb);
    j.key("disturbed_reps").value(p.disturbed_reps);
    j.key("disturbed").value(p.disturbed);
    j.key("others_cpus").value(p.others_cpus);  // null where not measured
    j.key("host_slowdown").value(p.host_slowdown);  // null where not measured
    j.key("bytes_per_s").value(p.bytes_per_s);            // null where the workload did not say
    j.key("host_bytes_per_s").value(p.host_bytes_per_s);  // null where not measured
    j.end_object();
}

void write_amdahl(json::writer& j, const amdahl_fit& a, const char* name = "amdahl") {
    j.key(name).begin_object();
    j.key("serial_fraction").value(a.serial_fraction);
    j.key("ci_low").value(a.ci_low);
    j.key("ci_high").value(a.ci_high);
    j.key("max_speedup").value(a.max_speedup);
    j.key("t1_seconds").value(a.t1_seconds);
    j.key("status").value(forkline::to_string(a.status));
    j.key("note").value(a.note);
    j.end_object();
}

void write_usl(json::writer& j, const usl_fit& u) {
    j.key("usl").begin_object();
    j.key("alpha").value(u.alpha);
    j.key("beta").value(u.beta);
    j.key("gamma").value(u.gamma);
    if (u.peak_workers > 0) {
        j.key("peak_workers").value(u.peak_workers);
    } else {
        j.key("peak_workers").null();
    }
    j.key("max_speedup").value(u.max_speedup);
    j.key("r_squared").value(u.r_squared);
    j.key("status").value(forkline::to_string(u.status));
    j.key("note").value(u.note);
    j.end_object();
}

void write_work_span(json::writer& j, const work_span& w) {
    j.key("work_span").begin_object();
    j.key("work_s").value(w.work_s);
    j.key("span_s").value(w.span_s);
    j.key("burdened_span_s").value(w.burdened_span_s);
    j.key("burden_s").value(w.burden_s);
    j.key("parallelism").value(w.parallelism);
    j.key("burdened_parallelism").value(w.burdened_parallelism);
    j.key("spawns").value(w.spawns);
    j.key("nominal_workers").value(w.nominal_workers);
    j.end_object();
}

void write_pipeline(json::writer& j, const pipeline_bound& b) {
    j.key("pipeline").begin_object();
    j.key("stages").begin_array();
    for (const pipeline_bound::stage& s : b.stages) {
        j.begin_object(true);
        j.key("name").value(s.name);
        j.key("mode").value(mode_name(s.mode));
        j.key("busy_s").value(s.busy_s);
        j.key("share").value(s.share);
        j.end_object();
    }
    j.end_array();
    j.key("bottleneck").value(b.bottleneck);
    j.key("serial_share").value(b.serial_share);
    j.key("bound").value(b.bound);  // infinity (no serial stage) comes out null
    j.end_object();
}

void write_result(json::writer& j, const result& r) {
    j.begin_object();
    j.key("name").value(r.name);
    if (!r.command.empty()) j.key("command").value(r.command);
    j.key("points").begin_array();
    for (const point& p : r.points) write_point(j, p);
    j.end_array();
    write_amdahl(j, r.amdahl);
    // Corrected for the host's compute slowdown: the plain fit beside it.
    j.key("amdahl_corrected").value(r.amdahl_corrected);
    if (r.amdahl_corrected) write_amdahl(j, r.amdahl_uncorrected, "amdahl_uncorrected");
    write_usl(j, r.usl);
    if (!r.points.empty()) {
        // The USL's figures at the largest count measured (null without a fit).
        const usl_costs c = usl_costs_at(r.usl, r.points.back().workers);
        j.key("usl_costs").begin_object(true);
        j.key("workers").value(c.workers);
        j.key("effective_workers").value(c.speedup);
        j.key("paths").value(c.paths);
        j.key("contention_share").value(c.contention_share);
        j.key("coherency_share").value(c.coherency_share);
        j.key("half_efficiency_workers").value(c.half_efficiency_workers);
        j.end_object();
    }
    j.key("karp_flatt").begin_array(true);
    for (const point& p : r.points) j.value(p.karp_flatt);
    j.end_array();
    if (r.graph) write_work_span(j, *r.graph);
    if (r.pipeline) write_pipeline(j, *r.pipeline);
    j.key("disturbed_reps").value(r.disturbed_reps);
    j.key("disturbed").value(r.disturbed);
    j.key("verdict").value(to_string(r.verdict));
    j.key("why").value(r.why);
    if (!r.error.empty()) j.key("error").value(r.error);
    j.end_object();
}

/// A CSV field as RFC 4180 has it: quoted when it holds a comma, a quote or
/// a line break, quotes doubled.
std::string csv_text(std::string_view s) {
    if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

/// Unknowns (NaN, infinity) are empty cells; numbers as in the JSON.
std::string csv_number(double v) {
    std::string out;
    if (std::isfinite(v)) json::append_double(out, v);
    return out;
}

}  // namespace

void write_json(std::ostream& out, std::span<const result> results) {
    json::writer j(out);
    j.begin_object();
    write_host(j);
    j.key("workloads").begin_array();
    for (const result& r : results) write_result(j, r);
    j.end_array();
    j.end_object();
    j.finish();
}

void write_csv(std::ostream& out, std::span<const result> results) {
    out << "name,workers,median_s,min_s,max_s,reps,spread,speedup,efficiency,karp_flatt,"
           "working,stealing,failed_search,parked,join_waiting,user_s,sys_s,peak_rss_kb,ranks\n";
    for (const result& r : results) {
        const std::string name = csv_text(r.name);
        for (const point& p : r.points) {
            // to_string, not <<, for the integers: a stream imbued with a
            // locale would group their digits.
            out << name << ',' << std::to_string(p.workers) << ',' << csv_number(p.median_s) << ','
                << csv_number(p.min_s) << ',' << csv_number(p.max_s) << ',' << std::to_string(p.seconds.size())
                << ',' << csv_number(p.spread) << ',' << csv_number(p.speedup) << ',' << csv_number(p.efficiency)
                << ',' << csv_number(p.karp_flatt);
            if (p.shares) {
                const time_shares& s = *p.shares;
                out << ',' << csv_number(s.working) << ',' << csv_number(s.stealing) << ','
                    << csv_number(s.failed_search) << ',' << csv_number(s.parked) << ','
                    << csv_number(s.join_waiting);
            } else {
                out << ",,,,,";
            }
            out << ',' << csv_number(p.user_s) << ',' << csv_number(p.sys_s) << ',';
            if (p.peak_rss_kb >= 0) out << std::to_string(p.peak_rss_kb);
            out << ',';
            if (p.ranks > 0) out << std::to_string(p.ranks);
            out << '\n';
        }
    }
}

}  // namespace forkline::probe

// tools/forkline_probe.cpp: forkline-probe, how far work scales on this host
// and what stops it.
//
//   forkline-probe                         the built-in workloads, 1..P workers
//   forkline-probe --quick fib triad       some of them, smaller
//   forkline-probe -- ./prog -j {workers}  any program, FORKLINE_WORKERS=N set
//
// Prints a table per workload and writes a report folder: results.json,
// results.csv, report.txt and speedup/efficiency plots.
#include <unistd.h>  // isatty, gethostname

#include <algorithm>   // max
#include <cerrno>      // errno
#include <chrono>      // steady_clock
#include <cmath>       // isfinite
#include <cstdio>      // fprintf, snprintf, fflush
#include <cstdlib>     // strtod, strtoul
#include <cstring>     // strerror, strcmp
#include <ctime>       // time, gmtime_r, strftime
#include <exception>   // exception
#include <filesystem>  // create_directories, path
#include <functional>  // function
#include <fstream>     // ofstream
#include <iostream>    // cout, cerr
#include <span>        // span
#include <sstream>     // ostringstream
#include <string>      // string
#include <vector>      // vector

#include "forkline/errors.hpp"  // config_error
#include "forkline/probe.hpp"   // probe::*
#include "probe_command.hpp"    // probe_command
#include "probe_compare.hpp"    // compare_reports
#include "probe_html.hpp"       // html_report
#include "probe_plot.hpp"       // write_plots
#include "probe_workloads.hpp"  // builtin_workloads, effort

namespace {

namespace probe = forkline::probe;
using forkline_probe::effort;

const char* const k_usage =
    "usage: forkline-probe [OPTIONS] [WORKLOAD...]\n"
    "       forkline-probe [OPTIONS] -- COMMAND [ARGS...]\n"
    "       forkline-probe --compare A B [--strict]\n"
    "\n"
    "Runs work at several worker counts on this host, fits Amdahl's law and the\n"
    "Universal Scalability Law, and says what limits the speedup.\n"
    "Without a command: the built-in workloads (all, or those named; see --list).\n"
    "With a command: runs it at each count with FORKLINE_WORKERS=N in its\n"
    "environment and every {workers} in its arguments replaced by N.\n"
    "With --ranks, for MPI programs: runs it at every (ranks, workers) pair,\n"
    "{ranks} replaced by the rank count and {workers} by the workers per rank,\n"
    "and fits over ranks x workers:\n"
    "  forkline-probe --ranks 1,2,4 --workers 1,2 -- mpirun -np {ranks} prog -p {workers}\n"
    "\n"
    "  --workers LIST   counts to run: 1,2,4  1-8  1-16:2 (default: 1..8, then\n"
    "                   quarter steps, every usable core, NUMA boundaries)\n"
    "  --reps R         at most R timed repetitions per count (default 10)\n"
    "  --min-reps R     at least R (default 3)\n"
    "  --warmup W       untimed runs per count first (default 1)\n"
    "  --spread X       stop repeating once (q3-q1)/median <= X (default 0.05)\n"
    "  --quick          smaller inputs, fewer repetitions (~30 s on 2 cores)\n"
    "  --thorough       bigger inputs, more repetitions\n"
    "  --places P       compact (default) or scatter\n"
    "  --smt            also use SMT siblings (adds the PU count as a point)\n"
    "  --out DIR        report folder (default forkline-probe-HOST-DATE)\n"
    "  --json FILE      also write the JSON there\n"
    "  --csv FILE       also write the CSV there\n"
    "  --no-plots       no gnuplot pictures\n"
    "  --show-output    let a command's stdout and stderr through\n"
    "  --strict         exit 3 when the host was busy (a repetition disturbed by\n"
    "                   other processes or VM steal), even if run again\n"
    "  --no-ceiling     do not measure the host's ceilings first (compute; and\n"
    "                   memory, for the built-in workloads)\n"
    "  --recalibrate    measure them afresh (they are cached per host otherwise)\n"
    "  --busy-retries N run a disturbed repetition again up to N times per count\n"
    "                   (default 5), then keep it and mark the count\n"
    "  --ranks LIST     rank counts, as --workers (a command only; --workers then\n"
    "                   defaults to 1 per rank)\n"
    "  --nodes LIST     also say what the fits predict for that many nodes of\n"
    "  --node-workers W W workers each (default: the most workers per rank run)\n"
    "  --list           list the built-in workloads and exit\n"
    "  --compare A B    compare two reports (folders or JSON files): per workload\n"
    "                   and count, B's median over A's with a 95% bootstrap\n"
    "                   interval, faster / slower / within noise; with --strict,\n"
    "                   exit 3 when anything came out slower\n"
    "  -h, --help       this text\n";

[[noreturn]] void usage_error(const std::string& why) {
    std::cerr << "forkline-probe: " << why << "\n(forkline-probe --help for usage)\n";
    std::exit(2);
}

double parse_double(const std::string& opt, const char* text) {
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !std::isfinite(v) || v < 0) {
        usage_error(opt + " wants a non-negative number, not '" + text + "'");
    }
    return v;
}

unsigned parse_unsigned(const std::string& opt, const char* text, unsigned min) {
    char* end = nullptr;
    errno = 0;
    const unsigned long v = std::strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < min || v > 100000) {
        usage_error(opt + " wants a whole number >= " + std::to_string(min) + ", not '" + text + "'");
    }
    return static_cast<unsigned>(v);
}

std::string fixed(double v, int digits) {
    if (!std::isfinite(v)) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

std::string percent(double v) {
    if (!std::isfinite(v)) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f%%", 100 * v);
    return buf;
}

std::string general(double v) {
    if (std::isnan(v)) return "-";
    if (std::isinf(v)) return "unbounded";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
}

std::string seconds_text(double s) {
    if (!std::isfinite(s)) return "-";
    char buf[64];
    if (s >= 1) {
        std::snprintf(buf, sizeof buf, "%.3g s", s);
    } else if (s >= 1e-3) {
        std::snprintf(buf, sizeof buf, "%.3g ms", s * 1e3);
    } else if (s >= 1e-6) {
        std::snprintf(buf, sizeof buf, "%.3g us", s * 1e6);
    } else {
        std::snprintf(buf, sizeof buf, "%.3g ns", s * 1e9);
    }
    return buf;
}

std::string pad(const std::string& s, std::size_t width) {
    return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

/// "N ranks x W" for a multi-process point, the worker count otherwise.
std::string shape_text(const probe::point& p) {
    if (p.ranks == 0) return std::to_string(p.workers);
    return std::to_string(p.ranks) + "x" + std::to_string(p.workers / p.ranks);
}

/// What the fits say of N nodes (--nodes), as a table with its caveat.
std::string describe_nodes(const probe::result& r, std::span<const unsigned> nodes, unsigned node_workers) {
    std::ostringstream out;
    const auto rows = forkline_probe::predict_nodes(r, nodes, node_workers);
    out << "predicted:  " << node_workers << (node_workers == 1 ? " worker" : " workers")
        << " per node; speedup over one worker by the fits, effective workers = the USL speedup\n";
    out << pad("nodes", 7) << pad("workers", 9) << pad("USL", 10) << pad("Amdahl", 10) << pad("paths", 12)
        << pad("stretch", 9) << "\n";
    double most = 0;
    for (const auto& row : rows) {
        out << pad(std::to_string(row.nodes), 7) << pad(general(static_cast<double>(row.nodes) * row.workers), 9)
            << pad(fixed(row.usl_speedup, 1), 10) << pad(fixed(row.amdahl_speedup, 1), 10) << pad(general(row.paths), 12)
            << pad(fixed(row.beyond, 0) + "x", 9) << "\n";
        most = std::max(most, row.beyond);
    }
    out << "            (paths: N (N - 1) / 2 between nodes; stretch: how far past the largest measured count the\n"
           "            fit is taken. A fit from a few points on one host says what its alpha and beta imply, not\n"
           "            what a network of those nodes will do";
    if (most > 10) out << "; at " << fixed(most, 0) << "x past the data, read it as an order of magnitude";
    out << ")\n";
    return out.str();
}

/// The table and the fits of one workload, as printed and saved.
std::string describe(const probe::result& r, const std::string& description) {
    std::ostringstream out;
    out << "== " << r.name;
    if (!description.empty()) out << ": " << description;
    if (!r.command.empty()) out << ": " << r.command;
    out << "\n";
    bool shares = false;
    bool rusage = false;
    for (const probe::point& p : r.points) {
        shares = shares || p.shares.has_value();
        rusage = rusage || p.peak_rss_kb >= 0;
    }
    bool ranked = false;
    for (const probe::point& p : r.points) ranked = ranked || p.ranks > 0;
    // With ranks: "RxW" (ranks x workers per rank) beside the total.
    const std::size_t first = ranked ? 8 : 7;  // a space after "RxW"'s column
    if (ranked) out << pad("RxW", 6);
    out << pad("workers", first) << pad("median", 11) << pad("min", 11) << pad("max", 11) << pad("reps", 5)
        << pad("spread", 7) << pad("speedup", 8) << pad("effic", 6) << pad("K-F", 7);
    if (shares) out << pad("work", 6) << pad("steal", 6) << pad("fail", 6) << pad("park", 6) << pad("join", 6) << pad("infl", 6);
    if (rusage) out << pad("user", 9) << pad("sys", 9) << pad("RSS MB", 8);
    bool host = false;
    for (const probe::point& p : r.points) host = host || std::isfinite(p.host_slowdown);
    if (host) out << pad("host", 6);
    out << "\n";
    for (const probe::point& p : r.points) {
        if (ranked) out << pad(shape_text(p), 6);
        out << pad(std::to_string(p.workers), first) << pad(seconds_text(p.median_s), 11) << pad(seconds_text(p.min_s), 11)
            << pad(seconds_text(p.max_s), 11) << pad(std::to_string(p.seconds.size()), 5)
            << pad(fixed(100 * p.spread, 1) + "%", 7) << pad(fixed(p.speedup, 2), 8) << pad(fixed(p.efficiency, 2), 6)
            << pad(fixed(p.karp_flatt, 3), 7);
        if (shares) {
            if (p.shares) {
                out << pad(percent(p.shares->working), 6) << pad(percent(p.shares->stealing), 6)
                    << pad(percent(p.shares->failed_search), 6) << pad(percent(p.shares->parked), 6)
                    << pad(percent(p.shares->join_waiting), 6) << pad(fixed(p.work_inflation, 2), 6);
            } else {
                out << pad("-", 36);
            }
        }
        if (rusage) {
            out << pad(fixed(p.user_s, 2), 9) << pad(fixed(p.sys_s, 2), 9)
                << pad(p.peak_rss_kb >= 0 ? fixed(static_cast<double>(p.peak_rss_kb) / 1024.0, 1) : "-", 8);
        }
        if (host) out << pad(fixed(p.host_slowdown, 2), 6);
        out << "\n";
    }
    if (r.verdict == probe::limit::failed) {
        out << "FAILED: " << r.error << "\n\n";
        return out.str();
    }
    const forkline::amdahl_fit& a = r.amdahl;
    out << "Amdahl:     ";
    if (a.status == forkline::fit_status::ok || a.status == forkline::fit_status::linear) {
        out << "serial fraction " << fixed(a.serial_fraction, 4) << " (95% " << fixed(a.ci_low, 4) << " .. "
            << fixed(a.ci_high, 4) << "), speedup bound " << general(a.max_speedup);
        if (!a.note.empty()) out << "; " << a.note;
    } else {
        out << forkline::to_string(a.status) << ": " << a.note;
    }
    if (r.amdahl_corrected) {
        // The correction and what it moved, side by side.
        const forkline::amdahl_fit& raw = r.amdahl_uncorrected;
        out << "\n            corrected for the host's compute slowdown (the parallel part at N runs the `host`"
               " column's factor slower); uncorrected: ";
        if (std::isfinite(raw.serial_fraction)) {
            out << "serial fraction " << fixed(raw.serial_fraction, 4);
            if (std::isfinite(raw.ci_low)) out << " (95% " << fixed(raw.ci_low, 4) << " .. " << fixed(raw.ci_high, 4) << ")";
        } else {
            out << forkline::to_string(raw.status);
        }
    }
    out << "\n";
    const forkline::usl_fit& u = r.usl;
    out << "USL:        ";
    if (u.status == forkline::fit_status::ok || u.status == forkline::fit_status::no_peak ||
        u.status == forkline::fit_status::linear) {
        out << "contention " << general(u.alpha) << ", coherency " << general(u.beta) << ", ";
        if (u.peak_workers > 0) {
            out << "peak at " << fixed(u.peak_workers, 1) << " workers, ";
        } else {
            out << "no peak, ";
        }
        out << "speedup ceiling " << general(u.max_speedup);
        if (!u.note.empty()) out << "; " << u.note;
    } else {
        out << forkline::to_string(u.status) << ": " << u.note;
    }
    out << "\n";
    if (!r.points.empty()) {
        const forkline::usl_costs c = forkline::usl_costs_at(u, r.points.back().workers);
        if (std::isfinite(c.speedup)) {
            const unsigned n = r.points.back().workers;
            out << "at " << n << ":      " << fixed(c.speedup, 2) << " effective workers, " << general(c.paths)
                << " coordination paths; of the time, " << percent(c.contention_share) << " lost to contention, "
                << percent(c.coherency_share) << " to coherency; efficiency 50% at ";
            out << (std::isinf(c.half_efficiency_workers) ? std::string("no count") : fixed(c.half_efficiency_workers, 1) + " workers");
            if (u.peak_workers > 0) out << ", adding workers stops paying at " << fixed(u.peak_workers, 1);
            out << "\n";
        }
    }
    if (r.graph) {
        const probe::work_span& g = *r.graph;
        out << "work/span:  work " << seconds_text(g.work_s) << ", span " << seconds_text(g.span_s) << ", parallelism "
            << general(g.parallelism) << " (burdened " << general(g.burdened_parallelism) << ", steal cost "
            << seconds_text(g.burden_s) << ", " << g.spawns << " spawns, loops split for " << g.nominal_workers
            << " workers)\n";
    }
    if (r.pipeline) {
        const probe::pipeline_bound& pb = *r.pipeline;
        out << "stages:    ";
        for (const auto& s : pb.stages) {
            out << " " << s.name << (s.mode == forkline::stage_mode::parallel ? " (parallel) " : " (serial) ")
                << percent(s.share) << ";";
        }
        out << " serial share " << percent(pb.serial_share) << ", bound " << general(pb.bound);
        if (!pb.bottleneck.empty()) out << " (bottleneck '" << pb.bottleneck << "')";
        out << "\n";
    }
    {
        // How busy the host was: other processes' cpus, disturbed repetitions.
        double others = -1;
        for (const probe::point& p : r.points) {
            if (std::isfinite(p.others_cpus)) others = std::max(others, p.others_cpus);
        }
        if (others >= 0 || r.disturbed_reps > 0) {
            out << "host:       ";
            if (r.disturbed_reps == 0) {
                out << "quiet";
            } else {
                out << "BUSY: " << r.disturbed_reps << " repetition" << (r.disturbed_reps == 1 ? "" : "s")
                    << " disturbed" << (r.disturbed ? ", some kept past the retries" : ", each run again");
            }
            if (others >= 0) out << " (other processes used at most " << fixed(others, 2) << " cpus in a kept repetition)";
            out << "\n";
        }
    }
    out << "verdict:    " << probe::to_string(r.verdict);
    if (!r.why.empty()) out << ": " << r.why;
    out << "\n\n";
    return out.str();
}

std::string default_out_dir() {
    char host[256] = "host";
    if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "host");
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    return std::string("forkline-probe-") + host + "-" + stamp;
}

void write_file(const std::filesystem::path& path, const std::string& what,
                const std::function<void(std::ostream&)>& fill) {
    std::ofstream f(path);
    if (f) fill(f);
    f.flush();
    if (!f) {
        const int e = errno;
        throw forkline::system_failure("write", e, "cannot write " + what + " to " + path.string());
    }
}

}  // namespace

int main(int argc, char** argv) {
    probe::options o;
    effort level = effort::normal;
    bool reps_given = false, min_given = false, spread_given = false;
    std::string out_dir, json_file, csv_file;
    bool plots = true, show_output = false, list = false, strict = false;
    bool ceiling = true, recalibrate = false;
    std::vector<std::string> names, command;
    std::vector<unsigned> ranks, nodes;
    unsigned node_workers = 0;
    std::vector<std::string> compare;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) usage_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--") {
            for (++i; i < argc; ++i) command.emplace_back(argv[i]);
            if (command.empty()) usage_error("-- must be followed by a command");
        } else if (a == "-h" || a == "--help") {
            std::cout << k_usage;
            return 0;
        } else if (a == "--workers") {
            try {
                o.workers = probe::parse_worker_counts(value());
            } catch (const forkline::config_error& e) {
                usage_error(e.what());
            }
        } else if (a == "--ranks" || a == "--nodes") {
            try {
                (a == "--ranks" ? ranks : nodes) = probe::parse_worker_counts(value());
            } catch (const forkline::config_error& e) {
                usage_error(a + ": " + e.what());
            }
        } else if (a == "--node-workers") {
            node_workers = parse_unsigned(a, value(), 1);
        } else if (a == "--reps") {
            o.max_reps = parse_unsigned(a, value(), 1);
            reps_given = true;
        } else if (a == "--min-reps") {
            o.min_reps = parse_unsigned(a, value(), 1);
            min_given = true;
        } else if (a == "--warmup") {
            o.warmup = parse_unsigned(a, value(), 0);
        } else if (a == "--spread") {
            o.target_spread = parse_double(a, value());
            spread_given = true;
        } else if (a == "--quick") {
            level = effort::quick;
        } else if (a == "--thorough") {
            level = effort::thorough;
        } else if (a == "--places") {
            const std::string v = value();
            if (v == "compact") {
                o.policy = forkline::placement_policy::compact;
            } else if (v == "scatter") {
                o.policy = forkline::placement_policy::scatter;
            } else {
                usage_error("--places wants compact or scatter, not '" + v + "'");
            }
        } else if (a == "--smt") {
            o.use_smt = true;
        } else if (a == "--out") {
            out_dir = value();
        } else if (a == "--json") {
            json_file = value();
        } else if (a == "--csv") {
            csv_file = value();
        } else if (a == "--no-plots") {
            plots = false;
        } else if (a == "--no-ceiling") {
            ceiling = false;
        } else if (a == "--recalibrate") {
            recalibrate = true;
        } else if (a == "--busy-retries") {
            o.max_disturbed = parse_unsigned(a, value(), 0);
        } else if (a == "--strict") {
            strict = true;
        } else if (a == "--compare") {
            compare.emplace_back(value());
            if (i + 1 >= argc) usage_error("--compare needs two reports");
            compare.emplace_back(argv[++i]);
        } else if (a == "--show-output") {
            show_output = true;
        } else if (a == "--list") {
            list = true;
        } else if (!a.empty() && a[0] == '-') {
            usage_error("unknown option " + a);
        } else {
            names.push_back(a);
        }
    }
    if (!compare.empty()) {
        if (!command.empty() || !names.empty()) usage_error("--compare takes two reports and nothing to run");
        try {
            const unsigned slower = forkline_probe::compare_reports(compare[0], compare[1], std::cout);
            return strict && slower > 0 ? 3 : 0;
        } catch (const std::exception& e) {
            std::cerr << "forkline-probe: --compare: " << e.what() << "\n";
            return 1;
        }
    }
    if (!command.empty() && !names.empty()) usage_error("workload names and a command do not mix");
    if (!ranks.empty() && command.empty()) usage_error("--ranks needs a command (-- mpirun -np {ranks} ...)");
    if (!ranks.empty() && o.workers.empty()) o.workers = {1};
    if (node_workers != 0 && nodes.empty()) usage_error("--node-workers goes with --nodes");
    if (!nodes.empty() && node_workers == 0) {
        // The most workers one process was measured with, as a node's.
        node_workers = 1;
        for (const unsigned w : o.workers) node_workers = std::max(node_workers, w);
    }
    // Effort sets the repetition defaults that were not given.
    if (level == effort::quick) {
        if (!reps_given) o.max_reps = 5;
        if (!spread_given) o.target_spread = 0.1;
        if (!min_given) o.min_reps = 3;
    } else if (level == effort::thorough) {
        if (!reps_given) o.max_reps = 20;
        if (!spread_given) o.target_spread = 0.02;
        if (!min_given) o.min_reps = 5;
    }
    if (o.min_reps > o.max_reps) {
        if (min_given && reps_given) usage_error("--min-reps is above --reps");
        if (min_given) o.max_reps = o.min_reps; else o.min_reps = o.max_reps;
    }

    const auto workloads = forkline_probe::builtin_workloads();
    if (list) {
        for (const auto& w : workloads) std::cout << w.name << "  " << w.description << "\n";
        return 0;
    }
    std::vector<const forkline_probe::builtin*> chosen;
    for (const std::string& n : names) {
        const forkline_probe::builtin* found = nullptr;
        for (const auto& w : workloads) {
            if (w.name == n) found = &w;
        }
        if (found == nullptr) usage_error("no built-in workload '" + n + "' (see --list)");
        chosen.push_back(found);
    }
    if (command.empty() && chosen.empty()) {
        for (const auto& w : workloads) chosen.push_back(&w);
    }

    const bool tty = isatty(STDERR_FILENO) != 0;
    o.on_progress = [tty](const probe::progress& p) {
        if (!tty) return;
        std::fprintf(stderr, "\r\033[K[%.*s] %u workers, %s: %s", static_cast<int>(p.name.size()), p.name.data(),
                     p.workers, p.repetition == 0 ? "warm-up" : ("rep " + std::to_string(p.repetition)).c_str(),
                     seconds_text(p.seconds).c_str());
        std::fflush(stderr);
    };

    try {
        if (o.workers.empty()) o.workers = probe::default_worker_counts(forkline::topology::discover(), o.use_smt);
        std::string counts;
        for (unsigned n : o.workers) counts += (counts.empty() ? "" : ",") + std::to_string(n);
        std::cerr << "forkline-probe: worker counts " << counts;
        if (!ranks.empty()) {
            std::string rank_list;
            for (unsigned n : ranks) rank_list += (rank_list.empty() ? "" : ",") + std::to_string(n);
            std::cerr << " per rank, rank counts " << rank_list;
        }
        std::cerr << "\n";

        std::vector<probe::result> results;
        std::vector<std::string> descriptions;
        std::vector<std::string> texts;  // each workload's part of the report, for the HTML page
        std::string host_text;           // the ceiling lines
        std::string report;
        if (ceiling) {
            // The host first: what any work gets per thread at each count.
            std::vector<unsigned> totals;
            for (const unsigned w : o.workers) {
                if (ranks.empty()) totals.push_back(w);
                for (const unsigned n : ranks) totals.push_back(n * w);
            }
            std::sort(totals.begin(), totals.end());
            totals.erase(std::unique(totals.begin(), totals.end()), totals.end());
            const auto t0 = std::chrono::steady_clock::now();
            o.ceiling = probe::host_compute_ceiling(totals, o.policy, o.use_smt, recalibrate,
                                                    level == effort::thorough ? 0.1 : 0.05);
            const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::string line = "host ceiling: compute slowdown per thread";
            for (const probe::compute_ceiling& c : o.ceiling) {
                line += " " + fixed(c.slowdown, 2) + "x at " + std::to_string(c.workers) + ",";
            }
            if (!o.ceiling.empty()) line.pop_back();
            line += took > 0.05 ? " (measured in " + fixed(took, 1) + " s)" : " (cached)";
            if (command.empty()) {
                // The built-in workloads have runtime counters and say their
                // bytes, so a slowdown per thread can be put beside memory's.
                const auto m0 = std::chrono::steady_clock::now();
                o.memory = probe::host_memory_ceiling(totals, o.policy, o.use_smt, recalibrate,
                                                      level == effort::thorough ? 0.1 : 0.05);
                const double mtook = std::chrono::duration<double>(std::chrono::steady_clock::now() - m0).count();
                line += "\nhost ceiling: memory (triad)";
                for (const probe::memory_ceiling& m : o.memory) {
                    line += " " + fixed(m.bytes_per_s * 1e-9, 1) + " GB/s at " + std::to_string(m.workers) + ",";
                }
                if (!o.memory.empty()) line.pop_back();
                line += mtook > 0.05 ? " (measured in " + fixed(mtook, 1) + " s)" : " (cached)";
            }
            std::cout << line << "\n\n";
            report += line + "\n\n";
            host_text = line;
        }
        auto finish_one = [&](probe::result r, std::string description) {
            if (tty) std::fprintf(stderr, "\r\033[K");
            std::string text = describe(r, description);
            if (!nodes.empty() && r.verdict != probe::limit::failed) {
                text.insert(text.size() - 1, describe_nodes(r, nodes, node_workers));  // before the blank line
            }
            std::cout << text << std::flush;
            report += text;
            texts.push_back(text);
            results.push_back(std::move(r));
            descriptions.push_back(std::move(description));
        };
        if (!command.empty()) {
            std::cerr << "forkline-probe: probing the command\n";
            finish_one(forkline_probe::probe_command(command, o, show_output, ranks), "");
        } else {
            for (const auto* w : chosen) {
                std::cerr << "forkline-probe: " << w->name << " ...\n";
                finish_one(w->run(o, level), w->description);
            }
        }

        if (out_dir.empty()) out_dir = default_out_dir();
        const std::filesystem::path dir(out_dir);
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        if (ec) throw forkline::system_failure("mkdir", ec.value(), "cannot create the report folder " + out_dir);
        write_file(dir / "results.json", "the JSON report", [&](std::ostream& f) { probe::write_json(f, results); });
        write_file(dir / "results.csv", "the CSV report", [&](std::ostream& f) { probe::write_csv(f, results); });
        write_file(dir / "report.txt", "the text report", [&](std::ostream& f) { f << report; });
        if (!json_file.empty()) {
            write_file(json_file, "the JSON report", [&](std::ostream& f) { probe::write_json(f, results); });
        }
        if (!csv_file.empty()) {
            write_file(csv_file, "the CSV report", [&](std::ostream& f) { probe::write_csv(f, results); });
        }
        std::size_t pictures = 0;
        if (plots) {
            std::string note;
            for (const probe::result& r : results) {
                if (r.points.empty()) continue;
                for (const auto& f : forkline_probe::write_plots(dir, r, note)) {
                    if (f.extension() == ".png" || f.extension() == ".svg") ++pictures;
                }
            }
            if (!note.empty()) std::cerr << "forkline-probe: " << note << "\n";
        }
        // After the plots: the page inlines their SVG files.
        write_file(dir / "report.html", "the HTML report", [&](std::ostream& f) {
            f << forkline_probe::html_report("forkline-probe: " + dir.filename().string(), host_text, results, texts,
                                             dir);
        });
        std::cerr << "forkline-probe: report in " << out_dir << "/ (results.json, results.csv, report.txt, report.html, "
                  << pictures << " plots)\n";
        for (const probe::result& r : results) {
            if (r.verdict == probe::limit::failed) {
                std::cerr << "forkline-probe: " << r.name << " failed: " << r.error << "\n";
                return 1;
            }
        }
        if (strict) {
            for (const probe::result& r : results) {
                if (r.disturbed_reps > 0) {
                    std::cerr << "forkline-probe: --strict: the host was busy during " << r.name << " ("
                              << r.disturbed_reps << " disturbed repetitions)\n";
                    return 3;
                }
            }
        }
        return 0;
    } catch (const std::exception& e) {
        if (tty) std::fprintf(stderr, "\r\033[K");
        std::cerr << "forkline-probe: " << e.what() << "\n";
        return 1;
    }
}

// bench/distribute/distribute.cpp: `forkline-bench distribute [scenario] [options]`,
// the comparison of work-distribution policies on one open-loop stream.
// The scenarios, the repetition loop (variants alternate within each
// repetition) and the outputs: table, JSON, Markdown, gnuplot plots.
#include "distribute/distribute.hpp"

#include <algorithm>    // sort, find
#include <cerrno>       // errno
#include <charconv>     // from_chars
#include <cmath>        // lround
#include <cstdio>       // fprintf, fopen
#include <cstdlib>      // system
#include <cstring>      // strerror
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

#include "distribute/herd.hpp"  // herd_main (`distribute herd`)
#include "distribute/policy.hpp"
#include "distribute/replay.hpp"
#include "distribute/schedule.hpp"
#include "distribute/streams.hpp"  // saturation_main, batch_main

namespace forkline_bench::distribute {
namespace {

struct bad_command : std::exception {
    explicit bad_command(std::string m) : message(std::move(m)) {}
    const char* what() const noexcept override { return message.c_str(); }
    std::string message;
};

struct options {
    std::string scenario = "sweep";
    std::vector<std::string> policies;  // empty: every built one
    std::vector<service_shape> shapes{service_shape::exponential};
    std::vector<double> loads;  // empty: the scenario's
    unsigned workers = 2;
    double mean_us = 100;
    std::uint32_t requests = 0;  // 0: the scenario's default
    unsigned reps = 5;
    std::uint64_t seed = 1;
    double late_us = 50;
    double spin_us = 10;
    std::size_t capacity = 256;
    double call_us = 20, item_us = 2;
    bool ideal = true;
    std::string json_path, markdown_path, plot_dir;
};

// One (shape, load, policy, straggler) point and its repetitions.
struct point {
    service_shape shape;
    double rho;
    std::string policy;
    bool straggler = false;
    std::vector<run_figures> runs;  // the accepted ones
    unsigned refused = 0;
    double worst_late_share = 0;
};

double number(std::string_view text, double lo, double hi, std::string_view what) {
    double v = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || !(v >= lo && v <= hi)) {
        throw bad_command(std::string(what) + " takes a number from " + std::to_string(lo) + " to " +
                          std::to_string(hi) + ", not '" + std::string(text) + "'");
    }
    return v;
}

std::vector<std::string> split(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        const std::size_t c = text.find(',');
        out.emplace_back(text.substr(0, c));
        if (c == std::string_view::npos) break;
        text.remove_prefix(c + 1);
    }
    return out;
}

void print_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: forkline-bench distribute [SCENARIO] [options]\n"
                 "\n"
                 "Replays one open-loop request stream (made from --seed before the run) through\n"
                 "each distribution policy, alternating policies within each repetition, beside\n"
                 "the simulated ideal (a zero-overhead central FCFS queue on the same schedule).\n"
                 "Latency is completion minus scheduled arrival. A run whose generator was more\n"
                 "than --late-us behind schedule for over 1%% of requests is refused.\n"
                 "\n"
                 "scenarios:\n"
                 "  sweep        rho 0.5..0.95 step 0.05, 0.975, 1.2, 2.0 (default)\n"
                 "  overload     rho 0.8, 1.2, 2.0\n"
                 "  straggler    rho 0.7, with and without worker 0 4x slower in the middle third\n"
                 "  throughput   empty requests, all at time 0: the rate each policy sustains\n"
                 "  saturation   the stream executor at rho 0.5, 0.8, 1.2, 2.0 under block, reject and\n"
                 "               shed admission, classes 0/1/2 at 10/30/60%%: queue depth every 1 ms,\n"
                 "               p99 and refusals per class, peak RSS; a run that loses a request fails\n"
                 "  batch        handler of --call-us per call + --item-us per item at loads 0.2, 0.5,\n"
                 "               0.8 of the one-by-one stream's capacity: the stream (K=1) against\n"
                 "               batch_stream at K 4, 16, 64 and T 50, 200 us\n"
                 "  herd         the thundering herd: `distribute herd --help`\n"
                 "\n"
                 "options (also as --opt=value):\n"
                 "  --policies LIST  from: ");
    bool first = true;
    for (const policy_entry& e : policy_entries()) {
        std::fprintf(out, "%s%.*s%s", first ? "" : ",", static_cast<int>(e.name.size()), e.name.data(),
                     e.built ? "" : "(not built)");
        first = false;
    }
    std::fprintf(out,
                 "\n"
                 "  --service LIST   fixed, exp, bimodal (default exp)\n"
                 "  --rho LIST       loads instead of the scenario's\n"
                 "  --workers N      workers per policy (default 2)\n"
                 "  --mean-us U      mean service time, 50..1000 us (default 100)\n"
                 "  --requests N     requests per run (default 4000; throughput 100000)\n"
                 "  --reps R         repetitions (default 5); the table shows median [min, max]\n"
                 "  --seed S         schedule seed (default 1); rep r and load k use S + 1000 r + k\n"
                 "  --late-us U      a submission this far behind schedule is late (default 50)\n"
                 "  --spin-us U      the generator spins the last U us before an arrival (default 10)\n"
                 "  --no-ideal       leave the simulated ideal out\n"
                 "  --capacity N     saturation: the executor's bound (default 256)\n"
                 "  --call-us U      batch: handler cost per call (default 20)\n"
                 "  --item-us U      batch: handler cost per item (default 2)\n"
                 "  --json FILE      the points as a JSON array\n"
                 "  --markdown FILE  the table as Markdown\n"
                 "  --plot DIR       p99 (and p50) against load per service shape, gnuplot PNG + SVG\n");
}

options parse(int argc, char** argv) {
    options o;
    int i = 1;
    if (i < argc && argv[i][0] != '-') o.scenario = argv[i++];
    if (o.scenario != "sweep" && o.scenario != "overload" && o.scenario != "straggler" &&
        o.scenario != "throughput" && o.scenario != "saturation" && o.scenario != "batch") {
        throw bad_command("unknown scenario '" + o.scenario + "'");
    }
    for (; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") throw bad_command("");
        if (arg == "--no-ideal") {
            o.ideal = false;
            continue;
        }
        if (arg.substr(0, 2) != "--") throw bad_command("unexpected argument '" + std::string(arg) + "'");
        arg.remove_prefix(2);
        std::string_view key = arg, value;
        if (const std::size_t eq = arg.find('='); eq != std::string_view::npos) {
            key = arg.substr(0, eq);
            value = arg.substr(eq + 1);
        } else {
            if (i + 1 >= argc) throw bad_command("--" + std::string(key) + " needs a value");
            value = argv[++i];
        }
        if (key == "policies") {
            o.policies = split(value);
            for (const std::string& p : o.policies) {
                bool known = false;
                for (const policy_entry& e : policy_entries()) {
                    if (e.name != p) continue;
                    known = true;
                    if (!e.built) throw bad_command("policy " + p + " is not built: " + std::string(e.absent_reason));
                }
                if (!known) throw bad_command("unknown policy '" + p + "'");
            }
        } else if (key == "service") {
            o.shapes.clear();
            for (const std::string& s : split(value)) {
                service_shape sh{};
                if (!parse_shape(s, sh)) throw bad_command("unknown service shape '" + s + "'; fixed, exp, bimodal");
                o.shapes.push_back(sh);
            }
        } else if (key == "rho") {
            for (const std::string& s : split(value)) o.loads.push_back(number(s, 0.01, 10, "--rho"));
        } else if (key == "workers") {
            o.workers = static_cast<unsigned>(number(value, 1, 1024, "--workers"));
        } else if (key == "mean-us") {
            o.mean_us = number(value, 50, 1000, "--mean-us");
        } else if (key == "requests") {
            o.requests = static_cast<std::uint32_t>(number(value, 10, 1e8, "--requests"));
        } else if (key == "reps") {
            o.reps = static_cast<unsigned>(number(value, 1, 1000, "--reps"));
        } else if (key == "seed") {
            o.seed = static_cast<std::uint64_t>(number(value, 0, 1e15, "--seed"));
        } else if (key == "late-us") {
            o.late_us = number(value, 1, 1e6, "--late-us");
        } else if (key == "spin-us") {
            o.spin_us = number(value, 0, 1e6, "--spin-us");
        } else if (key == "capacity") {
            o.capacity = static_cast<std::size_t>(number(value, 1, 1e7, "--capacity"));
        } else if (key == "call-us") {
            o.call_us = number(value, 0, 1e5, "--call-us");
        } else if (key == "item-us") {
            o.item_us = number(value, 0, 1e5, "--item-us");
        } else if (key == "json") {
            o.json_path = value;
        } else if (key == "markdown") {
            o.markdown_path = value;
        } else if (key == "plot") {
            o.plot_dir = value;
        } else {
            throw bad_command("unknown option --" + std::string(key));
        }
    }
    if (o.policies.empty()) {
        for (const policy_entry& e : policy_entries()) {
            if (e.built) o.policies.emplace_back(e.name);
        }
    }
    if (o.loads.empty()) {
        if (o.scenario == "sweep") {
            for (int k = 10; k <= 19; ++k) o.loads.push_back(k * 0.05);
            o.loads.insert(o.loads.end(), {0.975, 1.2, 2.0});
        } else if (o.scenario == "overload") {
            o.loads = {0.8, 1.2, 2.0};
        } else if (o.scenario == "straggler") {
            o.loads = {0.7};
        } else if (o.scenario == "throughput") {
            o.loads = {1.0};
        }  // saturation, batch: their own defaults (streams.hpp)
    }
    if (o.requests == 0) o.requests = o.scenario == "throughput" ? 100000 : 4000;
    return o;
}

// Median, min and max of one figure over a point's accepted runs.
struct spread {
    double median = 0, min = 0, max = 0;
};
template <class Get>
spread spread_of(const point& p, Get get) {
    std::vector<double> v;
    for (const run_figures& r : p.runs) v.push_back(get(r));
    if (v.empty()) return {};
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    const double median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return {median, v.front(), v.back()};
}

const auto k_thr = [](const run_figures& r) { return r.throughput; };
const auto k_p50 = [](const run_figures& r) { return r.p50_us; };
const auto k_p99 = [](const run_figures& r) { return r.p99_us; };
const auto k_p999 = [](const run_figures& r) { return r.p999_us; };
const auto k_gen = [](const run_figures& r) { return r.generator_cpu; };

std::vector<point> run_all(const options& o) {
    std::vector<point> points;
    const bool throughput = o.scenario == "throughput";
    const std::vector<bool> straggler_modes =
        o.scenario == "straggler" ? std::vector<bool>{false, true} : std::vector<bool>{false};
    std::vector<std::string> variants = o.policies;
    if (o.ideal && !throughput) variants.insert(variants.begin(), "ideal");
    for (const service_shape shape : o.shapes) {
        for (const double rho : o.loads) {
            for (const bool straggler : straggler_modes) {
                for (const std::string& v : variants) points.push_back({shape, rho, v, straggler, {}, 0, 0});
            }
        }
    }
    std::size_t at = 0;
    for (unsigned rep = 0; rep < o.reps; ++rep) {
        at = 0;
        for (std::size_t s = 0; s < o.shapes.size(); ++s) {
            for (std::size_t k = 0; k < o.loads.size(); ++k) {
                schedule_config sc;
                sc.seed = o.seed + 1000 * rep + k;
                sc.workers = o.workers;
                sc.rho = o.loads[k];
                sc.mean_service_ns = throughput ? 0.0 : o.mean_us * 1e3;
                sc.shape = o.shapes[s];
                sc.requests = o.requests;
                const std::vector<request> schedule = make_schedule(sc);
                for (const bool straggler : straggler_modes) {
                    replay_options ro;
                    ro.workers = o.workers;
                    ro.straggler = straggler;
                    ro.late_ns = static_cast<std::uint64_t>(o.late_us * 1e3);
                    ro.spin_ns = static_cast<std::uint64_t>(o.spin_us * 1e3);
                    for (std::size_t vi = 0; vi < variants.size(); ++vi, ++at) {
                        point& p = points[at];
                        std::fprintf(stderr, "distribute rep %u/%u %s rho=%.3g %s%s\n", rep + 1, o.reps,
                                     std::string(shape_name(p.shape)).c_str(), p.rho, p.policy.c_str(),
                                     straggler ? " straggler" : "");
                        run_figures f =
                            p.policy == "ideal" ? simulate_ideal(schedule, ro) : replay(p.policy, schedule, ro);
                        if (throughput) f.refused = false;  // everything is "late" by design: all arrive at 0
                        const double late_share = static_cast<double>(f.late) / static_cast<double>(f.requests);
                        if (!throughput) p.worst_late_share = std::max(p.worst_late_share, late_share);
                        if (f.refused) {
                            ++p.refused;
                            std::fprintf(stderr, "  refused: %u of %u submissions late (max lag %.0f us)\n", f.late,
                                         f.requests, f.max_lag_us);
                        } else {
                            p.runs.push_back(f);
                        }
                    }
                }
            }
        }
    }
    return points;
}

std::string fmt_spread(const spread& s, const char* f) {
    char a[32], b[32], c[32];
    std::snprintf(a, sizeof a, f, s.median);
    std::snprintf(b, sizeof b, f, s.min);
    std::snprintf(c, sizeof c, f, s.max);
    return std::string(a) + " [" + b + ", " + c + "]";
}

// The highest load whose median p99 stays under 10x the mean service time
// (0 when none does). Loads in the order given.
double highest_good_load(const std::vector<point>& points, const point& like, double mean_us) {
    double best = 0;
    for (const point& p : points) {
        if (p.shape != like.shape || p.policy != like.policy || p.straggler != like.straggler || p.runs.empty()) {
            continue;
        }
        if (spread_of(p, k_p99).median < 10 * mean_us) best = std::max(best, p.rho);
    }
    return best;
}

bool is_first_of_policy(const std::vector<point>& points, std::size_t i) {
    for (std::size_t j = 0; j < i; ++j) {
        if (points[j].shape == points[i].shape && points[j].policy == points[i].policy &&
            points[j].straggler == points[i].straggler) {
            return false;
        }
    }
    return true;
}

void print_table(std::FILE* out, const options& o, const std::vector<point>& points, bool markdown) {
    const char* sep = markdown ? " | " : "  ";
    if (markdown) {
        std::fprintf(out,
                     "| service | rho | policy | straggler | req/s | p50 us | p99 us | p99.9 us | n | rejected | "
                     "expired | refused runs | gen cpu |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    } else {
        std::fprintf(out, "%-8s %6s %-9s %4s %-28s %-28s %-28s %-28s %6s %4s %4s %4s %5s\n", "service", "rho",
                     "policy", "slow", "req/s med [min, max]", "p50 us", "p99 us", "p99.9 us", "n", "rej", "exp",
                     "refu", "gen%");
    }
    for (const point& p : points) {
        const std::string shape(shape_name(p.shape));
        std::uint32_t rejected = 0, expired = 0, n = 0;
        for (const run_figures& r : p.runs) {
            rejected += r.rejected;
            expired += r.expired;
            n = r.measured;
        }
        const std::string thr = fmt_spread(spread_of(p, k_thr), "%.0f");
        const std::string p50 = fmt_spread(spread_of(p, k_p50), "%.1f");
        const std::string p99 = fmt_spread(spread_of(p, k_p99), "%.1f");
        const std::string p999 = fmt_spread(spread_of(p, k_p999), "%.1f");
        const double gen = spread_of(p, k_gen).median * 100;
        if (markdown) {
            std::fprintf(out, "| %s%s%.3g%s%s%s%s%s%s%s%s%s%s%s%s%s%u%s%u%s%u%s%u%s%.1f%% |\n", shape.c_str(), sep,
                         p.rho, sep, p.policy.c_str(), sep, p.straggler ? "yes" : "no", sep, thr.c_str(), sep,
                         p50.c_str(), sep, p99.c_str(), sep, p999.c_str(), sep, n, sep, rejected, sep, expired, sep,
                         p.refused, sep, gen);
        } else {
            std::fprintf(out, "%-8s %6.3g %-9s %4s %-28s %-28s %-28s %-28s %6u %4u %4u %4u %5.1f\n", shape.c_str(),
                         p.rho, p.policy.c_str(), p.straggler ? "yes" : "no", thr.c_str(), p50.c_str(), p99.c_str(),
                         p999.c_str(), n, rejected, expired, p.refused, gen);
        }
    }
    if (o.scenario == "throughput" || o.loads.size() < 2) return;
    std::fprintf(out, markdown ? "\nHighest load keeping the median p99 under 10x the mean service time (%.0f us):\n\n"
                               : "\nhighest load with median p99 < 10x mean service (%.0f us):\n",
                 10 * o.mean_us);
    for (std::size_t i = 0; i < points.size(); ++i) {
        if (!is_first_of_policy(points, i)) continue;
        const point& p = points[i];
        std::fprintf(out, markdown ? "- %s, %s%s: %.3g\n" : "  %-8s %-9s%s %.3g\n",
                     std::string(shape_name(p.shape)).c_str(), p.policy.c_str(), p.straggler ? " (straggler)" : "",
                     highest_good_load(points, p, o.mean_us));
    }
}

void write_json(std::FILE* out, const options& o, const std::vector<point>& points) {
    std::fprintf(out, "[\n");
    for (std::size_t i = 0; i < points.size(); ++i) {
        const point& p = points[i];
        std::uint32_t rejected = 0, expired = 0, n = 0;
        std::uint64_t scheduled = 0, completed = 0;
        for (const run_figures& r : p.runs) {
            rejected += r.rejected;
            expired += r.expired;
            n = r.measured;
            scheduled += r.requests;
            completed += r.completed;
        }
        const auto js = [&](const char* name, const spread& s) {
            std::fprintf(out, "\"%s\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}, ", name, s.median, s.min,
                         s.max);
        };
        std::fprintf(out,
                     "  {\"scenario\": \"%s\", \"service\": \"%s\", \"mean_service_us\": %.1f, \"rho\": %.4g, "
                     "\"policy\": \"%s\", \"straggler\": %s, \"workers\": %u, \"requests\": %u, \"reps\": %u, "
                     "\"accepted_runs\": %zu, \"refused_runs\": %u, \"worst_late_share\": %.4f, ",
                     o.scenario.c_str(), std::string(shape_name(p.shape)).c_str(), o.mean_us, p.rho,
                     p.policy.c_str(), p.straggler ? "true" : "false", o.workers, o.requests, o.reps, p.runs.size(),
                     p.refused, p.worst_late_share);
        js("throughput_per_s", spread_of(p, k_thr));
        js("p50_us", spread_of(p, k_p50));
        js("p99_us", spread_of(p, k_p99));
        js("p999_us", spread_of(p, k_p999));
        js("generator_cpu", spread_of(p, k_gen));
        // scheduled = completed + rejected + expired, over the accepted runs.
        std::fprintf(out,
                     "\"measured_per_run\": %u, \"scheduled\": %llu, \"completed\": %llu, \"rejected\": %u, "
                     "\"expired\": %u}%s\n",
                     n, static_cast<unsigned long long>(scheduled), static_cast<unsigned long long>(completed),
                     rejected, expired, i + 1 < points.size() ? "," : "");
    }
    std::fprintf(out, "]\n");
}

// One data file and one gnuplot script per service shape: p99 (solid) and
// p50 (dashed) against load, a line per policy, log scale in latency.
bool write_plots(const options& o, const std::vector<point>& points) {
    std::vector<std::string> names;
    for (const point& p : points) {
        if (std::find(names.begin(), names.end(), p.policy) == names.end()) names.push_back(p.policy);
    }
    bool ok = true;
    for (const service_shape shape : o.shapes) {
        const std::string base = o.plot_dir + "/distribute-" + o.scenario + "-" + std::string(shape_name(shape));
        std::FILE* dat = std::fopen((base + ".dat").c_str(), "w");
        if (dat == nullptr) {
            std::fprintf(stderr, "forkline-bench distribute: cannot write %s.dat: %s\n", base.c_str(),
                         std::strerror(errno));
            return false;
        }
        std::fprintf(dat, "# rho");
        for (const std::string& n : names) std::fprintf(dat, " %s_p99 %s_p50", n.c_str(), n.c_str());
        std::fprintf(dat, "\n");
        for (const double rho : o.loads) {
            std::fprintf(dat, "%.4g", rho);
            for (const std::string& n : names) {
                double p99 = -1, p50 = -1;
                for (const point& p : points) {
                    if (p.shape == shape && p.rho == rho && p.policy == n && !p.straggler && !p.runs.empty()) {
                        p99 = spread_of(p, k_p99).median;
                        p50 = spread_of(p, k_p50).median;
                    }
                }
                if (p99 < 0) std::fprintf(dat, " NaN NaN");
                else std::fprintf(dat, " %.2f %.2f", p99, p50);
            }
            std::fprintf(dat, "\n");
        }
        std::fclose(dat);
        std::FILE* gp = std::fopen((base + ".gp").c_str(), "w");
        if (gp == nullptr) return false;
        for (const char* term : {"pngcairo size 1000,650", "svg size 1000,650"}) {
            const bool png = term[0] == 'p';
            std::fprintf(gp, "set terminal %s\nset output '%s.%s'\n", term, base.c_str(), png ? "png" : "svg");
            std::fprintf(gp,
                         "set title 'latency against load, %s service, mean %.0f us, %u workers (solid p99, dashed "
                         "p50)'\nset xlabel 'offered load rho'\nset ylabel 'latency (us)'\nset logscale y\n"
                         "set key outside right\nset grid\nplot ",
                         std::string(shape_name(shape)).c_str(), o.mean_us, o.workers);
            // gnuplot's default colours repeat after eight; the policies are more.
            static const char* const k_colours[] = {"#000000", "#e41a1c", "#377eb8", "#4daf4a", "#984ea3",
                                                    "#ff7f00", "#a65628", "#f781bf", "#999999", "#17becf",
                                                    "#bcbd22"};
            for (std::size_t k = 0; k < names.size(); ++k) {
                const char* colour = k_colours[k % (sizeof k_colours / sizeof k_colours[0])];
                std::fprintf(gp, "%s'%s.dat' using 1:%zu with linespoints lc rgb '%s' dt 1 title '%s p99', '%s.dat' "
                                 "using 1:%zu with lines lc rgb '%s' dt 2 notitle",
                             k ? ", " : "", base.c_str(), 2 + 2 * k, colour, names[k].c_str(), base.c_str(), 3 + 2 * k,
                             colour);
            }
            std::fprintf(gp, "\n");
        }
        std::fclose(gp);
        const std::string cmd = "gnuplot '" + base + ".gp'";
        if (std::system(cmd.c_str()) != 0) {
            std::fprintf(stderr, "forkline-bench distribute: gnuplot failed on %s.gp (is gnuplot installed?)\n",
                         base.c_str());
            ok = false;
        }
    }
    return ok;
}

}  // namespace

int run_distribute(int argc, char** argv) {
    // The herd has its own options and starts no runtime (herd.cpp).
    if (argc >= 2 && std::string_view(argv[1]) == "herd") return herd_main(argc - 1, argv + 1);
    options o;
    try {
        o = parse(argc, argv);
    } catch (const bad_command& e) {
        if (!e.message.empty()) std::fprintf(stderr, "forkline-bench distribute: %s\n\n", e.what());
        print_usage(e.message.empty() ? stdout : stderr);
        return e.message.empty() ? 0 : 2;
    }
    if (o.scenario == "saturation" || o.scenario == "batch") {
#if FORKLINE_BENCH_HAVE_STREAM
        stream_args a;
        a.workers = o.workers;
        a.requests = o.requests;
        a.reps = o.reps;
        a.seed = o.seed;
        a.mean_us = o.mean_us;
        a.shape = o.shapes.front();
        a.loads = o.loads;
        a.late_ns = static_cast<std::uint64_t>(o.late_us * 1e3);
        a.spin_ns = static_cast<std::uint64_t>(o.spin_us * 1e3);
        a.capacity = o.capacity;
        a.call_us = o.call_us;
        a.item_us = o.item_us;
        a.json_path = o.json_path;
        a.markdown_path = o.markdown_path;
        return o.scenario == "saturation" ? saturation_main(a) : batch_main(a);
#else
        std::fprintf(stderr, "forkline-bench distribute: %s needs the stream executor, which this build lacks\n",
                     o.scenario.c_str());
        return 2;
#endif
    }
    std::FILE* json = nullptr;
    std::FILE* md = nullptr;
    if (!o.json_path.empty() && (json = std::fopen(o.json_path.c_str(), "w")) == nullptr) {
        std::fprintf(stderr, "forkline-bench distribute: cannot write --json %s: %s\n", o.json_path.c_str(),
                     std::strerror(errno));
        return 2;
    }
    if (!o.markdown_path.empty() && (md = std::fopen(o.markdown_path.c_str(), "w")) == nullptr) {
        std::fprintf(stderr, "forkline-bench distribute: cannot write --markdown %s: %s\n", o.markdown_path.c_str(),
                     std::strerror(errno));
        return 2;
    }

    const std::vector<point> points = run_all(o);
    std::printf("distribute %s: %u workers, mean service %.0f us, %u requests per run, %u reps, seed %llu\n",
                o.scenario.c_str(), o.workers, o.mean_us, o.requests, o.reps,
                static_cast<unsigned long long>(o.seed));
    print_table(stdout, o, points, false);
    bool ok = true;
    if (json != nullptr) {
        write_json(json, o, points);
        ok = std::fclose(json) == 0 && ok;
    }
    if (md != nullptr) {
        print_table(md, o, points, true);
        ok = std::fclose(md) == 0 && ok;
    }
    if (!o.plot_dir.empty() && o.scenario != "throughput") ok = write_plots(o, points) && ok;
    for (const point& p : points) {
        if (p.runs.empty()) ok = false;  // every repetition refused: no figure
    }
    return ok ? 0 : 1;
}

}  // namespace forkline_bench::distribute

// runtime/probe.cpp: scaling curves measured in process, the verdict on what
// limits them, and the per-steal cost. See "Probe" in runtime/DESIGN.md.
#include "forkline/probe.hpp"

#include <algorithm>  // sort, unique, max, min
#include <atomic>     // atomic
#include <chrono>     // steady_clock
#include <cmath>      // isfinite, sqrt, NAN
#include <cstdio>     // snprintf
#include <limits>     // numeric_limits
#include <map>        // map (per-count state)
#include <mutex>      // once_flag
#include <optional>   // optional
#include <string>     // string
#include <thread>     // sleep_for

#include "forkline/invoke.hpp"  // invoke (steal cost)

namespace forkline::probe {

namespace {

constexpr double k_nan = std::numeric_limits<double>::quiet_NaN();
constexpr double k_inf = std::numeric_limits<double>::infinity();

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Linearly interpolated quantile of sorted values, q in [0, 1].
double quantile(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return k_nan;
    const double pos = q * static_cast<double>(sorted.size() - 1);
    const auto lo = static_cast<std::size_t>(pos);
    const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
    const double frac = pos - static_cast<double>(lo);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

std::string fmt(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

/// Counter totals over all workers, for the difference of two snapshots.
struct counter_sums {
    double idle = 0, search = 0, failed = 0, parked = 0, join_wait = 0;
};

counter_sums sum_counters(const std::vector<worker_stats>& st) {
    counter_sums c;
    for (const worker_stats& w : st) {
        c.idle += static_cast<double>(w.idle_ns) * 1e-9;
        c.search += static_cast<double>(w.search_ns) * 1e-9;
        c.failed += static_cast<double>(w.failed_search_ns) * 1e-9;
        c.parked += static_cast<double>(w.parked_ns) * 1e-9;
        c.join_wait += static_cast<double>(w.join_wait_ns) * 1e-9;
    }
    return c;
}

}  // namespace

const char* to_string(limit l) noexcept {
    switch (l) {
        case limit::unknown: return "unknown";
        case limit::scales: return "scales";
        case limit::parallelism: return "parallelism-limited";
        case limit::serial_stage: return "serial-stage-limited";
        case limit::overhead: return "overhead-limited";
        case limit::bandwidth: return "bandwidth-limited";
        case limit::contention: return "contention-limited";
        case limit::host: return "host-limited";
        case limit::serial_fraction: return "serial-fraction-limited";
        case limit::failed: return "failed";
    }
    return "unknown";
}

pipeline_bound bound_of(const pipeline_stats& stats) {
    pipeline_bound b;
    double total = 0;
    for (const stage_stats& s : stats.stages) total += static_cast<double>(s.busy_ns) * 1e-9;
    double worst = 0;
    double serial = 0;
    for (const stage_stats& s : stats.stages) {
        pipeline_bound::stage st;
        st.name = s.name;
        st.mode = s.mode;
        st.busy_s = static_cast<double>(s.busy_ns) * 1e-9;
        st.share = total > 0 ? st.busy_s / total : 0;
        if (s.mode != stage_mode::parallel) {
            serial += st.busy_s;
            if (st.busy_s > worst || b.bottleneck.empty()) {
                worst = st.busy_s;
                b.bottleneck = s.name;
            }
        }
        b.stages.push_back(std::move(st));
    }
    b.serial_share = total > 0 ? serial / total : 0;
    b.bound = worst > 0 ? total / worst : k_inf;
    return b;
}

void summarise(point& p) {
    std::vector<double> v = p.seconds;
    std::sort(v.begin(), v.end());
    if (v.empty()) {
        p.median_s = p.min_s = p.max_s = p.spread = k_nan;
        return;
    }
    p.median_s = quantile(v, 0.5);
    p.min_s = v.front();
    p.max_s = v.back();
    p.spread = p.median_s > 0 ? (quantile(v, 0.75) - quantile(v, 0.25)) / p.median_s : k_nan;
}

result scaling(std::string name, const std::function<void(runtime&)>& repetition, const options& o) {
    result r;
    r.name = std::move(name);
    std::vector<unsigned> counts = o.workers;
    if (counts.empty()) counts = default_worker_counts(topology::discover(), o.use_smt);
    std::sort(counts.begin(), counts.end());
    counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
    const unsigned min_reps = std::max(1u, o.min_reps);
    const unsigned max_reps = std::max(min_reps, o.max_reps);

    const topology_summary host = topology::discover().summary();
    struct state {
        std::unique_ptr<runtime> rt;
        point p;
        counter_sums idle;  // accumulated over timed repetitions
        double wall = 0;    // sum of timed repetitions
        unsigned set_aside = 0;  // disturbed repetitions not kept
        bool done = false;
    };
    host_meter meter(true);
    std::optional<std::chrono::steady_clock::time_point> first_timed;  // started_s counts from it
    // Waits, up to 200 ms, until every runtime but `except` has all its workers asleep.
    const auto settle = [](std::vector<state>& all, const state* except) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        for (const state& o : all) {
            if (&o == except || !o.rt) continue;
            while (o.rt->sleeping_workers() < o.rt->worker_count() && std::chrono::steady_clock::now() < until) {
                std::this_thread::sleep_for(std::chrono::microseconds(100));
            }
        }
    };
    std::vector<state> states(counts.size());
    try {
        // One runtime per count, all alive for the whole probe: the idle ones
        // sleep, and rounds can then alternate counts without restarting them.
        for (std::size_t i = 0; i < counts.size(); ++i) {
            runtime_config c;
            c.placement.workers = counts[i];
            c.placement.policy = o.policy;
            c.placement.use_smt = o.use_smt || counts[i] > host.cores;
            c.placement.oversubscribe = counts[i] > std::max(host.pus, 1u);
            c.read_environment = false;
            c.stats = "off";  // one report per probed count would drown the tables
            states[i].rt = std::make_unique<runtime>(c);
            states[i].p.workers = counts[i];
            for (const compute_ceiling& c : o.ceiling) {
                if (c.workers == counts[i]) states[i].p.host_slowdown = c.slowdown;
            }
            for (const memory_ceiling& m : o.memory) {
                if (m.workers == counts[i]) states[i].p.host_bytes_per_s = m.bytes_per_s;
            }
            for (unsigned w = 0; w < o.warmup; ++w) {
                const auto t0 = std::chrono::steady_clock::now();
                repetition(*states[i].rt);
                if (o.on_progress) o.on_progress({r.name, counts[i], 0, seconds_since(t0)});
            }
        }
        for (bool any = true; any;) {
            any = false;
            for (state& s : states) {
                if (s.done) continue;
                // The other counts' runtimes asleep first: a worker of the
                // last one still searching before it parks shares a cpu with
                // this one's (tens of ms on a loaded core), which is the
                // probe's own interference, not the host's.
                settle(states, &s);
                const auto before = s.rt->stats();
                meter.start();
                const double cpu0 = host_meter::own_cpu_seconds();
                const auto t0 = std::chrono::steady_clock::now();
                if (!first_timed) first_timed = t0;
                repetition(*s.rt);
                const double t = seconds_since(t0);
                const double cpu1 = host_meter::own_cpu_seconds();
                const disturbance d = meter.finish(t, cpu1 - cpu0, s.p.workers, o.busy);
                const auto after = s.rt->stats();
                if (o.on_progress) {
                    o.on_progress({r.name, s.p.workers, static_cast<unsigned>(s.p.seconds.size() + 1), t});
                }
                if (d.disturbed) {
                    ++s.p.disturbed_reps;
                    if (s.set_aside < o.max_disturbed) {
                        ++s.set_aside;  // run again: the round comes back to this count
                        any = true;
                        continue;
                    }
                    s.p.disturbed = true;  // kept: the limit is reached
                }
                if (std::isfinite(d.others_cpus)) {
                    s.p.others_cpus = std::isfinite(s.p.others_cpus) ? std::max(s.p.others_cpus, d.others_cpus)
                                                                    : d.others_cpus;
                }
                s.p.seconds.push_back(t);
                s.p.started_s.push_back(std::chrono::duration<double>(t0 - *first_timed).count());
                s.wall += t;
                const counter_sums b = sum_counters(before);
                const counter_sums a = sum_counters(after);
                s.idle.idle += a.idle - b.idle;
                s.idle.search += a.search - b.search;
                s.idle.failed += a.failed - b.failed;
                s.idle.parked += a.parked - b.parked;
                s.idle.join_wait += a.join_wait - b.join_wait;
                summarise(s.p);
                const auto reps = static_cast<unsigned>(s.p.seconds.size());
                s.done = reps >= max_reps ||
                         (reps >= min_reps && (s.p.spread <= o.target_spread || s.wall >= o.max_point_seconds));
                any = any || !s.done;
            }
        }
    } catch (const std::exception& e) {
        r.verdict = limit::failed;
        r.error = e.what();
    } catch (...) {
        r.verdict = limit::failed;
        r.error = "unknown exception";
    }
    for (state& s : states) {
        if (s.p.seconds.empty()) continue;
        const double capacity = s.wall * s.p.workers;
        if (capacity > 0) {
            time_shares sh;
            // A snapshot counts a search still going on as failed; if it then
            // finds work, the difference moves that time to `search`. The
            // total (idle_ns) and the sleeps are exact differences, so the
            // searches share what the sleeps leave of the total.
            const double idle = std::max(0.0, s.idle.idle);
            const double parked = std::clamp(s.idle.parked, 0.0, idle);
            const double stealing = std::clamp(s.idle.search, 0.0, idle - parked);
            sh.parked = parked / capacity;
            sh.stealing = stealing / capacity;
            sh.failed_search = (idle - parked - stealing) / capacity;
            sh.join_waiting = std::max(0.0, s.idle.join_wait / capacity);
            sh.working = std::max(0.0, 1.0 - sh.stealing - sh.failed_search - sh.parked - sh.join_waiting);
            s.p.shares = sh;
        }
        s.p.user_s = k_nan;
        s.p.sys_s = k_nan;
        r.points.push_back(std::move(s.p));
    }
    states.clear();  // stops the runtimes before the analysis
    r.bytes_per_repetition = o.bytes_per_repetition;
    if (r.verdict != limit::failed) analyse(r);
    return r;
}

namespace {
void decide(result& r);
}  // namespace

void analyse(result& r) {
    decide(r);
    r.disturbed_reps = 0;
    r.disturbed = false;
    unsigned kept = 0;
    double others = k_nan;
    for (const point& p : r.points) {
        r.disturbed_reps += p.disturbed_reps;
        r.disturbed = r.disturbed || p.disturbed;
        if (std::isfinite(p.others_cpus)) others = std::isfinite(others) ? std::max(others, p.others_cpus) : p.others_cpus;
        if (p.disturbed) ++kept;
    }
    if (r.disturbed && r.verdict != limit::failed) {
        // Never fitted silently: the verdict stands, but says first that the
        // figures are a busy host's too.
        std::string busy = "the host was busy: " + std::to_string(r.disturbed_reps) + " repetition" +
                           (r.disturbed_reps == 1 ? "" : "s") + " disturbed, kept at " + std::to_string(kept) +
                           (kept == 1 ? " count" : " counts") + " after the retries";
        if (std::isfinite(others)) busy += fmt(" (other processes used up to %.2f cpus)", others);
        r.why = busy + "; " + r.why;
    }
}

namespace {

/// Work slows down per thread beyond what the host's compute ceiling
/// explains: bandwidth only where the bytes moved come near the memory
/// ceiling (70% of it: STREAM's triad is about the best any loop gets),
/// else contention for something else that is shared.
void memory_verdict(result& r, const point& top, const std::string& said) {
    const double moved = top.bytes_per_s;
    const double ceiling = top.host_bytes_per_s;
    const bool known = std::isfinite(moved);
    const bool has_ceiling = std::isfinite(ceiling) && ceiling > 0;
    const std::string rate = known ? fmt("%.2f GB/s", moved * 1e-9) : "";
    if (known && has_ceiling && moved >= 0.7 * ceiling) {
        r.verdict = limit::bandwidth;
        r.why = said + "; it moves " + rate + fmt(", %.0f%% of the host's memory ceiling", 100 * moved / ceiling) +
                fmt(" (triad %.2f GB/s", ceiling * 1e-9) + " at " + std::to_string(top.workers) + " workers)";
        return;
    }
    if (known && !has_ceiling && moved > 0) {
        r.verdict = limit::bandwidth;
        r.why = said + "; it moves " + rate + ": memory bandwidth (the host's memory ceiling was not measured)";
        return;
    }
    r.verdict = limit::contention;
    r.why = said + "; ";
    if (known && has_ceiling) {
        r.why += "it moves " + rate + fmt(", %.0f%% of the host's memory ceiling", 100 * moved / ceiling) +
                 ", so not memory bandwidth";
    } else if (known) {
        r.why += "it stays in the caches, so not memory bandwidth";
    } else {
        r.why += "its bytes per repetition are not known, so memory bandwidth is not ruled out";
    }
    r.why += ": shared caches, coherence traffic (false sharing) or contended locks";
}

}  // namespace

std::vector<scaling_sample> paired_seconds(const std::vector<point>& points) {
    std::vector<scaling_sample> out;
    for (const point& p : points) out.push_back({p.workers, p.seconds});
    // The reference: the lowest count measured (points are in count order).
    const point* ref = nullptr;
    for (const point& p : points) {
        if (!p.seconds.empty()) {
            ref = &p;
            break;
        }
    }
    if (ref == nullptr) return out;
    for (const point& p : points) {
        if (p.started_s.size() != p.seconds.size()) return out;  // not timed in rounds: as measured
    }
    std::vector<std::pair<double, double>> by_start;  // (started, seconds) of the reference
    for (std::size_t k = 0; k < ref->seconds.size(); ++k) by_start.emplace_back(ref->started_s[k], ref->seconds[k]);
    std::sort(by_start.begin(), by_start.end());
    std::vector<double> sorted = ref->seconds;
    std::sort(sorted.begin(), sorted.end());
    const double level = quantile(sorted, 0.5);
    for (std::size_t i = 0; i < points.size(); ++i) {
        const point& p = points[i];
        for (std::size_t j = 0; j < p.seconds.size(); ++j) {
            // The reference's repetition that started last at or before this
            // one (in a round the counts run in ascending order, so the same
            // round's, which ended as this one began); the first if none.
            auto it = std::upper_bound(by_start.begin(), by_start.end(), std::make_pair(p.started_s[j], k_inf));
            const double at = it == by_start.begin() ? by_start.front().second : std::prev(it)->second;
            if (at > 0 && std::isfinite(at)) out[i].seconds[j] = p.seconds[j] / at * level;
        }
    }
    return out;
}

namespace {

void decide(result& r) {
    std::stable_sort(r.points.begin(), r.points.end(), [](const point& a, const point& b) {
        return a.workers != b.workers ? a.workers < b.workers : a.ranks < b.ranks;
    });
    std::vector<scaling_sample> samples;  // one per point, for Karp-Flatt
    for (point& p : r.points) {
        if (!p.seconds.empty()) summarise(p);
        samples.push_back({p.workers, p.seconds});
    }
    // The fits want each count once: points of the same count (2 ranks of 1
    // worker and 1 rank of 2) pool their repetitions, so the fits see what
    // that many workers did whichever way they were split. They take the
    // times paired with the lowest count's (paired_seconds).
    std::vector<scaling_sample> pooled;
    for (const scaling_sample& s : paired_seconds(r.points)) {
        if (!pooled.empty() && pooled.back().workers == s.workers) {
            pooled.back().seconds.insert(pooled.back().seconds.end(), s.seconds.begin(), s.seconds.end());
        } else {
            pooled.push_back(s);
        }
    }
    const point* one = nullptr;
    for (const point& p : r.points) {
        if (p.workers == 1 && one == nullptr) one = &p;
    }
    const std::vector<double> kf = karp_flatt(samples);
    for (std::size_t i = 0; i < r.points.size(); ++i) {
        point& p = r.points[i];
        p.speedup = one != nullptr && p.median_s > 0 ? one->median_s / p.median_s : k_nan;
        p.efficiency = p.speedup / p.workers;
        p.karp_flatt = kf[i];
        p.bytes_per_s = std::isfinite(r.bytes_per_repetition) && r.bytes_per_repetition >= 0 && p.median_s > 0
                            ? r.bytes_per_repetition / p.median_s
                            : k_nan;
        p.work_inflation = k_nan;
        if (one != nullptr && one->shares && p.shares && one->shares->working > 0) {
            p.work_inflation = (p.shares->working * p.workers * p.median_s) / (one->shares->working * one->median_s);
        }
    }
    if (r.verdict == limit::failed) return;
    r.amdahl_uncorrected = fit_amdahl(pooled);
    r.usl = fit_usl(pooled);
    // The host's slowdown, where known at every count, comes out of the
    // serial fraction: only the parallel part runs N threads at once.
    r.amdahl_corrected = !pooled.empty();
    std::vector<scaling_sample> corrected = pooled;
    for (scaling_sample& s : corrected) {
        for (const point& p : r.points) {
            if (p.workers == s.workers) s.slowdown = p.host_slowdown;
        }
        r.amdahl_corrected = r.amdahl_corrected && std::isfinite(s.slowdown) && s.slowdown > 0;
    }
    r.amdahl = r.amdahl_corrected ? fit_amdahl(corrected) : r.amdahl_uncorrected;

    if (pooled.size() < 2) {
        r.verdict = limit::unknown;
        r.why = "one worker count: nothing to compare";
        return;
    }
    const point& top = r.points.back();
    const auto n = static_cast<double>(top.workers);
    std::string at = fmt("speedup %.2f", top.speedup) + " at " + std::to_string(top.workers) + " workers" +
                     fmt(" (efficiency %.2f)", top.efficiency);
    if (!std::isfinite(top.speedup)) {
        r.verdict = limit::unknown;
        r.why = "no 1-worker point to compute speedups from";
        return;
    }
    if (r.pipeline && std::isfinite(r.pipeline->bound) && r.pipeline->bound < 1.25 * n &&
        top.speedup >= 0.75 * std::min(r.pipeline->bound, n)) {
        r.verdict = limit::serial_stage;
        r.why = at + "; serial stage '" + r.pipeline->bottleneck + "' takes " +
                fmt("%.0f%%", 100 * (1 / r.pipeline->bound)) + " of all stage time, so no worker count beats " +
                fmt("%.2fx", r.pipeline->bound);
        return;
    }
    if (r.graph && r.graph->burdened_parallelism < 1.25 * n &&
        top.speedup >= 0.75 * std::min(r.graph->burdened_parallelism, n)) {
        r.verdict = limit::parallelism;
        r.why = at + "; the task graph's parallelism is " + fmt("%.2f", r.graph->parallelism) + fmt(" (%.2f", r.graph->burdened_parallelism) +
                " with steal costs): too little to keep more workers busy";
        return;
    }
    // The host's compute ceiling at this count: work that takes h times
    // longer per thread on any workload (see compute_ceiling).
    const double h = top.host_slowdown;
    const bool host_known = std::isfinite(h) && h > 0;
    const std::string host_text =
        host_known ? fmt("the host's compute slowdown is %.2fx", h) + " at " + std::to_string(top.workers) + " workers"
                   : "";
    if (top.efficiency >= 0.9) {
        r.verdict = limit::scales;
        r.why = at;
        if (r.graph) r.why += fmt("; parallelism %.3g leaves room for more workers", r.graph->burdened_parallelism);
        return;
    }
    if (host_known && h > 1.05 && top.efficiency * h >= 0.9) {
        r.verdict = limit::host;
        r.why = at + "; " + host_text + fmt(", so %.2f is as far as this host lets any work go", 1 / h) +
                fmt(" (efficiency %.2f against the ceiling)", top.efficiency * h);
        return;
    }
    if (top.shares) {
        const time_shares& sh = *top.shares;
        const double idle = 1 - sh.working;
        const double infl = top.work_inflation;
        struct named {
            const char* what;
            double share;
        };
        const named parts[] = {{"stealing", sh.stealing},
                               {"searching without finding work", sh.failed_search},
                               {"parked", sh.parked},
                               {"waiting in joins", sh.join_waiting}};
        const named* biggest = &parts[0];
        for (const named& p : parts) {
            if (p.share > biggest->share) biggest = &p;
        }
        std::string inflation =
            std::isfinite(infl) ? fmt("each piece of work takes %.2fx its 1-worker time", infl) : "";
        if (!inflation.empty() && host_known) inflation += ", of which " + host_text;
        // Inflation the host's ceiling explains (within 10%) is the host's.
        if (std::isfinite(infl) && infl > 1.1 && host_known && infl <= 1.1 * h && sh.working >= 0.85) {
            r.verdict = limit::host;
            r.why = at + fmt("; workers are busy %.0f%% of the time and ", 100 * sh.working) + inflation +
                    ": the host's own scaling, not memory or the runtime";
            return;
        }
        if (std::isfinite(infl) && infl > 1.1 && sh.working >= 0.85) {
            memory_verdict(r, top, at + fmt("; workers are busy %.0f%% of the time but ", 100 * sh.working) + inflation);
            return;
        }
        if (idle > 0.1) {
            r.verdict = limit::overhead;
            r.why = at + fmt("; workers spend %.0f%% of their time not working, most of it ", 100 * idle) +
                    biggest->what + fmt(" (%.0f%%)", 100 * biggest->share);
            if (r.graph) r.why += fmt("; the graph's parallelism %.3g is not the limit", r.graph->burdened_parallelism);
            return;
        }
        if (std::isfinite(infl) && infl > 1.1) {
            memory_verdict(r, top, at + "; " + inflation);
            return;
        }
        r.verdict = limit::unknown;
        r.why = at + fmt("; workers busy %.0f%%", 100 * sh.working) +
                (inflation.empty() ? "" : ", " + inflation) + ": no single cause stands out";
        return;
    }
    if (r.amdahl.status == fit_status::retrograde) {
        r.verdict = limit::unknown;
        r.why = at + "; slower with more workers, and without runtime counters nothing says why: " + r.amdahl.note;
        return;
    }
    r.verdict = limit::serial_fraction;
    r.why = at;
    if (r.amdahl.status == fit_status::ok || r.amdahl.status == fit_status::linear) {
        r.why += fmt("; Amdahl's serial fraction %.3f", r.amdahl.serial_fraction) +
                 fmt(" [%.3f,", r.amdahl.ci_low) + fmt(" %.3f]", r.amdahl.ci_high) +
                 fmt(" bounds the speedup at %.3g", r.amdahl.max_speedup);
        if (r.amdahl_corrected && std::isfinite(r.amdahl_uncorrected.serial_fraction)) {
            r.why += fmt(" (corrected for the host; %.3f uncorrected)", r.amdahl_uncorrected.serial_fraction);
        }
    } else {
        r.why += "; " + r.amdahl.note;
    }
}

}  // namespace

double measure_steal_cost() {
    static std::once_flag once;
    static double cost = 0;
    std::call_once(once, [] {
        if (topology::discover().summary().cores < 2) return;
        runtime_config c;
        c.placement.workers = 2;
        c.read_environment = false;
        c.stats = "off";
        runtime rt(c);
        constexpr int k_rounds = 2000;
        std::vector<double> times;
        times.reserve(k_rounds);
        rt.run([&] {
            for (int i = 0; i < k_rounds; ++i) {
                std::atomic<bool> taken{false};
                const auto t0 = std::chrono::steady_clock::now();
                invoke(
                    [&] {
                        // Wait (bounded) for the other worker to take and run
                        // the pushed half, so that the join finds it stolen.
                        const auto limit = t0 + std::chrono::milliseconds(2);
                        // acquire: pairs with the release store below.
                        while (!taken.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < limit) {
                        }
                    },
                    // release: the flag is the only data.
                    [&] { taken.store(true, std::memory_order_release); });
                times.push_back(seconds_since(t0));
            }
        });
        std::sort(times.begin(), times.end());
        cost = times[times.size() / 2];
    });
    return cost;
}

}  // namespace forkline::probe

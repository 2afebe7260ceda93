// bench/distribute/saturation.cpp: `forkline-bench distribute saturation`.
//
// The stream executor at and past capacity, under each admission policy
// (block, reject, shed at the default thresholds), three classes drawn from
// the seed (10% class 0, 30% class 1, 60% class 2). Per run: the queue depth
// sampled every millisecond, per-class p99 (completion minus scheduled
// arrival), refusals per class, the peak RSS of the run, and conservation:
// every request ended exactly one way, by its hook and by the executor's
// counters, or the run is not reported. Block admission blocks the generator,
// which makes the run closed-loop: such a run falls behind its schedule and
// is refused by the lateness rule like any other, and said to be so.
#include <sys/resource.h>  // getrusage

#include <algorithm>  // sort, max
#include <atomic>     // atomic
#include <chrono>     // milliseconds
#include <cstdio>     // fprintf, fopen
#include <cstdlib>    // strtol
#include <cstring>    // strncmp
#include <memory>     // unique_ptr
#include <optional>   // optional
#include <string>     // string
#include <thread>     // thread, sleep_for

#include "distribute/policy.hpp"
#include "distribute/replay.hpp"
#include "distribute/streams.hpp"
#include "forkline/forkline.hpp"  // runtime, runtime_config
#include "forkline/stream.hpp"    // stream_executor

namespace forkline_bench::distribute {
namespace {

constexpr unsigned k_classes = 3;
constexpr forkline::admission_policy k_admissions[] = {forkline::admission_policy::block,
                                                       forkline::admission_policy::reject,
                                                       forkline::admission_policy::shed};
const char* admission_name(forkline::admission_policy a) {
    return a == forkline::admission_policy::block ? "block" : a == forkline::admission_policy::reject ? "reject" : "shed";
}

// 10% / 30% / 60%, a function of (seed, index) only: the same for every policy.
unsigned class_of(std::uint64_t seed, std::uint32_t i) noexcept {
    std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 1;  // splitmix64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = static_cast<double>(z >> 11) * 0x1.0p-53;
    return u < 0.1 ? 0 : u < 0.4 ? 1 : 2;
}

// The peak RSS is reset before each run (writing 5 to clear_refs, Linux 4.0+)
// and read as VmHWM after it; where the reset fails, it is the process's.
bool reset_peak_rss() {
    std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
    if (f == nullptr) return false;
    const bool wrote = std::fputs("5", f) >= 0;
    return std::fclose(f) == 0 && wrote;
}
long peak_rss_kb() {
    if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        long kb = -1;
        while (std::fgets(line, sizeof line, f) != nullptr) {
            if (std::strncmp(line, "VmHWM:", 6) == 0) kb = std::strtol(line + 6, nullptr, 10);
        }
        std::fclose(f);
        if (kb >= 0) return kb;
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

struct sat_run {
    run_figures f;
    bool conserved = false;
    std::string why;  // when not conserved
    std::vector<std::uint32_t> depth;
    double depth_mean = 0;
    std::uint32_t depth_max = 0;
    std::uint64_t peak_queued = 0;
    double p99_us[k_classes] = {};
    std::uint32_t measured[k_classes] = {}, completed[k_classes] = {}, refused[k_classes] = {};
    std::uint32_t expired = 0, cancelled = 0;
    long rss_kb = 0;
    bool rss_reset = false;
};

class saturation_policy final : public policy {
public:
    saturation_policy(forkline::admission_policy a, std::size_t capacity, const std::vector<unsigned>& cls)
        : m_admission(a), m_capacity(capacity), m_cls(cls), m_ends(new std::atomic<std::uint8_t>[cls.size()]),
          m_outcome(cls.size(), 0) {
        for (std::size_t i = 0; i < cls.size(); ++i) m_ends[i].store(0, std::memory_order_relaxed);
    }
    void start(run_context& ctx, unsigned workers) override {
        m_ctx = &ctx;
        forkline::runtime_config c;
        c.placement.workers = workers;
        c.placement.oversubscribe = true;
        c.read_environment = false;
        m_rt.emplace(c);
        forkline::stream_config sc;
        sc.capacity = m_capacity;
        sc.admission = m_admission;
        sc.classes = k_classes;  // shed_at empty: the defaults {1.0, 0.8, 0.6}
        sc.name = "saturation";
        m_ex.emplace(*m_rt, sc);
        m_sampler = std::thread([this] {
            while (!m_stop.load(std::memory_order_relaxed)) {  // relaxed: a flag, joined after
                depth.push_back(static_cast<std::uint32_t>(m_ex->counters().queued));
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        });
    }
    void submit(std::uint32_t i) override {
        forkline::request_options o;
        o.priority = m_cls[i];
        run_context* ctx = m_ctx;
        m_ex->post([ctx, i] { ctx->execute(i); }, o,
                   [this, ctx, i](forkline::request_outcome out, std::exception_ptr) noexcept {
                       m_outcome[i] = static_cast<std::uint8_t>(out);
                       m_ends[i].fetch_add(1, std::memory_order_relaxed);  // relaxed: read after drain()
                       if (out == forkline::request_outcome::done) return;  // counted by execute
                       ctx->end_unrun(i, out == forkline::request_outcome::expired);
                   });
    }
    void stop() override {
        m_stop.store(true, std::memory_order_relaxed);
        m_sampler.join();
        m_ex->drain();  // every hook has returned (the counters move after it)
        counters = m_ex->counters();
        peak_queued = m_ex->stats().peak_queued;
        completion = m_ctx->completion_ns;
        m_ex.reset();
        m_rt.reset();
    }
    // Checks that every request ended exactly once, and that the hooks'
    // tally agrees with the executor's counters.
    bool conserved(sat_run& r) const {
        const std::size_t n = m_cls.size();
        std::uint64_t by[5] = {};
        for (std::size_t i = 0; i < n; ++i) {
            const unsigned e = m_ends[i].load(std::memory_order_relaxed);
            if (e != 1) {
                r.why = "request " + std::to_string(i) + " ended " + std::to_string(e) + " times";
                return false;
            }
            ++by[m_outcome[i]];
        }
        const forkline::stream_counters& c = counters;
        if (c.arrived != n || c.queued != 0 || c.running != 0 || c.done != by[0] || c.failed != by[1] ||
            c.rejected != by[2] || c.expired != by[3] || c.cancelled != by[4]) {
            r.why = "counters disagree: arrived " + std::to_string(c.arrived) + " of " + std::to_string(n) +
                    ", done " + std::to_string(c.done) + " (hooks " + std::to_string(by[0]) + "), rejected " +
                    std::to_string(c.rejected) + " (hooks " + std::to_string(by[2]) + ")";
            return false;
        }
        return true;
    }
    std::uint8_t outcome(std::uint32_t i) const { return m_outcome[i]; }

    std::vector<std::uint32_t> depth;  // written by the sampler; read after stop()
    forkline::stream_counters counters;
    std::uint64_t peak_queued = 0;
    std::vector<std::uint64_t> completion;

private:
    forkline::admission_policy m_admission;
    std::size_t m_capacity;
    const std::vector<unsigned>& m_cls;
    std::unique_ptr<std::atomic<std::uint8_t>[]> m_ends;
    std::vector<std::uint8_t> m_outcome;  // each slot written by its one hook
    run_context* m_ctx = nullptr;
    std::optional<forkline::runtime> m_rt;
    std::optional<forkline::stream_executor> m_ex;
    std::thread m_sampler;
    std::atomic<bool> m_stop{false};
};

sat_run run_one(forkline::admission_policy a, const stream_args& args, const std::vector<request>& schedule,
                const std::vector<unsigned>& cls, const replay_options& ro) {
    sat_run r;
    saturation_policy p(a, args.capacity, cls);
    r.rss_reset = reset_peak_rss();
    r.f = replay(p, schedule, ro);
    r.rss_kb = peak_rss_kb();
    r.conserved = p.conserved(r);
    r.depth = std::move(p.depth);
    r.peak_queued = p.peak_queued;
    double sum = 0;
    for (const std::uint32_t d : r.depth) {
        sum += d;
        r.depth_max = std::max(r.depth_max, d);
    }
    r.depth_mean = r.depth.empty() ? 0 : sum / static_cast<double>(r.depth.size());
    const std::size_t skip = static_cast<std::size_t>(static_cast<double>(schedule.size()) * ro.warmup_share);
    std::vector<std::uint64_t> lat[k_classes];
    for (std::uint32_t i = 0; i < schedule.size(); ++i) {
        const unsigned c = cls[i];
        const auto o = static_cast<forkline::request_outcome>(p.outcome(i));
        if (o == forkline::request_outcome::rejected) ++r.refused[c];
        if (o == forkline::request_outcome::expired) ++r.expired;
        if (o == forkline::request_outcome::cancelled) ++r.cancelled;
        if (o != forkline::request_outcome::done) continue;
        ++r.completed[c];
        if (i < skip) continue;
        const std::uint64_t done = p.completion[i], at = schedule[i].arrival_ns;
        lat[c].push_back(done > at ? done - at : 0);
    }
    for (unsigned c = 0; c < k_classes; ++c) {
        std::sort(lat[c].begin(), lat[c].end());
        r.measured[c] = static_cast<std::uint32_t>(lat[c].size());
        if (!lat[c].empty()) {
            r.p99_us[c] = static_cast<double>(lat[c][static_cast<std::size_t>(0.99 * (lat[c].size() - 1) + 0.5)]) / 1e3;
        }
    }
    return r;
}

struct sat_point {
    double rho;
    forkline::admission_policy admission;
    std::vector<sat_run> runs;  // accepted
    unsigned refused_late = 0, refused_unconserved = 0;
    unsigned refused_blocked = 0;  // late, block admission, and the queue reached its bound
};

template <class Get>
double med(const sat_point& p, Get get) {
    std::vector<double> v;
    for (const sat_run& r : p.runs) v.push_back(static_cast<double>(get(r)));
    return median_of(v);
}

void print_sat_table(std::FILE* out, const sat_point* points, std::size_t n, bool md) {
    if (md) {
        std::fprintf(out, "| rho | admission | runs ok | refused runs | depth max | depth mean | p99 c0 us | p99 c1 us | "
                          "p99 c2 us | refused c0 | refused c1 | refused c2 | peak RSS MiB |\n"
                          "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    } else {
        std::fprintf(out, "%5s %-7s %3s %-26s %6s %7s %9s %9s %9s %6s %6s %6s %7s\n", "rho", "admit", "ok", "refused runs",
                     "dmax", "dmean", "p99c0 us", "p99c1 us", "p99c2 us", "ref0", "ref1", "ref2", "RSS MiB");
    }
    for (std::size_t i = 0; i < n; ++i) {
        const sat_point& p = points[i];
        char why[64];
        if (p.refused_late + p.refused_unconserved + p.refused_blocked == 0) std::snprintf(why, sizeof why, "0");
        else if (p.refused_blocked > 0 && p.refused_late + p.refused_unconserved == 0)
            std::snprintf(why, sizeof why, "%u: generator blocked (closed loop)", p.refused_blocked);
        else std::snprintf(why, sizeof why, "%u late, %u blocked, %u not conserved", p.refused_late, p.refused_blocked,
                           p.refused_unconserved);
        if (p.runs.empty()) {
            if (md) std::fprintf(out, "| %.3g | %s | 0 | %s | | | | | | | | | |\n", p.rho, admission_name(p.admission), why);
            else std::fprintf(out, "%5.3g %-7s %3d %s\n", p.rho, admission_name(p.admission), 0, why);
            continue;
        }
        const double v[] = {med(p, [](const sat_run& r) { return r.depth_max; }),
                            med(p, [](const sat_run& r) { return r.depth_mean; }),
                            med(p, [](const sat_run& r) { return r.p99_us[0]; }),
                            med(p, [](const sat_run& r) { return r.p99_us[1]; }),
                            med(p, [](const sat_run& r) { return r.p99_us[2]; }),
                            med(p, [](const sat_run& r) { return r.refused[0]; }),
                            med(p, [](const sat_run& r) { return r.refused[1]; }),
                            med(p, [](const sat_run& r) { return r.refused[2]; }),
                            med(p, [](const sat_run& r) { return r.rss_kb; }) / 1024.0};
        std::fprintf(out,
                     md ? "| %.3g | %s | %zu | %s | %.0f | %.1f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f |\n"
                        : "%5.3g %-7s %3zu %-26s %6.0f %7.1f %9.0f %9.0f %9.0f %6.0f %6.0f %6.0f %7.1f\n",
                     p.rho, admission_name(p.admission), p.runs.size(), why, v[0], v[1], v[2], v[3], v[4], v[5], v[6],
                     v[7], v[8]);
    }
}

void write_sat_json(std::FILE* out, const stream_args& a, const std::vector<sat_point>& points) {
    std::fprintf(out, "[\n");
    for (std::size_t i = 0; i < points.size(); ++i) {
        const sat_point& p = points[i];
        std::fprintf(out,
                     "  {\"scenario\": \"saturation\", \"service\": \"%s\", \"mean_service_us\": %.1f, \"rho\": %.4g, "
                     "\"admission\": \"%s\", \"capacity\": %zu, \"workers\": %u, \"requests\": %u, \"reps\": %u, "
                     "\"accepted_runs\": %zu, \"refused_late\": %u, \"refused_blocked\": %u, \"refused_unconserved\": %u, \"runs\": [",
                     std::string(shape_name(a.shape)).c_str(), a.mean_us, p.rho, admission_name(p.admission),
                     a.capacity, a.workers, a.requests, a.reps, p.runs.size(), p.refused_late, p.refused_blocked,
                     p.refused_unconserved);
        for (std::size_t k = 0; k < p.runs.size(); ++k) {
            const sat_run& r = p.runs[k];
            std::fprintf(out,
                         "%s\n    {\"conserved\": true, \"late\": %u, \"max_lag_us\": %.1f, \"depth_max\": %u, "
                         "\"depth_mean\": %.2f, \"peak_queued\": %llu, \"peak_rss_kb\": %ld, \"peak_rss_reset\": %s, "
                         "\"expired\": %u, \"cancelled\": %u, \"classes\": [",
                         k ? "," : "", r.f.late, r.f.max_lag_us, r.depth_max, r.depth_mean,
                         static_cast<unsigned long long>(r.peak_queued), r.rss_kb, r.rss_reset ? "true" : "false",
                         r.expired, r.cancelled);
            for (unsigned c = 0; c < k_classes; ++c) {
                std::fprintf(out, "%s{\"class\": %u, \"completed\": %u, \"refused\": %u, \"measured\": %u, \"p99_us\": %.2f}",
                             c ? ", " : "", c, r.completed[c], r.refused[c], r.measured[c], r.p99_us[c]);
            }
            std::fprintf(out, "], \"depth_every_ms\": [");
            for (std::size_t d = 0; d < r.depth.size(); ++d) std::fprintf(out, "%s%u", d ? "," : "", r.depth[d]);
            std::fprintf(out, "]}");
        }
        std::fprintf(out, "]}%s\n", i + 1 < points.size() ? "," : "");
    }
    std::fprintf(out, "]\n");
}

}  // namespace

int saturation_main(const stream_args& a) {
    const std::vector<double> loads = a.loads.empty() ? std::vector<double>{0.5, 0.8, 1.2, 2.0} : a.loads;
    std::vector<sat_point> points;
    for (const double rho : loads) {
        for (const auto adm : k_admissions) points.push_back({rho, adm, {}, 0, 0, 0});
    }
    for (unsigned rep = 0; rep < a.reps; ++rep) {
        std::size_t at = 0;
        for (std::size_t k = 0; k < loads.size(); ++k) {
            schedule_config sc;
            sc.seed = a.seed + 1000 * rep + k;
            sc.workers = a.workers;
            sc.rho = loads[k];
            sc.mean_service_ns = a.mean_us * 1e3;
            sc.shape = a.shape;
            sc.requests = a.requests;
            const std::vector<request> schedule = make_schedule(sc);
            std::vector<unsigned> cls(schedule.size());
            for (std::uint32_t i = 0; i < cls.size(); ++i) cls[i] = class_of(sc.seed, i);
            replay_options ro;
            ro.workers = a.workers;
            ro.late_ns = a.late_ns;
            ro.spin_ns = a.spin_ns;
            for (const auto adm : k_admissions) {
                sat_point& p = points[at++];
                std::fprintf(stderr, "distribute saturation rep %u/%u rho=%.3g %s\n", rep + 1, a.reps, p.rho,
                             admission_name(adm));
                sat_run r = run_one(adm, a, schedule, cls, ro);
                if (!r.conserved) {
                    ++p.refused_unconserved;
                    std::fprintf(stderr, "  refused: not conserved: %s\n", r.why.c_str());
                } else if (r.f.refused) {
                    const bool blocked = adm == forkline::admission_policy::block && r.peak_queued >= a.capacity;
                    ++(blocked ? p.refused_blocked : p.refused_late);
                    std::fprintf(stderr, "  refused: %u of %u submissions late (max lag %.0f us)%s\n", r.f.late,
                                 r.f.requests, r.f.max_lag_us, blocked ? ": generator blocked (closed loop)" : "");
                } else {
                    p.runs.push_back(std::move(r));
                }
            }
        }
    }
    std::printf("distribute saturation: %u workers, %s service mean %.0f us, capacity %zu, classes 10/30/60%%, "
                "%u requests per run, %u reps, seed %llu (medians of accepted runs)\n",
                a.workers, std::string(shape_name(a.shape)).c_str(), a.mean_us, a.capacity, a.requests, a.reps,
                static_cast<unsigned long long>(a.seed));
    print_sat_table(stdout, points.data(), points.size(), false);
    // The target: class 0's p99 at 2x with shedding within 2x of its p99 at rho 0.5.
    const sat_point* base = nullptr;
    const sat_point* over = nullptr;
    for (const sat_point& p : points) {
        if (p.admission != forkline::admission_policy::shed || p.runs.empty()) continue;
        if (p.rho == 0.5) base = &p;
        if (p.rho == 2.0) over = &p;
    }
    if (base != nullptr && over != nullptr) {
        const double b = med(*base, [](const sat_run& r) { return r.p99_us[0]; });
        const double o = med(*over, [](const sat_run& r) { return r.p99_us[0]; });
        std::printf("\nshed, class 0 p99: %.0f us at rho 2.0, %.0f us at rho 0.5: ratio %.2f (target <= 2: %s)\n", o, b,
                    b > 0 ? o / b : 0.0, b > 0 && o <= 2 * b ? "met" : "not met");
    }
    // A refused run is said so in the table; a run that lost a request fails the command.
    bool ok = true;
    for (const sat_point& p : points) ok = ok && p.refused_unconserved == 0;
    if (!a.json_path.empty()) {
        std::FILE* f = std::fopen(a.json_path.c_str(), "w");
        if (f == nullptr) return 2;
        write_sat_json(f, a, points);
        ok = std::fclose(f) == 0 && ok;
    }
    if (!a.markdown_path.empty()) {
        std::FILE* f = std::fopen(a.markdown_path.c_str(), "w");
        if (f == nullptr) return 2;
        print_sat_table(f, points.data(), points.size(), true);
        ok = std::fclose(f) == 0 && ok;
    }
    return ok ? 0 : 1;
}

}  // namespace forkline_bench::distribute

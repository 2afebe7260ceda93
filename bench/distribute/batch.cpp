// bench/distribute/batch.cpp: `forkline-bench distribute batch`.
//
// A handler that costs a fixed amount per call (--call-us, default 20) plus
// an amount per item (--item-us, default 2), fed with Poisson arrivals at
// loads given as a share of what the one-by-one stream sustains (workers /
// (call + item)). The stream (stream_executor, one handler call per item,
// K = 1) against batch_stream at K in {4, 16, 64} and T in {50, 200} us:
// handler time per item, process cpu per item (the generator's left out),
// p50/p99 of completion minus scheduled arrival (an item completes when its
// batch returns), and the batches the adaptive batcher chose.
#include <sys/resource.h>  // getrusage

#include <algorithm>  // max, sort
#include <atomic>     // atomic
#include <chrono>     // microseconds
#include <cstdio>     // fprintf, fopen
#include <optional>   // optional
#include <span>       // span
#include <string>     // string
#include <vector>     // vector

#include "distribute/policy.hpp"
#include "distribute/replay.hpp"
#include "distribute/streams.hpp"
#include "forkline/batch_stream.hpp"  // batch_stream
#include "forkline/forkline.hpp"      // runtime, runtime_config
#include "forkline/stream.hpp"        // stream_executor

namespace forkline_bench::distribute {
namespace {

std::uint64_t process_cpu_ns() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    const auto ns = [](const timeval& t) {
        return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(t.tv_usec) * 1000u;
    };
    return ns(ru.ru_utime) + ns(ru.ru_stime);
}

forkline::runtime_config runtime_of(unsigned workers) {
    forkline::runtime_config c;
    c.placement.workers = workers;
    c.placement.oversubscribe = true;
    c.read_environment = false;
    return c;
}

// One variant: K = 0 is the stream executor (one call per item).
struct variant {
    std::size_t k;
    unsigned t_us;
};

class batch_policy final : public policy {
public:
    batch_policy(variant v, std::uint64_t call_ns, std::uint64_t item_ns)
        : m_v(v), m_call_ns(call_ns), m_item_ns(item_ns) {}
    void start(run_context& ctx, unsigned workers) override {
        m_ctx = &ctx;
        m_rt.emplace(runtime_of(workers));
        if (m_v.k == 0) {
            forkline::stream_config sc;
            sc.capacity = std::size_t{1} << 20;  // nothing refused: the comparison is of cost
            sc.classes = 1;
            sc.name = "batch-stream";
            m_ex.emplace(*m_rt, sc);
            return;
        }
        forkline::batch_config bc;
        bc.max_items = m_v.k;
        bc.max_wait = std::chrono::microseconds(m_v.t_us);
        bc.capacity = std::size_t{1} << 20;
        bc.handlers = workers;
        bc.name = "batch";
        m_batch.emplace(*m_rt, bc, [this](std::span<std::uint32_t> items) { handle(items); });
    }
    void submit(std::uint32_t i) override {
        if (m_ex) {
            forkline::request_options o;
            o.priority = 0;
            m_ex->post([this, i]() mutable { handle(std::span<std::uint32_t>(&i, 1)); }, o);
        } else {
            m_batch->post(i);
        }
    }
    void stop() override {
        if (m_batch) {
            m_batch->drain();
            stats = m_batch->stats();
        } else {
            m_ex->drain();
            const forkline::stream_counters c = m_ex->counters();
            stats.batches = c.done;
            stats.max_batch = c.done > 0 ? 1 : 0;
            stats.mean_batch = c.done > 0 ? 1.0 : 0.0;
        }
        m_batch.reset();
        m_ex.reset();
        m_rt.reset();
    }
    std::atomic<std::uint64_t> busy_ns{0};  // time inside handler calls
    forkline::batch_stats stats;

private:
    void handle(std::span<std::uint32_t> items) {
        const std::uint64_t t0 = now_ns();
        spin_for(m_call_ns + m_item_ns * items.size());
        for (const std::uint32_t i : items) m_ctx->execute(i);  // service 0: records the completion
        busy_ns.fetch_add(now_ns() - t0, std::memory_order_relaxed);  // relaxed: read after stop()
    }
    variant m_v;
    std::uint64_t m_call_ns, m_item_ns;
    run_context* m_ctx = nullptr;
    std::optional<forkline::runtime> m_rt;
    std::optional<forkline::stream_executor> m_ex;
    std::optional<forkline::batch_stream<std::uint32_t>> m_batch;
};

struct batch_run {
    run_figures f;
    double handler_us_per_item = 0, cpu_us_per_item = 0, mean_batch = 0;
    std::uint64_t max_batch = 0, batches = 0;
};

struct batch_point {
    double load;
    variant v;
    std::vector<batch_run> runs;
    unsigned refused = 0;
};

std::string variant_name(const variant& v) {
    return v.k == 0 ? std::string("stream") : "K=" + std::to_string(v.k) + " T=" + std::to_string(v.t_us);
}

template <class Get>
double med(const batch_point& p, Get get) {
    std::vector<double> v;
    for (const batch_run& r : p.runs) v.push_back(static_cast<double>(get(r)));
    return median_of(v);
}

void print_batch_table(std::FILE* out, const std::vector<batch_point>& points, bool md) {
    if (md) {
        std::fprintf(out, "| load | variant | runs ok | refused runs | items/s | p50 us | p99 us | handler us/item | "
                          "cpu us/item | mean batch | max batch |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    } else {
        std::fprintf(out, "%5s %-11s %3s %4s %9s %8s %8s %9s %9s %7s %5s\n", "load", "variant", "ok", "refu",
                     "items/s", "p50 us", "p99 us", "hand/item", "cpu/item", "mean b", "max b");
    }
    for (const batch_point& p : points) {
        const std::string name = variant_name(p.v);
        if (p.runs.empty()) {
            if (md) std::fprintf(out, "| %.3g | %s | 0 | %u | | | | | | | |\n", p.load, name.c_str(), p.refused);
            else std::fprintf(out, "%5.3g %-11s %3d %4u (every run refused)\n", p.load, name.c_str(), 0, p.refused);
            continue;
        }
        const double v[] = {med(p, [](const batch_run& r) { return r.f.throughput; }),
                            med(p, [](const batch_run& r) { return r.f.p50_us; }),
                            med(p, [](const batch_run& r) { return r.f.p99_us; }),
                            med(p, [](const batch_run& r) { return r.handler_us_per_item; }),
                            med(p, [](const batch_run& r) { return r.cpu_us_per_item; }),
                            med(p, [](const batch_run& r) { return r.mean_batch; }),
                            med(p, [](const batch_run& r) { return r.max_batch; })};
        std::fprintf(out,
                     md ? "| %.3g | %s | %zu | %u | %.0f | %.1f | %.1f | %.2f | %.2f | %.1f | %.0f |\n"
                        : "%5.3g %-11s %3zu %4u %9.0f %8.1f %8.1f %9.2f %9.2f %7.1f %5.0f\n",
                     p.load, name.c_str(), p.runs.size(), p.refused, v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    }
}

void write_batch_json(std::FILE* out, const stream_args& a, const std::vector<batch_point>& points) {
    std::fprintf(out, "[\n");
    for (std::size_t i = 0; i < points.size(); ++i) {
        const batch_point& p = points[i];
        std::fprintf(out,
                     "  {\"scenario\": \"batch\", \"load\": %.4g, \"variant\": \"%s\", \"k\": %zu, \"t_us\": %u, "
                     "\"call_us\": %.2f, \"item_us\": %.2f, \"workers\": %u, \"requests\": %u, \"reps\": %u, "
                     "\"accepted_runs\": %zu, \"refused_runs\": %u, \"runs\": [",
                     p.load, variant_name(p.v).c_str(), p.v.k == 0 ? std::size_t{1} : p.v.k, p.v.t_us, a.call_us,
                     a.item_us, a.workers, a.requests, a.reps, p.runs.size(), p.refused);
        for (std::size_t k = 0; k < p.runs.size(); ++k) {
            const batch_run& r = p.runs[k];
            std::fprintf(out,
                         "%s{\"completed\": %u, \"items_per_s\": %.1f, \"p50_us\": %.2f, \"p99_us\": %.2f, "
                         "\"handler_us_per_item\": %.3f, \"cpu_us_per_item\": %.3f, \"batches\": %llu, "
                         "\"mean_batch\": %.3f, \"max_batch\": %llu, \"late\": %u}",
                         k ? ", " : "", r.f.completed, r.f.throughput, r.f.p50_us, r.f.p99_us, r.handler_us_per_item,
                         r.cpu_us_per_item, static_cast<unsigned long long>(r.batches), r.mean_batch,
                         static_cast<unsigned long long>(r.max_batch), r.f.late);
        }
        std::fprintf(out, "]}%s\n", i + 1 < points.size() ? "," : "");
    }
    std::fprintf(out, "]\n");
}

}  // namespace

int batch_main(const stream_args& a) {
    const std::vector<double> loads = a.loads.empty() ? std::vector<double>{0.2, 0.5, 0.8} : a.loads;
    std::vector<variant> variants{{0, 0}};
    for (const std::size_t k : {4, 16, 64}) {
        for (const unsigned t : {50u, 200u}) variants.push_back({k, t});
    }
    std::vector<batch_point> points;
    for (const double l : loads) {
        for (const variant& v : variants) points.push_back({l, v, {}, 0});
    }
    const auto call_ns = static_cast<std::uint64_t>(a.call_us * 1e3);
    const auto item_ns = static_cast<std::uint64_t>(a.item_us * 1e3);
    for (unsigned rep = 0; rep < a.reps; ++rep) {
        std::size_t at = 0;
        for (std::size_t k = 0; k < loads.size(); ++k) {
            schedule_config sc;
            sc.seed = a.seed + 1000 * rep + k;
            sc.workers = a.workers;
            sc.rho = loads[k];
            sc.mean_service_ns = static_cast<double>(call_ns + item_ns);  // the stream's capacity sets the rate
            sc.shape = service_shape::fixed;
            sc.requests = a.requests;
            std::vector<request> schedule = make_schedule(sc);
            for (request& r : schedule) r.service_ns = 0;  // the handler spends the cost
            replay_options ro;
            ro.workers = a.workers;
            ro.late_ns = a.late_ns;
            ro.spin_ns = a.spin_ns;
            for (const variant& v : variants) {
                batch_point& p = points[at++];
                std::fprintf(stderr, "distribute batch rep %u/%u load=%.3g %s\n", rep + 1, a.reps, p.load,
                             variant_name(v).c_str());
                batch_policy pol(v, call_ns, item_ns);
                const std::uint64_t cpu0 = process_cpu_ns();
                batch_run r;
                r.f = replay(pol, schedule, ro);
                const std::uint64_t cpu = process_cpu_ns() - cpu0;
                const double items = std::max(1u, r.f.completed);
                r.handler_us_per_item = static_cast<double>(pol.busy_ns.load()) / 1e3 / items;
                r.cpu_us_per_item = static_cast<double>(cpu > r.f.generator_cpu_ns ? cpu - r.f.generator_cpu_ns : 0) /
                                    1e3 / items;
                r.mean_batch = pol.stats.mean_batch;
                r.max_batch = pol.stats.max_batch;
                r.batches = pol.stats.batches;
                if (r.f.refused) {
                    ++p.refused;
                    std::fprintf(stderr, "  refused: %u of %u submissions late (max lag %.0f us)\n", r.f.late,
                                 r.f.requests, r.f.max_lag_us);
                } else {
                    p.runs.push_back(r);
                }
            }
        }
    }
    std::printf("distribute batch: %u workers, handler %.0f us per call + %.1f us per item, load as a share of the "
                "stream's %.0f items/s, %u requests per run, %u reps, seed %llu (medians of accepted runs)\n",
                a.workers, a.call_us, a.item_us, a.workers * 1e9 / static_cast<double>(call_ns + item_ns),
                a.requests, a.reps, static_cast<unsigned long long>(a.seed));
    print_batch_table(stdout, points, false);
    bool ok = true;
    if (!a.json_path.empty()) {
        std::FILE* f = std::fopen(a.json_path.c_str(), "w");
        if (f == nullptr) return 2;
        write_batch_json(f, a, points);
        ok = std::fclose(f) == 0 && ok;
    }
    if (!a.markdown_path.empty()) {
        std::FILE* f = std::fopen(a.markdown_path.c_str(), "w");
        if (f == nullptr) return 2;
        print_batch_table(f, points, true);
        ok = std::fclose(f) == 0 && ok;
    }
    for (const batch_point& p : points) ok = ok && !p.runs.empty();
    return ok ? 0 : 1;
}

double median_of(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace forkline_bench::distribute

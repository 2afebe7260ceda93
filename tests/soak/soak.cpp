// tests/soak/soak.cpp: the soak program. Several outside threads ("drivers")
// run a seeded random mix of ops (tests/soak/ops_*.cpp) for a given time
// against a long-lived runtime with a small injection queue, the default
// runtime, and runtimes made and destroyed meanwhile. Every unit of work is
// accounted for exactly once, results are checked, RSS must stay bounded,
// and an op that runs too long is reported as a hang and aborts.
// Run by scripts/soak (and for a short while by scripts/test).
#include <unistd.h>  // sysconf, mkdtemp, rmdir

#include <algorithm>  // max
#include <atomic>     // atomic
#include <chrono>     // steady_clock
#include <cinttypes>  // PRIu64
#include <cstdio>     // printf, fprintf, fflush
#include <cstdlib>    // _Exit, abort, getenv, strtod, strtoull
#include <cstring>    // strcmp
#include <exception>  // exception
#include <fstream>    // ifstream
#include <string>     // string
#include <thread>     // thread, sleep_for
#include <vector>     // vector

#include "forkline/invoke.hpp"   // invoke
#include "forkline/runtime.hpp"  // runtime, runtime_config
#include "soak.hpp"

namespace soak {

namespace {

const options* g_options = nullptr;

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

struct op_entry {
    const char* name;
    void (*fn)(context&, rng&);
    unsigned weight;
    std::atomic<std::uint64_t> count{0};
};

/// What each driver is doing, for the summaries and the watchdog.
struct driver_slot {
    std::atomic<const char*> op{nullptr};
    std::atomic<std::int64_t> since_ns{0};  ///< when the op began; 0: between ops
    std::atomic<std::uint64_t> ops{0};
};

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

double rss_mib() {
    std::ifstream statm("/proc/self/statm");
    unsigned long long size = 0, resident = 0;
    statm >> size >> resident;
    return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

void usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s [--seconds S | --minutes M] [--seed N] [--drivers N] [--workers N]\n"
                 "          [--injection N] [--interval S] [--stall S] [--warmup S] [--rss-margin-mib M]\n"
                 "          [--no-worker-submit] [--no-throwing-copy] [--no-read-bound] [--no-batch-sink]\n"
                 "          [--only OP] [--tmp DIR]\n",
                 argv0);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                usage(argv[0]);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--seconds") o.seconds = std::strtod(value(), nullptr);
        else if (a == "--minutes") o.seconds = 60 * std::strtod(value(), nullptr);
        else if (a == "--seed") o.seed = std::strtoull(value(), nullptr, 0);
        else if (a == "--drivers") o.drivers = static_cast<unsigned>(std::strtoul(value(), nullptr, 0));
        else if (a == "--workers") o.shared_workers = static_cast<unsigned>(std::strtoul(value(), nullptr, 0));
        else if (a == "--injection") o.injection = std::strtoull(value(), nullptr, 0);
        else if (a == "--interval") o.interval = std::strtod(value(), nullptr);
        else if (a == "--stall") o.stall = std::strtod(value(), nullptr);
        else if (a == "--warmup") o.warmup = std::strtod(value(), nullptr);
        else if (a == "--rss-margin-mib") o.rss_margin_mib = std::strtod(value(), nullptr);
        else if (a == "--no-worker-submit") o.worker_submit = false;
        else if (a == "--no-throwing-copy") o.throwing_copy = false;
        else if (a == "--no-read-bound") o.read_bound = false;
        else if (a == "--no-batch-sink") o.batch_sink = false;
        else if (a == "--only") o.only = value();
        else if (a == "--tmp") o.tmp_dir = value();
        else {
            usage(argv[0]);
            std::exit(a == "--help" || a == "-h" ? 0 : 2);
        }
    }
    if (o.drivers == 0 || o.shared_workers == 0 || o.seconds < 0) {
        usage(argv[0]);
        std::exit(2);
    }
    return o;
}

}  // namespace

void fail(const char* op, const std::string& message) {
    std::fprintf(stderr, "soak: FAIL in %s: %s (seed %" PRIu64 ")\n", op, message.c_str(),
                 g_options != nullptr ? g_options->seed : 0);
    std::fflush(stderr);
    std::fflush(stdout);
    std::_Exit(1);
}

void settle(context& cx, const char* op, unsigned k, const local_counts& c) {
    const std::uint64_t issued = c.issued.load(), finished = c.finished.load(), threw = c.threw.load(),
                        skipped = c.skipped.load(), refused = c.refused.load();
    if (issued != finished + threw + skipped + refused) {
        fail(op, "conservation: issued " + std::to_string(issued) + " != finished " + std::to_string(finished) +
                     " + threw " + std::to_string(threw) + " + skipped " + std::to_string(skipped) + " + refused " +
                     std::to_string(refused));
    }
    counts& t = cx.totals[k];
    t.issued.fetch_add(issued, std::memory_order_relaxed);
    t.finished.fetch_add(finished, std::memory_order_relaxed);
    t.threw.fetch_add(threw, std::memory_order_relaxed);
    t.skipped.fetch_add(skipped, std::memory_order_relaxed);
    t.refused.fetch_add(refused, std::memory_order_relaxed);
}

std::uint64_t spin(std::uint64_t n) noexcept {
    std::uint64_t x = n;
    for (std::uint64_t i = 0; i < n; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        asm volatile("" : "+r"(x));  // keep the loop
    }
    return x;
}

long fib_forked(int n) {
    if (n < 2) return n;
    long a = 0, b = 0;
    forkline::invoke([&] { a = fib_forked(n - 1); }, [&] { b = fib_forked(n - 2); });
    return a + b;
}

long fib_plain(int n) {
    long a = 0, b = 1;
    for (int i = 0; i < n; ++i) {
        const long t = a + b;
        a = b;
        b = t;
    }
    return a;
}

}  // namespace soak

int main(int argc, char** argv) {
    using namespace soak;
    options opt = parse(argc, argv);
    bool made_tmp = false;
    if (opt.tmp_dir.empty()) {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/forkline-soak-XXXXXX";
        if (mkdtemp(tmpl.data()) == nullptr) {
            std::perror("soak: mkdtemp");
            return 1;
        }
        opt.tmp_dir = tmpl;
        made_tmp = true;
    }
    g_options = &opt;

    op_entry ops[] = {
        {"invoke", op_invoke, 3},
        {"group", op_group, 3},
        {"throwing_copy", op_throwing_copy, 1},
        {"loops", op_loops, 3},
        {"run", op_run, 2},
        {"submit", op_submit, 2},
        {"worker_submit", op_worker_submit, 1},
        {"runtime_life", op_runtime_life, 1},
        {"stop_race", op_stop_race, 1},
        {"pipeline", op_pipeline, 2},
        {"io_pipeline", op_io_pipeline, 1},
    };
    unsigned total_weight = 0;
    for (op_entry& e : ops) {
        if (!opt.only.empty() && opt.only != e.name) e.weight = 0;
        total_weight += e.weight;
    }
    if (total_weight == 0) {
        std::fprintf(stderr, "soak: no op named '%s'\n", opt.only.c_str());
        return 2;
    }

    forkline::runtime_config rc;
    rc.placement.workers = opt.shared_workers;
    rc.placement.oversubscribe = true;
    rc.read_environment = false;
    rc.injection_capacity = opt.injection;
    rc.stats = "off";
    forkline::runtime shared(rc);
    context cx;
    cx.opt = opt;
    cx.shared = &shared;

    std::printf("soak: %.0f s, seed %" PRIu64 ", %u drivers, shared runtime %u workers (injection %zu),"
                " worker submit %s, throwing copy %s, read bound %s, batch sink %s\n",
                opt.seconds, opt.seed, opt.drivers, opt.shared_workers, opt.injection,
                opt.worker_submit ? "on" : "off", opt.throwing_copy ? "on" : "off", opt.read_bound ? "on" : "off",
                opt.batch_sink ? "on" : "off");
    std::fflush(stdout);

    const clock_type::time_point t0 = clock_type::now();
    std::atomic<bool> stop_drivers{false};
    std::vector<driver_slot> slots(opt.drivers);
    std::vector<std::thread> drivers;
    for (unsigned d = 0; d < opt.drivers; ++d) {
        drivers.emplace_back([&, d] {
            rng r(mix(opt.seed * 1000003 + d));
            driver_slot& s = slots[d];
            while (!stop_drivers.load(std::memory_order_relaxed)) {
                std::uint64_t pick = r.below(total_weight);
                op_entry* e = ops;
                while (pick >= e->weight) {
                    pick -= e->weight;
                    ++e;
                }
                s.op.store(e->name);
                s.since_ns.store(now_ns());
                try {
                    e->fn(cx, r);
                } catch (const std::exception& ex) {
                    fail(e->name, std::string("unexpected exception: ") + ex.what());
                } catch (...) {
                    fail(e->name, "unexpected exception of unknown type");
                }
                s.since_ns.store(0);
                e->count.fetch_add(1, std::memory_order_relaxed);
                s.ops.fetch_add(1, std::memory_order_relaxed);
            }
        });
    }

    // The monitor: summaries, RSS and the watchdog, on this thread.
    const double warmup = std::min(opt.warmup, opt.seconds / 3);
    double rss_warm = -1, rss_max = 0, bound = 0;
    double next_summary = opt.interval;
    auto summary = [&](const char* tag, double t) {
        std::uint64_t issued = 0, finished = 0, threw = 0, skipped = 0, refused = 0, nops = 0;
        for (const counts& c : cx.totals) {
            issued += c.issued.load();
            finished += c.finished.load();
            threw += c.threw.load();
            skipped += c.skipped.load();
            refused += c.refused.load();
        }
        for (const driver_slot& s : slots) nops += s.ops.load();
        std::printf("soak %s t=%.0fs ops=%" PRIu64 " units=%" PRIu64 " (done %" PRIu64 " threw %" PRIu64
                    " skipped %" PRIu64 " refused %" PRIu64 ") pipelines=%" PRIu64 " (failed %" PRIu64
                    ") runtimes=%" PRIu64 " io=%" PRIu64 "/%" PRIu64 "B rss=%.1fMiB",
                    tag, t, nops, issued, finished, threw, skipped, refused, cx.pipelines.load(),
                    cx.pipeline_failures.load(), cx.runtimes_made.load(), cx.bytes_written.load(),
                    cx.bytes_expected.load(), rss_mib());
        if (rss_warm >= 0) std::printf(" (max %.1f, bound %.1f)", rss_max, bound);
        std::printf("\n");
        std::fflush(stdout);
    };
    auto watch = [&]() {
        const std::int64_t now = now_ns();
        for (unsigned d = 0; d < opt.drivers; ++d) {
            const std::int64_t since = slots[d].since_ns.load();
            if (since == 0 || static_cast<double>(now - since) / 1e9 < opt.stall) continue;
            std::fprintf(stderr, "soak: STUCK: driver %u has been in op '%s' for %.0f s (seed %" PRIu64 ")\n", d,
                         slots[d].op.load(), static_cast<double>(now - since) / 1e9, opt.seed);
            for (unsigned e = 0; e < opt.drivers; ++e) {
                const std::int64_t s = slots[e].since_ns.load();
                std::fprintf(stderr, "soak:   driver %u: %s%s, %.1f s, after %" PRIu64 " ops\n", e,
                             s == 0 ? "between ops" : "in ", s == 0 ? "" : slots[e].op.load(),
                             s == 0 ? 0.0 : static_cast<double>(now - s) / 1e9, slots[e].ops.load());
            }
            for (const forkline::worker_stats& w : shared.stats()) {
                std::fprintf(stderr,
                             "soak:   shared runtime worker %u: tasks %" PRIu64 " injected %" PRIu64 " parks %" PRIu64
                             " wakeups %" PRIu64 "\n",
                             w.worker, w.tasks, w.injected, w.parks, w.wakeups);
            }
            std::fflush(stderr);
            std::abort();
        }
    };
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        const double t = seconds_since(t0);
        const double rss = rss_mib();
        if (t >= warmup && rss_warm < 0) {
            rss_warm = rss;
            bound = 2 * rss_warm + opt.rss_margin_mib;
        }
        if (rss_warm >= 0) {
            rss_max = std::max(rss_max, rss);
            if (rss > bound) {
                fail("rss", "resident set " + std::to_string(rss) + " MiB exceeds the bound " + std::to_string(bound) +
                                " MiB (2 x " + std::to_string(rss_warm) + " MiB at warm-up + " +
                                std::to_string(opt.rss_margin_mib) + ")");
            }
        }
        watch();
        if (t >= next_summary && t < opt.seconds) {
            summary("interval", t);
            next_summary += opt.interval;
        }
        if (t >= opt.seconds) break;
    }
    stop_drivers.store(true);
    // Drivers finish their current op; the watchdog still guards them.
    std::atomic<unsigned> joined{0};
    std::thread joiner([&] {
        for (auto& th : drivers) th.join();
        joined.store(1);
    });
    while (joined.load() == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        watch();
    }
    joiner.join();
    shared.stop();

    for (unsigned k = 0; k < k_kinds; ++k) {
        const counts& c = cx.totals[k];
        if (c.issued.load() != c.finished.load() + c.threw.load() + c.skipped.load() + c.refused.load()) {
            fail("totals", std::string("conservation broken for ") + kind_name(k));
        }
        std::printf("soak kind %-8s issued %" PRIu64 " = finished %" PRIu64 " + threw %" PRIu64 " + skipped %" PRIu64
                    " + refused %" PRIu64 "\n",
                    kind_name(k), c.issued.load(), c.finished.load(), c.threw.load(), c.skipped.load(),
                    c.refused.load());
    }
    std::printf("soak ops:");
    for (const op_entry& e : ops) std::printf(" %s=%" PRIu64, e.name, e.count.load());
    std::printf("\n");
    if (cx.bytes_written.load() != cx.bytes_expected.load()) fail("totals", "bytes written differ from bytes expected");
    summary("final", seconds_since(t0));
    if (made_tmp) rmdir(opt.tmp_dir.c_str());
    std::printf("soak PASS: seed %" PRIu64 ", %.0f s, every unit accounted for, results checked, rss max %.1f MiB"
                " (bound %.1f MiB)\n",
                opt.seed, seconds_since(t0), rss_max, bound);
    return 0;
}

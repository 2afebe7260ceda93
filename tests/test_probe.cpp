// tests/test_probe.cpp: work/span measuring mode, pipeline bounds, the
// in-process scaling probe and its verdicts, worker-count lists.
#include <doctest/doctest.h>

#include <sched.h>     // sched_getaffinity, sched_setaffinity
#include <signal.h>    // kill, SIGKILL
#include <sys/wait.h>  // waitpid
#include <unistd.h>    // fork

#include <atomic>     // atomic
#include <chrono>     // steady_clock
#include <cmath>      // isfinite, isnan
#include <cstdint>    // uint64_t
#include <cstdlib>    // getenv, setenv
#include <filesystem>  // temp_directory_path
#include <limits>     // numeric_limits
#include <stdexcept>  // runtime_error
#include <algorithm>  // is_sorted
#include <string>     // string
#include <thread>     // this_thread::sleep_for
#include <vector>     // vector

#include "forkline/forkline.hpp"
#include "forkline/probe.hpp"
#include "support.hpp"  // config_for, scaled

namespace {

namespace probe = forkline::probe;
using namespace std::chrono_literals;

/// Busy for d of wall time: a strand of known length whatever the build.
void spin_for(std::chrono::nanoseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
    }
}

/// Each link forks an empty task beside the rest of the chain: a path of
/// dependent strands with nothing beside it.
void chain(int k) {
    if (k == 0) return;
    forkline::invoke([&] {
        spin_for(20us);
        chain(k - 1);
    }, [] {});
}

/// Measures up to ten times until `good` holds: strands are timed by the
/// wall clock, so a preemption on a busy machine can stretch one strand;
/// the shape being checked shows in a run that was not disturbed.
template <class F, class Good>
probe::work_span settled(F&& fn, const probe::work_span_options& o, Good&& good) {
    probe::work_span ws;
    for (int attempt = 0; attempt < 10; ++attempt) {
        ws = probe::measure_work_span(fn, o);
        if (good(ws)) break;
    }
    return ws;
}

probe::work_span_options no_burden(unsigned nominal = 4) {
    probe::work_span_options o;
    o.nominal_workers = nominal;
    o.burden_s = 0;
    return o;
}

}  // namespace

TEST_CASE("work/span: fib's parallelism grows with n") {
    double previous = 0;
    for (int n : {8, 14, 20}) {
        // Best of five: a page fault or an interrupt in one strand of a run
        // this short lengthens the span; it never shortens it.
        double best = 0;
        for (int attempt = 0; attempt < 5; ++attempt) {
            long v = 0;
            const probe::work_span ws = probe::measure_work_span([&] { v = fib(n); }, no_burden());
            CHECK(v == fib_loop(n));
            CHECK(ws.work_s > 0);
            CHECK(ws.span_s > 0);
            CHECK(ws.span_s <= ws.work_s);
            CHECK(ws.spawns == static_cast<std::uint64_t>(fib_loop(n + 1) - 1));  // internal nodes of the call tree
            best = std::max(best, ws.parallelism);
        }
        INFO("n=" << n << " best parallelism " << best);
        CHECK(best > previous);
        previous = best;
    }
    CHECK(previous > 20);  // fib(20): 10946 leaves on paths of at most 20 forks
}

TEST_CASE("work/span: a chain of dependent tasks has parallelism about 1") {
    const probe::work_span ws = settled([] { chain(200); }, no_burden(),
                                        [](const probe::work_span& w) { return w.parallelism < 1.2; });
    CHECK(ws.spawns == 200);
    CHECK(ws.parallelism >= 0.99);
    CHECK(ws.parallelism < 1.2);
}

TEST_CASE("work/span: independent task_group tasks give parallelism near their count") {
    const probe::work_span ws = settled([] {
        forkline::task_group tg;
        for (int i = 0; i < 8; ++i) tg.spawn([] { spin_for(2ms); });
        tg.wait();
    }, no_burden(), [](const probe::work_span& w) { return w.parallelism > 5 && w.parallelism < 8.5; });
    CHECK(ws.spawns == 8);
    CHECK(ws.work_s + ws.preempted_s >= 0.0159);  // spins end by the clock, preempted or not
    CHECK(ws.parallelism > 5);
    CHECK(ws.parallelism < 8.5);
}

TEST_CASE("work/span: a task_group's wait joins its children's paths") {
    // Two rounds of 4 parallel 1 ms tasks, the second after the first's
    // wait: span ~2 ms, work ~8 ms.
    const probe::work_span ws = settled([] {
        forkline::task_group tg;
        for (int round = 0; round < 2; ++round) {
            for (int i = 0; i < 4; ++i) tg.spawn([] { spin_for(1ms); });
            tg.wait();
        }
    }, no_burden(), [](const probe::work_span& w) { return w.parallelism > 2.5 && w.parallelism < 4.5; });
    CHECK(ws.span_s >= 0.002);
    CHECK(ws.parallelism > 2.5);
    CHECK(ws.parallelism < 4.5);
}

TEST_CASE("work/span: the burden goes on the stealable half") {
    probe::work_span_options o = no_burden();
    o.burden_s = 5e-3;
    const probe::work_span ws = settled([] {
        forkline::invoke([] { spin_for(1ms); }, [] { spin_for(1ms); });
    }, o, [](const probe::work_span& w) {
        return w.burdened_span_s - w.span_s > 4e-3 && w.burdened_span_s - w.span_s < 6e-3;
    });
    CHECK(ws.burden_s == doctest::Approx(5e-3));
    const double extra = ws.burdened_span_s - ws.span_s;
    INFO("span " << ws.span_s << " burdened " << ws.burdened_span_s);
    CHECK(extra > 4e-3);
    CHECK(extra < 6e-3);
    CHECK(ws.burdened_parallelism < ws.parallelism);
}

TEST_CASE("work/span: loops split for the nominal worker count and visit every index once") {
    std::vector<std::atomic<int>> hits(1 << 14);
    probe::work_span ws = probe::measure_work_span([&] {
        forkline::parallel_for(0, static_cast<int>(hits.size()), [&](int i) {
            hits[static_cast<std::size_t>(i)].fetch_add(1, std::memory_order_relaxed);
        });
    }, no_burden(4));
    for (auto& h : hits) REQUIRE(h.load() == 1);
    CHECK(ws.nominal_workers == 4);
    CHECK(ws.spawns == 255);  // 2^14 indices in chunks of 2^14 / (4 * 64): 256 pieces
    // A loop of slow bodies: the pieces are independent, so the measured
    // parallelism is far above a chain's 1.
    const probe::work_span wide = settled([] {
        forkline::parallel_for(0, 64, [](int) { spin_for(100us); });
    }, no_burden(4), [](const probe::work_span& w) { return w.parallelism > 16; });
    CHECK(wide.spawns == 63);
    CHECK(wide.parallelism > 16);
    long sum = 0;
    probe::measure_work_span([&] {
        sum = forkline::parallel_reduce(0L, 1000L, 0L, [](long lo, long hi, long acc) {
            for (long i = lo; i < hi; ++i) acc += i;
            return acc;
        }, [](long a, long b) { return a + b; });
    }, no_burden(4));
    CHECK(sum == 999L * 1000L / 2);
    std::vector<int> v(5000);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int>((i * 7919) % 5000);
    ws = probe::measure_work_span([&] { forkline::parallel_sort(v.begin(), v.end()); }, no_burden(4));
    CHECK(std::is_sorted(v.begin(), v.end()));
}

TEST_CASE("work/span: static-affinity loops and spawn_on run in order while measuring") {
    std::vector<int> hits(1000, 0);
    const probe::work_span ws = probe::measure_work_span([&] {
        forkline::parallel_for(0, 1000, [&](int i) { ++hits[static_cast<std::size_t>(i)]; }, forkline::static_affinity);
    }, no_burden(4));
    for (int h : hits) REQUIRE(h == 1);
    CHECK(ws.spawns == 3);  // one block per other nominal worker
}

TEST_CASE("work/span: errors and exceptions") {
    SUBCASE("from a worker thread") {
        forkline::runtime rt(config_for(1));
        rt.run([] { CHECK_THROWS_AS(probe::measure_work_span([] {}, no_burden()), forkline::config_error); });
    }
    SUBCASE("nested") {
        probe::measure_work_span([] {
            CHECK_THROWS_AS(probe::measure_work_span([] {}, no_burden()), forkline::config_error);
        }, no_burden());
    }
    SUBCASE("an exception leaves measuring mode") {
        CHECK_THROWS_AS(probe::measure_work_span([] {
            forkline::invoke([] { throw std::runtime_error("left"); }, [] {});
        }, no_burden()), std::runtime_error);
        long v = 0;
        forkline::runtime rt(config_for(2));
        rt.run([&] { v = fib(15); });  // this thread is an outside thread again
        CHECK(v == fib_loop(15));
        CHECK(rt.current_worker_index() == -1);
    }
    SUBCASE("runtime::run inside runs on that runtime, as one strand") {
        forkline::runtime rt(config_for(2));
        long v = 0;
        const probe::work_span ws = probe::measure_work_span([&] { rt.run([&] { v = fib(12); }); }, no_burden());
        CHECK(v == fib_loop(12));
        CHECK(ws.spawns == 0);
    }
}

TEST_CASE("pipeline bound: a serial stage with half the time bounds the speedup at about 2") {
    forkline::runtime rt(config_for(2));
    // Busy time is wall time inside the calls: on a loaded machine a
    // preempted call runs long, so a run may be retried (see settled()).
    probe::pipeline_bound b;
    for (int attempt = 0; attempt < 5; ++attempt) {
        int next = 0;
        const forkline::pipeline_stats st = forkline::run_pipeline(rt, 4,
            forkline::stage(forkline::serial_in_order, "source",
                            [&](forkline::flow_control& fc) -> int {
                                if (next == 60) {
                                    fc.stop();
                                    return 0;
                                }
                                return next++;
                            }),
            forkline::stage(forkline::parallel, "work", [](int& v) {
                spin_for(300us);
                return v;
            }),
            forkline::stage(forkline::serial_in_order, "sink", [](int&) { spin_for(300us); }));
        b = probe::bound_of(st);
        if (b.bound > 1.6 && b.bound < 2.5) break;
    }
    REQUIRE(b.stages.size() == 3);
    CHECK(b.bottleneck == "sink");
    INFO("serial share " << b.serial_share << " bound " << b.bound);
    CHECK(b.serial_share > 0.4);
    CHECK(b.serial_share < 0.65);
    CHECK(b.bound > 1.6);
    CHECK(b.bound < 2.5);
    double shares = 0;
    for (const auto& s : b.stages) shares += s.share;
    CHECK(shares == doctest::Approx(1.0));
}

TEST_CASE("pipeline bound: no serial stage with time means no bound") {
    forkline::pipeline_stats st;
    st.stages.push_back({"a", forkline::stage_mode::serial_in_order, 10, 0});
    st.stages.push_back({"b", forkline::stage_mode::parallel, 10, 1000});
    const probe::pipeline_bound b = probe::bound_of(st);
    CHECK(std::isinf(b.bound));
    CHECK(b.serial_share == 0);
}

TEST_CASE("worker counts: parsing") {
    CHECK(probe::parse_worker_counts("1,2,4") == std::vector<unsigned>{1, 2, 4});
    CHECK(probe::parse_worker_counts("4,1,2,2") == std::vector<unsigned>{1, 2, 4});
    CHECK(probe::parse_worker_counts("1-4") == std::vector<unsigned>{1, 2, 3, 4});
    CHECK(probe::parse_worker_counts("1-8:3") == std::vector<unsigned>{1, 4, 7, 8});
    CHECK(probe::parse_worker_counts("1-2,16") == std::vector<unsigned>{1, 2, 16});
    for (const char* bad : {"", "0", "1,,2", "a", "4-1", "1-", "-3", "1-8:0", "2x", "99999999"}) {
        INFO(bad);
        CHECK_THROWS_AS(probe::parse_worker_counts(bad), forkline::config_error);
    }
}

TEST_CASE("worker counts: defaults follow cores, quarter steps, NUMA boundaries and SMT") {
    const auto small = forkline::topology::synthetic("pack:1 core:2 pu:1");
    CHECK(probe::default_worker_counts(small) == std::vector<unsigned>{1, 2});
    const auto big = forkline::topology::synthetic("pack:2 numa:2 core:8 pu:2");
    CHECK(probe::default_worker_counts(big) == std::vector<unsigned>{1, 2, 3, 4, 5, 6, 7, 8, 16, 24, 32});
    CHECK(probe::default_worker_counts(big, true) == std::vector<unsigned>{1, 2, 3, 4, 5, 6, 7, 8, 16, 24, 32, 64});
    const auto wide = forkline::topology::synthetic("pack:1 core:64 pu:1");
    CHECK(probe::default_worker_counts(wide) == std::vector<unsigned>{1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 48, 64});
}

TEST_CASE("summarise: median, range and the interquartile spread") {
    probe::point p;
    p.seconds = {4, 1, 3, 2, 5};
    probe::summarise(p);
    CHECK(p.median_s == 3);
    CHECK(p.min_s == 1);
    CHECK(p.max_s == 5);
    CHECK(p.spread == doctest::Approx((4.0 - 2.0) / 3.0));
}

TEST_CASE("scaling: a curve with counters, every point measured") {
    probe::options o;
    o.workers = {1, 2};
    o.warmup = 1;
    o.min_reps = 2;
    o.max_reps = 3;
    o.target_spread = 0;  // never stable enough: every count runs max_reps
    o.max_disturbed = 0;  // a busy test machine must not add repetitions
    unsigned progress_calls = 0;
    o.on_progress = [&](const probe::progress& p) {
        CHECK(p.name == "spin");
        ++progress_calls;
    };
    std::atomic<int> wrong{0};
    const probe::result r = probe::scaling("spin", [&](forkline::runtime& rt) {
        std::vector<long> out(64);
        rt.run([&] {
            forkline::parallel_for(0, 64, 1, [&](int i) {
                spin_for(200us);
                out[static_cast<std::size_t>(i)] = fib(10);
            });
        });
        for (long v : out) {
            if (v != 55) wrong.fetch_add(1);
        }
    }, o);
    CHECK(wrong.load() == 0);
    CHECK(r.verdict != probe::limit::failed);
    REQUIRE(r.points.size() == 2);
    CHECK(progress_calls == 2 * (1 + 3));
    for (const probe::point& p : r.points) {
        CHECK(p.seconds.size() == 3);
        CHECK(p.min_s <= p.median_s);
        CHECK(p.median_s <= p.max_s);
        REQUIRE(p.shares.has_value());
        const auto& s = *p.shares;
        CHECK(s.working + s.stealing + s.failed_search + s.parked + s.join_waiting == doctest::Approx(1.0));
        CHECK(s.working > 0);
    }
    CHECK(r.points[0].workers == 1);
    CHECK(r.points[0].speedup == doctest::Approx(1.0));
    CHECK(std::isnan(r.points[0].karp_flatt));
    CHECK(std::isfinite(r.points[1].speedup));
    CHECK(std::isfinite(r.points[1].karp_flatt));
    CHECK(r.amdahl.status != forkline::fit_status::bad_input);
    CHECK(r.usl.status == forkline::fit_status::too_few_points);
    CHECK(!r.why.empty());
}

TEST_CASE("scaling: a failing repetition stops the probe with its message and no fit") {
    probe::options o;
    o.workers = {1, 2};
    o.warmup = 0;
    o.min_reps = 2;
    o.max_reps = 2;
    int runs = 0;
    const probe::result r = probe::scaling("breaks", [&](forkline::runtime& rt) {
        ++runs;
        if (rt.worker_count() == 2) throw std::runtime_error("wrong answer at 2 workers");
    }, o);
    CHECK(r.verdict == probe::limit::failed);
    CHECK(r.error == "wrong answer at 2 workers");
    CHECK(r.amdahl.status == forkline::fit_status::bad_input);  // never fitted
    CHECK(runs == 2);
}

TEST_CASE("analyse: verdicts from shares, parallelism and pipeline bounds") {
    auto curve = [](std::vector<std::pair<unsigned, double>> pts, double working, double inflation_scale) {
        probe::result r;
        r.name = "synthetic";
        for (auto [n, t] : pts) {
            probe::point p;
            p.workers = n;
            p.seconds = {t, t, t};
            probe::time_shares s;
            s.working = n == 1 ? 1.0 : working;
            s.parked = 1.0 - s.working;
            p.shares = s;
            (void)inflation_scale;
            r.points.push_back(p);
        }
        return r;
    };
    SUBCASE("scales") {
        probe::result r = curve({{1, 1.0}, {2, 0.51}, {4, 0.26}}, 0.98, 1);
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::scales);
    }
    SUBCASE("overhead: workers idle") {
        probe::result r = curve({{1, 1.0}, {2, 0.8}}, 0.62, 1);
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::overhead);
        CHECK(r.why.find("parked") != std::string::npos);
    }
    SUBCASE("workers busy, each piece slower, bytes not known: contention, bandwidth not ruled out") {
        probe::result r = curve({{1, 1.0}, {2, 0.8}}, 0.99, 1);
        probe::analyse(r);
        CHECK(r.points[1].work_inflation == doctest::Approx(0.99 * 2 * 0.8));
        CHECK(r.verdict == probe::limit::contention);
        CHECK(r.why.find("not ruled out") != std::string::npos);
    }
    SUBCASE("bandwidth: each piece slower, and the bytes moved near the memory ceiling") {
        probe::result r = curve({{1, 1.0}, {2, 0.8}}, 0.99, 1);
        r.bytes_per_repetition = 8e9;  // 10 GB/s at 2 workers
        r.points[1].host_bytes_per_s = 12e9;
        probe::analyse(r);
        CHECK(r.points[1].bytes_per_s == doctest::Approx(10e9));
        CHECK(r.verdict == probe::limit::bandwidth);
        CHECK(r.why.find("10.00 GB/s, 83% of the host's memory ceiling") != std::string::npos);
    }
    SUBCASE("contention: each piece slower, the bytes moved far below the memory ceiling") {
        probe::result r = curve({{1, 1.0}, {2, 0.8}}, 0.99, 1);
        r.bytes_per_repetition = 0.8e9;  // 1 GB/s at 2 workers
        r.points[1].host_bytes_per_s = 12e9;
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::contention);
        CHECK(std::string(probe::to_string(r.verdict)) == "contention-limited");
        CHECK(r.why.find("8% of the host's memory ceiling, so not memory bandwidth") != std::string::npos);
    }
    SUBCASE("contention: work said to stay in the caches is never bandwidth-limited") {
        probe::result r = curve({{1, 1.0}, {2, 0.8}}, 0.99, 1);
        r.bytes_per_repetition = 0;
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::contention);
        CHECK(r.why.find("stays in the caches") != std::string::npos);
    }
    SUBCASE("bytes known, memory ceiling not measured: bandwidth, and it says so") {
        probe::result r = curve({{1, 1.0}, {2, 0.8}}, 0.99, 1);
        r.bytes_per_repetition = 8e9;
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::bandwidth);
        CHECK(r.why.find("not measured") != std::string::npos);
    }
    SUBCASE("parallelism: the graph has too little") {
        probe::result r = curve({{1, 1.0}, {2, 0.7}, {4, 0.65}}, 0.5, 1);
        probe::work_span g;
        g.parallelism = 1.6;
        g.burdened_parallelism = 1.5;
        r.graph = g;
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::parallelism);
    }
    SUBCASE("serial stage") {
        probe::result r = curve({{1, 1.0}, {2, 0.55}, {4, 0.52}}, 0.5, 1);
        probe::pipeline_bound b;
        b.bottleneck = "write";
        b.bound = 2.0;
        b.serial_share = 0.5;
        r.pipeline = b;
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::serial_stage);
        CHECK(r.why.find("write") != std::string::npos);
    }
    SUBCASE("no counters: the serial fraction speaks") {
        probe::result r;
        for (auto [n, t] : std::vector<std::pair<unsigned, double>>{{1, 1.0}, {2, 0.6}}) {
            probe::point p;
            p.workers = n;
            p.seconds = {t * 0.99, t, t * 1.01};
            r.points.push_back(p);
        }
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::serial_fraction);
        CHECK(r.amdahl.serial_fraction == doctest::Approx(0.2).epsilon(0.01));
    }
    SUBCASE("no counters, slower with more workers: no serial fraction claimed") {
        probe::result r;
        for (auto [n, t] : std::vector<std::pair<unsigned, double>>{{1, 1.0}, {2, 1.1}, {3, 1.2}}) {
            probe::point p;
            p.workers = n;
            p.seconds = {t, t, t};
            r.points.push_back(p);
        }
        probe::analyse(r);
        CHECK(r.amdahl.status == forkline::fit_status::retrograde);
        CHECK(r.verdict == probe::limit::unknown);
        CHECK(r.why.find("slower with more workers") != std::string::npos);
    }
}

TEST_CASE("counters: idle time is the sum of its parts, parked time counts while asleep") {
    forkline::runtime rt(config_for(2));
    long v = 0;
    rt.run([&] { v = fib(20); });
    CHECK(v == fib_loop(20));
    const auto before = rt.stats();
    std::this_thread::sleep_for(50ms);  // both workers park
    const auto after = rt.stats();
    std::uint64_t parked = 0;
    for (std::size_t i = 0; i < before.size(); ++i) parked += after[i].parked_ns - before[i].parked_ns;
    CHECK(parked > 0);
    rt.stop();
    for (const forkline::worker_stats& s : rt.stats()) {
        CHECK(s.idle_ns == s.search_ns + s.failed_search_ns + s.parked_ns);
    }
}

TEST_CASE("steal cost: measured once, positive on a host with two cores") {
    const double c = probe::measure_steal_cost();
    CHECK(c >= 0);
    CHECK(c < 0.01);
    CHECK(probe::measure_steal_cost() == c);
}

TEST_CASE("analyse: points of the same count in several processes pool their repetitions for the fits") {
    // --ranks: 1 rank x 2 workers and 2 ranks x 1 worker are both 2 workers.
    // The fits want each count once; each point keeps its own speedup.
    probe::result r;
    r.name = "ranks";
    const struct {
        unsigned ranks, workers;
        double t;
    } shapes[] = {{2, 2, 0.30}, {1, 1, 1.0}, {2, 1, 0.56}, {1, 2, 0.52}};
    for (const auto& s : shapes) {
        probe::point p;
        p.ranks = s.ranks;
        p.workers = s.ranks * s.workers;
        p.seconds = {s.t, s.t * 1.01, s.t * 0.99};
        r.points.push_back(p);
    }
    probe::analyse(r);
    REQUIRE(r.points.size() == 4);
    // In order of the count, then fewer ranks first.
    CHECK(r.points[0].workers == 1);
    CHECK(r.points[1].workers == 2);
    CHECK(r.points[1].ranks == 1);
    CHECK(r.points[2].workers == 2);
    CHECK(r.points[2].ranks == 2);
    CHECK(r.points[3].workers == 4);
    CHECK(r.points[1].speedup == doctest::Approx(1.0 / 0.52));
    CHECK(r.points[2].speedup == doctest::Approx(1.0 / 0.56));
    CHECK(r.amdahl.status != forkline::fit_status::bad_input);
    CHECK(r.usl.status != forkline::fit_status::bad_input);
    CHECK(r.amdahl.serial_fraction > 0.0);
    CHECK(r.amdahl.serial_fraction < 0.2);
}

TEST_CASE("scaling: a process spinning on one of our cpus makes the run disturbed, and the verdict says so") {
    // The spinner is a child process pinned to a cpu a worker uses: its time
    // shows in /proc/stat as others' and the worker sharing its cpu waits on
    // the run queue. Only the busy side is asserted: a quiet CI machine
    // cannot be promised.
    cpu_set_t mask;
    REQUIRE(sched_getaffinity(0, sizeof mask, &mask) == 0);
    std::vector<unsigned> cpus;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &mask)) cpus.push_back(c);
    }
    REQUIRE(!cpus.empty());
    const pid_t spinner = fork();
    REQUIRE(spinner >= 0);
    if (spinner == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus.back(), &one);
        sched_setaffinity(0, sizeof one, &one);
        std::atomic<unsigned long> spins{0};
        for (;;) spins.fetch_add(1, std::memory_order_relaxed);
    }
    probe::options o;
    o.workers = {static_cast<unsigned>(std::min<std::size_t>(cpus.size(), 4))};
    o.warmup = 0;
    o.min_reps = 2;
    o.max_reps = 2;
    o.max_disturbed = 1;
    const probe::result r = probe::scaling("spin", [](forkline::runtime& rt) {
        rt.run([] {
            forkline::parallel_for(0, 64, 1, [](int) { spin_for(5ms); });  // 0.32 s of work per repetition
        });
    }, o);
    kill(spinner, SIGKILL);
    int status = 0;
    waitpid(spinner, &status, 0);
    INFO("why: " << r.why);
    REQUIRE(r.points.size() == 1);
    CHECK(r.points[0].disturbed_reps >= 2);
    CHECK(r.disturbed_reps >= 2);
    CHECK(r.points[0].disturbed);  // past the one retry: kept and marked
    CHECK(r.disturbed);
    CHECK(r.why.find("the host was busy") == 0);
}

TEST_CASE("verdict host: inflation the host's compute ceiling explains is the host's, not bandwidth") {
    auto curve = [](double t2, double working2, double host2, bool shares) {
        probe::result r;
        r.name = "synthetic";
        for (unsigned n : {1u, 2u}) {
            probe::point p;
            p.workers = n;
            const double t = n == 1 ? 1.0 : t2;
            p.seconds = {t, t, t};
            if (shares) {
                probe::time_shares s;
                s.working = n == 1 ? 1.0 : working2;
                s.parked = 1.0 - s.working;
                p.shares = s;
            }
            p.host_slowdown = n == 1 ? 1.0 : host2;
            r.points.push_back(p);
        }
        return r;
    };
    SUBCASE("busy workers, inflation 1.23x, host 1.2x: host") {
        probe::result r = curve(0.62, 0.99, 1.2, true);
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::host);
        CHECK(r.why.find("the host's compute slowdown is 1.20x at 2 workers") != std::string::npos);
    }
    SUBCASE("the same curve on a host that scales, near its memory ceiling: bandwidth") {
        probe::result r = curve(0.62, 0.99, 1.0, true);
        r.bytes_per_repetition = 6e9;
        r.points[1].host_bytes_per_s = 10e9;
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::bandwidth);
    }
    SUBCASE("unknown host, compute-only work: contention, never bandwidth") {
        probe::result r = curve(0.62, 0.99, std::numeric_limits<double>::quiet_NaN(), true);
        r.bytes_per_repetition = 0;
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::contention);
    }
    SUBCASE("an external command at the host's ceiling: host, not serial fraction") {
        probe::result r = curve(0.6, 0, 1.15, false);
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::host);
        CHECK(std::string(probe::to_string(r.verdict)) == "host-limited");
    }
    SUBCASE("an external command well below it: serial fraction") {
        probe::result r = curve(0.8, 0, 1.05, false);
        probe::analyse(r);
        CHECK(r.verdict == probe::limit::serial_fraction);
    }
}

TEST_CASE("slowdown_of: the median only when the middle half of the pairs is above 1") {
    // A host 18% slower per thread: every pair says so, within noise.
    const std::vector<double> slow = {1.21, 1.17, 1.19, 1.15, 1.18, 1.22, 1.16, 1.18, 1.20};
    CHECK(probe::slowdown_of(slow) == doctest::Approx(1.18));
    // A 2-vCPU VM's +-4% scatter around no slowdown: 1, not the median.
    const std::vector<double> noise = {1.009, 1.009, 0.965, 1.008, 1.038, 0.975, 0.976, 0.955, 1.02};
    CHECK(probe::slowdown_of(noise) == 1.0);
    // Below 1 (n threads each faster than one alone): disturbed windows.
    const std::vector<double> below = {0.93, 0.92, 0.91, 0.94, 0.925};
    CHECK(probe::slowdown_of(below) == 1.0);
    // One high outlier does not make a slowdown, nor one low one undo it.
    const std::vector<double> outlier = {0.99, 1.0, 0.98, 1.4, 1.01, 0.995, 1.0};
    CHECK(probe::slowdown_of(outlier) == 1.0);
    const std::vector<double> dip = {1.10, 1.12, 0.8, 1.11, 1.09, 1.10, 1.13};
    CHECK(probe::slowdown_of(dip) == doctest::Approx(1.10));
    // An even count takes the middle two; nothing or a bad ratio is NaN.
    const std::vector<double> even = {1.1, 1.2, 1.3, 1.4};
    CHECK(probe::slowdown_of(even) == doctest::Approx(1.25));
    CHECK(std::isnan(probe::slowdown_of({})));
    const std::vector<double> bad = {1.1, 0.0, 1.2};
    CHECK(std::isnan(probe::slowdown_of(bad)));
    const std::vector<double> inf = {1.1, std::numeric_limits<double>::infinity()};
    CHECK(std::isnan(probe::slowdown_of(inf)));
}

TEST_CASE("the compute ceiling: measured per count, cached per host, recalibrated on request") {
    const std::filesystem::path cache =
        std::filesystem::temp_directory_path() / ("forkline-ceiling-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(cache);
    const char* old = std::getenv("XDG_CACHE_HOME");
    const std::string saved = old != nullptr ? old : "";
    ::setenv("XDG_CACHE_HOME", cache.c_str(), 1);
    const unsigned counts[] = {1, 2};
    const auto first = probe::host_compute_ceiling(counts, forkline::placement_policy::compact, false, false, 0.02);
    REQUIRE(first.size() == 2);
    CHECK(first[0].workers == 1);
    CHECK(first[0].slowdown == doctest::Approx(1.0));
    CHECK(first[1].workers == 2);
    CHECK(std::isfinite(first[1].slowdown));
    CHECK(first[1].slowdown >= 1.0);  // never below: that would be noise (slowdown_of)
    // The cache holds them: the same values back, to the digit printed.
    std::size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(cache / "forkline")) {
        files += e.path().extension() == ".txt" ? 1 : 0;
    }
    CHECK(files == 1);
    const auto again = probe::host_compute_ceiling(counts, forkline::placement_policy::compact, false, false, 0.02);
    REQUIRE(again.size() == 2);
    CHECK(again[1].slowdown == doctest::Approx(first[1].slowdown).epsilon(1e-5));
    // A count it lacks is measured and added; a recalibration measures all.
    const unsigned more[] = {1, 2, 3};
    const auto added = probe::host_compute_ceiling(more, forkline::placement_policy::compact, false, false, 0.02);
    REQUIRE(added.size() == 3);
    CHECK(added[1].slowdown == doctest::Approx(first[1].slowdown).epsilon(1e-5));
    const auto fresh = probe::host_compute_ceiling(more, forkline::placement_policy::compact, false, true, 0.02);
    CHECK(fresh.size() == 3);
    if (saved.empty()) {
        ::unsetenv("XDG_CACHE_HOME");
    } else {
        ::setenv("XDG_CACHE_HOME", saved.c_str(), 1);
    }
    std::filesystem::remove_all(cache);
}

TEST_CASE("the memory ceiling: triad bandwidth per count, cached beside the compute ceiling") {
    const std::filesystem::path cache =
        std::filesystem::temp_directory_path() / ("forkline-memory-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(cache);
    const char* old = std::getenv("XDG_CACHE_HOME");
    const std::string saved = old != nullptr ? old : "";
    ::setenv("XDG_CACHE_HOME", cache.c_str(), 1);
    const unsigned counts[] = {1, 2};
    const auto first = probe::host_memory_ceiling(counts, forkline::placement_policy::compact, false, false, 0.02);
    REQUIRE(first.size() == 2);
    CHECK(first[0].workers == 1);
    CHECK(first[1].workers == 2);
    // Any machine this runs on moves more than 100 MB/s and less than 10 TB/s.
    for (const probe::memory_ceiling& m : first) {
        CHECK(m.bytes_per_s > 1e8);
        CHECK(m.bytes_per_s < 1e13);
    }
    const auto again = probe::host_memory_ceiling(counts, forkline::placement_policy::compact, false, false, 0.02);
    REQUIRE(again.size() == 2);
    CHECK(again[1].bytes_per_s == doctest::Approx(first[1].bytes_per_s).epsilon(1e-6));
    std::size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(cache / "forkline")) {
        files += e.path().filename().string().rfind("memory-", 0) == 0 ? 1 : 0;
    }
    CHECK(files == 1);
    if (saved.empty()) {
        ::unsetenv("XDG_CACHE_HOME");
    } else {
        ::setenv("XDG_CACHE_HOME", saved.c_str(), 1);
    }
    std::filesystem::remove_all(cache);
}

TEST_CASE("scaling: bytes per repetition and the memory ceiling reach the points") {
    probe::options o;
    o.workers = {1, 2};
    o.min_reps = 1;
    o.max_reps = 1;
    o.warmup = 0;
    o.bytes_per_repetition = 1e6;
    o.memory = {{1, 5e9}, {2, 9e9}};
    const probe::result r = probe::scaling(
        "sleepy", [](forkline::runtime&) { std::this_thread::sleep_for(2ms); }, o);
    REQUIRE(r.points.size() == 2);
    CHECK(r.points[0].host_bytes_per_s == 5e9);
    CHECK(r.points[1].host_bytes_per_s == 9e9);
    CHECK(r.points[1].bytes_per_s == doctest::Approx(1e6 / r.points[1].median_s));
    CHECK(r.points[1].bytes_per_s < 1e6 / 2e-3);
}

TEST_CASE("paired_seconds: a host that jumps between speeds moves a pair alike") {
    // s = 0.1: T(1) = 1, T(2) = 0.55 at full speed. The host runs 10% slower
    // for whole stretches of the run (a VM's clock), so the raw medians mix
    // both speeds unevenly; each 2-worker run sits beside 1-worker runs of
    // its own stretch, in rounds 1, 2, 1, 2, ... The slow stretch begins
    // between the two runs of round 4 and ends between those of round 8, so
    // 5 of the 1-worker runs are slow and 3 of the 2-worker ones.
    const std::vector<double> speed_one = {1.0, 1.0, 1.0, 1.0, 1.1, 1.1, 1.1, 1.1, 1.1};
    const std::vector<double> speed_two = {1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.1, 1.1, 1.0};
    probe::point one;
    probe::point two;
    one.workers = 1;
    two.workers = 2;
    double clock = 0;
    for (std::size_t i = 0; i < speed_one.size(); ++i) {
        one.started_s.push_back(clock);
        one.seconds.push_back(1.0 * speed_one[i]);
        clock += one.seconds.back();
        two.started_s.push_back(clock);
        two.seconds.push_back(0.55 * speed_two[i]);
        clock += two.seconds.back();
    }
    const std::vector<probe::point> points = {one, two};
    const auto raw = forkline::fit_amdahl(std::vector<forkline::scaling_sample>{{1, one.seconds}, {2, two.seconds}});
    const auto paired = probe::paired_seconds(points);
    REQUIRE(paired.size() == 2);
    CHECK(paired[0].workers == 1);
    CHECK(paired[1].workers == 2);
    // The reference is its own median throughout; every pair keeps its ratio
    // to within the drift between neighbouring runs.
    for (const double t : paired[0].seconds) CHECK(t == doctest::Approx(1.1));
    const auto fit = forkline::fit_amdahl(paired);
    CHECK(std::abs(fit.serial_fraction - 0.1) < 0.01);
    CHECK(std::abs(raw.serial_fraction - 0.1) > 0.05);  // what the raw medians give instead

    // Without start times on every point: the times as measured.
    std::vector<probe::point> partial = points;
    partial[1].started_s.pop_back();
    const auto as_measured = probe::paired_seconds(partial);
    CHECK(as_measured[1].seconds == two.seconds);
    CHECK(as_measured[0].seconds == one.seconds);
    // analyse fits the paired times.
    probe::result r;
    r.name = "drifting";
    r.points = points;
    probe::analyse(r);
    CHECK(std::abs(r.amdahl.serial_fraction - 0.1) < 0.01);
}

TEST_CASE("analyse: the Amdahl fit is corrected for the host where every count has its slowdown") {
    // s = 0.1 on a host 5% slower per thread at 2 workers.
    auto curve = [](bool all_known) {
        probe::result r;
        r.name = "external";
        for (const auto& [n, h] : std::vector<std::pair<unsigned, double>>{{1, 1.0}, {2, 1.05}}) {
            probe::point p;
            p.workers = n;
            const double t = 0.1 + 0.9 * h / n;
            p.seconds = {t * 0.999, t, t * 1.001};
            p.host_slowdown = (all_known || n == 1) ? h : std::numeric_limits<double>::quiet_NaN();
            r.points.push_back(p);
        }
        return r;
    };
    probe::result r = curve(true);
    probe::analyse(r);
    CHECK(r.amdahl_corrected);
    CHECK(r.amdahl.serial_fraction == doctest::Approx(0.1).epsilon(1e-3));
    CHECK(r.amdahl_uncorrected.serial_fraction == doctest::Approx(2 * (0.1 + 0.9 * 1.05 / 2) - 1).epsilon(1e-3));
    CHECK(r.why.find("uncorrected") != std::string::npos);
    probe::result partial = curve(false);
    probe::analyse(partial);
    CHECK_FALSE(partial.amdahl_corrected);
    CHECK(partial.amdahl.serial_fraction == doctest::Approx(partial.amdahl_uncorrected.serial_fraction));
}

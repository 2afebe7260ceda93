// tests/test_stats.cpp: the runtime's counters add up, and FORKLINE_STATS's
// text and JSON reports say what the counters say.
#include <doctest/doctest.h>

#include <algorithm>   // max
#include <atomic>      // atomic
#include <chrono>      // steady_clock
#include <cstdint>     // int64_t
#include <cstdio>      // remove
#include <cstdlib>     // system
#include <filesystem>  // temp_directory_path
#include <fstream>     // ifstream
#include <map>         // map
#include <span>        // span
#include <sstream>     // ostringstream, istringstream
#include <string>      // string
#include <thread>      // thread, yield
#include <vector>      // vector

#include "forkline/forkline.hpp"
#include "forkline/stats.hpp"
#include "support.hpp"  // config_for, fib, fib_loop, scaled

namespace {

/// Runs fork-join, task_group and submitted work on rt.
void exercise(forkline::runtime& rt) {
    long v = 0;
    rt.run([&] { v = fib(22); });
    CHECK(v == fib_loop(22));
    std::atomic<int> done{0};
    rt.run([&] {
        forkline::task_group tg;
        for (int i = 0; i < 500; ++i) tg.spawn([&] { done.fetch_add(1, std::memory_order_relaxed); });
        tg.wait();
    });
    CHECK(done.load() == 500);
    auto f = rt.submit([] { return fib(15); });
    CHECK(f.get() == fib_loop(15));
}

/// "forkline-stats: k=v k=v ..." into a map; the bare word after the prefix
/// ("total") is kept under "kind".
std::map<std::string, std::string> fields(const std::string& line) {
    std::map<std::string, std::string> out;
    std::istringstream in(line);
    std::string word;
    in >> word;
    REQUIRE(word == "forkline-stats:");
    while (in >> word) {
        const auto eq = word.find('=');
        if (eq == std::string::npos) {
            out["kind"] = word;
        } else {
            out[word.substr(0, eq)] = word.substr(eq + 1);
        }
    }
    return out;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

}  // namespace

TEST_CASE("counters add up: every task run was spawned or submitted, steals are tasks") {
    for (unsigned workers : {1u, 2u, 4u}) {
        forkline::runtime rt(config_for(workers));
        for (std::size_t k = 0; k < scaled(5, 1); ++k) exercise(rt);
        rt.stop();
        const forkline::worker_stats t = forkline::total_of(rt.stats());
        INFO("workers " << workers << " tasks " << t.tasks << " spawned " << t.spawned << " injected " << t.injected);
        CHECK(t.tasks == t.spawned + t.injected);
        CHECK(t.steals_near + t.steals_far <= t.tasks);
        CHECK(t.injected == 3 * scaled(5, 1));
        CHECK(t.idle_ns == t.search_ns + t.failed_search_ns + t.parked_ns);
        CHECK(t.wakeups <= t.parks);
        if (workers == 1) CHECK(t.steals_near + t.steals_far == 0);
    }
}

TEST_CASE("the text report: one line per worker, a total that is their sum, stage lines") {
    forkline::runtime rt(config_for(2));
    exercise(rt);
    for (int run = 0; run < 2; ++run) {
        int next = 0;
        forkline::run_pipeline(rt, 4,
            forkline::stage(forkline::serial_in_order, "make",
                            [&](forkline::flow_control& fc) {
                                if (next == 50) fc.stop();
                                return next++;
                            }),
            forkline::stage(forkline::parallel, "square", [](int& v) { return v * v; }),
            forkline::stage(forkline::serial_in_order, "sum", [](int&) {}));
    }
    rt.stop();
    const forkline::runtime_report r = forkline::report(rt);
    std::ostringstream text;
    forkline::write_stats_text(text, r);
    const auto lines = lines_of(text.str());
    REQUIRE(lines.size() == 2 + 1 + 3);
    std::uint64_t tasks = 0;
    for (int i = 0; i < 2; ++i) {
        auto f = fields(lines[static_cast<std::size_t>(i)]);
        CHECK(f["worker"] == std::to_string(i));
        tasks += std::stoull(f["tasks"]);
        for (const char* key : {"spawned", "steals_near", "steals_far", "failed_steals", "parks", "wakeups", "injected"}) {
            INFO(key);
            CHECK(f.count(key) == 1);
        }
        CHECK(std::stod(f["idle_ms"]) >= 0);
    }
    auto total = fields(lines[2]);
    CHECK(total["kind"] == "total");
    CHECK(total["workers"] == "2");
    CHECK(std::stoull(total["tasks"]) == tasks);
    CHECK(std::stod(total["uptime_s"]) > 0);
    const char* names[] = {"make", "square", "sum"};
    for (int s = 0; s < 3; ++s) {
        auto f = fields(lines[static_cast<std::size_t>(3 + s)]);
        CHECK(f["stage"] == names[s]);
        CHECK(f["pipeline"] == "make|square|sum");
        CHECK(f["runs"] == "2");
        CHECK(f["items"] == "100");  // 50 items in each of 2 runs
        CHECK(f["mode"] == (s == 1 ? "parallel" : "serial_in_order"));
    }
}

TEST_CASE("json:FILE holds every runtime that stopped, and parses") {
    const auto path = std::filesystem::temp_directory_path() / ("forkline-stats-" + std::to_string(getpid()) + ".json");
    for (unsigned workers : {1u, 2u}) {
        forkline::runtime_config c = config_for(workers);
        c.stats = "json:" + path.string();
        forkline::runtime rt(c);
        exercise(rt);
    }  // each destructor writes the file, the second with both runtimes
    std::ifstream in(path);
    REQUIRE(in);
    std::stringstream body;
    body << in.rdbuf();
    const std::string json = body.str();
    CHECK(json.find("\"runtimes\"") != std::string::npos);
    CHECK(json.find("\"workers\": 1") != std::string::npos);
    CHECK(json.find("\"workers\": 2") != std::string::npos);
    const std::string check = "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                              "assert [r[\"workers\"] for r in d[\"runtimes\"]] == [1, 2]; "
                              "assert all(r[\"total\"][\"tasks\"] == sum(w[\"tasks\"] for w in r[\"per_worker\"]) "
                              "for r in d[\"runtimes\"])' " + path.string();
    if (std::system("python3 -c '' 2>/dev/null") == 0) {
        CHECK(std::system(check.c_str()) == 0);
    } else {
        MESSAGE("python3 not found: the JSON was checked by substring only");
    }
    std::filesystem::remove(path);
}

TEST_CASE("stats settings: off stays quiet, a bad value is a config_error naming it") {
    forkline::runtime_config c = config_for(1);
    c.stats = "off";
    { forkline::runtime rt(c); }
    c.stats = "yes please";
    try {
        forkline::runtime rt(c);
        FAIL("a bad stats setting was accepted");
    } catch (const forkline::config_error& e) {
        CHECK(std::string(e.what()).find("yes please") != std::string::npos);
    }
    c.stats = "json:";
    CHECK_THROWS_AS(forkline::runtime{c}, forkline::config_error);
}

TEST_CASE("stream executors in the report: live ones as a snapshot, ended ones by their last stats, text and JSON") {
    forkline::runtime rt(config_for(2));
    {
        forkline::stream_config c;
        c.name = "ended";
        c.classes = 2;
        forkline::stream_executor ex(rt, c);
        for (int i = 0; i < 50; ++i) ex.post([] {});
    }  // drained and ended: its last stats stay with the runtime
    forkline::stream_config c;
    c.name = "live";
    c.capacity = 4;
    forkline::stream_executor live(rt, c);
    for (int i = 0; i < 7; ++i) live.post([] {});
    live.drain();
    const forkline::runtime_report r = forkline::report(rt);
    REQUIRE(r.streams.size() == 2);
    CHECK(r.streams[0].name == "live");  // live ones first
    CHECK(r.streams[1].name == "ended");
    CHECK(r.streams[1].counters.done == 50);
    CHECK(r.streams[1].latency.size() == 2);
    CHECK(r.streams[0].counters.arrived == 7);
    CHECK(r.streams[0].counters.arrived == r.streams[0].counters.done + r.streams[0].counters.rejected);
    CHECK(r.streams_dropped == 0);

    std::ostringstream text;
    forkline::write_stats_text(text, r);
    CHECK(text.str().find("forkline-stats: stream=live arrived=7 ") != std::string::npos);
    CHECK(text.str().find("forkline-stats: stream=ended arrived=50 done=50 ") != std::string::npos);

    const auto path = std::filesystem::temp_directory_path() / ("forkline-stats-streams-" + std::to_string(getpid()) + ".json");
    {
        std::ofstream out(path);
        forkline::write_stats_json(out, std::span<const forkline::runtime_report>(&r, 1));
    }
    const std::string check =
        "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); s=d[\"runtimes\"][0][\"streams\"]; "
        "assert [x[\"name\"] for x in s] == [\"live\", \"ended\"], s; "
        "e=s[1]; assert e[\"done\"] == 50 and len(e[\"classes\"]) == 2, e; "
        "assert e[\"classes\"][0][\"count\"] + e[\"classes\"][1][\"count\"] == 50, e; "
        "assert all(c[\"p50_ns\"] <= c[\"p99_ns\"] <= c[\"max_ns\"] for c in e[\"classes\"]), e; "
        "assert d[\"runtimes\"][0][\"streams_dropped\"] == 0' " + path.string();
    if (std::system("python3 -c '' 2>/dev/null") == 0) {
        CHECK(std::system(check.c_str()) == 0);
    } else {
        MESSAGE("python3 not found: the JSON was not parsed");
    }
    std::filesystem::remove(path);
}

TEST_CASE("snapshots taken while workers search, park and wake: idle time never falls and never outruns the clock") {
    // The probe's time shares are differences of two snapshots. A snapshot
    // that counts one sleep twice (a worker between adding its sleep to
    // parked_ns and clearing parked_since) or a search begun before it and
    // counted whole after it gives a worker more idle time between two
    // snapshots than wall time passed: shares past 1, working at 0.
    forkline::runtime rt(config_for(3));
    std::atomic<bool> stop{false};
    std::thread driver([&] {
        // Short runs with gaps: the workers go search -> park -> wake over and over.
        while (!stop.load(std::memory_order_relaxed)) {
            rt.run([] {
                forkline::parallel_for(0, 8, 1, [](int) {
                    volatile long sink = fib(8);
                    (void)sink;
                });
            });
            std::this_thread::yield();
        }
    });
    using clock = std::chrono::steady_clock;
    const auto end = clock::now() + std::chrono::milliseconds(static_cast<long>(scaled(1500, 300)));
    auto t_before = clock::now();
    auto before = rt.stats();
    std::size_t rounds = 0, fell = 0, outran = 0;
    std::int64_t worst_ns = 0;
    while (clock::now() < end) {
        const auto t_start = clock::now();  // the earliest a "before" load could be
        const auto after = rt.stats();
        const auto t_after = clock::now();
        const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(t_after - t_before).count();
        for (std::size_t w = 0; w < after.size(); ++w) {
            if (after[w].parked_ns < before[w].parked_ns || after[w].idle_ns < before[w].idle_ns) ++fell;
            const auto grew = static_cast<std::int64_t>(after[w].idle_ns - before[w].idle_ns);
            if (after[w].idle_ns >= before[w].idle_ns && grew > elapsed) {
                ++outran;
                worst_ns = std::max(worst_ns, grew - elapsed);
            }
        }
        before = after;
        t_before = t_start;
        ++rounds;
    }
    stop = true;
    driver.join();
    INFO("rounds " << rounds << " fell " << fell << " outran " << outran << " worst by " << worst_ns << " ns");
    CHECK(rounds > 100);
    CHECK(fell == 0);
    CHECK(outran == 0);
}

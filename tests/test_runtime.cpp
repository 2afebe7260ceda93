// tests/test_runtime.cpp: the runtime object and outside threads: run,
// submit and its bound, shutdown with pending work, counters, configuration
// errors, thread names and pinning.
#include <doctest/doctest.h>

#include <sched.h>   // sched_getcpu
#include <stdlib.h>  // setenv, unsetenv

#include <atomic>      // atomic
#include <future>      // future
#include <memory>      // unique_ptr
#include <chrono>      // milliseconds
#include <dirent.h>    // opendir (thread names under /proc)
#include <fstream>     // ifstream
#include <set>         // set
#include <stdexcept>   // runtime_error
#include <string>      // string
#include <thread>      // thread
#include <vector>      // vector

#include "forkline/forkline.hpp"  // runtime, invoke, task_group
#include "support.hpp"            // scaled, config_for, fib

namespace {

// Holds workers inside jobs until opened.
struct gate {
    std::atomic<bool> open{false};
    std::atomic<int> inside{0};
    void pass() {
        inside.fetch_add(1);
        while (!open.load()) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
};

}  // namespace

TEST_CASE("run returns the value, rethrows the exception, and nests inline") {
    forkline::runtime rt(config_for(2));
    CHECK(rt.run([] { return 41 + 1; }) == 42);
    CHECK_THROWS_WITH_AS(rt.run([]() -> int { throw std::runtime_error("bad"); }), "bad", std::runtime_error);
    CHECK(rt.run([&rt] { return rt.run([] { return 7; }) + rt.current_worker_index() * 0; }) == 7);
    CHECK(rt.current_worker_index() == -1);
    CHECK(rt.run([&rt] { return rt.current_worker_index(); }) >= 0);
    std::string moved = rt.run([] { return std::string(1000, 'x'); });
    CHECK(moved.size() == 1000);
}

TEST_CASE("submit returns a future with the value or the exception") {
    forkline::runtime rt(config_for(2));
    auto a = rt.submit([] { return fib(20); });
    auto b = rt.submit([] { throw std::invalid_argument("nope"); });
    auto c = rt.submit([] {});
    CHECK(a.get() == 6765);
    CHECK_THROWS_AS(b.get(), std::invalid_argument);
    c.get();
}

TEST_CASE("try_submit reports full at the bound, and submit blocks there until space frees") {
    forkline::runtime rt(config_for(2, /*injection=*/4));
    gate g;
    std::vector<std::future<void>> held;
    for (int i = 0; i < 2; ++i) held.push_back(rt.submit([&g] { g.pass(); }));
    while (g.inside.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // Both workers are held; the queue takes exactly its bound.
    std::atomic<int> ran{0};
    std::vector<std::future<void>> queued;
    for (int i = 0; i < 4; ++i) {
        auto r = rt.try_submit([&ran] { ran.fetch_add(1); });
        REQUIRE(r.status == forkline::submit_status::accepted);
        queued.push_back(std::move(r.future));
    }
    auto refused = rt.try_submit([&ran] { ran.fetch_add(100); });
    CHECK(refused.status == forkline::submit_status::full);
    CHECK_FALSE(refused.future.valid());

    std::atomic<bool> blocked_done{false};
    std::thread producer([&] {
        rt.submit([&ran] { ran.fetch_add(1); }).get();
        blocked_done.store(true);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK_FALSE(blocked_done.load());  // still blocked: the queue is full
    g.open.store(true);
    producer.join();
    for (auto& f : queued) f.get();
    for (auto& f : held) f.get();
    CHECK(blocked_done.load());
    CHECK(ran.load() == 5);  // the refused job never ran
}

TEST_CASE("100k submissions from 4 outside threads: none lost, none twice") {
    forkline::runtime rt(config_for(2, 256));
    const std::size_t per_thread = scaled(25'000, 2'000);
    std::vector<std::atomic<int>> hits(per_thread * 4);
    std::vector<std::thread> producers;
    for (std::size_t t = 0; t < 4; ++t) {
        producers.emplace_back([&, t] {
            std::vector<std::future<void>> futs;
            futs.reserve(per_thread);
            for (std::size_t i = 0; i < per_thread; ++i) {
                const std::size_t id = t * per_thread + i;
                futs.push_back(rt.submit([&hits, id] { hits[id].fetch_add(1, std::memory_order_relaxed); }));
            }
            for (auto& f : futs) f.get();
        });
    }
    for (auto& p : producers) p.join();
    std::size_t wrong = 0;
    for (auto& h : hits) wrong += h.load() != 1;
    CHECK(wrong == 0);
    std::uint64_t injected = 0;
    for (const auto& s : rt.stats()) injected += s.injected;
    CHECK(injected == per_thread * 4);
}

TEST_CASE("stop finishes all accepted work, then refuses more") {
    std::atomic<int> done{0};
    const int jobs = 200;
    {
        forkline::runtime rt(config_for(2, 512));
        for (int i = 0; i < jobs; ++i) {
            rt.submit([&done] {
                std::atomic<long> sink{0};
                forkline::parallel_for(0, 2000, [&](int k) { sink.fetch_add(k, std::memory_order_relaxed); });
                done.fetch_add(1);
            });
        }
        rt.stop();
        CHECK(done.load() == jobs);
        CHECK_THROWS_AS(rt.submit([] {}), forkline::runtime_stopped);
        CHECK_THROWS_AS(rt.run([] { return 1; }), forkline::runtime_stopped);
        CHECK(rt.try_submit([] {}).status == forkline::submit_status::stopped);
        rt.stop();  // idempotent
    }
    {
        // The destructor alone does the same.
        std::atomic<int> later{0};
        {
            forkline::runtime rt(config_for(4));
            for (int i = 0; i < jobs; ++i) rt.submit([&later] { later.fetch_add(fib(10) == 55); });
        }
        CHECK(later.load() == jobs);
    }
    {
        // An idle runtime stops at once, many times over.
        for (int i = 0; i < 20; ++i) forkline::runtime rt(config_for(8));
    }
}

TEST_CASE("stop from several threads at once finishes the work once") {
    std::atomic<int> done{0};
    forkline::runtime rt(config_for(2));
    for (int i = 0; i < 100; ++i) rt.submit([&done] { done.fetch_add(fib(12) == 144); });
    std::vector<std::thread> stoppers;
    for (int t = 0; t < 4; ++t) stoppers.emplace_back([&rt] { rt.stop(); });
    for (auto& t : stoppers) t.join();
    CHECK(done.load() == 100);
}

TEST_CASE("a producer blocked on a full queue is released by stop with runtime_stopped") {
    auto rt = std::make_unique<forkline::runtime>(config_for(1, 2));
    gate g;
    auto held = rt->submit([&g] { g.pass(); });
    while (g.inside.load() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    rt->submit([] {});
    rt->submit([] {});  // queue now full
    std::atomic<int> outcome{0};  // 1 accepted, 2 refused
    std::thread producer([&] {
        try {
            rt->submit([] {});
            outcome = 1;
        } catch (const forkline::runtime_stopped&) {
            outcome = 2;
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    std::thread stopper([&] { rt->stop(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    g.open = true;
    stopper.join();
    producer.join();
    held.get();
    // Either the producer got in before stop (and its job ran) or it was refused.
    CHECK((outcome.load() == 1 || outcome.load() == 2));
}

TEST_CASE("counters add up") {
    forkline::runtime rt(config_for(2));
    rt.run([] { return fib(22); });
    std::uint64_t spawned = 0, tasks = 0, steals = 0, injected = 0;
    for (const auto& s : rt.stats()) {
        spawned += s.spawned;
        tasks += s.tasks;
        steals += s.steals_near + s.steals_far;
        injected += s.injected;
    }
    // fib(22) spawns once per call with n >= 2: fib(23) - 1 calls.
    CHECK(spawned == 28656);
    CHECK(injected == 1);
    CHECK(tasks == spawned + injected);  // every job ran exactly once
    CHECK(steals <= spawned);
}

TEST_CASE("configuration errors are clear and start nothing") {
    forkline::runtime_config c;
    c.read_environment = false;
    c.placement.workers = 4096;
    CHECK_THROWS_AS(forkline::runtime{c}, forkline::config_error);
    c.placement.workers = 0;
    c.placement.policy = forkline::placement_policy::list;
    c.placement.cpu_list = "0-";
    CHECK_THROWS_AS(forkline::runtime{c}, forkline::config_error);
    forkline::runtime_config e;
    setenv("FORKLINE_WORKERS", "two", 1);
    try {
        forkline::runtime rt(e);
        FAIL("expected config_error");
    } catch (const forkline::config_error& err) {
        CHECK(std::string(err.what()).find("FORKLINE_WORKERS") != std::string::npos);
    }
    setenv("FORKLINE_WORKERS", "4096", 1);
    try {
        forkline::runtime rt(e);
        FAIL("expected config_error");
    } catch (const forkline::config_error& err) {
        // The planner's complaint says the request came from the environment.
        CHECK(std::string(err.what()).find("set in the environment: FORKLINE_WORKERS=4096") != std::string::npos);
    }
    setenv("FORKLINE_WORKERS", "1", 1);
    setenv("FORKLINE_PLACES", "scatter", 1);
    {
        forkline::runtime rt(e);
        CHECK(rt.worker_count() == 1);
    }
    unsetenv("FORKLINE_WORKERS");
    unsetenv("FORKLINE_PLACES");
}

TEST_CASE("workers are named fl-wN and pinned to their planned cpus") {
    forkline::runtime_config c;
    c.read_environment = false;
    forkline::runtime rt(c);  // one worker per allowed core
    std::set<std::string> names;
    if (DIR* d = opendir("/proc/self/task")) {
        while (dirent* e = readdir(d)) {
            std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
            std::string name;
            if (std::getline(comm, name)) names.insert(name);
        }
        closedir(d);
    }
    for (unsigned i = 0; i < rt.worker_count(); ++i) CHECK(names.count("fl-w" + std::to_string(i)) == 1);
    // Every worker reports the cpu its plan names.
    std::vector<std::atomic<int>> seen(rt.worker_count());
    for (auto& s : seen) s = -1;
    std::atomic<unsigned> reported{0};
    rt.run([&] {
        forkline::task_group tg;
        for (unsigned i = 0; i < 64 * rt.worker_count(); ++i) {
            tg.spawn([&] {
                const int w = rt.current_worker_index();
                if (seen[static_cast<std::size_t>(w)].exchange(sched_getcpu()) == -1) reported.fetch_add(1);
                std::this_thread::sleep_for(std::chrono::microseconds(100));
            });
        }
        tg.wait();
    });
    for (unsigned i = 0; i < rt.worker_count(); ++i) {
        if (seen[i].load() == -1) continue;  // this worker got no task; nothing to check
        CHECK(seen[i].load() == static_cast<int>(rt.plan().places[i].pu_os_index));
    }
    CHECK(reported.load() >= 1);
}

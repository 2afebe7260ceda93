// tests/test_stream.cpp: the stream executor ("Stream executor" in
// runtime/DESIGN.md): every way a request ends, every admission policy, at
// 1, 2, 4 and 8 workers; conservation under stress with cancellations;
// keyed order; priority and aging; shutdown with requests queued; bad configs.
#include <doctest/doctest.h>

#include <atomic>      // atomic
#include <chrono>      // steady_clock, milliseconds
#include <filesystem>  // temp_directory_path, remove
#include <fstream>     // ifstream
#include <functional>  // function (request chains)
#include <sstream>     // ostringstream
#include <cstdint>     // uint64_t
#include <cstdio>      // fprintf
#include <cstdlib>     // _Exit
#include <mutex>       // mutex, lock_guard
#include <span>        // span
#include <random>      // mt19937_64
#include <stdexcept>   // runtime_error
#include <stop_token>  // stop_source
#include <string>      // string
#include <thread>      // thread, yield
#include <vector>      // vector

#include <unistd.h>    // getpid

#include "forkline/forkline.hpp"  // runtime, config_error
#include "forkline/batch_stream.hpp"  // batch_stream
#include "forkline/stream.hpp"    // stream_executor
#include "support.hpp"            // config_for, scaled
#include "trace.hpp"              // start_for_test, flush, stop_for_test

namespace {

using forkline::admission_policy;
using forkline::post_status;
using forkline::request_options;
using forkline::request_outcome;
using forkline::stream_config;
using forkline::stream_executor;

const unsigned k_worker_counts[] = {1, 2, 4, 8};

/// A request that holds its pump until opened, so that later ones stay queued.
struct gate {
    std::atomic<bool> started{false};
    std::atomic<bool> open{false};
    auto request() {
        return [this] {
            started.store(true, std::memory_order_release);  // release: pairs with wait_started()'s acquire
            while (!open.load(std::memory_order_acquire)) std::this_thread::yield();  // acquire: pairs with release()
        };
    }
    void wait_started() const {
        while (!started.load(std::memory_order_acquire)) std::this_thread::yield();
    }
    void release() { open.store(true, std::memory_order_release); }
};

/// Counts the hooks' outcomes.
struct outcome_tally {
    std::atomic<std::uint64_t> by[5] = {};
    std::atomic<std::uint64_t> with_error{0};
    auto hook() {
        return [this](request_outcome o, std::exception_ptr e) noexcept {
            by[static_cast<int>(o)].fetch_add(1, std::memory_order_relaxed);
            if (e) with_error.fetch_add(1, std::memory_order_relaxed);
        };
    }
    std::uint64_t operator[](request_outcome o) const { return by[static_cast<int>(o)].load(); }
    std::uint64_t total() const {
        std::uint64_t t = 0;
        for (const auto& b : by) t += b.load();
        return t;
    }
};

void check_conserved(const forkline::stream_counters& c) {
    CHECK(c.arrived == c.done + c.failed + c.rejected + c.expired + c.cancelled + c.queued + c.running);
}

stream_config one_pump(std::size_t capacity, admission_policy a) {
    stream_config c;
    c.capacity = capacity;
    c.admission = a;
    c.pumps = 1;
    return c;
}

}  // namespace

TEST_CASE("smoke: every way a request ends, at 1, 2, 4 and 8 workers") {
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        outcome_tally tally;
        {
            stream_executor ex(rt, one_pump(4, admission_policy::reject));
            gate g;
            REQUIRE(ex.post(g.request(), {}, tally.hook()) == post_status::accepted);
            g.wait_started();
            std::atomic<int> ran{0};
            // done, failed
            CHECK(ex.post([&] { ran.fetch_add(1); }, {}, tally.hook()) == post_status::accepted);
            CHECK(ex.post([] { throw std::runtime_error("boom"); }, {}, tally.hook()) == post_status::accepted);
            // cancelled while queued
            std::stop_source stop;
            request_options cancel_later;
            cancel_later.stop = stop.get_token();
            CHECK(ex.post([&] { ran.fetch_add(100); }, cancel_later, tally.hook()) == post_status::accepted);
            // expired while queued: a deadline that passes before the gate opens
            request_options soon;
            soon.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
            CHECK(ex.post([&] { ran.fetch_add(1000); }, soon, tally.hook()) == post_status::accepted);
            // rejected: the queue holds 4
            CHECK(ex.post([&] { ran.fetch_add(10000); }, {}, tally.hook()) == post_status::rejected_full);
            // expired and cancelled at the door
            request_options past;
            past.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
            CHECK(ex.post([&] { ran.fetch_add(10000); }, past, tally.hook()) == post_status::expired);
            request_options stopped;
            stopped.stop = stop.get_token();
            stop.request_stop();
            CHECK(ex.post([&] { ran.fetch_add(10000); }, stopped, tally.hook()) == post_status::cancelled);
            check_conserved(ex.counters());
            while (std::chrono::steady_clock::now() <= soon.deadline) std::this_thread::yield();
            g.release();
            ex.drain();
            const forkline::stream_counters c = ex.counters();
            CHECK(c.arrived == 8);
            CHECK(c.done == 2);
            CHECK(c.failed == 1);
            CHECK(c.rejected == 1);
            CHECK(c.expired == 2);
            CHECK(c.cancelled == 2);
            CHECK(c.queued == 0);
            CHECK(c.running == 0);
            CHECK(ran.load() == 1);
            forkline::latency_histogram h;
            for (unsigned k = 0; k < 3; ++k) ex.merge_latency(k, h);
            CHECK(h.count() == 3);  // done and failed only
            ex.shutdown(forkline::shutdown_mode::drain);
            CHECK(ex.post([] {}, {}, tally.hook()) == post_status::rejected_stopped);
            CHECK(ex.counters().rejected == 2);
        }
        CHECK(tally[request_outcome::done] == 2);
        CHECK(tally[request_outcome::failed] == 1);
        CHECK(tally.with_error.load() == 1);
        CHECK(tally[request_outcome::rejected] == 2);
        CHECK(tally[request_outcome::expired] == 2);
        CHECK(tally[request_outcome::cancelled] == 2);
    }
}

TEST_CASE("admission: reject, shed by class and block, at 1, 2, 4 and 8 workers") {
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        SUBCASE("reject") {
            stream_executor ex(rt, one_pump(3, admission_policy::reject));
            gate g;
            ex.post(g.request());
            g.wait_started();
            for (int k = 0; k < 3; ++k) CHECK(ex.post([] {}) == post_status::accepted);
            CHECK(ex.post([] {}) == post_status::rejected_full);
            g.release();
            ex.drain();
            CHECK(ex.counters().done == 4);
            CHECK(ex.counters().rejected == 1);
        }
        SUBCASE("shed: the lowest class first, the highest only at capacity") {
            stream_config cfg = one_pump(10, admission_policy::shed);  // thresholds 10, 8, 6
            stream_executor ex(rt, cfg);
            gate g;
            ex.post(g.request());
            g.wait_started();
            request_options c0, c1, c2;
            c0.priority = 0;
            c1.priority = 1;
            c2.priority = 2;
            for (int k = 0; k < 6; ++k) REQUIRE(ex.post([] {}, c2) == post_status::accepted);
            CHECK(ex.post([] {}, c2) == post_status::rejected_shed);
            CHECK(ex.post([] {}, c1) == post_status::accepted);
            CHECK(ex.post([] {}, c1) == post_status::accepted);
            CHECK(ex.post([] {}, c1) == post_status::rejected_shed);
            CHECK(ex.post([] {}, c0) == post_status::accepted);
            CHECK(ex.post([] {}, c0) == post_status::accepted);
            CHECK(ex.post([] {}, c0) == post_status::rejected_full);
            const forkline::stream_stats s = ex.stats();
            CHECK(s.queued_by_class == std::vector<std::uint64_t>{2, 2, 6});
            CHECK(s.peak_queued == 10);
            g.release();
            ex.drain();
            CHECK(ex.counters().done == 11);
            CHECK(ex.counters().rejected == 3);
        }
        SUBCASE("block: a poster waits for room, then is admitted") {
            stream_executor ex(rt, one_pump(2, admission_policy::block));
            gate g;
            ex.post(g.request());
            g.wait_started();
            CHECK(ex.post([] {}) == post_status::accepted);
            CHECK(ex.post([] {}) == post_status::accepted);
            std::atomic<bool> posted{false};
            post_status late = post_status::rejected_full;
            std::thread poster([&] {
                late = ex.post([] {});
                posted.store(true, std::memory_order_release);
            });
            // It cannot be admitted while the gate holds the only pump and the queue is full.
            for (int k = 0; k < 100; ++k) std::this_thread::yield();
            CHECK(ex.counters().queued == 2);
            g.release();
            poster.join();
            CHECK(late == post_status::accepted);
            ex.drain();
            CHECK(ex.counters().done == 4);
        }
    }
}

TEST_CASE("a bound of 1, under reject and block") {
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        for (const admission_policy a : {admission_policy::reject, admission_policy::block}) {
            stream_config cfg;
            cfg.capacity = 1;
            cfg.admission = a;
            stream_executor ex(rt, cfg);
            std::atomic<int> ran{0};
            std::uint64_t accepted = 0;
            for (int k = 0; k < 2000; ++k) {
                if (ex.post([&] { ran.fetch_add(1, std::memory_order_relaxed); }) == post_status::accepted) ++accepted;
            }
            ex.drain();
            const forkline::stream_counters c = ex.counters();
            CHECK(c.done == accepted);
            CHECK(ran.load() == static_cast<int>(accepted));
            CHECK(c.done + c.rejected == 2000);
            if (a == admission_policy::block) CHECK(accepted == 2000);
            CHECK(ex.stats().peak_queued <= 1);
        }
    }
}

TEST_CASE("a handler that throws for every request: each fails, counted, the hook gets the exception") {
    forkline::runtime rt(config_for(2));
    outcome_tally tally;
    constexpr int n = 5000;
    {
        stream_config cfg;
        cfg.admission = admission_policy::block;
        stream_executor ex(rt, cfg);
        for (int k = 0; k < n; ++k) ex.post([] { throw std::runtime_error("every time"); }, {}, tally.hook());
        ex.drain();
        CHECK(ex.counters().failed == n);
        CHECK(ex.counters().done == 0);
        forkline::latency_histogram h;
        ex.merge_latency(1, h);
        CHECK(h.count() == n);
    }
    CHECK(tally[request_outcome::failed] == n);
    CHECK(tally.with_error.load() == n);
}

TEST_CASE("keyed order: the same key runs one at a time, in arrival order") {
    for (const unsigned workers : {2u, 4u, 8u}) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        constexpr int keys = 16;
        const int per_key = static_cast<int>(scaled(400, 50));
        struct key_log {
            std::atomic<int> inside{0};
            std::vector<int> seen;  // written only by the one request of the key that runs
        };
        std::vector<key_log> logs(keys);
        std::atomic<int> overlaps{0};
        {
            stream_config cfg;
            cfg.keyed_order = true;
            cfg.admission = admission_policy::block;
            cfg.capacity = 64;
            stream_executor ex(rt, cfg);
            std::mt19937_64 rng(7);
            std::vector<int> next(keys, 0);
            for (int k = 0; k < keys * per_key; ++k) {
                int key = static_cast<int>(rng() % keys);
                while (next[key] == per_key) key = (key + 1) % keys;
                const int seq = next[key]++;
                request_options o;
                o.key = static_cast<std::uint64_t>(key);
                o.priority = static_cast<unsigned>(rng() % 3);
                ex.post(
                    [&logs, &overlaps, key, seq] {
                        key_log& l = logs[key];
                        if (l.inside.fetch_add(1, std::memory_order_acq_rel) != 0) overlaps.fetch_add(1);
                        l.seen.push_back(seq);
                        l.inside.fetch_sub(1, std::memory_order_acq_rel);
                    },
                    o);
            }
            ex.drain();
            CHECK(ex.counters().done == static_cast<std::uint64_t>(keys * per_key));
        }
        CHECK(overlaps.load() == 0);
        for (int key = 0; key < keys; ++key) {
            CAPTURE(key);
            REQUIRE(logs[key].seen.size() == static_cast<std::size_t>(per_key));
            bool in_order = true;
            for (int s = 0; s < per_key; ++s) in_order = in_order && logs[key].seen[s] == s;
            CHECK(in_order);
        }
    }
}

TEST_CASE("priority: class 0 goes first; aging gives lower classes a bounded share, never class 0's majority") {
    forkline::runtime rt(config_for(2));
    for (const bool aging : {false, true}) {
        CAPTURE(aging);
        stream_config cfg = one_pump(1000, admission_policy::reject);
        cfg.aging = aging ? std::chrono::microseconds(0) : std::chrono::microseconds(3'600'000'000LL);
        stream_executor ex(rt, cfg);
        gate g;
        ex.post(g.request());
        g.wait_started();
        std::mutex m;
        std::vector<unsigned> order;
        auto log = [&](unsigned cls) {
            return [&, cls] {
                const std::lock_guard<std::mutex> lk(m);
                order.push_back(cls);
            };
        };
        request_options o;
        for (unsigned cls : {2u, 1u, 0u}) {
            o.priority = cls;
            for (int k = 0; k < 200; ++k) REQUIRE(ex.post(log(cls), o) == post_status::accepted);
        }
        g.release();
        ex.drain();
        REQUIRE(order.size() == 600);
        std::size_t zeros_in_first_200 = 0;
        for (std::size_t k = 0; k < 200; ++k) zeros_in_first_200 += order[k] == 0 ? 1 : 0;
        if (!aging) {
            CHECK(zeros_in_first_200 == 200);  // strict priority
        } else {
            // One pick in eight goes to the oldest aged lower-class request.
            CHECK(zeros_in_first_200 >= 200 * (stream_executor::k_aging_share - 1) / stream_executor::k_aging_share - 1);
            CHECK(zeros_in_first_200 < 200);
            CHECK(order[0] == 0);
        }
    }
}

TEST_CASE("lifetime: destroyed with requests queued: drained or cancelled, counted either way") {
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        for (const forkline::shutdown_mode mode : {forkline::shutdown_mode::drain, forkline::shutdown_mode::cancel}) {
            outcome_tally tally;
            std::atomic<int> ran{0};
            gate g;
            {
                stream_config cfg = one_pump(100, admission_policy::reject);
                cfg.on_destroy = mode;
                cfg.keyed_order = true;
                stream_executor ex(rt, cfg);
                ex.post(g.request(), {}, tally.hook());
                g.wait_started();
                request_options keyed;
                for (int k = 0; k < 50; ++k) {
                    keyed.key = static_cast<std::uint64_t>(k % 3);
                    ex.post([&] { ran.fetch_add(1); }, k % 2 == 0 ? keyed : request_options{}, tally.hook());
                }
                std::thread opener([&] {
                    for (int k = 0; k < 1000; ++k) std::this_thread::yield();
                    g.release();
                });
                if (mode == forkline::shutdown_mode::cancel) {
                    ex.shutdown(mode);  // cancels the 50 while the gate still runs, then waits for it
                }
                opener.join();
            }
            CHECK(tally.total() == 51);
            if (mode == forkline::shutdown_mode::drain) {
                CHECK(ran.load() == 50);
                CHECK(tally[request_outcome::done] == 51);
            } else {
                CHECK(ran.load() == 0);
                CHECK(tally[request_outcome::cancelled] == 50);
                CHECK(tally[request_outcome::done] == 1);
            }
        }
    }
}

TEST_CASE("post from inside a request, with block admission, at a bound of 1 on one worker: no deadlock") {
    forkline::runtime rt(config_for(1));
    stream_config cfg;
    cfg.capacity = 1;
    cfg.admission = admission_policy::block;
    stream_executor ex(rt, cfg);
    std::atomic<int> ran{0};
    ex.post([&] {
        for (int k = 0; k < 20; ++k) ex.post([&] { ran.fetch_add(1); });
    });
    ex.drain();
    CHECK(ran.load() == 20);
    CHECK(ex.counters().done == 21);
}

TEST_CASE("failure: bad configs are config_errors") {
    forkline::runtime rt(config_for(1));
    auto bad = [&](auto edit) {
        stream_config c;
        edit(c);
        CHECK_THROWS_AS(stream_executor(rt, c), forkline::config_error);
    };
    bad([](stream_config& c) { c.capacity = 0; });
    bad([](stream_config& c) { c.classes = 0; });
    bad([](stream_config& c) { c.classes = 65; });
    bad([](stream_config& c) { c.shed_at = {1.0, 0.5}; });
    bad([](stream_config& c) { c.shed_at = {1.0, 0.5, 0.0}; });
    bad([](stream_config& c) { c.shed_at = {1.0, 1.5, 0.5}; });
    bad([](stream_config& c) { c.aging = std::chrono::microseconds(-1); });
    bad([](stream_config& c) { c.linger = std::chrono::microseconds(-1); });
}

TEST_CASE("stress: conservation over many requests from 4 threads with random cancellations") {
    forkline::runtime rt(config_for(4));
    const std::size_t total = scaled(1'000'000, 20'000);
    const std::size_t per_thread = total / 4;
    outcome_tally tally;
    std::atomic<std::uint64_t> ran{0};
    std::atomic<bool> posting{true};
    std::atomic<int> bad_snapshots{0};
    std::atomic<std::uint64_t> returned{0};  // post() calls that have returned
    {
        stream_config cfg;
        cfg.capacity = 512;
        cfg.admission = admission_policy::shed;
        cfg.keyed_order = true;
        stream_executor ex(rt, cfg);
        // Every snapshot: conserved, `arrived` never falls, and it counts at
        // least every post that had returned before the snapshot was taken.
        std::thread sampler([&] {
            std::uint64_t last = 0;
            while (posting.load(std::memory_order_acquire)) {
                const std::uint64_t before = returned.load(std::memory_order_acquire);  // pairs with the posters' release
                const forkline::stream_counters c = ex.counters();
                if (c.arrived != c.done + c.failed + c.rejected + c.expired + c.cancelled + c.queued + c.running ||
                    c.arrived < last || c.arrived < before) {
                    bad_snapshots.fetch_add(1);
                }
                last = c.arrived;
                std::this_thread::yield();
            }
        });
        std::vector<std::thread> posters;
        for (unsigned t = 0; t < 4; ++t) {
            posters.emplace_back([&, t] {
                std::mt19937_64 rng(t + 1);
                std::vector<std::stop_source> sources(8);
                for (std::size_t k = 0; k < per_thread; ++k) {
                    const std::uint64_t r = rng();
                    request_options o;
                    o.priority = static_cast<unsigned>(r % 3);
                    if ((r >> 8) % 4 == 0) o.key = (r >> 16) % 64;
                    if ((r >> 24) % 16 == 0) o.stop = sources[(r >> 28) % 8].get_token();
                    if ((r >> 32) % 64 == 0) o.deadline = std::chrono::steady_clock::now();
                    if ((r >> 40) % 512 == 0) sources[(r >> 48) % 8].request_stop();
                    if ((r >> 52) % 512 == 0) sources[(r >> 48) % 8] = std::stop_source();
                    const bool throws = (r >> 56) % 32 == 0;
                    ex.post(
                        [&ran, throws] {
                            ran.fetch_add(1, std::memory_order_relaxed);
                            if (throws) throw std::runtime_error("random failure");
                        },
                        std::move(o), tally.hook());
                    returned.fetch_add(1, std::memory_order_release);  // release: pairs with the sampler's acquire
                }
            });
        }
        for (std::thread& p : posters) p.join();
        ex.drain();
        posting.store(false, std::memory_order_release);
        sampler.join();
        const forkline::stream_counters c = ex.counters();
        CHECK(c.arrived == per_thread * 4);
        CHECK(c.queued == 0);
        CHECK(c.running == 0);
        check_conserved(c);
        CHECK(c.done == tally[request_outcome::done]);
        CHECK(c.failed == tally[request_outcome::failed]);
        CHECK(c.rejected == tally[request_outcome::rejected]);
        CHECK(c.expired == tally[request_outcome::expired]);
        CHECK(c.cancelled == tally[request_outcome::cancelled]);
        CHECK(ran.load() == c.done + c.failed);
        MESSAGE("done=" << c.done << " failed=" << c.failed << " rejected=" << c.rejected << " expired=" << c.expired
                        << " cancelled=" << c.cancelled);
    }
    CHECK(bad_snapshots.load() == 0);
    CHECK(tally.total() == per_thread * 4);
}

TEST_CASE("shutdown while 4 threads post: every post ends once, nothing runs after shutdown returns") {
    for (const forkline::shutdown_mode mode : {forkline::shutdown_mode::drain, forkline::shutdown_mode::cancel}) {
        for (const unsigned workers : {1u, 2u, 4u}) {
            CAPTURE(workers);
            CAPTURE(static_cast<int>(mode));
            forkline::runtime rt(config_for(workers));
            outcome_tally tally;
            std::atomic<std::uint64_t> posts{0}, ran{0};
            std::atomic<bool> stop_posting{false};
            stream_config cfg;
            cfg.capacity = 64;
            cfg.admission = admission_policy::reject;
            stream_executor ex(rt, cfg);
            std::vector<std::thread> posters;
            for (unsigned t = 0; t < 4; ++t) {
                posters.emplace_back([&] {
                    while (!stop_posting.load(std::memory_order_acquire)) {
                        ex.post([&ran] { ran.fetch_add(1, std::memory_order_relaxed); }, {}, tally.hook());
                        posts.fetch_add(1, std::memory_order_relaxed);
                    }
                });
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            ex.shutdown(mode);
            const std::uint64_t ran_at_shutdown = ran.load();
            const forkline::stream_counters at_shutdown = ex.counters();
            CHECK(at_shutdown.queued == 0);
            CHECK(at_shutdown.running == 0);
            std::this_thread::sleep_for(std::chrono::milliseconds(2));  // later posts: refused, none runs
            stop_posting.store(true, std::memory_order_release);
            for (std::thread& p : posters) p.join();
            const forkline::stream_counters c = ex.counters();
            CHECK(ran.load() == ran_at_shutdown);
            CHECK(c.arrived == posts.load());
            CHECK(tally.total() == posts.load());
            CHECK(c.done == tally[request_outcome::done]);
            CHECK(c.done == ran.load());
            CHECK(c.rejected == tally[request_outcome::rejected]);
            CHECK(c.cancelled == tally[request_outcome::cancelled]);
            CHECK(c.rejected > at_shutdown.rejected);  // the posts after shutdown
        }
    }
}

TEST_CASE("request memory: large callables, and a callable whose copy throws, lose nothing") {
    forkline::runtime rt(config_for(2));
    stream_executor ex(rt);
    // Larger than a pool block: from the heap, freed at its end (ASan checks the leaks).
    struct big {
        std::uint64_t pad[40] = {};
        std::atomic<std::uint64_t>* sum;
        void operator()() const { sum->fetch_add(pad[0] + pad[39] + 1, std::memory_order_relaxed); }
    };
    std::atomic<std::uint64_t> sum{0};
    for (int i = 0; i < 1000; ++i) CHECK(ex.post(big{.pad = {}, .sum = &sum}) == post_status::accepted);
    // A copy that throws: post() throws, nothing is counted, nothing leaks.
    struct throws_on_copy {
        throws_on_copy() = default;
        throws_on_copy(const throws_on_copy&) { throw std::runtime_error("copy"); }
        void operator()() const {}
    };
    const throws_on_copy t;
    CHECK_THROWS_AS(ex.post(t), std::runtime_error);
    ex.drain();
    CHECK(sum.load() == 1000);
    const forkline::stream_counters c = ex.counters();
    CHECK(c.arrived == 1000);
    CHECK(c.done == 1000);
}

// ---- batch_stream ----

TEST_CASE("batching: every item reaches a handler exactly once, in batches of at most K") {
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        const std::size_t n = scaled(20'000, 2'000);
        std::vector<std::atomic<int>> seen(n);
        std::atomic<std::size_t> too_big{0};
        forkline::batch_stats s;
        {
            forkline::batch_config cfg;
            cfg.max_items = 16;
            cfg.max_wait = std::chrono::microseconds(50);
            cfg.admission = admission_policy::block;
            cfg.capacity = 256;
            cfg.handlers = workers;
            forkline::batch_stream<std::size_t> b(rt, cfg, [&](std::span<std::size_t> items) {
                if (items.size() > 16 || items.empty()) too_big.fetch_add(1);
                for (const std::size_t i : items) seen[i].fetch_add(1, std::memory_order_relaxed);
            });
            std::vector<std::thread> posters;
            for (std::size_t t = 0; t < 2; ++t) {
                posters.emplace_back([&, t] {
                    for (std::size_t i = t; i < n; i += 2) CHECK(b.post(i) == post_status::accepted);
                });
            }
            for (std::thread& p : posters) p.join();
            b.drain();
            s = b.stats();
        }
        CHECK(too_big.load() == 0);
        std::size_t once = 0;
        for (const auto& c : seen) once += c.load() == 1 ? 1 : 0;
        CHECK(once == n);
        CHECK(s.arrived == n);
        CHECK(s.done == n);
        CHECK(s.queued == 0);
        CHECK(s.running == 0);
        CHECK(s.batches >= n / 16);
        CHECK(s.max_batch <= 16);
        std::uint64_t by_size = 0;
        for (const std::uint64_t c : s.by_size_log2) by_size += c;
        CHECK(by_size == s.batches);
    }
}

TEST_CASE("batching adapts: a backlog goes in full batches of K, a lone item alone after at most T") {
    forkline::runtime rt(config_for(2));
    forkline::batch_config cfg;
    cfg.max_items = 8;
    cfg.max_wait = std::chrono::microseconds(200);
    gate g;
    std::mutex m;
    std::vector<std::size_t> sizes;
    forkline::batch_stream<int> b(rt, cfg, [&](std::span<int> items) {
        if (items[0] == -1) g.request()();  // the first batch holds the only handler
        const std::lock_guard<std::mutex> lk(m);
        sizes.push_back(items.size());
    });
    b.post(-1);
    g.wait_started();
    for (int k = 0; k < 20; ++k) REQUIRE(b.post(k) == post_status::accepted);
    g.release();
    b.drain();
    REQUIRE(sizes.size() == 4);
    CHECK(sizes[0] == 1);  // the lone first item, after T
    CHECK(sizes[1] == 8);  // the backlog: full batches at once
    CHECK(sizes[2] == 8);
    CHECK(sizes[3] == 4);  // the rest, after T
    CHECK(b.stats().max_batch == 8);
    CHECK(b.stats().mean_batch == doctest::Approx(21.0 / 4));
}

TEST_CASE("batching: a throwing handler fails its whole batch, counted; the destructor runs what is queued") {
    forkline::runtime rt(config_for(2));
    std::atomic<int> handled{0};
    {
        forkline::batch_config cfg;
        cfg.max_items = 4;
        forkline::batch_stream<int> b(rt, cfg, [&](std::span<int> items) {
            handled.fetch_add(static_cast<int>(items.size()));
            if (items[0] % 2 == 0) throw std::runtime_error("even batch");
        });
        for (int k = 0; k < 100; ++k) b.post(k);
        b.drain();
        const forkline::batch_stats s = b.stats();
        CHECK(s.done + s.failed == 100);
        CHECK(s.arrived == s.done + s.failed + s.rejected + s.cancelled + s.queued + s.running);
        for (int k = 0; k < 50; ++k) b.post(k);
    }
    CHECK(handled.load() == 150);
}

TEST_CASE("failure: zero or negative K or T are config_errors") {
    forkline::runtime rt(config_for(1));
    auto bad = [&](auto edit) {
        forkline::batch_config c;
        edit(c);
        CHECK_THROWS_AS(forkline::batch_stream<int>(rt, c, [](std::span<int>) {}), forkline::config_error);
    };
    bad([](forkline::batch_config& c) { c.max_items = 0; });
    bad([](forkline::batch_config& c) { c.max_wait = std::chrono::microseconds(0); });
    bad([](forkline::batch_config& c) { c.max_wait = std::chrono::microseconds(-5); });
    bad([](forkline::batch_config& c) { c.capacity = 0; });
    bad([](forkline::batch_config& c) { c.handlers = 0; });
}

TEST_CASE("stats: rates, utilisation, per-class latency and the stats line") {
    forkline::runtime rt(config_for(2));
    stream_config cfg;
    cfg.name = "orders";
    cfg.admission = admission_policy::block;
    stream_executor ex(rt, cfg);
    request_options o;
    for (int k = 0; k < 300; ++k) {
        o.priority = static_cast<unsigned>(k % 3);
        ex.post([] {}, o);
    }
    ex.drain();
    const forkline::stream_stats s = ex.stats();
    CHECK(s.name == "orders");
    REQUIRE(s.latency.size() == 3);
    for (const forkline::latency_summary& l : s.latency) {
        CHECK(l.count == 100);
        CHECK(l.p50 <= l.p99);
        CHECK(l.p99 <= l.max);
    }
    CHECK(s.arrival_rate > 0);
    CHECK(s.completion_rate > 0);
    CHECK(s.utilisation >= 0);
    CHECK(s.utilisation <= 1.0);
    const std::string line = forkline::stats_line(s);
    CHECK(line.rfind("forkline-stats: stream=orders arrived=300 done=300 ", 0) == 0);
    CHECK(line.find("class2_p99_us=") != std::string::npos);
}

TEST_CASE("trace: the queue depth is a counter track") {
    const std::string path =
        (std::filesystem::temp_directory_path() / ("forkline-stream-trace-" + std::to_string(::getpid()) + ".json")).string();
    forkline::trace::start_for_test(path);
    {
        forkline::runtime rt(config_for(2));
        stream_executor ex(rt, one_pump(8, admission_policy::reject));
        for (int k = 0; k < 20; ++k) ex.post([] {});
        ex.drain();
    }
    forkline::trace::flush();
    forkline::trace::stop_for_test();
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    std::filesystem::remove(path);
    CHECK(text.str().find("{\"name\":\"stream_queue_depth\",\"ph\":\"C\"") != std::string::npos);
    CHECK(text.str().find("\"args\":{\"depth\":") != std::string::npos);
}

namespace {

/// Posts in rounds and waits for each round's requests with a deadline; a
/// request left queued with no pump coming (a lost wake-up) shows as a round
/// that never completes. The executor cannot then be destroyed (it waits for
/// the stranded request), so a timeout ends the process with a message.
void rounds_complete(unsigned workers, unsigned pumps, std::chrono::microseconds linger, unsigned posters,
                     int rounds) {
    forkline::runtime rt(config_for(workers));
    stream_config c;
    c.capacity = 1024;
    c.pumps = pumps;
    c.linger = linger;
    stream_executor ex(rt, c);
    std::atomic<std::uint64_t> done{0};
    std::mt19937_64 rng(workers * 131 + pumps * 17 + static_cast<unsigned>(linger.count()) + posters);
    std::uint64_t expected = 0;
    for (int round = 0; round < rounds; ++round) {
        // Pause about the linger time, so that posts land while pumps decide to leave.
        const auto pause = std::chrono::nanoseconds(rng() % (3 * 1000 * static_cast<std::uint64_t>(linger.count()) + 2000));
        const auto until = std::chrono::steady_clock::now() + pause;
        while (std::chrono::steady_clock::now() < until) {
        }
        const unsigned per = 1 + static_cast<unsigned>(rng() % 3);
        std::vector<std::thread> extra;
        for (unsigned t = 1; t < posters; ++t) {
            extra.emplace_back([&] {
                for (unsigned k = 0; k < per; ++k) ex.post([&] { done.fetch_add(1, std::memory_order_release); });
            });
        }
        for (unsigned k = 0; k < per; ++k) ex.post([&] { done.fetch_add(1, std::memory_order_release); });
        for (std::thread& t : extra) t.join();
        expected += static_cast<std::uint64_t>(per) * posters;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        // acquire: pairs with the handlers' release increments.
        while (done.load(std::memory_order_acquire) < expected) {
            if (std::chrono::steady_clock::now() > deadline) {
                const forkline::stream_counters n = ex.counters();
                std::fprintf(stderr,
                             "stream: round %d (workers=%u pumps=%u linger=%lldus posters=%u): %llu of %llu requests "
                             "done after 5 s, queued=%llu running=%llu: a request stranded with no pump coming\n",
                             round, workers, pumps, static_cast<long long>(linger.count()), posters,
                             static_cast<unsigned long long>(done.load()), static_cast<unsigned long long>(expected),
                             static_cast<unsigned long long>(n.queued), static_cast<unsigned long long>(n.running));
                std::_Exit(1);
            }
            std::this_thread::yield();
        }
    }
    ex.drain();
    CHECK(ex.counters().done == expected);
}

}  // namespace

TEST_CASE("stress: every posted request runs, when posts land while pumps linger or leave (no lost wake-up)") {
    const int rounds = static_cast<int>(scaled(4000));
    for (const unsigned workers : {1u, 2u}) {
        for (const unsigned pumps : {1u, 2u}) {
            for (const auto linger : {std::chrono::microseconds(20), std::chrono::microseconds(0)}) {
                for (const unsigned posters : {1u, 2u}) {
                    CAPTURE(workers);
                    CAPTURE(pumps);
                    CAPTURE(posters);
                    rounds_complete(workers, pumps, linger, posters, rounds);
                }
            }
        }
    }
}

TEST_CASE("a pump yields to other submitted jobs every 64 requests, also after its 64th found the queue empty (P6)") {
    // One worker and one pump that lingers long: the first 64 requests run in
    // one pump activation and the 64th leaves the queue empty, so the pump
    // lingers; then a job is submitted to the runtime and a chain of requests
    // (each posts the next) keeps the queue non-empty. P6: the pump re-injects
    // itself within 64 more requests, so the job runs long before the chain ends.
    forkline::runtime rt(config_for(1));
    stream_config c;
    c.pumps = 1;
    c.linger = std::chrono::microseconds(2'000'000);
    stream_executor ex(rt, c);
    constexpr int k_first = 64, k_chain = 1000;
    std::atomic<int> ran{0};
    std::atomic<bool> job_ran{false};
    std::atomic<int> job_seen_at{-1};  // the chain's index of the first request that saw the job done
    std::function<void(int)> first = [&](int i) {
        ran.fetch_add(1, std::memory_order_release);  // release: pairs with the main thread's acquire
        if (i + 1 < k_first) ex.post([&, i] { first(i + 1); });
    };
    std::function<void(int)> chain = [&](int i) {
        // acquire: pairs with the job's release store.
        if (job_seen_at.load(std::memory_order_relaxed) < 0 && job_ran.load(std::memory_order_acquire)) {
            job_seen_at.store(i, std::memory_order_relaxed);
        }
        ran.fetch_add(1, std::memory_order_release);
        if (i + 1 < k_chain) ex.post([&, i] { chain(i + 1); });
    };
    ex.post([&] { first(0); });
    while (ran.load(std::memory_order_acquire) < k_first) std::this_thread::yield();
    auto fut = rt.submit([&] { job_ran.store(true, std::memory_order_release); });
    ex.post([&] { chain(0); });
    ex.drain();
    fut.get();
    const forkline::stream_counters n = ex.counters();
    CHECK(n.done == static_cast<std::uint64_t>(k_first + k_chain));
    INFO("the chain request that first saw the submitted job done: ", job_seen_at.load());
    CHECK(job_seen_at.load() >= 0);
    CHECK(job_seen_at.load() <= 2 * 64);
}

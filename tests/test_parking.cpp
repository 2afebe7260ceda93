// tests/test_parking.cpp: parking and waking. A lost wake-up would leave
// work unclaimed forever; these randomised races would then hang, so a
// watchdog turns a hang into a failure. Also: an idle runtime costs
// (almost) no cpu.
#include <doctest/doctest.h>

#include <time.h>  // clock_gettime, CLOCK_PROCESS_CPUTIME_ID

#include <atomic>   // atomic
#include <chrono>   // steady_clock
#include <cstdio>   // fprintf
#include <cstdlib>  // _Exit
#include <future>   // future
#include <random>   // mt19937
#include <thread>   // thread, sleep_for
#include <vector>   // vector

#include "forkline/forkline.hpp"  // runtime, invoke
#include "support.hpp"            // scaled, config_for, fib

namespace {

/// Fails the process if `progress` stops moving for `limit`.
class watchdog {
public:
    watchdog(std::atomic<std::uint64_t>& progress, const char* what, std::chrono::seconds limit)
        : m_thread([this, &progress, what, limit] {
              std::uint64_t last = progress.load();
              auto since = std::chrono::steady_clock::now();
              while (!m_done.load()) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(50));
                  const std::uint64_t now = progress.load();
                  if (now != last) {
                      last = now;
                      since = std::chrono::steady_clock::now();
                  } else if (std::chrono::steady_clock::now() - since > limit) {
                      std::fprintf(stderr, "watchdog: no progress in '%s' for %llds at step %llu: a lost wake-up\n",
                                   what, static_cast<long long>(limit.count()),
                                   static_cast<unsigned long long>(now));
                      std::_Exit(1);
                  }
              }
          }) {}
    ~watchdog() {
        m_done = true;
        m_thread.join();
    }

private:
    std::atomic<bool> m_done{false};
    std::thread m_thread;
};

double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

TEST_CASE("no lost wake-up: outside threads hand work to workers that are parking") {
    for (unsigned workers : {1u, 2u, 4u}) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        std::atomic<std::uint64_t> progress{0};
        watchdog dog(progress, "run() after a random pause", std::chrono::seconds(20));
        std::mt19937 rng(workers);
        const std::size_t steps = scaled(3000, 300);
        for (std::size_t i = 0; i < steps; ++i) {
            // Pauses around the spin-then-park window, so the submission lands
            // before, during and after workers go to sleep.
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 400));
            CHECK(rt.run([i] { return i; }) == i);
            progress.fetch_add(1);
        }
    }
}

TEST_CASE("no lost wake-up: a worker's push wakes a parked thief") {
    // f spins until g has started elsewhere; if the push's wake were lost
    // with every other worker parked, g would never start and f would spin
    // until the watchdog fires.
    // Both heavy sides: membarrier, and the full fence on every push
    // (runtime_config::membarrier = false).
    for (const bool membarrier : {true, false}) {
    for (unsigned workers : {2u, 3u}) {
        CAPTURE(membarrier);
        CAPTURE(workers);
        forkline::runtime_config cfg = config_for(workers);
        cfg.membarrier = membarrier;
        forkline::runtime rt(cfg);
        std::atomic<std::uint64_t> progress{0};
        watchdog dog(progress, "invoke whose first half waits for a thief", std::chrono::seconds(20));
        std::mt19937 rng(100 + workers);
        const std::size_t steps = scaled(3000, 300);
        std::size_t stolen = 0;
        for (std::size_t i = 0; i < steps; ++i) {
            const unsigned pause = rng() % 400;
            stolen += rt.run([&, pause] {
                std::this_thread::sleep_for(std::chrono::microseconds(pause));  // let the others park
                std::atomic<bool> g_started{false};
                forkline::invoke([&] { while (!g_started.load()) std::this_thread::yield(); },
                                 [&] { g_started.store(true); });
                return 1;
            });
            progress.fetch_add(1);
        }
        CHECK(stolen == steps);
    }
    }
}

TEST_CASE("no lost wake-up: many producers, bursts and pauses") {
    forkline::runtime rt(config_for(3));
    std::atomic<std::uint64_t> progress{0};
    watchdog dog(progress, "bursts of submissions from 3 threads", std::chrono::seconds(20));
    std::atomic<std::uint64_t> ran{0};
    const std::size_t rounds = scaled(400, 40);
    std::vector<std::thread> producers;
    for (unsigned t = 0; t < 3; ++t) {
        producers.emplace_back([&, t] {
            std::mt19937 rng(t);
            for (std::size_t r = 0; r < rounds; ++r) {
                std::vector<std::future<void>> futs;
                const unsigned burst = 1 + rng() % 20;
                for (unsigned k = 0; k < burst; ++k) {
                    futs.push_back(rt.submit([&] {
                        ran.fetch_add(1);
                        progress.fetch_add(1);
                    }));
                }
                for (auto& f : futs) f.get();
                std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
                progress.fetch_add(1);
            }
        });
    }
    for (auto& p : producers) p.join();
    CHECK(ran.load() >= rounds * 3);
}

TEST_CASE("an idle runtime parks and uses under 1% of a core") {
    forkline::runtime rt(config_for(2));
    rt.run([] {
        std::atomic<long> sink{0};
        forkline::parallel_for(0, 100000, [&](int i) { sink.fetch_add(i, std::memory_order_relaxed); });
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // past the spin phase
    const double cpu0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double cpu = process_cpu_seconds() - cpu0;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("idle cpu " << cpu * 1e3 << " ms over " << wall * 1e3 << " ms");
    CHECK(cpu < 0.01 * wall);
    std::uint64_t parks = 0;
    for (const auto& s : rt.stats()) parks += s.parks;
    CHECK(parks >= 2);  // both workers went to sleep
}

// tests/test_cancel.cpp: cancellation ("Cancellation" in runtime/DESIGN.md).
// task_group's status and nesting (bound and isolated groups, a group made
// inside a cancelled task), every algorithm stopping early inside a
// cancelled group, and runtime::run / submit with a std::stop_token, from
// the thread that cancels and from another one.
#include <doctest/doctest.h>

#include <atomic>      // atomic
#include <cstddef>     // size_t
#include <cstdint>     // int64_t
#include <functional>  // plus
#include <future>      // future
#include <latch>       // latch
#include <numeric>     // iota
#include <stop_token>  // stop_source
#include <thread>      // thread, yield
#include <vector>      // vector

#include "forkline/forkline.hpp"  // task_group, parallel_for, parallel_reduce, parallel_sort, runtime, cancelled
#include "support.hpp"            // config_for

namespace {

using forkline::task_group_status;

/// Far more indices than a test can afford to run: a loop that ignores a
/// cancellation fails the count checks below (after a long time), it does not hang.
constexpr std::int64_t k_huge = 1'000'000'000;
/// What a cancelled loop may still run: the index that cancelled, plus the
/// chunks already started on each worker (at most 1024 indices each).
constexpr long k_slack = 1'000'000;

void wait_for(const std::atomic<bool>& flag) {
    // acquire: pairs with the release store that sets the flag.
    while (!flag.load(std::memory_order_acquire)) std::this_thread::yield();
}

}  // namespace

TEST_CASE("smoke: a cancelled group skips unstarted tasks; wait() reports cancelled, then complete") {
    forkline::runtime rt(config_for(1));
    rt.run([] {
        forkline::task_group tg;
        CHECK(tg.wait() == task_group_status::complete);
        std::atomic<int> ran{0};
        tg.cancel();
        for (int i = 0; i < 10; ++i) tg.spawn([&] { ran.fetch_add(1); });
        CHECK(tg.is_cancelled());
        CHECK(tg.wait() == task_group_status::cancelled);
        CHECK(ran.load() == 0);
        // The group's own cancellation is cleared by wait(): it is reusable.
        CHECK_FALSE(tg.is_cancelled());
        tg.spawn([&] { ran.fetch_add(1); });
        CHECK(tg.wait() == task_group_status::complete);
        CHECK(ran.load() == 1);
    });
}

TEST_CASE("a failing task still rethrows rather than report cancelled") {
    forkline::runtime rt(config_for(2));
    rt.run([] {
        forkline::task_group tg;
        tg.spawn([] { throw 7; });
        CHECK_THROWS_AS(tg.wait(), int);
        CHECK(tg.wait() == task_group_status::complete);
    });
}

TEST_CASE("nesting: cancelling an outer group cancels the groups its tasks made, not isolated ones") {
    forkline::runtime rt(config_for(2));
    for (const bool isolated : {false, true}) {
        CAPTURE(isolated);
        std::atomic<bool> started{false};
        std::atomic<bool> cancelled{false};
        std::atomic<int> inner_ran{0};
        task_group_status inner_status = task_group_status::complete;
        bool inner_saw_cancel = false;
        task_group_status outer_status = task_group_status::complete;
        rt.run([&] {
            forkline::task_group outer;
            outer.spawn([&] {
                auto body = [&](forkline::task_group& inner) {
                    started.store(true, std::memory_order_release);
                    wait_for(cancelled);
                    inner_saw_cancel = inner.is_cancelled();
                    for (int i = 0; i < 10; ++i) inner.spawn([&] { inner_ran.fetch_add(1); });
                    inner_status = inner.wait();
                };
                if (isolated) {
                    forkline::task_group inner(forkline::isolated);
                    body(inner);
                } else {
                    forkline::task_group inner;
                    body(inner);
                }
            });
            wait_for(started);  // the other worker stole the task and made its group
            outer.cancel();
            cancelled.store(true, std::memory_order_release);
            outer_status = outer.wait();
        });
        CHECK(outer_status == task_group_status::cancelled);
        CHECK(inner_saw_cancel == !isolated);
        CHECK(inner_status == (isolated ? task_group_status::complete : task_group_status::cancelled));
        CHECK(inner_ran.load() == (isolated ? 10 : 0));
    }
}

TEST_CASE("nesting: a group made inside a task of a cancelled group is born cancelled") {
    forkline::runtime rt(config_for(1));
    rt.run([] {
        forkline::task_group outer;
        std::atomic<int> ran{0};
        task_group_status inner_status = task_group_status::complete;
        bool born_cancelled = false;
        outer.spawn([&] {
            outer.cancel();  // the running task cancels its own group
            forkline::task_group inner;
            born_cancelled = inner.is_cancelled();
            inner.spawn([&] { ran.fetch_add(1); });
            inner_status = inner.wait();
            // wait() clears the inner group's own flag, not the outer one's.
            CHECK(inner.is_cancelled());
        });
        CHECK(outer.wait() == task_group_status::cancelled);
        CHECK(born_cancelled);
        CHECK(inner_status == task_group_status::cancelled);
        CHECK(ran.load() == 0);
        // A group made outside any task is not bound to anything.
        forkline::task_group after;
        CHECK_FALSE(after.is_cancelled());
    });
}

TEST_CASE("every algorithm inside a cancelled group stops early and returns") {
    for (unsigned w : {1u, 2u, 4u}) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        // Runs algo(cancel) as a task of a group; `cancel` cancels that group.
        auto in_group = [&](auto algo) {
            task_group_status status = task_group_status::complete;
            rt.run([&] {
                forkline::task_group tg;
                tg.spawn([&] { algo([&tg] { tg.cancel(); }); });
                status = tg.wait();
            });
            return status;
        };
        std::atomic<long> seen{0};
        auto counting = [&](auto cancel) {
            return [&seen, cancel](auto) {
                if (seen.fetch_add(1, std::memory_order_relaxed) == 100'000) cancel();
            };
        };
        SUBCASE("parallel_for, automatic grain") {
            CHECK(in_group([&](auto cancel) { forkline::parallel_for(std::int64_t{0}, k_huge, counting(cancel)); }) ==
                  task_group_status::cancelled);
            CHECK(seen.load() < k_slack);
        }
        SUBCASE("parallel_for, explicit grain") {
            CHECK(in_group([&](auto cancel) {
                      forkline::parallel_for(std::int64_t{0}, k_huge, 512, counting(cancel));
                  }) == task_group_status::cancelled);
            CHECK(seen.load() < k_slack);
        }
        SUBCASE("parallel_for, static affinity") {
            CHECK(in_group([&](auto cancel) {
                      forkline::parallel_for(std::int64_t{0}, k_huge, counting(cancel), forkline::static_affinity);
                  }) == task_group_status::cancelled);
            CHECK(seen.load() < k_slack);
        }
        SUBCASE("parallel_reduce and transform_reduce") {
            CHECK(in_group([&](auto cancel) {
                      auto count = counting(cancel);
                      (void)forkline::parallel_reduce(
                          std::int64_t{0}, k_huge, 0L,
                          [&](std::int64_t lo, std::int64_t hi, long acc) {
                              for (auto i = lo; i < hi; ++i) count(i), ++acc;
                              return acc;
                          },
                          std::plus<>{});
                  }) == task_group_status::cancelled);
            CHECK(seen.load() < k_slack);
            seen = 0;
            CHECK(in_group([&](auto cancel) {
                      auto count = counting(cancel);
                      (void)forkline::transform_reduce(std::int64_t{0}, k_huge, 0L, std::plus<>{},
                                                       [&](std::int64_t i) { return count(i), 1L; });
                  }) == task_group_status::cancelled);
            CHECK(seen.load() < k_slack);
        }
        SUBCASE("parallel_sort skips the leaves and merges not yet started") {
            std::vector<int> v(1 << 20);
            std::iota(v.rbegin(), v.rend(), 0);
            CHECK(in_group([&](auto cancel) {
                      // Cancel at the first comparison: only leaves already
                      // started (at most one per worker) finish their std::sort.
                      forkline::parallel_sort(v.begin(), v.end(), [&](int a, int b) {
                          if (seen.fetch_add(1, std::memory_order_relaxed) == 0) cancel();
                          return a < b;
                      });
                  }) == task_group_status::cancelled);
            // A full sort of 2^20 elements makes about 20 million comparisons.
            CHECK(seen.load() < 5'000'000);
        }
        SUBCASE("a loop in a group made inside a task of the cancelled group") {
            CHECK(in_group([&](auto cancel) {
                      forkline::task_group inner;
                      inner.spawn([&] { forkline::parallel_for(std::int64_t{0}, k_huge, counting(cancel)); });
                      CHECK(inner.wait() == task_group_status::cancelled);
                  }) == task_group_status::cancelled);
            CHECK(seen.load() < k_slack);
        }
    }
}

TEST_CASE("run with a stop_token: not run when stopped before, stopped early when stopped during") {
    forkline::runtime rt(config_for(2));
    SUBCASE("stop requested before: cancelled is thrown and f does not run") {
        std::stop_source stop;
        stop.request_stop();
        bool ran = false;
        CHECK_THROWS_AS(rt.run(stop.get_token(), [&] { ran = true; }), forkline::cancelled);
        CHECK_FALSE(ran);
        // From a worker too (in place).
        rt.run([&] { CHECK_THROWS_AS(rt.run(stop.get_token(), [&] { ran = true; }), forkline::cancelled); });
        CHECK_FALSE(ran);
    }
    SUBCASE("never stopped: the result comes back") {
        std::stop_source stop;
        CHECK(rt.run(stop.get_token(), [] { return 42; }) == 42);
        CHECK(rt.run(stop.get_token(), [] { return fib(20); }) == fib_loop(20));
    }
    SUBCASE("stop requested from another thread while a parallel_for runs: the loop returns early") {
        std::stop_source stop;
        std::atomic<long> seen{0};
        std::atomic<bool> running{false};
        std::thread canceller([&] {
            wait_for(running);
            stop.request_stop();
        });
        bool status_inside = false;
        rt.run(stop.get_token(), [&] {
            forkline::parallel_for(std::int64_t{0}, k_huge, [&](std::int64_t) {
                if (seen.fetch_add(1, std::memory_order_relaxed) == 100'000) running.store(true, std::memory_order_release);
            });
            // A group made inside sees the request too.
            forkline::task_group tg;
            status_inside = tg.is_cancelled();
        });
        canceller.join();
        CHECK(seen.load() < k_huge);
        CHECK(status_inside);
    }
    SUBCASE("run with a token from a task is cancelled with that task's group") {
        std::atomic<long> seen{0};
        rt.run([&] {
            forkline::task_group tg;
            tg.spawn([&] {
                std::stop_source never;
                rt.run(never.get_token(), [&] {
                    forkline::parallel_for(std::int64_t{0}, k_huge, [&](std::int64_t) {
                        if (seen.fetch_add(1, std::memory_order_relaxed) == 100'000) tg.cancel();
                    });
                });
            });
            CHECK(tg.wait() == task_group_status::cancelled);
        });
        CHECK(seen.load() < k_slack);
    }
}

TEST_CASE("submit with a stop_token: the future holds cancelled when stop came first") {
    forkline::runtime rt(config_for(1));
    // Keep the only worker busy so that the second job cannot start yet.
    std::latch release(1);
    std::atomic<bool> busy{false};
    auto blocker = rt.submit([&] {
        busy.store(true, std::memory_order_release);
        release.wait();
    });
    wait_for(busy);
    std::stop_source stop;
    std::atomic<bool> ran{false};
    std::future<int> fut = rt.submit(stop.get_token(), [&] {
        ran = true;
        return 1;
    });
    stop.request_stop();
    release.count_down();
    blocker.get();
    CHECK_THROWS_AS(fut.get(), forkline::cancelled);
    CHECK_FALSE(ran.load());
    // Not stopped: its value; the token's stop reaches a loop inside it.
    std::stop_source later;
    CHECK(rt.submit(later.get_token(), [] { return 5; }).get() == 5);
    std::atomic<long> seen{0};
    auto looping = rt.submit(later.get_token(), [&] {
        forkline::parallel_for(std::int64_t{0}, k_huge, [&](std::int64_t) {
            if (seen.fetch_add(1, std::memory_order_relaxed) == 100'000) later.request_stop();
        });
        return seen.load();
    });
    CHECK(looping.get() < k_slack);
}

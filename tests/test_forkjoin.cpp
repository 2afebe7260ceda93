// tests/test_forkjoin.cpp: invoke, task_group and parallel_for results at
// 1, 2, 4 and 8 workers (4 and 8 oversubscribe this machine on purpose),
// exceptions, and the paths taken when a deque is full.
#include <doctest/doctest.h>

#include <atomic>     // atomic
#include <cstdint>    // uintptr_t
#include <chrono>     // microseconds
#include <functional> // function (a recursive lambda in one test)
#include <mutex>      // mutex, lock_guard
#include <numeric>    // accumulate
#include <random>     // mt19937
#include <stdexcept>  // runtime_error
#include <thread>     // this_thread::yield
#include <vector>     // vector

#include "forkline/forkline.hpp"  // runtime, invoke, task_group, parallel_for
#include "support.hpp"            // scaled, config_for, fib

namespace {

long sum_range(const std::vector<long>& v, std::size_t lo, std::size_t hi) {
    if (hi - lo <= 64) return std::accumulate(v.begin() + static_cast<long>(lo), v.begin() + static_cast<long>(hi), 0L);
    const std::size_t mid = lo + (hi - lo) / 2;
    long a = 0, b = 0;
    forkline::invoke([&] { a = sum_range(v, lo, mid); }, [&] { b = sum_range(v, mid, hi); });
    return a + b;
}

// A chain: each level spawns the next, so the depth is the recursion depth.
long chain(int depth) {
    if (depth == 0) return 0;
    long below = 0;
    long here = 0;
    forkline::invoke([&] { below = chain(depth - 1); }, [&] { here = 1; });
    return below + here;
}

// Nested groups: a tree where each node spawns `fan` children into its own group.
long group_tree(int depth, int fan) {
    if (depth == 0) return 1;
    std::vector<long> counts(static_cast<std::size_t>(fan), 0);
    forkline::task_group tg;
    for (int i = 0; i < fan; ++i) {
        tg.spawn([&counts, i, depth, fan] { counts[static_cast<std::size_t>(i)] = group_tree(depth - 1, fan); });
    }
    tg.wait();
    return 1 + std::accumulate(counts.begin(), counts.end(), 0L);
}

long tree_size(int depth, int fan) {
    long size = 1, level = 1;
    for (int d = 0; d < depth; ++d) {
        level *= fan;
        size += level;
    }
    return size;
}

// A tree where each node has `fan` children, walked with invoke_each.
long each_tree(int depth, int fan) {
    if (depth == 0) return 1;
    std::vector<long> counts(static_cast<std::size_t>(fan), 0);
    forkline::invoke_each(static_cast<std::size_t>(fan),
                          [&](std::size_t i) { counts[i] = each_tree(depth - 1, fan); });
    return 1 + std::accumulate(counts.begin(), counts.end(), 0L);
}

// The stack a recursion of `depth` levels uses, by two ways of forking 8
// children at every level (the others are leaves): the distance between the
// addresses of a local at the top and at the bottom.
std::uintptr_t g_deepest = 0;
template <bool Each>
void stack_walk(int depth) {
    volatile char here = 0;
    if (depth == 0) {
        g_deepest = reinterpret_cast<std::uintptr_t>(&here);
        return;
    }
    auto child = [depth](std::size_t i) {
        if (i == 0) stack_walk<Each>(depth - 1);
    };
    if constexpr (Each) {
        forkline::invoke_each(8, child);
    } else {
        // Nested halves, as with invoke: 8 children are three levels of splits.
        std::function<void(std::size_t, std::size_t)> split = [&](std::size_t lo, std::size_t hi) {
            if (hi - lo == 1) {
                child(lo);
                return;
            }
            const std::size_t mid = lo + (hi - lo) / 2;
            forkline::invoke([&] { split(lo, mid); }, [&] { split(mid, hi); });
        };
        split(0, 8);
    }
    (void)here;
}
template <bool Each>
std::uintptr_t stack_bytes_of(forkline::runtime& rt, int depth) {
    return rt.run([depth] {
        volatile char top = 0;
        stack_walk<Each>(depth);
        return reinterpret_cast<std::uintptr_t>(&top) - g_deepest;
    });
}

const unsigned k_worker_counts[] = {1, 2, 4, 8};

}  // namespace

TEST_CASE("fib is right at every worker count") {
    const int n = FORKLINE_STRESS_SCALE >= 50 ? 25 : 20;
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        CHECK(rt.worker_count() == w);
        CHECK(rt.run([&] { return fib(n); }) == fib_loop(n));
    }
}

TEST_CASE("recursive sums over random data match the serial sum") {
    std::mt19937 rng(42);
    std::vector<long> v(scaled(1'000'000, 10'000));
    for (long& x : v) x = static_cast<long>(rng() % 1000) - 500;
    const long want = std::accumulate(v.begin(), v.end(), 0L);
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        CHECK(rt.run([&] { return sum_range(v, 0, v.size()); }) == want);
    }
}

TEST_CASE("nested task_groups count every node of the tree once") {
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        CHECK(rt.run([] { return group_tree(5, 6); }) == tree_size(5, 6));
    }
}

TEST_CASE("deep recursion past the deque's capacity runs inline and stays right") {
    // More levels than the 8192-slot deque holds: the overflow path runs
    // both halves in place.
    const int depth = FORKLINE_STRESS_SCALE >= 50 ? 20'000 : 10'000;
    for (unsigned w : {1u, 2u}) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        CHECK(rt.run([&] { return chain(depth); }) == depth);
    }
}

TEST_CASE("a task_group with many more spawns than deque slots loses none") {
    const std::size_t n = scaled(100'000, 20'000);
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        std::atomic<std::size_t> ran{0};
        rt.run([&] {
            forkline::task_group tg;
            for (std::size_t i = 0; i < n; ++i) tg.spawn([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
            tg.wait();
        });
        CHECK(ran.load() == n);
    }
}

TEST_CASE("tasks may spawn into the group they belong to") {
    forkline::runtime rt(config_for(4));
    std::atomic<int> ran{0};
    rt.run([&] {
        forkline::task_group tg;
        for (int i = 0; i < 50; ++i) {
            tg.spawn([&] {
                ran.fetch_add(1);
                for (int k = 0; k < 20; ++k) tg.spawn([&] { ran.fetch_add(1); });
            });
        }
        tg.wait();
    });
    CHECK(ran.load() == 50 * 21);
}

TEST_CASE("a callable too big for a pooled slot still runs") {
    forkline::runtime rt(config_for(2));
    struct big {
        long payload[64];
    };
    big b{};
    for (int i = 0; i < 64; ++i) b.payload[i] = i;
    std::atomic<long> total{0};
    rt.run([&] {
        forkline::task_group tg;
        for (int k = 0; k < 100; ++k) {
            tg.spawn([b, &total] { total.fetch_add(std::accumulate(b.payload, b.payload + 64, 0L)); });
        }
        tg.wait();
    });
    CHECK(total.load() == 100 * (63 * 64 / 2));
}

TEST_CASE("invoke with more than two callables runs each once") {
    forkline::runtime rt(config_for(4));
    std::atomic<int> mask{0};
    rt.run([&] {
        forkline::invoke([&] { mask |= 1; }, [&] { mask |= 2; }, [&] { mask |= 4; }, [&] { mask |= 8; },
                         [&] { mask |= 16; });
    });
    CHECK(mask.load() == 31);
}

TEST_CASE("invoke_each runs every index exactly once, nested, at every worker count") {
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{17},
                              std::size_t{1000}}) {
            CAPTURE(n);
            std::vector<std::atomic<int>> hits(n);
            rt.run([&] { forkline::invoke_each(n, [&](std::size_t i) { hits[i].fetch_add(1); }); });
            for (std::size_t i = 0; i < n; ++i) CHECK(hits[i].load() == 1);
        }
        CHECK(rt.run([] { return each_tree(5, 6); }) == tree_size(5, 6));
        CHECK(rt.run([] { return each_tree(9, 3); }) == tree_size(9, 3));
    }
    // From a plain thread: on the default runtime.
    CHECK(each_tree(4, 5) == tree_size(4, 5));
}

TEST_CASE("invoke_each: one frame a level, however many indices") {
    forkline::runtime rt(config_for(1));
    const int depth = 200;
    const std::uintptr_t each = stack_bytes_of<true>(rt, depth);
    const std::uintptr_t halves = stack_bytes_of<false>(rt, depth);
    CAPTURE(each / depth);
    CAPTURE(halves / depth);
    // Three levels of splits per level against one frame; whatever the
    // compiler's frame sizes (sanitizers make them large), well under half.
    CHECK(each * 2 < halves);
}

TEST_CASE("invoke_each: exceptions, the first in index order, after the started calls finished") {
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        std::atomic<int> running{0};
        std::atomic<int> finished{0};
        std::atomic<int> threw{0};
        std::atomic<long> work{0};
        // Index i starts only after index i - 1 started (the job offers the
        // indices in order), so 5 always runs, and its error comes first.
        CHECK_THROWS_WITH(rt.run([&] {
            forkline::invoke_each(64, [&](std::size_t i) {
                running.fetch_add(1);
                if (i == 5 || i == 40) {
                    threw.fetch_add(1);
                    throw std::runtime_error(i == 5 ? "five" : "forty");
                }
                for (int k = 0; k < 2000; ++k) work.fetch_add(k, std::memory_order_relaxed);
                finished.fetch_add(1);
            });
        }),
                          "five");
        // Every call that started had ended when the exception arrived.
        CHECK(running.load() == finished.load() + threw.load());
        CHECK(threw.load() >= 1);
        // Still usable afterwards.
        CHECK(rt.run([] { return each_tree(3, 4); }) == tree_size(3, 4));
    }
}

TEST_CASE("invoke_each in a cancelled task_group skips what has not started") {
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        std::atomic<int> ran{0};
        std::atomic<bool> cancelled{false};
        const auto status = rt.run([&] {
            forkline::task_group tg;
            tg.spawn([&] {
                forkline::invoke_each(100'000, [&](std::size_t i) {
                    ran.fetch_add(1);
                    if (i == 0) {
                        tg.cancel();
                        cancelled.store(true);
                        return;
                    }
                    // A thief that started an index before the cancel ends
                    // it after: then it may start no other.
                    while (!cancelled.load()) std::this_thread::yield();
                });
            });
            return tg.wait();
        });
        CHECK(status == forkline::task_group_status::cancelled);
        // Index 0, and at most one more per other worker.
        CHECK(ran.load() <= static_cast<int>(w));
    }
}

TEST_CASE("parallel_for covers every index exactly once") {
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{100'003}}) {
            CAPTURE(n);
            std::vector<std::atomic<int>> hits(n);
            rt.run([&] { forkline::parallel_for(std::size_t{0}, n, [&](std::size_t i) { hits[i].fetch_add(1); }); });
            std::size_t bad = 0;
            for (auto& h : hits) bad += h.load() != 1;
            CHECK(bad == 0);
        }
        std::vector<int> out(1000, 0);
        rt.run([&] { forkline::parallel_for(10, 1000, 16, [&](int i) { out[static_cast<std::size_t>(i)] = i; }); });
        CHECK(out[9] == 0);
        CHECK(out[10] == 10);
        CHECK(out[999] == 999);
        // Negative bounds and a reversed range.
        std::atomic<int> count{0};
        rt.run([&] { forkline::parallel_for(-50, 50, [&](int) { count.fetch_add(1); }); });
        CHECK(count.load() == 100);
        rt.run([&] { forkline::parallel_for(5, 2, [&](int) { count.fetch_add(1); }); });
        CHECK(count.load() == 100);
    }
}

TEST_CASE("exceptions reach the waiter") {
    for (unsigned w : {1u, 2u, 8u}) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        SUBCASE("from the first callable of invoke") {
            CHECK_THROWS_WITH_AS(rt.run([] { forkline::invoke([] { throw std::runtime_error("left"); }, [] {}); }),
                                 "left", std::runtime_error);
        }
        SUBCASE("from the second callable of invoke, stolen or not") {
            for (int i = 0; i < 200; ++i) {
                CHECK_THROWS_AS(rt.run([] {
                    forkline::invoke([] { fib(12); }, [] { throw std::runtime_error("right"); });
                }),
                                std::runtime_error);
            }
        }
        SUBCASE("from deep inside a recursion") {
            std::function<long(int)> boom = [&](int n) -> long {
                if (n == 3) throw std::logic_error("deep");
                if (n < 2) return n;
                long a = 0, b = 0;
                forkline::invoke([&] { a = boom(n - 1); }, [&] { b = boom(n - 2); });
                return a + b;
            };
            CHECK_THROWS_AS(rt.run([&] { return boom(20); }), std::logic_error);
            CHECK(rt.run([] { return fib(15); }) == 610);  // still usable afterwards
        }
        SUBCASE("from a task_group task; the group cancels the rest and is reusable") {
            std::atomic<int> ran{0};
            CHECK_THROWS_WITH(rt.run([&] {
                forkline::task_group tg;
                for (int i = 0; i < 1000; ++i) {
                    tg.spawn([&ran, i] {
                        ran.fetch_add(1);
                        if (i == 0) throw std::runtime_error("task 0");
                    });
                }
                tg.wait();
            }),
                              "task 0");
            CHECK(ran.load() >= 1);
            CHECK(ran.load() <= 1000);
            std::atomic<int> again{0};
            rt.run([&] {
                forkline::task_group tg;
                tg.spawn([&] { again = 1; });
                tg.wait();
            });
            CHECK(again.load() == 1);
        }
        SUBCASE("from parallel_for") {
            CHECK_THROWS_AS(rt.run([] {
                forkline::parallel_for(0, 10000, 10, [](int i) {
                    if (i == 7777) throw std::out_of_range("7777");
                });
            }),
                            std::out_of_range);
        }
    }
}

TEST_CASE("invoke, task_group and parallel_for work from a plain thread (default runtime)") {
    CHECK(fib(18) == fib_loop(18));
    std::atomic<int> ran{0};
    {
        forkline::task_group tg;
        for (int i = 0; i < 100; ++i) tg.spawn([&] { ran.fetch_add(1); });
        tg.wait();
    }
    CHECK(ran.load() == 100);
    std::vector<int> v(1000, 0);
    forkline::parallel_for(std::size_t{0}, v.size(), [&](std::size_t i) { v[i] = 1; });
    CHECK(std::accumulate(v.begin(), v.end(), 0) == 1000);
    forkline::task_group failing;
    failing.spawn([] { throw std::runtime_error("outside"); });
    CHECK_THROWS_WITH(failing.wait(), "outside");
}

namespace {

thread_local bool t_holding = false;  // this thread is inside an outer iteration's critical section

void spin_for(std::atomic<long>& sink, int n) {
    for (int k = 0; k < n; ++k) sink.fetch_add(k, std::memory_order_relaxed);
}

}  // namespace

TEST_CASE("isolate: a worker waiting inside never runs an outer iteration or outside work") {
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        std::mutex m;
        std::atomic<int> nested{0};  // an outer iteration or an outside job started under another's lock
        std::atomic<long> sink{0};
        std::atomic<bool> done{false};
        // Outside work arriving the whole time, which a helping join would pick up.
        std::thread outside([&] {
            while (!done.load()) {
                (void)rt.submit([&] {
                    if (t_holding) nested.fetch_add(1);
                });
                std::this_thread::sleep_for(std::chrono::microseconds(50));
            }
        });
        rt.run([&] {
            forkline::parallel_for(0, 48, 1, [&](int) {
                if (t_holding) {  // would be a self-deadlock on m: count it instead
                    nested.fetch_add(1);
                    return;
                }
                std::lock_guard<std::mutex> hold(m);
                t_holding = true;
                forkline::isolate([&] {
                    forkline::parallel_for(0, 64, 1, [&](int) { spin_for(sink, 3000); });
                    forkline::invoke_each(8, [&](std::size_t) { spin_for(sink, 1000); });
                    forkline::task_group tg;
                    for (int k = 0; k < 8; ++k) tg.spawn([&] { spin_for(sink, 1000); });
                    tg.wait();
                });
                t_holding = false;
            });
        });
        done.store(true);
        outside.join();
        CHECK(nested.load() == 0);
    }
}

TEST_CASE("isolate: the region's tasks run isolated wherever they run; state restored after a throw") {
    for (unsigned w : {2u, 4u}) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        std::atomic<int> unisolated{0};
        std::atomic<long> sink{0};
        rt.run([&] {
            forkline::isolate([&] {
                forkline::parallel_for(0, 256, 1, [&](int) {
                    // On this worker, or on a thief that took it from an isolated worker.
                    if (forkline::detail::current_worker()->isolated.load() == 0) unisolated.fetch_add(1);
                    spin_for(sink, 500);
                });
            });
            CHECK(forkline::detail::current_worker()->isolated.load() == 0);
            CHECK_THROWS_WITH(forkline::isolate([] { throw std::runtime_error("inside"); }), "inside");
            CHECK(forkline::detail::current_worker()->isolated.load() == 0);
            CHECK(forkline::isolate([] { return forkline::isolate([] { return 42; }); }) == 42);
        });
        CHECK(unisolated.load() == 0);
        // Outside a worker: simply called.
        CHECK(forkline::isolate([] { return 7; }) == 7);
    }
}

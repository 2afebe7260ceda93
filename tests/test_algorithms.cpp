// tests/test_algorithms.cpp: parallel_for (automatic, explicit grain,
// iterators, static affinity), parallel_reduce, transform_reduce,
// parallel_invoke and parallel_sort against their serial results on random
// inputs at 1, 2, 4 and 8 workers, with empty and one-element ranges and
// exceptions thrown mid-loop.
#include <doctest/doctest.h>

#include <algorithm>   // sort, is_sorted
#include <atomic>      // atomic
#include <cstdint>     // uint64_t
#include <functional>  // plus, greater
#include <limits>      // numeric_limits
#include <numeric>     // accumulate
#include <random>      // mt19937_64
#include <stdexcept>   // runtime_error
#include <string>      // string
#include <utility>     // pair
#include <vector>      // vector

#include "forkline/forkline.hpp"  // parallel_for, parallel_reduce, transform_reduce, parallel_sort
#include "support.hpp"            // scaled, config_for

namespace {

const unsigned k_worker_counts[] = {1, 2, 4, 8};
const std::size_t k_sizes[] = {0, 1, 2, 3, 1000, 65'537};

std::vector<std::uint64_t> random_values(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::uint64_t> v(n);
    for (auto& x : v) x = rng() % 1'000'000;
    return v;
}

}  // namespace

TEST_CASE("parallel_for: every index exactly once, in every form") {
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        for (std::size_t n : k_sizes) {
            CAPTURE(n);
            std::vector<std::atomic<int>> hits(n);
            auto count = [&](std::size_t i) { hits[i].fetch_add(1, std::memory_order_relaxed); };
            auto all_once = [&] {
                std::size_t bad = 0;
                for (auto& h : hits) bad += h.exchange(0) != 1;
                return bad;
            };
            rt.run([&] { forkline::parallel_for(std::size_t{0}, n, count); });
            CHECK(all_once() == 0);
            rt.run([&] { forkline::parallel_for(std::size_t{0}, n, std::size_t{7}, count); });
            CHECK(all_once() == 0);
            rt.run([&] { forkline::parallel_for(std::size_t{0}, n, count, forkline::static_affinity); });
            CHECK(all_once() == 0);
            std::vector<int> values(n, 1);
            rt.run([&] { forkline::parallel_for(values.begin(), values.end(), [](int& x) { x *= 3; }); });
            CHECK(std::accumulate(values.begin(), values.end(), 0L) == 3L * static_cast<long>(n));
        }
    }
}

TEST_CASE("parallel_for from a plain thread and with signed, offset bounds") {
    std::vector<std::atomic<int>> hits(300);
    forkline::parallel_for(-100, 200, [&](int i) { hits[static_cast<std::size_t>(i + 100)].fetch_add(1); });
    for (auto& h : hits) CHECK(h.load() == 1);
    std::atomic<int> none{0};
    forkline::parallel_for(10, 10, [&](int) { none.fetch_add(1); });
    forkline::parallel_for(10, 3, [&](int) { none.fetch_add(1); });
    CHECK(none.load() == 0);
}

TEST_CASE("static affinity: worker i gets block i, every call") {
    for (unsigned w : {2u, 4u}) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        const std::size_t n = 10'007;
        std::vector<int> owner(n, -1);
        for (int round = 0; round < 5; ++round) {
            rt.run([&] {
                forkline::parallel_for(std::size_t{0}, n, [&](std::size_t i) { owner[i] = rt.current_worker_index(); },
                                       forkline::static_affinity);
            });
            std::size_t wrong = 0;
            for (unsigned k = 0; k < w; ++k) {
                const auto [lo, hi] = forkline::affinity_block(std::size_t{0}, n, k, w);
                for (std::size_t i = lo; i < hi; ++i) wrong += owner[i] != static_cast<int>(k);
            }
            CHECK(wrong == 0);
        }
    }
}

TEST_CASE("spawn_on runs a task on the worker it names; a busy mailbox still runs it") {
    forkline::runtime rt(config_for(4));
    std::vector<std::atomic<int>> ran_on(4);
    for (auto& r : ran_on) r = -1;
    rt.run([&] {
        forkline::task_group tg;
        for (unsigned i = 0; i < 4; ++i) tg.spawn_on(i, [&, i] { ran_on[i] = rt.current_worker_index(); });
        tg.wait();
    });
    for (unsigned i = 0; i < 4; ++i) CHECK(ran_on[i].load() == static_cast<int>(i));
    // Many tasks to one worker: its one-job mailbox is often taken, and the
    // rest go on the caller's deque; every task runs exactly once.
    std::atomic<int> count{0};
    rt.run([&] {
        forkline::task_group tg;
        for (int k = 0; k < 1000; ++k) tg.spawn_on(3, [&] { count.fetch_add(1); });
        tg.wait();
    });
    CHECK(count.load() == 1000);
}

TEST_CASE("affinity_block covers the range in order without overlap") {
    for (unsigned p = 1; p <= 9; ++p) {
        for (int n : {0, 1, 5, 100, 101}) {
            int next = 3;
            for (unsigned i = 0; i < p; ++i) {
                const auto [lo, hi] = forkline::affinity_block(3, 3 + n, i, p);
                CHECK(lo == next);
                CHECK(hi >= lo);
                CHECK(hi - lo <= n / static_cast<int>(p) + 1);
                next = hi;
            }
            CHECK(next == 3 + n);
        }
    }
    // No overflow near the top of the index type, and no block past the end.
    const std::size_t big = ~std::size_t{0} - 10;
    const auto [lo, hi] = forkline::affinity_block(std::size_t{0}, big, 6, 7);
    CHECK(hi == big);
    CHECK(lo == big - big / 7 - 1);
    CHECK(forkline::affinity_block(0, 10, 5, 5) == std::pair<int, int>(10, 10));
}

TEST_CASE("parallel_reduce and transform_reduce match the serial results") {
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        for (std::size_t n : k_sizes) {
            CAPTURE(n);
            const auto v = random_values(n, n + w);
            const std::uint64_t want = std::accumulate(v.begin(), v.end(), std::uint64_t{5});
            const std::uint64_t got = rt.run([&] {
                return forkline::parallel_reduce(
                    std::size_t{0}, n, std::uint64_t{0},
                    [&](std::size_t lo, std::size_t hi, std::uint64_t acc) {
                        for (std::size_t i = lo; i < hi; ++i) acc += v[i];
                        return acc;
                    },
                    std::plus<>{});
            });
            CHECK(got + 5 == want);
            CHECK(rt.run([&] {
                      return forkline::transform_reduce(std::size_t{0}, n, std::uint64_t{5}, std::plus<>{},
                                                        [&](std::size_t i) { return v[i]; });
                  }) == want);
            CHECK(forkline::transform_reduce(v.begin(), v.end(), std::uint64_t{5}, std::plus<>{},
                                             [](std::uint64_t x) { return x; }) == want);
        }
    }
}

TEST_CASE("parallel_reduce keeps index order for a non-commutative combine") {
    forkline::runtime rt(config_for(4));
    const std::size_t n = scaled(20'000, 3'000);
    const std::string got = rt.run([&] {
        return forkline::parallel_reduce(
            std::size_t{0}, n, std::string{},
            [](std::size_t lo, std::size_t hi, std::string acc) {
                for (std::size_t i = lo; i < hi; ++i) acc.push_back(static_cast<char>('a' + i % 26));
                return acc;
            },
            [](std::string a, const std::string& b) { return a + b; });
    });
    std::string want;
    for (std::size_t i = 0; i < n; ++i) want.push_back(static_cast<char>('a' + i % 26));
    CHECK(got == want);
}

TEST_CASE("parallel_sort sorts like std::sort") {
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{2049}, scaled(300'000, 20'000)}) {
            CAPTURE(n);
            auto v = random_values(n, 7 * n + w);
            auto want = v;
            std::sort(want.begin(), want.end());
            rt.run([&] { forkline::parallel_sort(v.begin(), v.end()); });
            CHECK(v == want);
            rt.run([&] { forkline::parallel_sort(v.begin(), v.end(), std::greater<>{}); });
            CHECK(std::is_sorted(v.begin(), v.end(), std::greater<>{}));
        }
        // Many equal keys, and move-only-ish payloads (strings).
        std::vector<std::string> words;
        for (int i = 0; i < 10'000; ++i) words.push_back(std::to_string(i % 37) + "-" + std::to_string(i % 5));
        auto sorted = words;
        std::sort(sorted.begin(), sorted.end());
        rt.run([&] { forkline::parallel_sort(words.begin(), words.end()); });
        CHECK(words == sorted);
    }
}

TEST_CASE("parallel_invoke runs each callable once") {
    forkline::runtime rt(config_for(2));
    std::atomic<int> mask{0};
    rt.run([&] { forkline::parallel_invoke([&] { mask |= 1; }, [&] { mask |= 2; }, [&] { mask |= 4; }); });
    CHECK(mask.load() == 7);
}

TEST_CASE("an exception thrown mid-loop reaches the caller, in every algorithm") {
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        constexpr std::size_t n = 50'000;
        CHECK_THROWS_WITH(rt.run([&] {
            forkline::parallel_for(std::size_t{0}, n, [](std::size_t i) {
                if (i == 31'337) throw std::runtime_error("for");
            });
        }),
                          "for");
        CHECK_THROWS_WITH(rt.run([&] {
            forkline::parallel_for(std::size_t{0}, n, [&](std::size_t i) {
                if (i == n - 1) throw std::runtime_error("affinity");
            }, forkline::static_affinity);
        }),
                          "affinity");
        CHECK_THROWS_WITH(rt.run([&] {
            return forkline::parallel_reduce(
                std::size_t{0}, n, 0L,
                [](std::size_t lo, std::size_t hi, long acc) {
                    for (std::size_t i = lo; i < hi; ++i) {
                        if (i == 777) throw std::runtime_error("reduce");
                        acc += static_cast<long>(i);
                    }
                    return acc;
                },
                std::plus<>{});
        }),
                          "reduce");
        CHECK_THROWS_WITH(rt.run([&] {
            std::vector<int> v(20'000);
            std::iota(v.begin(), v.end(), 0);
            forkline::parallel_sort(v.begin(), v.end(), [](int a, int b) {
                if (a == 12'345 || b == 12'345) throw std::runtime_error("sort");
                return a > b;
            });
        }),
                          "sort");
        // Still usable afterwards.
        CHECK(rt.run([] { return forkline::transform_reduce(0, 100, 0, std::plus<>{}, [](int i) { return i; }); }) ==
              4950);
    }
}

TEST_CASE("static affinity: a block whose worker's mailbox is busy runs on the caller, never on a third worker") {
    // Each outer block runs an inner affinity loop, so the three workers post
    // to each other's mailboxes at once and some posts find them taken.
    forkline::runtime rt(config_for(3));
    constexpr long n = 3000;
    std::size_t strays = 0;
    for (int round = 0; round < static_cast<int>(scaled(200, 20)); ++round) {
        std::vector<std::vector<int>> ran_on(3, std::vector<int>(n, -1));
        std::vector<int> caller(3, -1);
        rt.run([&] {
            forkline::parallel_for(0u, 3u, [&](unsigned outer) {
                caller[outer] = rt.current_worker_index();
                forkline::parallel_for(0L, n, [&](long i) {
                    ran_on[outer][static_cast<std::size_t>(i)] = rt.current_worker_index();
                }, forkline::static_affinity);
            }, forkline::static_affinity);
        });
        for (unsigned outer = 0; outer < 3; ++outer) {
            for (unsigned k = 0; k < 3; ++k) {
                const auto [lo, hi] = forkline::affinity_block(0L, n, k, 3);
                for (long i = lo; i < hi; ++i) {
                    const int who = ran_on[outer][static_cast<std::size_t>(i)];
                    strays += who != static_cast<int>(k) && who != caller[outer];
                }
            }
        }
    }
    CHECK(strays == 0);
}

namespace {
struct enough {};  // thrown by a body to end a loop over a range too wide to finish
}  // namespace

TEST_CASE("wide signed ranges: no overflow in the split or the affinity partition") {
    using i64 = std::int64_t;
    constexpr i64 lo64 = std::numeric_limits<i64>::min();
    constexpr i64 hi64 = std::numeric_limits<i64>::max();
    // The whole int64 range: blocks in order, covering it, sizes within one.
    for (unsigned p : {1u, 2u, 3u, 7u, 64u}) {
        CAPTURE(p);
        i64 next = lo64;
        for (unsigned k = 0; k < p; ++k) {
            const auto [lo, hi] = forkline::affinity_block(lo64, hi64, k, p);
            CHECK(lo == next);
            CHECK(hi >= lo);
            next = hi;
        }
        CHECK(next == hi64);
    }
    static_assert(forkline::affinity_block(lo64, hi64, 1, 2) == std::pair<i64, i64>(-1, hi64));
    static_assert(forkline::affinity_block(lo64, hi64, 0, 2) == std::pair<i64, i64>(lo64, -1));
    // A loop over about 1.4e19 indices, ended by its body: every index it
    // ran lies in the range (a wrapped end - begin split below begin).
    const i64 b = lo64 / 2 - 12'345;
    for (unsigned w : {1u, 2u}) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        for (int grain : {0, 1000}) {
            CAPTURE(grain);
            std::atomic<long> seen{0};
            std::atomic<long> outside{0};
            CHECK_THROWS_AS(rt.run([&] {
                forkline::parallel_for(b, hi64, grain, [&](i64 i) {
                    if (i < b) outside.fetch_add(1, std::memory_order_relaxed);
                    if (seen.fetch_add(1, std::memory_order_relaxed) > 100'000) throw enough{};
                });
            }), enough);
            CHECK(outside.load() == 0);
        }
    }
}

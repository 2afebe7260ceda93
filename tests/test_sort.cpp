// tests/test_sort.cpp: parallel_sort, the in-place quicksort, on the inputs
// that break quicksorts (all keys equal, few distinct keys, sorted, reversed,
// organ pipe, a sawtooth), on ranges large enough for its parallel partition,
// with move-only elements (no copies made), its partition step alone, and its
// memory: no allocation near the range's size while sorting (this file
// replaces operator new to see the largest one).
#include <doctest/doctest.h>

#include <algorithm>   // sort, is_sorted, is_partitioned, count_if
#include <atomic>      // atomic
#include <cstddef>     // size_t, ptrdiff_t
#include <cstdint>     // uint64_t
#include <cstdlib>     // malloc, free
#include <functional>  // greater
#include <memory>      // unique_ptr, make_unique
#include <new>         // bad_alloc, align_val_t
#include <random>      // mt19937_64
#include <string>      // string
#include <vector>      // vector

#include "forkline/forkline.hpp"  // parallel_sort, runtime
#include "support.hpp"            // scaled, config_for

// ThreadSanitizer's runtime defines the global operator new itself (clang
// links it statically), so there the replacement below, and the memory test
// that needs it, are left out; the release and ASan builds run them.
#if defined(__SANITIZE_THREAD__)
#define FORKLINE_TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FORKLINE_TEST_UNDER_TSAN 1
#endif
#endif
#ifndef FORKLINE_TEST_UNDER_TSAN
#define FORKLINE_TEST_UNDER_TSAN 0
#endif

#if !FORKLINE_TEST_UNDER_TSAN
namespace {

// The largest single allocation while `g_watch` is set.
std::atomic<bool> g_watch{false};
std::atomic<std::size_t> g_largest{0};

void note(std::size_t n) noexcept {
    if (!g_watch.load(std::memory_order_relaxed)) return;
    std::size_t seen = g_largest.load(std::memory_order_relaxed);
    while (n > seen && !g_largest.compare_exchange_weak(seen, n, std::memory_order_relaxed)) {
    }
}

}  // namespace

// g++ sees free() on what a replaced operator new returned and warns; it is
// malloc's memory, so the pairing is right.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
    note(n);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    note(n);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
// Every unaligned form, so that each new is freed by its matching delete
// (the sanitizers check the pairing; the aligned forms stay theirs).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    note(n);
    return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    note(n);
    return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
#pragma GCC diagnostic pop
#endif  // !FORKLINE_TEST_UNDER_TSAN

namespace {

const unsigned k_worker_counts[] = {1, 2, 4, 8};

enum class shape { random, equal, few, sorted, reversed, organ_pipe, sawtooth };
const shape k_shapes[] = {shape::random, shape::equal,      shape::few,     shape::sorted,
                          shape::reversed, shape::organ_pipe, shape::sawtooth};

const char* name_of(shape s) {
    switch (s) {
        case shape::random: return "random";
        case shape::equal: return "all equal";
        case shape::few: return "three distinct keys";
        case shape::sorted: return "sorted";
        case shape::reversed: return "reversed";
        case shape::organ_pipe: return "organ pipe";
        case shape::sawtooth: return "sawtooth";
    }
    return "?";
}

std::vector<std::uint64_t> keys(shape s, std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::uint64_t> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        switch (s) {
            case shape::random: v[i] = rng(); break;
            case shape::equal: v[i] = 42; break;
            case shape::few: v[i] = rng() % 3; break;
            case shape::sorted: v[i] = i; break;
            case shape::reversed: v[i] = n - i; break;
            case shape::organ_pipe: v[i] = i < n / 2 ? i : n - i; break;
            case shape::sawtooth: v[i] = i % 1000; break;
        }
    }
    return v;
}

}  // namespace

TEST_CASE("parallel_sort: every input shape, small and past the parallel partition") {
    for (unsigned w : k_worker_counts) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        for (std::size_t n : {std::size_t{2049}, std::size_t{70'000}, scaled(400'000, 140'000)}) {
            CAPTURE(n);
            for (shape s : k_shapes) {
                CAPTURE(name_of(s));
                auto v = keys(s, n, n + w);
                auto want = v;
                std::sort(want.begin(), want.end());
                rt.run([&] { forkline::parallel_sort(v.begin(), v.end()); });
                CHECK(v == want);
                rt.run([&] { forkline::parallel_sort(v.begin(), v.end(), std::greater<>{}); });
                std::sort(want.begin(), want.end(), std::greater<>{});
                CHECK(v == want);
            }
        }
    }
}

TEST_CASE("parallel_sort: move-only elements are moved, never copied") {
    const std::size_t n = scaled(200'000, 80'000);
    for (unsigned w : {1u, 2u, 4u}) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        std::mt19937_64 rng(w);
        std::vector<std::unique_ptr<int>> v;
        for (std::size_t i = 0; i < n; ++i) v.push_back(std::make_unique<int>(static_cast<int>(rng() % 50'000)));
        auto less = [](const std::unique_ptr<int>& a, const std::unique_ptr<int>& b) { return *a < *b; };
        rt.run([&] { forkline::parallel_sort(v.begin(), v.end(), less); });
        CHECK(std::is_sorted(v.begin(), v.end(), less));
        CHECK(std::count_if(v.begin(), v.end(), [](const auto& p) { return p == nullptr; }) == 0);
    }
}

TEST_CASE("parallel_partition: the trues first, as many as std::partition finds, the same elements") {
    forkline::runtime rt(config_for(4));
    for (std::ptrdiff_t n : {std::ptrdiff_t{1}, std::ptrdiff_t{7}, std::ptrdiff_t{1000}, std::ptrdiff_t{100'003}}) {
        for (std::ptrdiff_t blocks : {std::ptrdiff_t{1}, std::ptrdiff_t{2}, std::ptrdiff_t{5}, std::ptrdiff_t{16}}) {
            if (blocks > n) continue;
            for (int percent : {0, 3, 50, 97, 100}) {
                CAPTURE(n);
                CAPTURE(blocks);
                CAPTURE(percent);
                std::mt19937_64 rng(static_cast<std::uint64_t>(n * 131 + blocks * 7 + percent));
                std::vector<std::uint64_t> v(static_cast<std::size_t>(n));
                for (auto& x : v) x = rng() % 100;
                auto before = v;
                auto pred = [percent](std::uint64_t x) { return x < static_cast<std::uint64_t>(percent); };
                const std::ptrdiff_t want = std::count_if(v.begin(), v.end(), pred);
                const std::ptrdiff_t got =
                    rt.run([&] { return forkline::detail::parallel_partition(v.begin(), n, pred, blocks); });
                CHECK(got == want);
                CHECK(std::is_partitioned(v.begin(), v.end(), pred));
                std::sort(v.begin(), v.end());
                std::sort(before.begin(), before.end());
                CHECK(v == before);
            }
        }
    }
}

#if !FORKLINE_TEST_UNDER_TSAN
TEST_CASE("parallel_sort sorts in place: no allocation near the range's size") {
    const std::size_t n = scaled(1'000'000, 300'000);
    const std::size_t bytes = n * sizeof(std::uint64_t);
    for (unsigned w : {1u, 2u, 4u}) {
        CAPTURE(w);
        forkline::runtime rt(config_for(w));
        auto v = keys(shape::random, n, 99);
        g_largest.store(0);
        rt.run([&] {
            g_watch.store(true);
            forkline::parallel_sort(v.begin(), v.end());
            g_watch.store(false);
        });
        CHECK(std::is_sorted(v.begin(), v.end()));
        // The per-block counts of a parallel partition are a few hundred bytes.
        CHECK(g_largest.load() < bytes / 100);
        CHECK(g_largest.load() < 64 * 1024);
    }
}
#endif  // !FORKLINE_TEST_UNDER_TSAN

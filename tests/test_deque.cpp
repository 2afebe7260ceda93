// tests/test_deque.cpp: the Chase-Lev deque alone.
// Smoke: single-thread semantics. Stress: one owner, several thieves, every
// item taken exactly once (conservation), across wrap-around and full deques.
#include <doctest/doctest.h>

#include <atomic>   // atomic
#include <memory>   // unique_ptr
#include <thread>   // thread
#include <vector>   // vector

#include "forkline/detail/deque.hpp"  // deque_storage, worker_deque, stealer
#include "support.hpp"                // scaled

using forkline::detail::deque_storage;
using forkline::detail::steal_outcome;
using forkline::detail::stealer;
using forkline::detail::worker_deque;

namespace {

struct fixture {
    explicit fixture(std::int64_t cap)
        : buffer(std::make_unique<std::atomic<int*>[]>(static_cast<std::size_t>(cap))),
          owner(buffer.get(), cap),
          storage(owner.storage()) {}
    std::unique_ptr<std::atomic<int*>[]> buffer;
    worker_deque<int> owner;
    deque_storage<int>& storage;
};

}  // namespace

TEST_CASE("owner end is LIFO, thief end is FIFO, empty says so") {
    fixture f(8);
    int items[5] = {0, 1, 2, 3, 4};
    stealer<int> thief(f.storage);
    CHECK(f.owner.pop() == nullptr);
    CHECK(thief.steal().outcome == steal_outcome::empty);
    for (int& i : items) REQUIRE(f.owner.push(&i));
    CHECK(f.owner.size_estimate() == 5);
    CHECK(f.owner.pop() == &items[4]);
    auto r = thief.steal();
    CHECK(r.outcome == steal_outcome::taken);
    CHECK(r.item == &items[0]);
    CHECK(f.owner.pop() == &items[3]);
    CHECK(thief.steal().item == &items[1]);
    CHECK(f.owner.pop() == &items[2]);
    CHECK(f.owner.pop() == nullptr);
    CHECK(thief.steal().outcome == steal_outcome::empty);
    CHECK(f.owner.size_estimate() == 0);
}

TEST_CASE("a full deque refuses the push and keeps its items") {
    fixture f(4);
    int items[6] = {};
    for (int i = 0; i < 4; ++i) REQUIRE(f.owner.push(&items[i]));
    CHECK_FALSE(f.owner.push(&items[4]));
    stealer<int> thief(f.storage);
    CHECK(thief.steal().item == &items[0]);  // frees one slot
    CHECK(f.owner.push(&items[4]));          // wraps around into it
    CHECK_FALSE(f.owner.push(&items[5]));
    CHECK(f.owner.pop() == &items[4]);
    CHECK(f.owner.pop() == &items[3]);
    CHECK(f.owner.pop() == &items[2]);
    CHECK(f.owner.pop() == &items[1]);
    CHECK(f.owner.pop() == nullptr);
}

TEST_CASE("bottom() tells the owner what it pushed since") {
    fixture f(8);
    int x = 0;
    int y = 0;
    const auto base = f.owner.bottom();
    f.owner.push(&x);
    f.owner.push(&y);
    CHECK(f.owner.bottom() == base + 2);
    CHECK(f.owner.pop() == &y);
    CHECK(f.owner.bottom() == base + 1);
    // Taking the last item moves top up rather than bottom down, so bottom
    // never drops below a mark read before the pushes.
    CHECK(f.owner.pop() == &x);
    CHECK(f.owner.bottom() >= base);
    CHECK(f.owner.pop() == nullptr);
}

namespace {

// Owner pushes `total` distinct items in bursts and pops some back; thieves
// steal until the owner is done and the deque is empty. Each item's counter
// must end at exactly 1.
void conservation_run(std::int64_t capacity, unsigned thieves, std::size_t total) {
    fixture f(capacity);
    std::vector<int> ids(total);
    std::vector<std::atomic<int>> taken(total);
    for (std::size_t i = 0; i < total; ++i) ids[i] = static_cast<int>(i);
    std::atomic<bool> owner_done{false};
    std::atomic<std::size_t> lost_races{0};

    std::vector<std::thread> pool;
    for (unsigned t = 0; t < thieves; ++t) {
        pool.emplace_back([&] {
            stealer<int> s(f.storage);
            for (;;) {
                auto r = s.steal();
                if (r.outcome == steal_outcome::taken) {
                    taken[static_cast<std::size_t>(*r.item)].fetch_add(1, std::memory_order_relaxed);
                } else if (r.outcome == steal_outcome::lost_race) {
                    lost_races.fetch_add(1, std::memory_order_relaxed);
                } else if (owner_done.load(std::memory_order_acquire)) {
                    return;
                }
            }
        });
    }

    std::size_t next = 0;
    unsigned step = 0;
    while (next < total) {
        const std::size_t burst = 1 + (step * 7) % 29;
        for (std::size_t k = 0; k < burst && next < total; ++k) {
            if (f.owner.push(&ids[next])) {
                ++next;
            } else if (int* p = f.owner.pop()) {  // full: take one back ourselves
                taken[static_cast<std::size_t>(*p)].fetch_add(1, std::memory_order_relaxed);
            }
        }
        const std::size_t pops = (step * 5) % 11;
        for (std::size_t k = 0; k < pops; ++k) {
            if (int* p = f.owner.pop()) taken[static_cast<std::size_t>(*p)].fetch_add(1, std::memory_order_relaxed);
        }
        ++step;
    }
    while (int* p = f.owner.pop()) taken[static_cast<std::size_t>(*p)].fetch_add(1, std::memory_order_relaxed);
    owner_done.store(true, std::memory_order_release);
    for (auto& t : pool) t.join();

    std::size_t wrong = 0;
    for (std::size_t i = 0; i < total; ++i) wrong += taken[i].load() != 1;
    CHECK(wrong == 0);
    CHECK(f.owner.size_estimate() == 0);
    MESSAGE("items " << total << ", thieves " << thieves << ", lost races " << lost_races.load());
}

}  // namespace

TEST_CASE("stress: every item is taken exactly once (conservation)") {
    SUBCASE("large deque, 3 thieves") { conservation_run(1 << 12, 3, scaled(2'000'000, 20'000)); }
    SUBCASE("tiny deque that fills and wraps, 4 thieves") { conservation_run(16, 4, scaled(1'000'000, 10'000)); }
    SUBCASE("one thief racing the owner for the last item") { conservation_run(2, 1, scaled(1'000'000, 10'000)); }
}

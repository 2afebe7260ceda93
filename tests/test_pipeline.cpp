// tests/test_pipeline.cpp: run_pipeline at 1, 2, 4 and 8 workers (4 and 8
// oversubscribe this machine on purpose): order through parallel stages,
// conservation, the token bound, serial exclusion, pause and resume from
// workers and from outside threads, batches, failures, and bad
// configurations. Stage callables record what they see in atomics; the
// checks run on the test thread afterwards.
#include <doctest/doctest.h>

#include <algorithm>           // sort, max
#include <atomic>              // atomic
#include <chrono>              // microseconds
#include <condition_variable>  // condition_variable (the fake I/O thread, deadlines)
#include <cstdio>              // fprintf (a hang's report)
#include <cstdlib>             // _Exit
#include <cstdint>             // uint64_t
#include <deque>               // deque
#include <functional>          // function (the polled feeder's wake-up)
#include <memory>              // unique_ptr
#include <mutex>               // mutex
#include <span>                // span
#include <stdexcept>           // runtime_error, logic_error
#include <stop_token>          // stop_source, stop_token
#include <string>              // string
#include <thread>              // thread
#include <vector>              // vector

#include "forkline/forkline.hpp"  // run_pipeline, stage, runtime
#include "support.hpp"            // scaled, config_for

namespace {

const unsigned k_worker_counts[] = {1, 2, 4, 8};

// Item-dependent work, so that items overtake each other in parallel stages.
// (Items that cost well under a microsecond in all stages are carried on the
// worker that produced them; tests that want both regimes run with and
// without it.)
std::atomic<std::uint64_t> g_work_sink{0};
void jitter(std::uint64_t seq) {
    std::uint64_t h = (seq + 1) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    std::uint64_t acc = h;
    for (std::uint64_t i = 0; i < h % 1500; ++i) acc = acc * 6364136223846793005ull + i;
    g_work_sink.fetch_add(acc, std::memory_order_relaxed);
    if (h % 97 == 0) std::this_thread::yield();
}

/// A first stage producing 0 .. n-1 and then stopping.
auto count_to(std::uint64_t n, std::atomic<int>* misnumbered = nullptr) {
    return [n, misnumbered, next = std::uint64_t{0}](forkline::flow_control& fc) mutable -> std::uint64_t {
        if (next == n) {
            fc.stop();
            return 0;
        }
        if (misnumbered != nullptr && fc.sequence() != next) misnumbered->fetch_add(1);
        return next++;
    };
}

/// One flag per item and stage: how many times the stage saw the item.
struct hit_table {
    hit_table(std::size_t stages, std::size_t items) : n(items), hits(stages * items) {}
    void hit(std::size_t stage, std::uint64_t item) {
        if (item < n) hits[stage * n + item].fetch_add(1, std::memory_order_relaxed);
    }
    int at(std::size_t stage, std::uint64_t item) const { return hits[stage * n + item].load(); }
    std::size_t n;
    std::vector<std::atomic<int>> hits;
};

/// Detects a serial stage running concurrently with itself.
struct exclusion {
    std::atomic<int> inside{0};
    std::atomic<int> overlaps{0};
    void enter() {
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
    }
    void leave() { inside.fetch_sub(1); }
};

/// An in-order sink's check: items arrive as 0, 1, 2 ...
struct order_check {
    std::uint64_t next = 0;  // touched by one serial stage at a time
    std::atomic<int> out_of_order{0};
    void see(std::uint64_t v) {
        if (v != next) out_of_order.fetch_add(1);
        next = v + 1;
    }
};

/// A fake I/O thread: feeds items to a first stage that pauses when none
/// is ready, and resumes it from its own (non-worker) thread.
class feeder {
public:
    explicit feeder(std::uint64_t n) : m_n(n), m_thread([this] { run(); }) {}
    ~feeder() { m_thread.join(); }

    /// The first stage's body.
    std::uint64_t next(forkline::flow_control& fc) {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (!m_ready.empty()) {
            const std::uint64_t v = m_ready.front();
            m_ready.pop_front();
            return v;
        }
        if (m_done) {
            fc.stop();
            return 0;
        }
        m_waiting = fc.pause();
        m_has_waiter = true;
        return 0;
    }

private:
    void run() {
        for (std::uint64_t i = 0; i <= m_n; ++i) {
            if (i % 7 == 3) std::this_thread::sleep_for(std::chrono::microseconds(50));
            forkline::resume_handle h;
            {
                std::lock_guard<std::mutex> lock(m_mutex);
                if (i == m_n) {
                    m_done = true;
                } else {
                    m_ready.push_back(i);
                }
                if (m_has_waiter) {
                    h = m_waiting;
                    m_has_waiter = false;
                }
            }
            h.resume();  // outside the lock, from a thread that is not a worker
        }
    }

    std::uint64_t m_n;
    std::mutex m_mutex;
    std::deque<std::uint64_t> m_ready;
    bool m_done = false;
    forkline::resume_handle m_waiting;
    bool m_has_waiter = false;
    std::thread m_thread;
};

/// A thread that calls resume() on handles it is given, a little later.
class resumer {
public:
    resumer() : m_thread([this] { run(); }) {}
    ~resumer() {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_stop = true;
        }
        m_cv.notify_one();
        m_thread.join();
    }
    void later(forkline::resume_handle h) {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_queue.push_back(std::move(h));
        }
        m_cv.notify_one();
    }

private:
    void run() {
        std::unique_lock<std::mutex> lock(m_mutex);
        for (;;) {
            m_cv.wait(lock, [this] { return m_stop || !m_queue.empty(); });
            if (m_queue.empty()) return;
            forkline::resume_handle h = std::move(m_queue.front());
            m_queue.pop_front();
            lock.unlock();
            std::this_thread::sleep_for(std::chrono::microseconds(100));
            h.resume();
            h.resume();  // a second call does nothing
            lock.lock();
        }
    }
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::deque<forkline::resume_handle> m_queue;
    bool m_stop = false;
    std::thread m_thread;
};

struct item {
    std::uint64_t seq;
    std::uint64_t doubled;
};

}  // namespace

TEST_CASE("an in-order last stage sees 0..N-1 through parallel stages with uneven work") {
    const std::uint64_t n = scaled(20'000, 2'000);
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        std::atomic<int> misnumbered{0};
        std::atomic<int> wrong_value{0};
        order_check order;
        const forkline::pipeline_stats stats = forkline::run_pipeline(
            rt, 8, forkline::stage(forkline::serial_in_order, "source", count_to(n, &misnumbered)),
            forkline::stage(forkline::parallel, "double",
                            [](std::uint64_t& v) {
                                jitter(v);
                                return item{v, 2 * v};
                            }),
            forkline::stage(forkline::parallel, "check",
                            [&](item& it, forkline::flow_control& fc) {
                                jitter(it.seq + 7);
                                if (fc.sequence() != it.seq || it.doubled != 2 * it.seq) wrong_value.fetch_add(1);
                                return it.seq;
                            }),
            forkline::stage(forkline::serial_in_order, "sink", [&](std::uint64_t& v) { order.see(v); }));
        CHECK(order.out_of_order.load() == 0);
        CHECK(order.next == n);
        CHECK(misnumbered.load() == 0);
        CHECK(wrong_value.load() == 0);
        CHECK(stats.items == n);
        REQUIRE(stats.stages.size() == 4);
        CHECK(stats.stages[0].name == "source");
        CHECK(stats.stages[1].mode == forkline::parallel);
        for (const auto& s : stats.stages) CHECK(s.items == n);
    }
}

TEST_CASE("every item passes every stage exactly once, in every mode") {
    const std::uint64_t n = scaled(10'000, 1'000);
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        hit_table seen(5, n);
        exclusion ooo_alone, sink_alone;
        std::atomic<std::uint64_t> sum{0};
        forkline::run_pipeline(
            rt, 6, forkline::stage(forkline::serial_in_order, "source", count_to(n)),
            forkline::stage(forkline::parallel, "p1",
                            [&](std::uint64_t& v) {
                                seen.hit(1, v);
                                jitter(v);
                                return v;
                            }),
            forkline::stage(forkline::serial_out_of_order, "ooo",
                            [&](std::uint64_t& v) {
                                ooo_alone.enter();
                                seen.hit(2, v);
                                ooo_alone.leave();
                                return v;
                            }),
            forkline::stage(forkline::parallel, "p2",
                            [&](std::uint64_t& v) {
                                seen.hit(3, v);
                                jitter(v + 1);
                                return v;
                            }),
            forkline::stage(forkline::serial_out_of_order, "sink", [&](std::uint64_t& v) {
                sink_alone.enter();
                seen.hit(4, v);
                sum.fetch_add(v, std::memory_order_relaxed);
                sink_alone.leave();
            }));
        std::size_t wrong = 0;
        for (std::size_t s = 1; s < 5; ++s) {
            for (std::uint64_t i = 0; i < n; ++i) wrong += seen.at(s, i) != 1;
        }
        CHECK(wrong == 0);
        CHECK(sum.load() == n * (n - 1) / 2);
        CHECK(ooo_alone.overlaps.load() == 0);
        CHECK(sink_alone.overlaps.load() == 0);
    }
}

TEST_CASE("no more than max_tokens items are ever in flight") {
    const std::uint64_t n = scaled(5'000, 500);
    for (const std::size_t tokens : {std::size_t{1}, std::size_t{2}, std::size_t{7}}) {
        for (const unsigned workers : k_worker_counts) {
            CAPTURE(tokens);
            CAPTURE(workers);
            forkline::runtime rt(config_for(workers));
            std::atomic<std::size_t> in_flight{0};
            std::atomic<std::size_t> most{0};
            exclusion source_alone, middle_alone, sink_alone;
            order_check order;
            forkline::run_pipeline(
                rt, tokens,
                forkline::stage(forkline::serial_in_order, "source",
                                [&, next = std::uint64_t{0}](forkline::flow_control& fc) mutable {
                                    source_alone.enter();
                                    if (next == n) {
                                        fc.stop();
                                        source_alone.leave();
                                        return std::uint64_t{0};
                                    }
                                    const std::size_t now = in_flight.fetch_add(1) + 1;
                                    std::size_t m = most.load();
                                    while (now > m && !most.compare_exchange_weak(m, now)) {
                                    }
                                    source_alone.leave();
                                    return next++;
                                }),
                forkline::stage(forkline::parallel, "work",
                                [](std::uint64_t& v) {
                                    jitter(v);
                                    return v;
                                }),
                forkline::stage(forkline::serial_in_order, "middle",
                                [&](std::uint64_t& v) {
                                    middle_alone.enter();
                                    middle_alone.leave();
                                    return v;
                                }),
                forkline::stage(forkline::parallel, "more work",
                                [](std::uint64_t& v) {
                                    jitter(v + 3);
                                    return v;
                                }),
                forkline::stage(forkline::serial_in_order, "sink", [&](std::uint64_t& v) {
                    sink_alone.enter();
                    order.see(v);
                    in_flight.fetch_sub(1);
                    sink_alone.leave();
                }));
            CHECK(most.load() <= tokens);
            CHECK(most.load() >= 1);
            CHECK(in_flight.load() == 0);
            CHECK(order.next == n);
            CHECK(order.out_of_order.load() == 0);
            CHECK(source_alone.overlaps.load() == 0);
            CHECK(middle_alone.overlaps.load() == 0);
            CHECK(sink_alone.overlaps.load() == 0);
        }
    }
}

TEST_CASE("a first stage paused for input is resumed from a thread outside the runtime") {
    const std::uint64_t n = scaled(3'000, 300);
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        order_check order;
        hit_table seen(1, n);
        std::unique_ptr<feeder> input = std::make_unique<feeder>(n);
        forkline::run_pipeline(
            rt, 4,
            forkline::stage(forkline::serial_in_order, "read",
                            [&](forkline::flow_control& fc) { return input->next(fc); }),
            forkline::stage(forkline::parallel, "work",
                            [](std::uint64_t& v) {
                                jitter(v);
                                return v;
                            }),
            forkline::stage(forkline::serial_in_order, "write", [&](std::uint64_t& v) {
                seen.hit(0, v);
                order.see(v);
            }));
        input.reset();  // joins the feeder
        CHECK(order.next == n);
        CHECK(order.out_of_order.load() == 0);
        std::size_t wrong = 0;
        for (std::uint64_t i = 0; i < n; ++i) wrong += seen.at(0, i) != 1;
        CHECK(wrong == 0);
    }
}

/// A producer thread with the shape of io::reader::try_next: a wake-up is
/// stored only when nothing is ready, and called once, outside the lock.
class polled_feeder {
public:
    enum class poll { ready, pending, end };
    explicit polled_feeder(std::uint64_t n) : m_n(n), m_thread([this] { run(); }) {}
    ~polled_feeder() { m_thread.join(); }

    poll try_next(std::uint64_t& out, std::function<void()> on_ready) {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (!m_ready.empty()) {
            out = m_ready.front();
            m_ready.pop_front();
            return poll::ready;
        }
        if (m_done) return poll::end;
        m_on_ready = std::move(on_ready);
        return poll::pending;
    }

private:
    void run() {
        for (std::uint64_t i = 0; i <= m_n; ++i) {
            if (i % 5 == 2) std::this_thread::sleep_for(std::chrono::microseconds(30));
            std::function<void()> wake;
            {
                std::lock_guard<std::mutex> lock(m_mutex);
                if (i == m_n) {
                    m_done = true;
                } else {
                    m_ready.push_back(i);
                }
                wake.swap(m_on_ready);
            }
            if (wake) wake();
        }
    }

    std::uint64_t m_n;
    std::mutex m_mutex;
    std::deque<std::uint64_t> m_ready;
    bool m_done = false;
    std::function<void()> m_on_ready;
    std::thread m_thread;
};

TEST_CASE("pause first, then check with the handle attached, and unpause when it was ready after all") {
    const std::uint64_t n = scaled(3'000, 300);
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        order_check order;
        hit_table seen(1, n);
        std::atomic<std::uint64_t> unpaused{0};
        std::atomic<std::uint64_t> stale_resumes{0};
        std::unique_ptr<polled_feeder> input = std::make_unique<polled_feeder>(n);
        forkline::run_pipeline(
            rt, 4,
            forkline::stage(forkline::serial_in_order, "read",
                            [&](forkline::flow_control& fc) -> std::uint64_t {
                                std::uint64_t v = 0;
                                forkline::resume_handle h = fc.pause();
                                switch (input->try_next(v, [h] { h.resume(); })) {
                                    case polled_feeder::poll::ready:
                                        fc.unpause();
                                        unpaused.fetch_add(1, std::memory_order_relaxed);
                                        if (v % 3 == 0) {
                                            // A resume of an unpaused call's handle does nothing:
                                            // no extra call, so no item twice and none skipped.
                                            h.resume();
                                            stale_resumes.fetch_add(1, std::memory_order_relaxed);
                                        }
                                        return v;
                                    case polled_feeder::poll::end:
                                        fc.unpause();
                                        fc.stop();
                                        return 0;
                                    case polled_feeder::poll::pending:
                                        break;
                                }
                                return 0;  // dropped: the call is paused
                            }),
            forkline::stage(forkline::parallel, "work",
                            [](std::uint64_t& v) {
                                jitter(v);
                                return v;
                            }),
            forkline::stage(forkline::serial_in_order, "write", [&](std::uint64_t& v) {
                seen.hit(0, v);
                order.see(v);
            }));
        input.reset();
        CHECK(order.next == n);
        CHECK(order.out_of_order.load() == 0);
        CHECK(unpaused.load() == n);  // every item came from an unpaused call
        CHECK(stale_resumes.load() > 0);
        std::size_t wrong = 0;
        for (std::uint64_t i = 0; i < n; ++i) wrong += seen.at(0, i) != 1;
        CHECK(wrong == 0);
    }
}

TEST_CASE("a last stage that pauses every k-th item gets it again after a resume from another thread") {
    const std::uint64_t n = scaled(3'000, 300);
    const std::uint64_t k = 5;
    for (const bool heavy : {true, false}) {
        for (const unsigned workers : k_worker_counts) {
            CAPTURE(heavy);
            CAPTURE(workers);
            forkline::runtime rt(config_for(workers));
            order_check order;
            std::vector<int> calls(n, 0);  // touched by the serial sink only
            std::atomic<int> wrong_item{0};
            std::uint64_t paused_on = ~std::uint64_t{0};
            {
                resumer later;
                forkline::run_pipeline(
                    rt, 5, forkline::stage(forkline::serial_in_order, "source", count_to(n)),
                    forkline::stage(forkline::parallel, "work",
                                    [heavy](std::uint64_t& v) {
                                        if (heavy) jitter(v);
                                        return item{v, 2 * v};
                                    }),
                    forkline::stage(forkline::serial_in_order, "sink", [&](item& it, forkline::flow_control& fc) {
                        if (it.doubled != 2 * it.seq || fc.sequence() != it.seq) wrong_item.fetch_add(1);
                        ++calls[it.seq];
                        if (it.seq % k == 0 && paused_on != it.seq) {
                            paused_on = it.seq;
                            later.later(fc.pause());
                            return;
                        }
                        order.see(it.seq);
                    }));
            }
            CHECK(order.next == n);
            CHECK(order.out_of_order.load() == 0);
            CHECK(wrong_item.load() == 0);
            std::size_t wrong_calls = 0;
            for (std::uint64_t i = 0; i < n; ++i) wrong_calls += calls[i] != (i % k == 0 ? 2 : 1);
            CHECK(wrong_calls == 0);
        }
    }
}

TEST_CASE("a resume that comes before the paused call returns is not lost") {
    const std::uint64_t n = scaled(2'000, 200);
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        order_check order;
        std::atomic<int> source_pauses{0};
        std::vector<int> middle_calls(n, 0), sink_calls(n, 0);
        forkline::run_pipeline(
            rt, 3,
            forkline::stage(forkline::serial_in_order, "source",
                            [&, next = std::uint64_t{0}, paused = false](forkline::flow_control& fc) mutable {
                                if (next == n) {
                                    fc.stop();
                                    return std::uint64_t{0};
                                }
                                if (next % 3 == 0 && !paused) {
                                    paused = true;
                                    source_pauses.fetch_add(1);
                                    forkline::resume_handle h = fc.pause();
                                    h.resume();  // before returning
                                    return std::uint64_t{999'999};  // dropped
                                }
                                paused = false;
                                return next++;
                            }),
            forkline::stage(forkline::serial_out_of_order, "middle",
                            [&](std::uint64_t& v, forkline::flow_control& fc) {
                                if (++middle_calls[v] == 1 && v % 4 == 1) {
                                    fc.pause().resume();
                                    return std::uint64_t{777'777};  // dropped
                                }
                                return v;
                            }),
            forkline::stage(forkline::serial_in_order, "sink", [&](std::uint64_t& v, forkline::flow_control& fc) {
                if (++sink_calls[v] == 1 && v % 5 == 2) {
                    forkline::resume_handle h = fc.pause();
                    forkline::resume_handle again = fc.pause();  // the same handle
                    again.resume();
                    h.resume();  // does nothing: already resumed
                    return;
                }
                order.see(v);
            }));
        CHECK(order.next == n);
        CHECK(order.out_of_order.load() == 0);
        CHECK(source_pauses.load() == static_cast<int>((n + 2) / 3));
        std::size_t wrong = 0;
        for (std::uint64_t i = 0; i < n; ++i) {
            wrong += middle_calls[i] != (i % 4 == 1 ? 2 : 1);
            wrong += sink_calls[i] != (i % 5 == 2 ? 2 : 1);
        }
        CHECK(wrong == 0);
    }
}

TEST_CASE("a stage resumed by a task on a worker, before or after it returned") {
    const std::uint64_t n = scaled(2'000, 200);
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        order_check order;
        std::vector<int> calls(n, 0);
        forkline::task_group resumers;  // made here; its tasks are spawned on workers
        forkline::run_pipeline(
            rt, 4, forkline::stage(forkline::serial_in_order, "source", count_to(n)),
            forkline::stage(forkline::parallel, "work",
                            [](std::uint64_t& v) {
                                jitter(v);
                                return v;
                            }),
            forkline::stage(forkline::serial_in_order, "sink", [&](std::uint64_t& v, forkline::flow_control& fc) {
                if (++calls[v] == 1 && v % 3 == 0) {
                    resumers.spawn([h = fc.pause()] { h.resume(); });
                    return;
                }
                order.see(v);
            }));
        resumers.wait();
        CHECK(order.next == n);
        CHECK(order.out_of_order.load() == 0);
        std::size_t wrong = 0;
        for (std::uint64_t i = 0; i < n; ++i) wrong += calls[i] != (i % 3 == 0 ? 2 : 1);
        CHECK(wrong == 0);
    }
}

TEST_CASE("batches are consecutive, in order, within their bounds, and cover every item once") {
    const std::uint64_t n = scaled(10'000, 1'000);
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        std::vector<std::vector<std::uint64_t>> batches;
        std::atomic<int> bad{0};
        // Item i "weighs" i % 10 + 1 bytes; at most 20 bytes per batch.
        const forkline::pipeline_stats stats = forkline::run_pipeline(
            rt, 16, forkline::stage(forkline::serial_in_order, "source", count_to(n)),
            forkline::stage(forkline::parallel, "work",
                            [](std::uint64_t& v) {
                                jitter(v);
                                return item{v, 2 * v};
                            }),
            forkline::stage(forkline::serial_in_order, "write",
                            [&](std::span<item> items, forkline::flow_control& fc) {
                                if (items.empty() || fc.sequence() != items.front().seq) bad.fetch_add(1);
                                std::vector<std::uint64_t> b;
                                for (const item& it : items) b.push_back(it.seq);
                                batches.push_back(std::move(b));
                            })
                .batch(5, 20, [](const item& it) { return static_cast<std::size_t>(it.seq % 10 + 1); }));
        CHECK(bad.load() == 0);
        std::uint64_t expect = 0;
        std::size_t out_of_bounds = 0;
        for (const auto& b : batches) {
            std::size_t bytes = 0;
            for (const std::uint64_t v : b) {
                if (v != expect) ++out_of_bounds;
                expect = v + 1;
                bytes += v % 10 + 1;
            }
            if (b.size() > 5 || (b.size() > 1 && bytes > 20)) ++out_of_bounds;
        }
        CHECK(out_of_bounds == 0);
        CHECK(expect == n);
        CHECK(stats.stages[2].items == n);
    }
}

TEST_CASE("an out-of-order batching stage sees every item once, and a paused batch comes back unchanged") {
    const std::uint64_t n = scaled(5'000, 500);
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        hit_table seen(1, n);
        std::atomic<int> bad{0};
        std::vector<std::uint64_t> paused_batch;
        std::size_t batch_calls = 0;
        {
            resumer later;
            forkline::run_pipeline(
                rt, 12, forkline::stage(forkline::serial_in_order, "source", count_to(n)),
                forkline::stage(forkline::parallel, "work",
                                [](std::uint64_t& v) {
                                    jitter(v);
                                    return v;
                                }),
                forkline::stage(forkline::serial_out_of_order, "write",
                                [&](std::span<std::uint64_t> items, forkline::flow_control& fc) {
                                    if (items.empty() || items.size() > 4) bad.fetch_add(1);
                                    std::vector<std::uint64_t> now(items.begin(), items.end());
                                    if (!paused_batch.empty()) {
                                        if (now != paused_batch) bad.fetch_add(1);
                                        paused_batch.clear();
                                    } else if (++batch_calls % 3 == 0) {
                                        paused_batch = now;
                                        later.later(fc.pause());
                                        return;
                                    }
                                    for (const std::uint64_t v : items) seen.hit(0, v);
                                })
                    .batch(4));
        }
        CHECK(bad.load() == 0);
        std::size_t wrong = 0;
        for (std::uint64_t i = 0; i < n; ++i) wrong += seen.at(0, i) != 1;
        CHECK(wrong == 0);
    }
}

TEST_CASE("a parallel stage that throws on item K: the error names it, later items are dropped") {
    const std::uint64_t n = scaled(4'000, 400);
    const std::uint64_t bad_item = n / 2;
    for (const bool heavy : {true, false}) {
        for (const bool in_order_sink : {true, false}) {
            for (const unsigned workers : k_worker_counts) {
                CAPTURE(heavy);
                CAPTURE(in_order_sink);
                CAPTURE(workers);
                forkline::runtime rt(config_for(workers));
                hit_table seen(4, n);
                auto body = [&](std::uint64_t& v) { seen.hit(3, v); };
                auto middle = forkline::stage(forkline::parallel, "transform", [&](std::uint64_t& v) {
                    seen.hit(1, v);
                    if (heavy) jitter(v);
                    if (v == bad_item) throw std::runtime_error("cannot transform " + std::to_string(v));
                    return v;
                });
                auto tail = forkline::stage(forkline::parallel, "after", [&](std::uint64_t& v) {
                    seen.hit(2, v);
                    return v;
                });
                bool thrown = false;
                try {
                    if (in_order_sink) {
                        forkline::run_pipeline(rt, 8, forkline::stage(forkline::serial_in_order, "source", count_to(n)),
                                               middle, tail, forkline::stage(forkline::serial_in_order, "sink", body));
                    } else {
                        forkline::run_pipeline(rt, 8,
                                               forkline::stage(forkline::serial_in_order, "source", count_to(n)),
                                               middle, tail,
                                               forkline::stage(forkline::serial_out_of_order, "sink", body));
                    }
                } catch (const forkline::pipeline_error& e) {
                    thrown = true;
                    CHECK(e.stage() == "transform");
                    CHECK(e.sequence() == bad_item);
                    CHECK(std::string(e.what()) == "pipeline stage 'transform' failed on item " +
                                                       std::to_string(bad_item) + ": cannot transform " +
                                                       std::to_string(bad_item));
                    CHECK_THROWS_WITH_AS(std::rethrow_exception(e.cause()),
                                         ("cannot transform " + std::to_string(bad_item)).c_str(), std::runtime_error);
                }
                CHECK(thrown);
                std::size_t twice = 0, after_bad = 0, missing = 0;
                for (std::size_t s = 1; s < 4; ++s) {
                    for (std::uint64_t i = 0; i < n; ++i) twice += seen.at(s, i) > 1;
                }
                for (std::uint64_t i = 0; i < n; ++i) {
                    if (i < bad_item && seen.at(3, i) != 1) ++missing;
                }
                CHECK(seen.at(2, bad_item) == 0);  // never passed on
                CHECK(seen.at(3, bad_item) == 0);
                CHECK(twice == 0);
                if (in_order_sink) {
                    for (std::uint64_t i = bad_item; i < n; ++i) after_bad += seen.at(3, i) != 0;
                    CHECK(after_bad == 0);
                }
                CHECK(missing == 0);  // everything before K went all the way
                // The runtime is fine afterwards.
                CHECK(rt.run([] { return 5; }) == 5);
            }
        }
    }
}

TEST_CASE("a failure in the first stage or in the last stage") {
    const std::uint64_t n = scaled(2'000, 200);
    const std::uint64_t bad_item = n / 3;
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        {
            order_check order;
            struct source_error : std::runtime_error {
                using std::runtime_error::runtime_error;
                int code = 42;
            };
            try {
                forkline::run_pipeline(
                    rt, 6,
                    forkline::stage(forkline::serial_in_order, "reader",
                                    [&, next = std::uint64_t{0}](forkline::flow_control&) mutable {
                                        if (next == bad_item) throw source_error("read failed");
                                        return next++;
                                    }),
                    forkline::stage(forkline::parallel, "work",
                                    [](std::uint64_t& v) {
                                        jitter(v);
                                        return v;
                                    }),
                    forkline::stage(forkline::serial_in_order, "sink", [&](std::uint64_t& v) { order.see(v); }));
                FAIL("no exception");
            } catch (const forkline::pipeline_error& e) {
                CHECK(e.stage() == "reader");
                CHECK(e.sequence() == bad_item);
                try {
                    std::rethrow_exception(e.cause());
                } catch (const source_error& cause) {
                    CHECK(cause.code == 42);  // the original type, not a copy sliced to its base
                }
            }
            CHECK(order.next == bad_item);
            CHECK(order.out_of_order.load() == 0);
        }
        {
            std::vector<int> calls(n, 0);
            try {
                forkline::run_pipeline(rt, 6, forkline::stage(forkline::serial_in_order, "source", count_to(n)),
                                       forkline::stage(forkline::parallel, "work",
                                                       [](std::uint64_t& v) {
                                                           jitter(v);
                                                           return v;
                                                       }),
                                       forkline::stage(forkline::serial_in_order, "writer", [&](std::uint64_t& v) {
                                           ++calls[v];
                                           if (v == bad_item) throw 17;  // not a std::exception
                                       }));
                FAIL("no exception");
            } catch (const forkline::pipeline_error& e) {
                CHECK(e.stage() == "writer");
                CHECK(e.sequence() == bad_item);
                CHECK(std::string(e.what()).find("failed on item " + std::to_string(bad_item)) != std::string::npos);
                CHECK_THROWS_AS(std::rethrow_exception(e.cause()), int);
            }
            std::size_t wrong = 0;
            for (std::uint64_t i = 0; i < n; ++i) wrong += calls[i] != (i <= bad_item ? 1 : 0);
            CHECK(wrong == 0);
        }
    }
}

TEST_CASE("misuse of flow_control fails the stage with a logic_error") {
    forkline::runtime rt(config_for(2));
    auto source = [] { return forkline::stage(forkline::serial_in_order, "source", count_to(100)); };
    try {
        forkline::run_pipeline(rt, 4, source(),
                               forkline::stage(forkline::parallel, "par",
                                               [](std::uint64_t& v, forkline::flow_control& fc) {
                                                   if (v == 10) fc.pause();
                                                   return v;
                                               }),
                               forkline::stage(forkline::serial_in_order, "sink", [](std::uint64_t&) {}));
        FAIL("no exception");
    } catch (const forkline::pipeline_error& e) {
        CHECK(e.stage() == "par");
        CHECK(e.sequence() == 10);
        CHECK_THROWS_AS(std::rethrow_exception(e.cause()), std::logic_error);
    }
    try {
        forkline::run_pipeline(rt, 4, source(),
                               forkline::stage(forkline::serial_in_order, "sink",
                                               [](std::uint64_t& v, forkline::flow_control& fc) {
                                                   if (v == 3) fc.stop();
                                               }));
        FAIL("no exception");
    } catch (const forkline::pipeline_error& e) {
        CHECK(e.stage() == "sink");
        CHECK(e.sequence() == 3);
        CHECK_THROWS_AS(std::rethrow_exception(e.cause()), std::logic_error);
    }
    // A stage that throws a pipeline_error (of a nested pipeline) is wrapped like anything else.
    try {
        forkline::run_pipeline(rt, 4, source(),
                               forkline::stage(forkline::serial_in_order, "outer", [&](std::uint64_t& v) {
                                   if (v != 5) return;
                                   forkline::run_pipeline(
                                       2, forkline::stage(forkline::serial_in_order, "inner source", count_to(10)),
                                       forkline::stage(forkline::serial_in_order, "inner sink", [](std::uint64_t& w) {
                                           if (w == 4) throw std::runtime_error("inner");
                                       }));
                               }));
        FAIL("no exception");
    } catch (const forkline::pipeline_error& e) {
        CHECK(e.stage() == "outer");
        CHECK(e.sequence() == 5);
        CHECK(std::string(e.what()) ==
              "pipeline stage 'outer' failed on item 5: pipeline stage 'inner sink' failed on item 4: inner");
        CHECK_THROWS_AS(std::rethrow_exception(e.cause()), forkline::pipeline_error);
    }
}

TEST_CASE("a failure releases a first stage paused for input that never comes") {
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        std::atomic<bool> source_paused{false};
        forkline::resume_handle never;  // kept, never used: only the failure can end the pause
        std::mutex never_mutex;
        CHECK_THROWS_AS(
            forkline::run_pipeline(
                rt, 4,
                forkline::stage(forkline::serial_in_order, "source",
                                [&, next = std::uint64_t{0}](forkline::flow_control& fc) mutable {
                                    if (next == 8) {
                                        std::lock_guard<std::mutex> lock(never_mutex);
                                        never = fc.pause();
                                        source_paused.store(true);
                                        return std::uint64_t{0};
                                    }
                                    return next++;
                                }),
                forkline::stage(forkline::parallel, "work",
                                [&](std::uint64_t& v) {
                                    if (v == 7) {
                                        // With helpers about, wait for the source to pause first
                                        // (bounded, so that one worker cannot hang here).
                                        for (int i = 0; i < 200 && !source_paused.load(); ++i) {
                                            std::this_thread::sleep_for(std::chrono::microseconds(100));
                                        }
                                        throw std::runtime_error("seven");
                                    }
                                    return v;
                                }),
                forkline::stage(forkline::serial_in_order, "sink", [](std::uint64_t&) {})),
            forkline::pipeline_error);
        std::lock_guard<std::mutex> lock(never_mutex);
        never.resume();  // after the end: does nothing
    }
}

TEST_CASE("a failure releases a stage paused on an item after it") {
    for (const unsigned workers : k_worker_counts) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        std::atomic<bool> sink_paused{false};
        std::mutex kept_mutex;
        std::vector<forkline::resume_handle> kept;  // never used while the run lasts
        hit_table seen(1, 64);
        try {
            forkline::run_pipeline(
                rt, 8, forkline::stage(forkline::serial_in_order, "source", count_to(64)),
                forkline::stage(forkline::parallel, "work",
                                [&](std::uint64_t& v) {
                                    if (v == 3) {
                                        for (int i = 0; i < 200 && !sink_paused.load(); ++i) {
                                            std::this_thread::sleep_for(std::chrono::microseconds(100));
                                        }
                                        throw std::runtime_error("three");
                                    }
                                    return v;
                                }),
                forkline::stage(forkline::serial_out_of_order, "sink",
                                [&](std::uint64_t& v, forkline::flow_control& fc) {
                                    seen.hit(0, v);
                                    if (v == 5) {
                                        std::lock_guard<std::mutex> lock(kept_mutex);
                                        kept.push_back(fc.pause());
                                        sink_paused.store(true);
                                    }
                                }));
            FAIL("no exception");
        } catch (const forkline::pipeline_error& e) {
            CHECK(e.sequence() == 3);
        }
        CHECK(seen.at(0, 3) == 0);
        CHECK(seen.at(0, 5) <= 1);  // paused once at most, never called again
        std::lock_guard<std::mutex> lock(kept_mutex);
        for (const auto& h : kept) h.resume();  // after the end: nothing happens
    }
}

TEST_CASE("configuration errors, an empty input, and stale handles") {
    forkline::runtime rt(config_for(2));
    auto sink = forkline::stage(forkline::serial_in_order, "sink", [](std::uint64_t&) {});
    CHECK_THROWS_AS(forkline::run_pipeline(rt, 0, forkline::stage(forkline::serial_in_order, "s", count_to(3)), sink),
                    forkline::config_error);
    CHECK_THROWS_AS(forkline::run_pipeline(rt, 4, forkline::stage(forkline::parallel, "s", count_to(3)), sink),
                    forkline::config_error);
    auto batch_sink = [](std::span<std::uint64_t>) {};
    CHECK_THROWS_AS(forkline::stage(forkline::parallel, "b", batch_sink).batch(4), forkline::config_error);
    CHECK_THROWS_AS(forkline::stage(forkline::serial_in_order, "b", batch_sink).batch(0), forkline::config_error);
    CHECK_THROWS_AS(forkline::stage(forkline::serial_in_order, "b", batch_sink).batch(4, 100),
                    forkline::config_error);

    int sink_calls = 0;
    const forkline::pipeline_stats empty = forkline::run_pipeline(
        rt, 4, forkline::stage(forkline::serial_in_order, "s", count_to(0)),
        forkline::stage(forkline::parallel, "p", [](std::uint64_t& v) { return v; }),
        forkline::stage(forkline::serial_in_order, "sink", [&](std::uint64_t&) { ++sink_calls; }));
    CHECK(empty.items == 0);
    CHECK(sink_calls == 0);
    for (const auto& s : empty.stages) CHECK(s.items == 0);

    forkline::resume_handle nothing;
    nothing.resume();  // default: does nothing
    forkline::resume_handle stale;
    bool paused = false;
    forkline::run_pipeline(rt, 2, forkline::stage(forkline::serial_in_order, "s", count_to(10)),
                           forkline::stage(forkline::serial_in_order, "sink",
                                           [&](std::uint64_t& v, forkline::flow_control& fc) {
                                               if (v == 4 && !paused) {
                                                   paused = true;
                                                   stale = fc.pause();
                                                   stale.resume();
                                               }
                                           }));
    stale.resume();  // the pipeline is gone: nothing happens
    stale.resume();
}

TEST_CASE("run_pipeline on a worker helps; without a runtime it uses the caller's or the default one") {
    forkline::runtime rt(config_for(2));
    const std::uint64_t n = 500;
    // Nested in a task of rt: the calling worker helps while it waits.
    const std::uint64_t total = rt.run([&] {
        std::atomic<std::uint64_t> sum{0};
        forkline::run_pipeline(
            8, forkline::stage(forkline::serial_in_order, "source", count_to(n)),
            forkline::stage(forkline::parallel, "square", [](std::uint64_t& v) { return v * v; }),
            forkline::stage(forkline::serial_out_of_order, "sum", [&](std::uint64_t& v) { sum.fetch_add(v); }));
        return sum.load();
    });
    CHECK(total == (n - 1) * n * (2 * n - 1) / 6);
    // From a plain thread: the default runtime.
    std::uint64_t count = 0;
    const forkline::pipeline_stats stats =
        forkline::run_pipeline(3, forkline::stage(forkline::serial_in_order, "source", count_to(n)),
                               forkline::stage(forkline::serial_in_order, "slow",
                                               [](std::uint64_t& v) {
                                                   if (v % 100 == 0) {
                                                       std::this_thread::sleep_for(std::chrono::microseconds(200));
                                                   }
                                                   return v;
                                               }),
                               forkline::stage(forkline::serial_in_order, "count", [&](std::uint64_t&) { ++count; }));
    CHECK(count == n);
    CHECK(stats.items == n);
    CHECK(stats.stages[1].busy_ns > 0);
    CHECK(stats.wall_ns > 0);
}

TEST_CASE("many short pipelines, some failing: nothing outlives run_pipeline") {
    // Under ASan/TSan, a task touching a finished pipeline's state shows here.
    const int runs = static_cast<int>(scaled(300, 40));
    for (const unsigned workers : {2u, 8u}) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        int failures = 0;
        for (int r = 0; r < runs; ++r) {
            const std::uint64_t n = static_cast<std::uint64_t>(r % 17) * 3;
            const std::uint64_t bad = r % 3 == 0 ? n / 2 : ~std::uint64_t{0};
            try {
                forkline::run_pipeline(
                    rt, 1 + static_cast<std::size_t>(r % 5),
                    forkline::stage(forkline::serial_in_order, "source", count_to(n)),
                    forkline::stage(forkline::parallel, "work",
                                    [bad](std::uint64_t& v) {
                                        if (v == bad) throw std::runtime_error("bad");
                                        return v;
                                    }),
                    forkline::stage(r % 2 == 0 ? forkline::serial_in_order : forkline::serial_out_of_order, "sink",
                                    [](std::uint64_t&) {}));
            } catch (const forkline::pipeline_error&) {
                ++failures;
            }
        }
        CHECK(failures > 0);
    }
}

TEST_CASE("a large run of tiny items") {
    const std::uint64_t n = scaled(200'000, 20'000);
    for (const unsigned workers : {2u, 8u}) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        order_check order;
        std::atomic<std::uint64_t> sum{0};
        forkline::run_pipeline(
            rt, 32, forkline::stage(forkline::serial_in_order, "source", count_to(n)),
            forkline::stage(forkline::parallel, "inc", [](std::uint64_t& v) { return v + 1; }),
            forkline::stage(forkline::serial_in_order, "sink", [&](std::uint64_t& v) {
                order.see(v - 1);
                sum.fetch_add(v, std::memory_order_relaxed);
            }));
        CHECK(order.next == n);
        CHECK(order.out_of_order.load() == 0);
        CHECK(sum.load() == n * (n + 1) / 2);
    }
}

TEST_CASE("after a stage fails on item K, the first stage reads no item past K + max_tokens - 1") {
    // pipeline.hpp's bound: with a serial_in_order last stage no item after K
    // can leave before K does, so at most max_tokens items from K on are ever
    // read. Stress: the failure races the source for the token it frees.
    const int runs = static_cast<int>(scaled(400, 40));
    for (const unsigned workers : {1u, 2u, 4u}) {
        for (const std::size_t tokens : {std::size_t{1}, std::size_t{3}, std::size_t{8}}) {
            for (const bool serial_transform : {true, false}) {
                CAPTURE(workers);
                CAPTURE(tokens);
                CAPTURE(serial_transform);
                forkline::runtime rt(config_for(workers));
                std::uint64_t worst = 0;  // most items read past K + tokens - 1, over the runs
                int not_thrown = 0;
                for (int r = 0; r < runs; ++r) {
                    const std::uint64_t bad = 50 + static_cast<std::uint64_t>(r % 37);
                    std::atomic<std::uint64_t> read{0};
                    auto source = forkline::stage(forkline::serial_in_order, "read",
                                                  [&](forkline::flow_control& fc) -> std::uint64_t {
                                                      if (fc.sequence() == 100'000) fc.stop();
                                                      read.fetch_add(1, std::memory_order_relaxed);
                                                      return fc.sequence();
                                                  });
                    auto transform = [&](std::uint64_t& v) {
                        if (v == bad) throw std::runtime_error("bad item");
                        return v;
                    };
                    auto sink = forkline::stage(forkline::serial_in_order, "sink", [](std::uint64_t&) {});
                    try {
                        if (serial_transform) {
                            forkline::run_pipeline(rt, tokens, source,
                                                   forkline::stage(forkline::serial_out_of_order, "transform",
                                                                   transform),
                                                   sink);
                        } else {
                            forkline::run_pipeline(rt, tokens, source,
                                                   forkline::stage(forkline::parallel, "transform", transform),
                                                   sink);
                        }
                        ++not_thrown;
                    } catch (const forkline::pipeline_error& e) {
                        if (e.sequence() != bad) ++not_thrown;
                    }
                    const std::uint64_t n = read.load();
                    if (n > bad + tokens) worst = std::max(worst, n - (bad + tokens));
                }
                CHECK(not_thrown == 0);
                CHECK(worst == 0);
            }
        }
    }
}

namespace {

// The batch test's rendezvous: the hook below runs inside the engine, on the
// batching stage's runner, right after an item was moved into the batch.
struct batch_race {
    std::atomic<bool> go{false};       // middle stage: item 2 may throw now
    std::atomic<bool> fired{false};    // the hook has run for an item after 2
    std::atomic<bool> lowered{false};  // ... and saw the cut-off come down to 2
};
std::atomic<batch_race*> g_batch_race{nullptr};

/// Waits up to 5 s for `flag`; false if it never came (the test then says so).
bool await(const std::atomic<bool>& flag) {
    for (int i = 0; i < 50'000 && !flag.load(); ++i) std::this_thread::sleep_for(std::chrono::microseconds(100));
    return flag.load();
}

void lower_cutoff_after_take(std::uint64_t sequence, const std::atomic<std::uint64_t>& cutoff) noexcept {
    batch_race* race = g_batch_race.load();
    if (race == nullptr || sequence <= 2 || race->fired.exchange(true)) return;
    race->go.store(true);  // item 2 fails now, while this item is half taken
    for (int i = 0; i < 50'000 && cutoff.load() > 2; ++i) std::this_thread::sleep_for(std::chrono::microseconds(100));
    race->lowered.store(cutoff.load() <= 2);
}

}  // namespace

TEST_CASE("a batching stage never receives an item after a failed one, even one taken as the cut-off fell") {
    // An out-of-order batch: item 3 overtakes item 2, which fails in the
    // middle stage exactly while the batch takes item 3 (the engine's test
    // hook holds the runner there). Items 1 and 3 are made to meet in one
    // batch: the sink's first call waits until both have left the middle.
    forkline::detail::g_batch_take_hook.store(&lower_cutoff_after_take);
    struct unhook {
        ~unhook() {
            forkline::detail::g_batch_take_hook.store(nullptr);
            g_batch_race.store(nullptr);
        }
    } unhook_at_end;
    const int runs = 6;
    int reached = 0;
    for (const unsigned workers : {3u, 4u}) {
        forkline::runtime rt(config_for(workers));
        for (int r = 0; r < runs; ++r) {
            CAPTURE(workers);
            CAPTURE(r);
            batch_race race;
            g_batch_race.store(&race);
            std::atomic<bool> one_done{false}, three_done{false};
            std::vector<std::vector<std::uint64_t>> batches;  // the sink is serial
            std::uint64_t failed_at = 0;
            try {
                forkline::run_pipeline(
                    rt, 8, forkline::stage(forkline::serial_in_order, "source", count_to(32)),
                    forkline::stage(forkline::parallel, "middle",
                                    [&](std::uint64_t& v) {
                                        if (v == 1) std::this_thread::sleep_for(std::chrono::microseconds(300));
                                        if (v == 2) {
                                            await(race.go);
                                            throw std::runtime_error("two");
                                        }
                                        jitter(v);
                                        if (v == 1) one_done.store(true);
                                        if (v == 3) three_done.store(true);
                                        return v;
                                    }),
                    forkline::stage(forkline::serial_out_of_order, "sink",
                                    [&](std::span<std::uint64_t> items) {
                                        if (batches.empty()) {
                                            // Let 1 and 3 queue up behind this call.
                                            if (await(one_done) && await(three_done)) {
                                                std::this_thread::sleep_for(std::chrono::milliseconds(2));
                                            }
                                        }
                                        batches.emplace_back(items.begin(), items.end());
                                    })
                        .batch(8));
            } catch (const forkline::pipeline_error& e) {
                failed_at = e.sequence();
            }
            g_batch_race.store(nullptr);
            CHECK(failed_at == 2);
            std::size_t late = 0;
            std::string seen;
            for (const auto& b : batches) {
                seen += "[";
                for (const std::uint64_t v : b) {
                    late += v >= 2;
                    seen += std::to_string(v) + " ";
                }
                seen += "]";
            }
            CAPTURE(seen);
            CHECK(late == 0);
            if (race.lowered.load()) ++reached;
        }
    }
    CHECK(reached > 0);  // the hook did meet the failure at least once
}

namespace {

/// Runs fn on a thread and waits up to `seconds` for it; a run that does not
/// end is reported and ends the process (it cannot be interrupted), so that a
/// hang fails this test program instead of hanging the suite.
template <class F>
void within_deadline(double seconds, const char* what, F fn) {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::thread t([&] {
        fn();
        std::lock_guard<std::mutex> lock(m);
        done = true;
        cv.notify_one();
    });
    std::unique_lock<std::mutex> lock(m);
    if (!cv.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return done; })) {
        std::fprintf(stderr, "test_pipeline: HANG: %s did not end within %.0f s\n", what, seconds);
        std::fflush(stderr);
        std::_Exit(1);
    }
    lock.unlock();
    t.join();
}

/// What a cancelled run's stages saw: read (first stage calls that gave an
/// item), and per item the middle and last stage's calls.
struct cancel_tally {
    explicit cancel_tally(std::size_t n) : seen(3, n) {}
    std::atomic<std::uint64_t> read{0};
    hit_table seen;
    order_check order;
    // Checks conservation: every item read went through both later stages
    // once, in order at the sink, and nothing else did.
    void check(std::uint64_t reported) {
        const std::uint64_t r = read.load();
        CHECK(reported == r);
        std::size_t wrong = 0;
        for (std::uint64_t i = 0; i < seen.n; ++i) {
            const int want = i < r ? 1 : 0;
            wrong += seen.at(1, i) != want;
            wrong += seen.at(2, i) != want;
        }
        CHECK(wrong == 0);
        CHECK(order.next == r);
        CHECK(order.out_of_order.load() == 0);
    }
};

}  // namespace

TEST_CASE("cancelled from another thread mid-run: reading stops, everything read goes through, pipeline_cancelled") {
    const std::uint64_t n = 1'000'000;  // never reached: the stop comes first
    for (const unsigned workers : {1u, 2u, 4u}) {
        for (const bool heavy : {false, true}) {
            CAPTURE(workers);
            CAPTURE(heavy);
            forkline::runtime rt(config_for(workers));
            cancel_tally tally(n);
            std::stop_source stop;
            std::atomic<std::uint64_t> started_after_stop{0};
            std::atomic<bool> stopped{false};
            std::thread canceller([&] {
                while (tally.read.load() < 300) std::this_thread::yield();
                stop.request_stop();
                stopped.store(true);
            });
            std::uint64_t reported = ~std::uint64_t{0};
            within_deadline(60, "a pipeline cancelled from another thread", [&] {
                try {
                    forkline::run_pipeline(
                        rt, 8, stop.get_token(),
                        forkline::stage(forkline::serial_in_order, "source",
                                        [&](forkline::flow_control& fc) -> std::uint64_t {
                                            if (stopped.load()) started_after_stop.fetch_add(1);
                                            if (fc.sequence() == n) {
                                                fc.stop();
                                                return 0;
                                            }
                                            tally.read.fetch_add(1);
                                            return fc.sequence();
                                        }),
                        forkline::stage(forkline::parallel, "work",
                                        [&](std::uint64_t& v) {
                                            tally.seen.hit(1, v);
                                            if (heavy) jitter(v);
                                            return v;
                                        }),
                        forkline::stage(forkline::serial_in_order, "sink", [&](std::uint64_t& v) {
                            tally.seen.hit(2, v);
                            tally.order.see(v);
                        }));
                    FAIL("not cancelled");
                } catch (const forkline::pipeline_cancelled& e) {
                    reported = e.items();
                    CHECK(e.stats().stages[2].items == e.items());
                    CHECK(std::string(e.what()) == "pipeline cancelled after " + std::to_string(e.items()) +
                                                       " items; each went through every stage");
                }
            });
            canceller.join();
            tally.check(reported);
            CHECK(tally.read.load() >= 300);
            // The call that had passed its check when the stop came, at most.
            CHECK(started_after_stop.load() <= 1);
            CHECK(rt.run([] { return 7; }) == 7);  // the runtime is fine afterwards
        }
    }
}

TEST_CASE("cancelled from inside a stage, before the run, or after the input ended") {
    const std::uint64_t n = 10'000;
    for (const unsigned workers : {1u, 2u, 4u}) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        {  // the sink asks for the stop when it sees item 100
            cancel_tally tally(n);
            std::stop_source stop;
            std::uint64_t reported = ~std::uint64_t{0};
            within_deadline(60, "a pipeline cancelled by its own stage", [&] {
                try {
                    forkline::run_pipeline(
                        rt, 8, stop.get_token(),
                        forkline::stage(forkline::serial_in_order, "source",
                                        [&](forkline::flow_control& fc) -> std::uint64_t {
                                            if (fc.sequence() == n) {
                                                fc.stop();
                                                return 0;
                                            }
                                            tally.read.fetch_add(1);
                                            return fc.sequence();
                                        }),
                        forkline::stage(forkline::parallel, "work",
                                        [&](std::uint64_t& v) {
                                            tally.seen.hit(1, v);
                                            return v;
                                        }),
                        forkline::stage(forkline::serial_in_order, "sink", [&](std::uint64_t& v) {
                            tally.seen.hit(2, v);
                            tally.order.see(v);
                            if (v == 100) stop.request_stop();
                        }));
                    FAIL("not cancelled");
                } catch (const forkline::pipeline_cancelled& e) {
                    reported = e.items();
                }
            });
            tally.check(reported);
            // In order, item 100 holds a token until the sink has it: at most
            // 8 items from 100 on were read, and one call past its check.
            CHECK(tally.read.load() >= 101);
            CHECK(tally.read.load() <= 100 + 8 + 1);
        }
        {  // requested before the run: nothing is read
            std::stop_source stop;
            stop.request_stop();
            int calls = 0;
            try {
                forkline::run_pipeline(rt, 4, stop.get_token(),
                                       forkline::stage(forkline::serial_in_order, "source",
                                                       [&](forkline::flow_control&) { return ++calls; }),
                                       forkline::stage(forkline::serial_in_order, "sink", [](int&) {}));
                FAIL("not cancelled");
            } catch (const forkline::pipeline_cancelled& e) {
                CHECK(e.items() == 0);
            }
            CHECK(calls == 0);
        }
        {  // requested as the input ends (in the call that stops): a normal end
            std::stop_source stop;
            std::uint64_t sunk = 0;
            const forkline::pipeline_stats stats = forkline::run_pipeline(
                rt, 4, stop.get_token(),
                forkline::stage(forkline::serial_in_order, "source",
                                [&](forkline::flow_control& fc) -> std::uint64_t {
                                    if (fc.sequence() == 50) {
                                        fc.stop();
                                        stop.request_stop();
                                    }
                                    return fc.sequence();
                                }),
                forkline::stage(forkline::serial_in_order, "sink", [&](std::uint64_t&) { ++sunk; }));
            CHECK(stats.items == 50);
            CHECK(sunk == 50);
        }
        {  // a failure wins over a cancellation
            std::stop_source stop;
            CHECK_THROWS_AS(forkline::run_pipeline(
                                rt, 4, stop.get_token(),
                                forkline::stage(forkline::serial_in_order, "source", count_to(n)),
                                forkline::stage(forkline::serial_in_order, "sink",
                                                [&](std::uint64_t& v) {
                                                    if (v == 20) {
                                                        stop.request_stop();
                                                        throw std::runtime_error("twenty");
                                                    }
                                                })),
                            forkline::pipeline_error);
        }
    }
}

TEST_CASE("a pipeline whose first stage is paused for input is cancelled without hanging") {
    for (const unsigned workers : {1u, 2u, 4u}) {
        for (const bool from_worker : {false, true}) {
            CAPTURE(workers);
            CAPTURE(from_worker);
            forkline::runtime rt(config_for(workers));
            cancel_tally tally(64);
            std::stop_source stop;
            std::atomic<bool> paused{false};
            std::mutex kept_mutex;
            std::vector<forkline::resume_handle> kept;  // never used while the run lasts
            std::uint64_t reported = ~std::uint64_t{0};
            std::thread canceller;
            if (!from_worker) {
                canceller = std::thread([&] {
                    while (!paused.load()) std::this_thread::yield();
                    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // armed, most often
                    stop.request_stop();
                });
            }
            within_deadline(60, "a pipeline cancelled while its first stage was paused", [&] {
                try {
                    forkline::run_pipeline(
                        rt, 4, stop.get_token(),
                        forkline::stage(forkline::serial_in_order, "source",
                                        [&](forkline::flow_control& fc) -> std::uint64_t {
                                            if (fc.sequence() == 10) {  // input that never comes
                                                std::lock_guard<std::mutex> lock(kept_mutex);
                                                kept.push_back(fc.pause());
                                                paused.store(true);
                                                return 0;
                                            }
                                            tally.read.fetch_add(1);
                                            return fc.sequence();
                                        }),
                        forkline::stage(forkline::parallel, "work",
                                        [&](std::uint64_t& v) {
                                            tally.seen.hit(1, v);
                                            return v;
                                        }),
                        forkline::stage(forkline::serial_in_order, "sink", [&](std::uint64_t& v) {
                            tally.seen.hit(2, v);
                            tally.order.see(v);
                            if (from_worker && v == 9) {
                                // From a worker, once the source may have paused.
                                for (int i = 0; i < 2000 && !paused.load(); ++i) {
                                    std::this_thread::sleep_for(std::chrono::microseconds(100));
                                }
                                stop.request_stop();
                            }
                        }));
                    FAIL("not cancelled");
                } catch (const forkline::pipeline_cancelled& e) {
                    reported = e.items();
                }
            });
            if (canceller.joinable()) canceller.join();
            tally.check(reported);
            CHECK(reported == 10);
            std::lock_guard<std::mutex> lock(kept_mutex);
            for (const auto& h : kept) h.resume();  // after the end: nothing happens
        }
    }
}

TEST_CASE("a cancelled pipeline still waits for a stage paused on an item it read, and finishes it") {
    for (const unsigned workers : {1u, 2u, 4u}) {
        CAPTURE(workers);
        forkline::runtime rt(config_for(workers));
        cancel_tally tally(10'000);
        std::stop_source stop;
        std::uint64_t reported = ~std::uint64_t{0};
        bool paused_once = false;  // the sink is serial
        within_deadline(60, "a cancelled pipeline with a paused sink", [&] {
            resumer later;
            try {
                forkline::run_pipeline(
                    rt, 8, stop.get_token(),
                    forkline::stage(forkline::serial_in_order, "source",
                                    [&](forkline::flow_control& fc) -> std::uint64_t {
                                        if (fc.sequence() == 10'000) fc.stop();
                                        else tally.read.fetch_add(1);
                                        return fc.sequence();
                                    }),
                    forkline::stage(forkline::parallel, "work",
                                    [&](std::uint64_t& v) {
                                        tally.seen.hit(1, v);
                                        return v;
                                    }),
                    forkline::stage(forkline::serial_in_order, "sink",
                                    [&](std::uint64_t& v, forkline::flow_control& fc) {
                                        if (v == 5 && !paused_once) {
                                            paused_once = true;
                                            stop.request_stop();
                                            later.later(fc.pause());  // resumed 100 us later
                                            return;
                                        }
                                        tally.seen.hit(2, v);
                                        tally.order.see(v);
                                    }));
                FAIL("not cancelled");
            } catch (const forkline::pipeline_cancelled& e) {
                reported = e.items();
            }
        });
        CHECK(paused_once);
        tally.check(reported);  // item 5 and those after it that were read went through
        CHECK(reported >= 6);
    }
}

namespace {

// The caller's frame is reused at once, so that a worker still reading the
// pipeline after its batched last stage let go reads memory that changed
// (ThreadSanitizer reports the race; the soak found it).
__attribute__((noinline)) void overwrite_stack() {
    volatile char b[4096];
    for (int i = 0; i < 4096; i += 4) b[i] = 1;
    (void)b[0];
}

TEST_CASE("nobody reads a pipeline after its batched last stage let the run end") {
    forkline::runtime rt(config_for(2));
    const int runs = static_cast<int>(scaled(3000, 100));
    long total = 0;
    for (int it = 0; it < runs; ++it) {
        total += rt.run([&] {
            int next = 0;
            long sum = 0;
            forkline::run_pipeline(rt, 4,
                forkline::stage(forkline::serial_in_order, "src", [&](forkline::flow_control& fc) {
                    if (next == 50) fc.stop();
                    return next++;
                }),
                forkline::stage(forkline::parallel, "mid", [](int& x) { return x + 1; }),
                forkline::stage(forkline::serial_in_order, "sink", [&](std::span<int> xs) {
                    for (int x : xs) sum += x;
                }).batch(4));
            overwrite_stack();
            return sum;
        });
    }
    CHECK(total == static_cast<long>(runs) * (50L * 51 / 2));
}

}  // namespace

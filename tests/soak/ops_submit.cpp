// tests/soak/ops_submit.cpp: the ops that hand work in: runtime::run and
// submit / try_submit from outside threads, submit from inside workers
// (the shared runtime's injection queue is small, so "full" is hit),
// runtimes made, used and destroyed while others live, and submissions
// racing stop().
#include <atomic>     // atomic
#include <chrono>     // milliseconds, microseconds
#include <cstdint>    // uint64_t
#include <future>     // future, future_status
#include <memory>     // unique_ptr
#include <optional>   // optional
#include <string>     // string, to_string
#include <thread>     // thread, sleep_for, yield
#include <vector>     // vector

#include "forkline/errors.hpp"        // runtime_stopped
#include "forkline/parallel_for.hpp"  // parallel_for
#include "forkline/runtime.hpp"       // runtime, submit_status
#include "forkline/task_group.hpp"    // task_group
#include "soak.hpp"

namespace soak {

namespace {

/// A submitted job's work: returns a value its submitter can check, forks
/// now and then, and throws when asked.
long job_value(std::uint64_t id, std::uint64_t h) {
    if (h % 5 == 0) return fib_forked(static_cast<int>(6 + h % 8)) + static_cast<long>(id);
    if (h % 5 == 1) {
        std::atomic<long> sum{0};
        forkline::task_group g;
        for (int i = 0; i < 8; ++i) g.spawn([&sum, i] { sum.fetch_add(i, std::memory_order_relaxed); });
        g.wait();
        return sum.load() + static_cast<long>(id);
    }
    spin(h % 1000);
    return static_cast<long>(id) * 7;
}

long expected_value(std::uint64_t id, std::uint64_t h) {
    if (h % 5 == 0) return fib_plain(static_cast<int>(6 + h % 8)) + static_cast<long>(id);
    if (h % 5 == 1) return 28 + static_cast<long>(id);
    return static_cast<long>(id) * 7;
}

/// Futures of submitted jobs, and what each must give.
struct pending {
    std::uint64_t id;
    std::uint64_t h;
    bool throws;
    std::future<long> f;
};

/// Gets every future and checks its value or exception; each job must have
/// run exactly once (ran[id] == 1).
void collect(const char* op, std::vector<pending>& ps, std::vector<std::atomic<std::uint8_t>>& ran,
             local_counts& c) {
    for (pending& p : ps) {
        try {
            const long v = p.f.get();
            if (p.throws) fail(op, "a job that threw gave a value");
            if (v != expected_value(p.id, p.h)) fail(op, "job " + std::to_string(p.id) + " gave a wrong value");
            c.finished.fetch_add(1, std::memory_order_relaxed);
        } catch (const planned_error& e) {
            if (!p.throws || e.id != p.id) fail(op, "a future rethrew an exception its job did not throw");
            c.threw.fetch_add(1, std::memory_order_relaxed);
        }
        if (ran[p.id].load(std::memory_order_relaxed) != 1) {
            fail(op, "accepted job " + std::to_string(p.id) + " ran " + std::to_string(ran[p.id].load()) + " times");
        }
    }
}

auto make_job(std::vector<std::atomic<std::uint8_t>>& ran, std::uint64_t id, std::uint64_t h, bool throws) {
    return [&ran, id, h, throws]() -> long {
        if (ran[id].fetch_add(1, std::memory_order_relaxed) != 0) fail("submit", "a job ran twice");
        const long v = job_value(id, h);
        if (throws) throw planned_error(id);
        return v;
    };
}

forkline::runtime_config fresh_config(rng& r) {
    forkline::runtime_config c;
    c.placement.workers = static_cast<unsigned>(r.between(1, 4));
    c.placement.oversubscribe = true;
    c.read_environment = false;
    c.pin = r.chance(0.5);
    c.injection_capacity = r.between(1, 64);
    c.stats = "off";
    return c;
}

}  // namespace

void op_run(context& cx, rng& r) {
    local_counts c;
    const int n = static_cast<int>(r.between(2, 18));
    const bool throws = r.chance(0.2);
    c.issued.store(1);
    try {
        const long v = cx.shared->run([&] {
            const long x = fib_forked(n);
            if (throws) throw planned_error(static_cast<std::uint64_t>(n));
            return x;
        });
        if (throws) fail("run", "run() returned though its callable threw");
        if (v != fib_plain(n)) fail("run", "run() returned a wrong value");
        c.finished.store(1);
    } catch (const planned_error& e) {
        if (!throws || e.id != static_cast<std::uint64_t>(n)) fail("run", "run() rethrew an exception not thrown");
        c.threw.store(1);
    }
    settle(cx, "run", k_run, c);
}

void op_submit(context& cx, rng& r) {
    local_counts c;
    const unsigned threads = static_cast<unsigned>(r.between(1, 3));
    const std::size_t per = r.between(1, 48);
    const std::uint64_t seed = r.next();
    std::vector<std::atomic<std::uint8_t>> ran(threads * per);
    std::vector<std::vector<pending>> ps(threads);
    auto submitter = [&](unsigned t) {
        for (std::size_t i = 0; i < per; ++i) {
            const std::uint64_t id = t * per + i;
            const std::uint64_t h = mix(seed ^ id);
            const bool throws = (h >> 20) % 10 == 0;
            c.issued.fetch_add(1, std::memory_order_relaxed);
            if ((h >> 8) % 2 == 0) {
                ps[t].push_back({id, h, throws, cx.shared->submit(make_job(ran, id, h, throws))});
            } else {
                auto res = cx.shared->try_submit(make_job(ran, id, h, throws));
                if (res.status == forkline::submit_status::accepted) {
                    ps[t].push_back({id, h, throws, std::move(res.future)});
                } else if (res.status == forkline::submit_status::full) {
                    c.refused.fetch_add(1, std::memory_order_relaxed);
                } else {
                    fail("submit", "try_submit said stopped on a running runtime");
                }
            }
        }
    };
    std::vector<std::thread> helpers;
    for (unsigned t = 1; t < threads; ++t) helpers.emplace_back(submitter, t);
    submitter(0);
    for (auto& th : helpers) th.join();
    for (auto& v : ps) collect("submit", v, ran, c);
    for (std::size_t i = 0; i < ran.size(); ++i) {
        if (ran[i].load() > 1) fail("submit", "a job ran twice");
    }
    settle(cx, "submit", k_submit, c);
}

void op_worker_submit(context& cx, rng& r) {
    local_counts c;
    const std::size_t n = r.between(1, 64);
    const std::uint64_t seed = r.next();
    const bool blocking_allowed = cx.opt.worker_submit;
    std::vector<std::atomic<std::uint8_t>> ran(n);
    std::vector<std::optional<pending>> slots(n);
    cx.shared->run([&] {
        forkline::parallel_for(std::size_t{0}, n, [&](std::size_t i) {
            const std::uint64_t h = mix(seed ^ i);
            const bool throws = (h >> 20) % 10 == 0;
            c.issued.fetch_add(1, std::memory_order_relaxed);
            if (blocking_allowed && (h >> 8) % 2 == 0) {
                // With a full queue this must not put the worker to sleep for good.
                slots[i] = pending{i, h, throws, cx.shared->submit(make_job(ran, i, h, throws))};
                return;
            }
            auto res = cx.shared->try_submit(make_job(ran, i, h, throws));
            if (res.status == forkline::submit_status::accepted) {
                slots[i] = pending{i, h, throws, std::move(res.future)};
            } else if (res.status == forkline::submit_status::full) {
                c.refused.fetch_add(1, std::memory_order_relaxed);
            } else {
                fail("worker_submit", "try_submit said stopped on a running runtime");
            }
        });
    });
    std::vector<pending> ps;
    for (auto& s : slots) {
        if (s) ps.push_back(std::move(*s));
    }
    collect("worker_submit", ps, ran, c);
    for (std::size_t i = 0; i < n; ++i) {
        if (ran[i].load() > 1) fail("worker_submit", "a job ran twice");
    }
    settle(cx, "worker_submit", k_wsubmit, c);
}

void op_runtime_life(context& cx, rng& r) {
    local_counts c;
    const forkline::runtime_config cfg = fresh_config(r);
    const int n = static_cast<int>(r.between(5, 20));
    const std::size_t m = r.between(1, 5000);
    const bool cross = r.chance(0.3);
    const bool explicit_stop = r.chance(0.5);
    {
        forkline::runtime rt(cfg);
        cx.runtimes_made.fetch_add(1, std::memory_order_relaxed);
        if (rt.worker_count() != cfg.placement.workers) fail("runtime_life", "worker count differs from the config");
        c.issued.fetch_add(3, std::memory_order_relaxed);
        if (rt.run([&] { return fib_forked(n); }) != fib_plain(n)) fail("runtime_life", "fib on a fresh runtime");
        c.finished.fetch_add(1, std::memory_order_relaxed);
        std::vector<std::atomic<std::uint8_t>> hits(m);
        rt.run([&] {
            forkline::parallel_for(std::size_t{0}, m, [&](std::size_t i) { hits[i].fetch_add(1, std::memory_order_relaxed); });
        });
        for (auto& h : hits) {
            if (h.load() != 1) fail("runtime_life", "parallel_for on a fresh runtime missed or repeated an index");
        }
        c.finished.fetch_add(1, std::memory_order_relaxed);
        // A worker of this runtime asks the shared one (never the other way,
        // so that no two runtimes wait on each other).
        const long v = rt.run([&] { return cross ? cx.shared->run([&] { return fib_forked(n); }) : fib_forked(n); });
        if (v != fib_plain(n)) fail("runtime_life", "a nested run across runtimes gave a wrong value");
        c.finished.fetch_add(1, std::memory_order_relaxed);
        if (explicit_stop) {
            rt.stop();
            c.issued.fetch_add(1, std::memory_order_relaxed);
            try {
                rt.run([] { return 0; });
                fail("runtime_life", "run() after stop() was accepted");
            } catch (const forkline::runtime_stopped&) {
                c.refused.fetch_add(1, std::memory_order_relaxed);
            }
        }
    }
    settle(cx, "runtime_life", k_run, c);
}

void op_stop_race(context& cx, rng& r) {
    local_counts c;
    forkline::runtime_config cfg = fresh_config(r);
    cfg.injection_capacity = r.between(1, 16);
    const std::uint64_t seed = r.next();
    const unsigned threads = static_cast<unsigned>(r.between(1, 3));
    const auto delay = std::chrono::microseconds(r.below(5000));
    constexpr std::size_t k_cap = 20000;  // per thread, so that memory stays bounded
    std::vector<std::atomic<std::uint8_t>> ran(threads * k_cap);
    std::vector<std::vector<pending>> ps(threads);
    forkline::runtime rt(cfg);
    cx.runtimes_made.fetch_add(1, std::memory_order_relaxed);
    auto submitter = [&](unsigned t) {
        for (std::size_t i = 0; i < k_cap; ++i) {
            const std::uint64_t id = t * k_cap + i;
            const std::uint64_t h = mix(seed ^ id) / 5 * 5 + 2;  // h % 5 == 2: a cheap job, no fork
            c.issued.fetch_add(1, std::memory_order_relaxed);
            if (i % 2 == 0) {
                try {
                    ps[t].push_back({id, h, false, rt.submit(make_job(ran, id, h, false))});
                } catch (const forkline::runtime_stopped&) {
                    c.refused.fetch_add(1, std::memory_order_relaxed);
                    return;
                }
            } else {
                auto res = rt.try_submit(make_job(ran, id, h, false));
                if (res.status == forkline::submit_status::accepted) {
                    ps[t].push_back({id, h, false, std::move(res.future)});
                } else {
                    c.refused.fetch_add(1, std::memory_order_relaxed);
                    if (res.status == forkline::submit_status::stopped) return;
                    std::this_thread::yield();
                }
            }
        }
    };
    std::vector<std::thread> subs;
    for (unsigned t = 0; t < threads; ++t) subs.emplace_back(submitter, t);
    std::this_thread::sleep_for(delay);
    rt.stop();  // finishes every accepted job, wakes blocked submitters
    for (auto& th : subs) th.join();
    for (auto& v : ps) {
        for (pending& p : v) {
            if (p.f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
                fail("stop_race", "stop() returned before an accepted job was done");
            }
        }
        collect("stop_race", v, ran, c);
    }
    std::uint64_t ran_total = 0;
    for (auto& x : ran) ran_total += x.load();
    if (ran_total != c.finished.load()) fail("stop_race", "a refused job ran");
    settle(cx, "stop_race", k_stopsubmit, c);
}

}  // namespace soak

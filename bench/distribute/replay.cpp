// bench/distribute/replay.cpp: see replay.hpp.
//
// The generator is a thread of its own, not pinned: on a 2-core machine it
// shares the cores with the workers. It sleeps (timer slack 1 ns) until
// spin_ns before each arrival, then spins to it, so its cost is about
// spin_ns plus one wake-up per request; replay() reports it as the share of
// its wall time it spent on a cpu. Latency is completion minus the
// *scheduled* arrival, so a generator that falls behind cannot hide the
// queue; a run with more than 1% of submissions late is refused.
#include "distribute/replay.hpp"

#include <pthread.h>     // pthread_setschedparam
#include <sched.h>       // SCHED_FIFO
#include <sys/prctl.h>  // prctl, PR_SET_TIMERSLACK
#include <time.h>       // clock_gettime, CLOCK_THREAD_CPUTIME_ID

#include <algorithm>  // sort, max, min_element
#include <atomic>     // atomic
#include <chrono>     // nanoseconds
#include <stdexcept>  // logic_error
#include <string>     // string
#include <thread>     // thread, sleep_for

#include "distribute/policy.hpp"

namespace forkline_bench::distribute {
namespace {

std::uint64_t thread_cpu_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

void wait_until(std::uint64_t target, std::uint64_t spin_ns) noexcept {
    for (;;) {
        const std::uint64_t now = now_ns();
        if (now >= target) return;
        if (target - now > spin_ns) {
            std::this_thread::sleep_for(std::chrono::nanoseconds(target - now - spin_ns));
        }
    }
}

// Quantiles, mean and max of completion - scheduled arrival after the warm-up.
void summarize(const std::vector<request>& schedule, const std::vector<std::uint64_t>& completion,
               const replay_options& o, run_figures& f) {
    const std::size_t n = schedule.size();
    const std::size_t skip = static_cast<std::size_t>(static_cast<double>(n) * o.warmup_share);
    std::vector<std::uint64_t> lat;
    lat.reserve(n - skip);
    std::uint64_t last = 0;
    double sum = 0;
    std::size_t ran = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (completion[i] == run_context::k_not_run) continue;
        ++ran;
        last = std::max(last, completion[i]);
        if (i < skip) continue;
        const std::uint64_t l = completion[i] >= schedule[i].arrival_ns ? completion[i] - schedule[i].arrival_ns : 0;
        lat.push_back(l);
        sum += static_cast<double>(l);
    }
    f.requests = static_cast<std::uint32_t>(n);
    f.completed = static_cast<std::uint32_t>(ran);
    f.measured = static_cast<std::uint32_t>(lat.size());
    if (n > 0 && last > schedule.front().arrival_ns) {
        f.throughput = static_cast<double>(ran) * 1e9 / static_cast<double>(last - schedule.front().arrival_ns);
    }
    if (lat.empty()) return;
    std::sort(lat.begin(), lat.end());
    const auto at = [&](double q) {
        const std::size_t k = static_cast<std::size_t>(q * static_cast<double>(lat.size() - 1) + 0.5);
        return static_cast<double>(lat[k]) / 1e3;
    };
    f.p50_us = at(0.50);
    f.p99_us = at(0.99);
    f.p999_us = at(0.999);
    f.max_us = static_cast<double>(lat.back()) / 1e3;
    f.mean_us = sum / static_cast<double>(lat.size()) / 1e3;
}

std::atomic<std::uint64_t> g_run_id{0};

}  // namespace

void straggler_window(const std::vector<request>& schedule, std::uint64_t& from_ns, std::uint64_t& until_ns) {
    const std::uint64_t span = schedule.empty() ? 0 : schedule.back().arrival_ns;
    from_ns = span / 3;
    until_ns = 2 * span / 3;
}

run_figures replay(std::string_view name, const std::vector<request>& schedule, const replay_options& o) {
    std::unique_ptr<policy> p = make_policy(name);
    if (!p) throw std::logic_error("policy '" + std::string(name) + "' is not built");
    return replay(*p, schedule, o);
}

run_figures replay(policy& pol, const std::vector<request>& schedule, const replay_options& o) {
    policy* const p = &pol;
    run_context ctx;
    ctx.schedule = &schedule;
    ctx.completion_ns.assign(schedule.size(), 0);
    ctx.run_id = g_run_id.fetch_add(1, std::memory_order_relaxed) + 1;  // relaxed: a ticket
    ctx.straggler = o.straggler;
    straggler_window(schedule, ctx.slow_from_ns, ctx.slow_until_ns);
    p->start(ctx, o.workers);

    std::vector<std::uint64_t> lag(schedule.size(), 0);
    std::uint64_t gen_cpu = 0, gen_wall = 0;
    bool gen_realtime = false;
    // Started 2 ms ahead, so that the pool's threads are up and parked.
    ctx.start_ns = now_ns() + 2'000'000;
    std::thread generator([&] {
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
        // The generator is the load, not the system measured: where allowed
        // it runs SCHED_FIFO so that busy workers (or other processes on a
        // shared machine) cannot push it behind its schedule. It sleeps
        // between arrivals, so it cannot starve them.
        if (o.realtime_generator) {
            sched_param sp{};
            sp.sched_priority = 1;
            gen_realtime = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
        }
        const std::uint64_t cpu0 = thread_cpu_ns();
        const std::uint64_t wall0 = now_ns();
        for (std::uint32_t i = 0; i < schedule.size(); ++i) {
            const std::uint64_t target = ctx.start_ns + schedule[i].arrival_ns;
            wait_until(target, o.spin_ns);
            lag[i] = now_ns() - target;
            p->submit(i);
        }
        gen_cpu = thread_cpu_ns() - cpu0;
        gen_wall = now_ns() - wall0;
    });
    generator.join();
    ctx.wait_all();
    p->stop();

    run_figures f;
    summarize(schedule, ctx.completion_ns, o, f);
    // after wait_all(): every end is visible (acquire on done)
    f.rejected = ctx.rejected.load(std::memory_order_relaxed);
    f.expired = ctx.expired.load(std::memory_order_relaxed);
    f.completed = ctx.done.load(std::memory_order_acquire) - f.rejected - f.expired;
    std::uint64_t max_lag = 0;
    for (const std::uint64_t l : lag) {
        max_lag = std::max(max_lag, l);
        if (l > o.late_ns) ++f.late;
    }
    f.max_lag_us = static_cast<double>(max_lag) / 1e3;
    f.generator_cpu_ns = gen_cpu;
    f.generator_cpu = gen_wall > 0 ? static_cast<double>(gen_cpu) / static_cast<double>(gen_wall) : 0.0;
    f.generator_realtime = gen_realtime;
    f.refused = static_cast<double>(f.late) > 0.01 * static_cast<double>(schedule.size());
    return f;
}

run_figures simulate_ideal(const std::vector<request>& schedule, const replay_options& o) {
    std::vector<std::uint64_t> free_at(std::max(1u, o.workers), 0);
    std::vector<std::uint64_t> completion(schedule.size());
    std::uint64_t slow_from = 0, slow_until = 0;
    straggler_window(schedule, slow_from, slow_until);
    // Arrivals are in order, so FCFS is: each request to the server free first.
    for (std::size_t i = 0; i < schedule.size(); ++i) {
        const auto server = std::min_element(free_at.begin(), free_at.end());
        const std::uint64_t start = std::max(*server, schedule[i].arrival_ns);
        std::uint64_t service = schedule[i].service_ns;
        if (o.straggler && server == free_at.begin() && start >= slow_from && start < slow_until) service *= 4;
        *server = start + service;
        completion[i] = *server;
    }
    run_figures f;
    summarize(schedule, completion, o, f);
    return f;
}

}  // namespace forkline_bench::distribute

// bench/cancel/cancel_latency.cpp: the latency of cancelling a running loop.
//
//   forkline-cancel-latency [--workers 2] [--reps 9] [--delay-ms 50]
//
// Starts parallel_for over 10^9 indices with a light body, lets it run for
// --delay-ms, cancels it from another thread and reports the time from the
// cancel call to the loop's return: median, min and max over --reps. Modes:
// the loop in a task_group task, cancelled with task_group::cancel(); the
// loop in runtime::run with a std::stop_token, cancelled with request_stop();
// and, when oneTBB is built in, tbb::parallel_for in a task_group_context
// cancelled with cancel_group_execution(), the peer.
#include <algorithm>  // sort
#include <atomic>     // atomic
#include <chrono>     // steady_clock
#include <cstdint>    // int64_t
#include <cstdio>     // printf, fprintf
#include <cstdlib>    // atoi
#include <cstring>    // strcmp
#include <stop_token> // stop_source
#include <thread>     // thread, sleep_for
#include <vector>     // vector

#include "forkline/forkline.hpp"  // runtime, task_group, parallel_for
#include "timing.hpp"             // keep

#if FORKLINE_BENCH_HAVE_TBB
#include <oneapi/tbb/blocked_range.h>       // blocked_range
#include <oneapi/tbb/parallel_for.h>        // parallel_for
#include <oneapi/tbb/task_arena.h>          // task_arena
#include <oneapi/tbb/task_group.h>          // task_group_context
#endif

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::int64_t k_indices = 1'000'000'000;

/// The light body: a multiply-add the compiler cannot drop.
inline void light(std::int64_t i) { forkline_bench::keep(i * 2654435761); }

struct summary {
    double median_us, min_us, max_us;
};

summary summarise(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v.front(), v.back()};
}

double micros(clock_type::time_point a, clock_type::time_point b) {
    return std::chrono::duration<double, std::micro>(b - a).count();
}

/// One rep: `start(done)` runs the loop on another thread and stores the
/// time it returned in `done`; `cancel()` is called after the delay.
template <class Start, class Cancel>
double one_rep(int delay_ms, Start start, Cancel cancel) {
    std::atomic<clock_type::time_point> done{};
    std::thread runner([&] { start(done); });
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    const auto t0 = clock_type::now();
    cancel();
    runner.join();
    return micros(t0, done.load());
}

void report(const char* mode, unsigned workers, const std::vector<double>& us, long ran_all) {
    const summary s = summarise(us);
    std::printf("%-28s workers=%-3u reps=%-3zu median=%9.1f us  min=%9.1f us  max=%9.1f us%s\n", mode, workers,
                us.size(), s.median_us, s.min_us, s.max_us, ran_all > 0 ? "  (some reps ran to the end!)" : "");
}

}  // namespace

int main(int argc, char** argv) {
    unsigned workers = 2;
    int reps = 9;
    int delay_ms = 50;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--workers") == 0) {
            workers = static_cast<unsigned>(std::atoi(argv[i + 1]));
        } else if (std::strcmp(argv[i], "--reps") == 0) {
            reps = std::atoi(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--delay-ms") == 0) {
            delay_ms = std::atoi(argv[i + 1]);
        } else {
            std::fprintf(stderr, "usage: forkline-cancel-latency [--workers W] [--reps R] [--delay-ms D]\n");
            return 2;
        }
    }
    if (workers == 0 || reps < 1 || delay_ms < 0) {
        std::fprintf(stderr, "forkline-cancel-latency: --workers and --reps must be positive\n");
        return 2;
    }
    std::printf("cancel a %lld-index parallel_for after %d ms; latency = cancel call to loop return\n",
                static_cast<long long>(k_indices), delay_ms);

    forkline::runtime_config config;
    config.placement.workers = workers;
    config.placement.oversubscribe = true;
    forkline::runtime rt(config);

    {
        std::vector<double> us;
        long ran_all = 0;
        for (int r = 0; r < reps; ++r) {
            std::atomic<forkline::task_group*> group{nullptr};
            us.push_back(one_rep(
                delay_ms,
                [&](std::atomic<clock_type::time_point>& done) {
                    rt.run([&] {
                        forkline::task_group tg;
                        tg.spawn([&] {
                            forkline::parallel_for(std::int64_t{0}, k_indices, [](std::int64_t i) { light(i); });
                            done.store(clock_type::now());
                        });
                        group.store(&tg);
                        if (tg.wait() != forkline::task_group_status::cancelled) ++ran_all;
                        group.store(nullptr);
                    });
                },
                [&] {
                    forkline::task_group* g = nullptr;
                    while ((g = group.load()) == nullptr) std::this_thread::yield();
                    g->cancel();
                }));
        }
        report("forkline task_group::cancel", workers, us, ran_all);
    }
    {
        std::vector<double> us;
        for (int r = 0; r < reps; ++r) {
            std::stop_source stop;
            us.push_back(one_rep(
                delay_ms,
                [&](std::atomic<clock_type::time_point>& done) {
                    rt.run(stop.get_token(), [&] {
                        forkline::parallel_for(std::int64_t{0}, k_indices, [](std::int64_t i) { light(i); });
                    });
                    done.store(clock_type::now());
                },
                [&] { stop.request_stop(); }));
        }
        report("forkline run(stop_token)", workers, us, 0);
    }
#if FORKLINE_BENCH_HAVE_TBB
    {
        oneapi::tbb::task_arena arena(static_cast<int>(workers));
        std::vector<double> us;
        long ran_all = 0;
        for (int r = 0; r < reps; ++r) {
            oneapi::tbb::task_group_context ctx;
            us.push_back(one_rep(
                delay_ms,
                [&](std::atomic<clock_type::time_point>& done) {
                    arena.execute([&] {
                        oneapi::tbb::parallel_for(
                            oneapi::tbb::blocked_range<std::int64_t>(0, k_indices),
                            [](const oneapi::tbb::blocked_range<std::int64_t>& r) {
                                for (std::int64_t i = r.begin(); i < r.end(); ++i) light(i);
                            },
                            ctx);
                    });
                    done.store(clock_type::now());
                    if (!ctx.is_group_execution_cancelled()) ++ran_all;
                },
                [&] { ctx.cancel_group_execution(); }));
        }
        report("tbb cancel_group_execution", workers, us, ran_all);
    }
#else
    std::printf("tbb: not built in (libtbb-dev absent)\n");
#endif
    return 0;
}

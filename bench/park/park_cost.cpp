// bench/park/park_cost.cpp: forkline-park-cost, what parking costs a
// workload that parks and wakes thousands of times a second (issue 16 item
// 2): R rounds of a short parallel loop followed by a serial part long
// enough that the other workers give up searching and park, so every round
// wakes them again. Runs it with the membarrier protocol and with the fence
// protocol (runtime_config::membarrier), alternating, and also times the
// membarrier call itself while the other cpus are busy.
//
//   forkline-park-cost [-p N] [--rounds R] [--loop-us L] [--gap-us G] [--reps K]
//
// Prints, per mode, the median seconds of a run, microseconds per round,
// parks and wake-ups per round (from the runtime's counters), and the
// microseconds of one membarrier call with N - 1 busy threads.
#include <linux/membarrier.h>  // MEMBARRIER_CMD_*
#include <sys/syscall.h>       // SYS_membarrier
#include <unistd.h>            // syscall

#include <algorithm>  // sort
#include <atomic>     // atomic
#include <chrono>     // steady_clock
#include <cstdint>    // uint64_t
#include <cstdio>     // printf, fprintf
#include <cstdlib>    // strtoul
#include <cstring>    // strcmp
#include <thread>     // thread
#include <vector>     // vector

#include <forkline/parallel_for.hpp>  // parallel_for
#include <forkline/runtime.hpp>       // runtime, runtime_config

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::uint64_t step(std::uint64_t x) {
    for (int i = 0; i < 16; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
}

// Spins on this thread for about `us` microseconds (the serial part).
void spin_us(double us) {
    const auto t0 = clock_type::now();
    while (seconds_since(t0) * 1e6 < us) {
    }
}

struct outcome {
    double seconds = 0;
    double parks_per_round = 0;
    double wakeups_per_round = 0;
};

outcome run_once(unsigned workers, bool membarrier, unsigned rounds, std::size_t elements, double gap_us,
                 std::vector<std::uint64_t>& x) {
    forkline::runtime_config cfg;
    cfg.placement.workers = workers;
    cfg.placement.oversubscribe = true;
    cfg.read_environment = false;
    cfg.membarrier = membarrier;
    forkline::runtime rt(cfg);
    rt.run([&] {  // warm: threads started, pages touched
        forkline::parallel_for(std::size_t{0}, elements, [&](std::size_t i) { x[i] = step(x[i]); });
    });
    const auto before = rt.stats();
    const auto t0 = clock_type::now();
    rt.run([&] {
        for (unsigned r = 0; r < rounds; ++r) {
            forkline::parallel_for(std::size_t{0}, elements, [&](std::size_t i) { x[i] = step(x[i]); });
            spin_us(gap_us);
        }
    });
    outcome o;
    o.seconds = seconds_since(t0);
    const auto after = rt.stats();
    std::uint64_t parks = 0;
    std::uint64_t wakeups = 0;
    for (std::size_t w = 0; w < after.size(); ++w) {
        parks += after[w].parks - before[w].parks;
        wakeups += after[w].wakeups - before[w].wakeups;
    }
    o.parks_per_round = static_cast<double>(parks) / rounds;
    o.wakeups_per_round = static_cast<double>(wakeups) / rounds;
    return o;
}

// One expedited membarrier, in microseconds (median of 2000), while
// `busy` other threads spin on their cpus.
double membarrier_us(unsigned busy) {
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) return -1;
    std::atomic<bool> stop{false};
    std::vector<std::thread> spinners;
    for (unsigned i = 0; i < busy; ++i) {
        spinners.emplace_back([&] {
            while (!stop.load(std::memory_order_relaxed)) {
            }
        });
    }
    std::vector<double> t;
    for (int i = 0; i < 2000; ++i) {
        const auto t0 = clock_type::now();
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        t.push_back(seconds_since(t0) * 1e6);
    }
    stop.store(true);
    for (std::thread& s : spinners) s.join();
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    unsigned workers = std::thread::hardware_concurrency();
    unsigned rounds = 2000;
    double loop_us = 20;
    double gap_us = 1000;
    unsigned reps = 5;
    for (int i = 1; i < argc; ++i) {
        const bool has = i + 1 < argc;
        if (std::strcmp(argv[i], "-p") == 0 && has) {
            workers = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
        } else if (std::strcmp(argv[i], "--rounds") == 0 && has) {
            rounds = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
        } else if (std::strcmp(argv[i], "--loop-us") == 0 && has) {
            loop_us = std::strtod(argv[++i], nullptr);
        } else if (std::strcmp(argv[i], "--gap-us") == 0 && has) {
            gap_us = std::strtod(argv[++i], nullptr);
        } else if (std::strcmp(argv[i], "--reps") == 0 && has) {
            reps = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
        } else {
            std::fprintf(stderr,
                         "usage: forkline-park-cost [-p N] [--rounds R] [--loop-us L] [--gap-us G] [--reps K]\n");
            return 2;
        }
    }
    if (workers == 0 || rounds == 0 || reps == 0 || !(loop_us > 0) || !(gap_us >= 0)) {
        std::fprintf(stderr, "forkline-park-cost: -p, --rounds, --reps and --loop-us must be positive\n");
        return 2;
    }
    // Elements for a loop of loop_us at `workers` workers, from one thread's speed.
    std::vector<std::uint64_t> x(1 << 16, 1);
    const auto t0 = clock_type::now();
    for (int k = 0; k < 20; ++k) {
        for (auto& v : x) v = step(v);
    }
    const double ns_per_element = seconds_since(t0) * 1e9 / (20.0 * static_cast<double>(x.size()));
    const auto elements = static_cast<std::size_t>(loop_us * 1000 * workers / ns_per_element) + 1;
    x.assign(elements, 1);

    std::vector<double> secs[2];
    std::vector<double> parks[2];
    std::vector<double> wakes[2];
    for (unsigned r = 0; r < reps; ++r) {
        for (int mode = 0; mode < 2; ++mode) {
            const outcome o = run_once(workers, mode == 0, rounds, elements, gap_us, x);
            secs[mode].push_back(o.seconds);
            parks[mode].push_back(o.parks_per_round);
            wakes[mode].push_back(o.wakeups_per_round);
        }
    }
    const double ideal_us = loop_us + gap_us;
    std::printf("forkline-park-cost: %u workers, %u rounds of a %.0f us loop (%zu elements) and a %.0f us serial part, "
                "%u reps alternating, medians\n",
                workers, rounds, loop_us, elements, gap_us, reps);
    std::printf("%-11s %9s %10s %14s %12s %12s\n", "mode", "run_s", "us/round", "over_ideal_us", "parks/round",
                "wakes/round");
    const char* names[2] = {"membarrier", "fence"};
    for (int mode = 0; mode < 2; ++mode) {
        const double s = median(secs[mode]);
        std::printf("%-11s %9.4f %10.2f %14.2f %12.2f %12.2f\n", names[mode], s, s * 1e6 / rounds,
                    s * 1e6 / rounds - ideal_us, median(parks[mode]), median(wakes[mode]));
    }
    std::printf("membarrier call, %u busy threads: %.2f us (median of 2000)\n", workers - 1,
                membarrier_us(workers - 1));
    return 0;
}

// bench/share/two_runtimes.cpp: forkline-two-runtimes, what two runtimes in
// one process cost against one shared runtime (issue 17, "two runtimes in
// one process"). Two client threads each compute fib(N) over and over for
// a fixed time, as two libraries in one program would:
//   shared: both call default_runtime().run(), one pool of P workers;
//   two:    each thread owns a runtime of P workers (2P threads, each pinned).
//   capped: each owns a runtime of P/2 workers (the cap a careful user sets).
// Prints completed fibs per second, per client and in all, for each mode.
//
//   forkline-two-runtimes [--n N] [--seconds S]
#include <atomic>   // atomic
#include <chrono>   // steady_clock
#include <cstdio>   // printf, fprintf
#include <cstdlib>  // strtoul, strtod
#include <cstring>  // strcmp
#include <memory>   // unique_ptr, make_unique
#include <thread>   // thread

#include <forkline/invoke.hpp>   // invoke
#include <forkline/runtime.hpp>  // runtime, runtime_config, default_runtime

namespace {

long fib(int n) {
    if (n < 2) return n;
    long a = 0;
    long b = 0;
    forkline::invoke([&] { a = fib(n - 1); }, [&] { b = fib(n - 2); });
    return a + b;
}

enum class mode { shared, two, capped };

struct counts {
    long first = 0;
    long second = 0;
};

counts run_mode(mode m, int n, double seconds) {
    const unsigned p = forkline::default_runtime().worker_count();
    std::atomic<bool> stop{false};
    std::atomic<long> done[2] = {0, 0};
    auto client = [&](int which) {
        std::unique_ptr<forkline::runtime> own;
        if (m != mode::shared) {
            forkline::runtime_config cfg;
            cfg.read_environment = false;
            cfg.placement.workers = m == mode::two ? p : (p / 2 > 0 ? p / 2 : 1);
            own = std::make_unique<forkline::runtime>(cfg);
        }
        forkline::runtime& rt = own ? *own : forkline::default_runtime();
        while (!stop.load(std::memory_order_relaxed)) {
            if (rt.run([n] { return fib(n); }) > 0) done[which].fetch_add(1, std::memory_order_relaxed);
        }
    };
    std::thread a(client, 0);
    std::thread b(client, 1);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop.store(true);
    a.join();
    b.join();
    return {done[0].load(), done[1].load()};
}

}  // namespace

int main(int argc, char** argv) {
    int n = 27;
    double seconds = 3;
    for (int i = 1; i < argc; ++i) {
        const bool has = i + 1 < argc;
        if (std::strcmp(argv[i], "--n") == 0 && has) {
            n = static_cast<int>(std::strtoul(argv[++i], nullptr, 10));
        } else if (std::strcmp(argv[i], "--seconds") == 0 && has) {
            seconds = std::strtod(argv[++i], nullptr);
        } else {
            std::fprintf(stderr, "usage: forkline-two-runtimes [--n N] [--seconds S]\n");
            return 2;
        }
    }
    if (n < 2 || n > 40 || !(seconds > 0)) {
        std::fprintf(stderr, "forkline-two-runtimes: --n takes 2..40 and --seconds a positive number\n");
        return 2;
    }
    const unsigned p = forkline::default_runtime().worker_count();
    std::printf("forkline-two-runtimes: two client threads computing fib(%d) for %.1f s each way; P = %u\n", n,
                seconds, p);
    std::printf("%-8s %12s %12s %12s\n", "mode", "client A/s", "client B/s", "total/s");
    const char* names[] = {"shared", "two", "capped"};
    for (int round = 0; round < 2; ++round) {  // twice, alternating, to see the noise
        for (mode m : {mode::shared, mode::two, mode::capped}) {
            const counts c = run_mode(m, n, seconds);
            std::printf("%-8s %12.1f %12.1f %12.1f\n", names[static_cast<int>(m)], c.first / seconds,
                        c.second / seconds, (c.first + c.second) / seconds);
        }
    }
    return 0;
}

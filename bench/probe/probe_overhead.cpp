// bench/probe/probe_overhead.cpp: the cost of forkline::probe's measuring mode.
//
//   forkline-probe-overhead [--n 30] [--reps 9]
//
// Alternates, rep by rep, fib(n) on a 1-worker runtime (a normal run: pushes,
// pops, no clock reads) and fib(n) under probe::measure_work_span (every fork
// and join read the TSC and keep the path lengths). Prints the medians, their
// ratio and the measured parallelism. Both answers are checked.
#include <algorithm>  // sort
#include <chrono>     // steady_clock
#include <cstdio>     // printf, fprintf
#include <cstdlib>    // atoi
#include <cstring>    // strcmp
#include <vector>     // vector

#include "forkline/forkline.hpp"  // runtime, invoke
#include "forkline/probe.hpp"     // measure_work_span
#include "timing.hpp"             // opaque, keep

namespace {

long fib(int n) {
    if (n < 2) return n;
    long a = 0;
    long b = 0;
    forkline::invoke([&] { a = fib(n - 1); }, [&] { b = fib(n - 2); });
    return a + b;
}

long fib_loop(int n) {
    long a = 0, b = 1;
    for (int i = 0; i < n; ++i) {
        const long t = a + b;
        a = b;
        b = t;
    }
    return a;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    int n = 30;
    int reps = 9;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--n") == 0) {
            n = std::atoi(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--reps") == 0) {
            reps = std::atoi(argv[i + 1]);
        } else {
            std::fprintf(stderr, "usage: forkline-probe-overhead [--n N] [--reps R]\n");
            return 2;
        }
    }
    if (n < 2 || n > 45 || reps < 1) {
        std::fprintf(stderr, "forkline-probe-overhead: --n must be 2..45 and --reps >= 1\n");
        return 2;
    }
    forkline::runtime_config c;
    c.placement.workers = 1;
    c.read_environment = false;
    forkline::runtime rt(c);
    forkline::probe::work_span_options o;
    o.burden_s = 0;  // the steal-cost measurement is a one-off, not per run
    const long expect = fib_loop(n);
    std::vector<double> normal, measured;
    forkline::probe::work_span ws{};
    for (int r = -1; r < reps; ++r) {  // r = -1: warm-up of both
        const int m = forkline_bench::opaque(n);
        auto t0 = std::chrono::steady_clock::now();
        const long a = rt.run([&] { return fib(m); });
        forkline_bench::keep(a);
        auto t1 = std::chrono::steady_clock::now();
        long b = 0;
        ws = forkline::probe::measure_work_span([&] { b = fib(m); }, o);
        forkline_bench::keep(b);
        auto t2 = std::chrono::steady_clock::now();
        if (a != expect || b != expect) {
            std::fprintf(stderr, "forkline-probe-overhead: wrong answer: %ld and %ld, expected %ld\n", a, b, expect);
            return 1;
        }
        if (r >= 0) {
            normal.push_back(std::chrono::duration<double>(t1 - t0).count());
            measured.push_back(std::chrono::duration<double>(t2 - t1).count());
        }
    }
    const double mn = median(normal);
    const double mm = median(measured);
    std::printf("fib(%d), 1 worker, median of %d: normal %.4f s, measuring %.4f s, ratio %.2f; "
                "parallelism %.3g, %llu spawns\n",
                n, reps, mn, mm, mm / mn, ws.parallelism, static_cast<unsigned long long>(ws.spawns));
    return 0;
}

// bench/skew/skew_omp.cpp: skew on OpenMP: one thread of the team creates every task in a single.
//
// Built into forkline-bench-openmp.so (see bench/openmp_module.hpp). Note
// that libgomp runs a task at once in its creator, instead of queueing it,
// while more than 64 per thread of the team are queued: with few threads
// the creating thread starts working before it has created them all.
#include <omp.h>  // omp_set_dynamic

#include <cstdint>  // uint64_t, int64_t
#include <vector>   // vector

#include "skew.hpp"  // forkline_bench_skew_omp, skew_spin, skew_seed

extern "C" void forkline_bench_skew_omp(unsigned tasks, std::uint64_t iterations, unsigned workers,
                                        forkline_bench::sample* out) {
    using namespace forkline_bench;
    const int threads = static_cast<int>(workers);
    omp_set_dynamic(0);  // exactly `threads` in each team, never fewer
    std::vector<std::uint64_t> results(tasks);
    std::uint64_t* slots = results.data();
    *out = warm_up_then_time([&] {
        // The other threads wait at the single's barrier and take tasks from there.
#pragma omp parallel num_threads(threads) firstprivate(slots, tasks, iterations)
#pragma omp single
        for (unsigned t = 0; t < tasks; ++t) {
#pragma omp task firstprivate(slots, t, iterations)
            slots[t] = skew_spin(skew_seed(t), iterations);
        }
        std::uint64_t sum = 0;
        for (const std::uint64_t r : results) sum += r;
        return static_cast<std::int64_t>(sum);
    });
}

// bench/skew/skew_workload.cpp: skew's options, calibration, variants, answer check and ideal time.
#include <algorithm>    // min
#include <chrono>       // steady_clock, duration
#include <cmath>        // llround
#include <cstdint>      // int64_t, uint64_t
#include <cstdio>       // snprintf
#include <memory>       // make_unique, unique_ptr
#include <stdexcept>    // logic_error
#include <string>       // string, to_string
#include <string_view>  // string_view
#include <vector>       // vector

#include "skew.hpp"      // run_skew_*, make_skew_workload, forkline_bench_skew_omp, skew_spin, skew_seed
#include "variants.hpp"  // FORKLINE_BENCH_*_VARIANT, omp_entry

namespace forkline_bench {
namespace {

// 8192: one worker's deque holds that many; past it, spawn() runs tasks at once.
constexpr long long k_max_tasks = 8192;
constexpr long long k_max_task_us = 1000000;

struct skew_variant {
    impl_info info;
    sample (*run)(unsigned tasks, std::uint64_t iterations, unsigned workers);  // null when not built
};

sample run_serial_any_workers(unsigned tasks, std::uint64_t iterations, unsigned /*workers*/) {
    return run_skew_serial(tasks, iterations);
}

#if FORKLINE_BENCH_HAVE_OPENMP
sample run_omp_from_module(unsigned tasks, std::uint64_t iterations, unsigned workers) {
    const auto entry = omp_entry<decltype(forkline_bench_skew_omp)>("forkline_bench_skew_omp");
    sample s;
    entry(tasks, iterations, workers, &s);
    return s;
}
#endif

const skew_variant k_variants[] = {
    {{"forkline", true, ""}, &run_skew_forkline},
    {{"serial", false, ""}, &run_serial_any_workers},
    FORKLINE_BENCH_TBB_VARIANT(&run_skew_tbb),
    FORKLINE_BENCH_OMP_VARIANT(&run_omp_from_module),
};

// Steps of the chain per microsecond on this machine: the fastest of a few
// timed runs of about a millisecond (the fastest, because preemption and
// frequency ramps only ever make a run slower).
double calibrate_iterations_per_us() {
    constexpr std::uint64_t k_trial = std::uint64_t{1} << 19;
    keep(skew_spin(1, k_trial));  // wakes the core's clock up
    double best_s = 1e9;
    for (int trial = 0; trial < 7; ++trial) {
        const auto start = std::chrono::steady_clock::now();
        keep(skew_spin(opaque(std::uint64_t{2}), k_trial));
        const auto stop = std::chrono::steady_clock::now();
        best_s = std::min(best_s, std::chrono::duration<double>(stop - start).count());
    }
    return static_cast<double>(k_trial) / (best_s * 1e6);
}

// The chain after `steps` steps from x, in O(log steps): x_n = A x + C with
// (A, C) the step map composed with itself by squaring. Shares nothing with
// skew_spin but the constants.
std::uint64_t jump_ahead(std::uint64_t x, std::uint64_t steps) {
    std::uint64_t total_mul = 1;
    std::uint64_t total_add = 0;
    std::uint64_t mul = k_skew_multiplier;  // the map x -> mul x + add for 2^bit steps
    std::uint64_t add = k_skew_increment;
    for (; steps != 0; steps >>= 1) {
        if ((steps & 1) != 0) {
            total_mul *= mul;
            total_add = total_add * mul + add;
        }
        add = add * mul + add;
        mul *= mul;
    }
    return total_mul * x + total_add;
}

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

class skew_workload final : public workload {
public:
    // Calibrated here, in the parent, so that every child inherits the same
    // step count and the parent knows the right answer.
    skew_workload() : m_iterations_per_us(calibrate_iterations_per_us()) {}

    bool parse_option(std::string_view key, std::string_view value) override {
        if (key == "tasks") {
            m_tasks = static_cast<unsigned>(parse_integer(value, 1, k_max_tasks, "--tasks"));
            return true;
        }
        if (key == "task-us") {
            m_task_us = static_cast<unsigned>(parse_integer(value, 1, k_max_task_us, "--task-us"));
            return true;
        }
        return false;
    }

    std::vector<impl_info> impls() const override {
        std::vector<impl_info> out;
        for (const skew_variant& v : k_variants) out.push_back(v.info);
        return out;
    }

    std::string label() const override {
        return "skew tasks=" + std::to_string(m_tasks) + " task_us=" + std::to_string(m_task_us);
    }

    std::uint64_t tasks_per_run() const override { return m_tasks; }

    std::int64_t expected_result() const override {
        const std::uint64_t steps = iterations();
        std::uint64_t sum = 0;
        for (unsigned t = 0; t < m_tasks; ++t) sum += jump_ahead(skew_seed(t), steps);
        return static_cast<std::int64_t>(sum);
    }

    sample run(std::string_view impl, unsigned workers) const override {
        for (const skew_variant& v : k_variants) {
            if (v.info.name == impl && v.run != nullptr) return v.run(m_tasks, iterations(), workers);
        }
        throw std::logic_error("skew has no built implementation named " + std::string(impl));
    }

    std::string check(std::int64_t result) const override {
        const std::int64_t want = expected_result();
        if (result == want) return {};
        return "sum of task results " + std::to_string(result) + ", expected " + std::to_string(want) +
               ": a task was skipped, run twice or miscomputed";
    }

    std::vector<json_member> json_members() const override {
        return {{"tasks", std::to_string(m_tasks)},
                {"task_us", std::to_string(m_task_us)},
                {"spin_iterations", std::to_string(iterations())},
                {"spin_iterations_per_us", number(m_iterations_per_us)}};
    }

    // ideal = total work / workers + one task: perfect balance, except that
    // the last task to start cannot be split. The total work is the serial
    // variant's median from the same run when there is one (the tasks as they
    // really ran on this machine), else tasks * task_us.
    std::vector<json_member> result_members(unsigned workers, double median_s,
                                            double serial_median_s) const override {
        const bool measured = serial_median_s > 0.0;
        const double total_s = measured ? serial_median_s : m_tasks * (m_task_us * 1e-6);
        const double ideal_s = total_s / workers + total_s / m_tasks;
        return {{"total_work_s", number(total_s)},
                {"total_work_from", measured ? "\"serial\"" : "\"tasks*task_us\""},
                {"ideal_s", number(ideal_s)},
                {"vs_ideal", number(median_s / ideal_s)}};
    }

private:
    std::uint64_t iterations() const {
        const long long n = std::llround(m_task_us * m_iterations_per_us);
        return n < 1 ? 1 : static_cast<std::uint64_t>(n);
    }

    unsigned m_tasks = 180;
    unsigned m_task_us = 200;
    double m_iterations_per_us;
};

}  // namespace

std::unique_ptr<workload> make_skew_workload() { return std::make_unique<skew_workload>(); }

}  // namespace forkline_bench

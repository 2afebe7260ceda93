// bench/loops/loops_workload.cpp: loops' options, variants, element cost and answer check.
#include <algorithm>    // max
#include <chrono>       // steady_clock
#include <cmath>        // llround
#include <cstddef>      // size_t
#include <cstdint>      // int64_t, uint64_t
#include <cstdio>       // snprintf
#include <memory>       // make_unique, unique_ptr
#include <stdexcept>    // logic_error
#include <string>       // string, to_string
#include <string_view>  // string_view
#include <vector>       // vector

#include "loops.hpp"     // run_loops_*, make_loops_workload, forkline_bench_loops_omp, loops_*
#include "variants.hpp"  // FORKLINE_BENCH_*_VARIANT, omp_entry

namespace forkline_bench {

double loops_element_ns() {
    static const double ns = [] {
        // The best of five 4 ms passes over a cache-resident block.
        std::vector<std::uint64_t> x(4096);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = loops_start(i);
        double best = 1e9;
        for (int round = 0; round < 5; ++round) {
            std::size_t done = 0;
            const auto t0 = std::chrono::steady_clock::now();
            auto now = t0;
            do {
                for (std::uint64_t& v : x) v = loops_step(v);
                done += x.size();
                now = std::chrono::steady_clock::now();
            } while (now - t0 < std::chrono::milliseconds(4));
            keep(x[done % x.size()]);
            best = std::min(best, std::chrono::duration<double, std::nano>(now - t0).count() / static_cast<double>(done));
        }
        return best;
    }();
    return ns;
}

namespace {

constexpr long long k_max_loops = 1'000'000;
constexpr long long k_max_us = 1'000'000;

struct loops_variant {
    impl_info info;
    sample (*run)(const loops_shape& shape, unsigned workers);  // null when not built
};

#if FORKLINE_BENCH_HAVE_OPENMP
sample run_omp_from_module(const loops_shape& shape, unsigned workers) {
    const auto entry = omp_entry<decltype(forkline_bench_loops_omp)>("forkline_bench_loops_omp");
    sample s;
    entry(shape.elements, shape.loops, workers, &s);
    return s;
}
#endif

#if FORKLINE_BENCH_HAVE_TBB
#define FORKLINE_BENCH_TBB_STATIC_VARIANT {{"tbb-static", true, ""}, &run_loops_tbb_static}
#else
#define FORKLINE_BENCH_TBB_STATIC_VARIANT {{"tbb-static", true, k_tbb_absent}, nullptr}
#endif

const loops_variant k_variants[] = {
    {{"forkline", true, ""}, &run_loops_forkline},
    {{"forkline-affinity", true, ""}, &run_loops_forkline_affinity},
    {{"spin", true, ""}, &run_loops_spin},
    FORKLINE_BENCH_TBB_VARIANT(&run_loops_tbb),
    FORKLINE_BENCH_TBB_STATIC_VARIANT,
    FORKLINE_BENCH_OMP_VARIANT(&run_omp_from_module),
};

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

class loops_workload final : public workload {
public:
    bool parse_option(std::string_view key, std::string_view value) override {
        if (key == "loops") {
            m_loops = static_cast<unsigned>(parse_integer(value, 1, k_max_loops, "--loops"));
            return true;
        }
        if (key == "us") {
            m_us = static_cast<unsigned>(parse_integer(value, 1, k_max_us, "--us"));
            return true;
        }
        return false;
    }

    std::vector<impl_info> impls() const override {
        std::vector<impl_info> out;
        for (const loops_variant& v : k_variants) out.push_back(v.info);
        return out;
    }

    // Measures the element cost here, in the parent, before any child is
    // forked: every child then inherits the same figure.
    std::string label() const override {
        return "loops K=" + std::to_string(m_loops) + " L=" + std::to_string(m_us) + "us (" +
               number(loops_element_ns()) + " ns an element)";
    }

    std::uint64_t tasks_per_run() const override { return 0; }

    std::int64_t expected_result() const override { return m_loops; }

    sample run(std::string_view impl, unsigned workers) const override {
        for (const loops_variant& v : k_variants) {
            if (v.info.name == impl && v.run != nullptr) return v.run(shape(workers), workers);
        }
        throw std::logic_error("loops has no built implementation named " + std::string(impl));
    }

    std::string check(std::int64_t result) const override {
        if (result == m_loops) return {};
        return std::to_string(-result) + " sampled elements wrong after " + std::to_string(m_loops) +
               " loops (an element skipped or stepped twice in some loop, or a loop started before the last ended)";
    }

    std::vector<json_member> json_members() const override {
        return {{"loops", std::to_string(m_loops)},
                {"us", std::to_string(m_us)},
                {"element_ns", number(loops_element_ns())}};
    }

    // The ideal: K loops of L us each; "vs_ideal" is the median over it.
    std::vector<json_member> result_members(unsigned workers, double median_s,
                                            double /*serial_median_s*/) const override {
        const loops_shape s = shape(workers);
        const double ideal = static_cast<double>(s.elements) * loops_element_ns() * 1e-9 *
                             static_cast<double>(m_loops) / static_cast<double>(workers);
        return {{"elements", std::to_string(s.elements)},
                {"us_per_loop", number(median_s / m_loops * 1e6)},
                {"vs_ideal", number(median_s / ideal)}};
    }

private:
    loops_shape shape(unsigned workers) const {
        const double elements = static_cast<double>(m_us) * 1e3 * workers / loops_element_ns();
        return {static_cast<std::size_t>(std::max(1LL, std::llround(elements))), m_loops};
    }

    unsigned m_loops = 2000;
    unsigned m_us = 50;
};

}  // namespace

std::unique_ptr<workload> make_loops_workload() { return std::make_unique<loops_workload>(); }

}  // namespace forkline_bench

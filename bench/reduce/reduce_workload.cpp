// bench/reduce/reduce_workload.cpp: reduce's options, variants, answer check and bandwidth.
#include <cstddef>      // size_t
#include <cstdint>      // int64_t, uint64_t
#include <cstdio>       // snprintf
#include <memory>       // make_unique, unique_ptr
#include <stdexcept>    // logic_error
#include <string>       // string, to_string
#include <string_view>  // string_view
#include <vector>       // vector

#include "reduce.hpp"    // run_reduce_*, make_reduce_workload, forkline_bench_reduce_omp, reduce_exact_sum
#include "variants.hpp"  // FORKLINE_BENCH_*_VARIANT, omp_entry

namespace forkline_bench {
namespace {

// 2^30 doubles: 8 GiB, and a sum of 9.7e9, far below 2^53.
constexpr long long k_max_n = 1LL << 30;

struct reduce_variant {
    impl_info info;
    sample (*run)(std::size_t n, unsigned workers);  // null when not built
};

sample run_serial_any_workers(std::size_t n, unsigned /*workers*/) { return run_reduce_serial(n); }

#if FORKLINE_BENCH_HAVE_OPENMP
sample run_omp_from_module(std::size_t n, unsigned workers) {
    const auto entry = omp_entry<decltype(forkline_bench_reduce_omp)>("forkline_bench_reduce_omp");
    sample s;
    entry(n, workers, &s);
    return s;
}
#endif

const reduce_variant k_variants[] = {
    {{"forkline", true, ""}, &run_reduce_forkline},
    {{"serial", false, ""}, &run_serial_any_workers},
    FORKLINE_BENCH_TBB_VARIANT(&run_reduce_tbb),
    FORKLINE_BENCH_OMP_VARIANT(&run_omp_from_module),
};

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

class reduce_workload final : public workload {
public:
    bool parse_option(std::string_view key, std::string_view value) override {
        if (key != "n") return false;
        m_n = static_cast<std::size_t>(parse_integer(value, 1, k_max_n, "--n"));
        return true;
    }

    std::vector<impl_info> impls() const override {
        std::vector<impl_info> out;
        for (const reduce_variant& v : k_variants) out.push_back(v.info);
        return out;
    }

    std::string label() const override { return "reduce n=" + std::to_string(m_n); }

    // A loop, not spawns: ns per task would mean nothing.
    std::uint64_t tasks_per_run() const override { return 0; }

    std::int64_t expected_result() const override { return reduce_exact_sum(m_n); }

    sample run(std::string_view impl, unsigned workers) const override {
        for (const reduce_variant& v : k_variants) {
            if (v.info.name == impl && v.run != nullptr) return v.run(m_n, workers);
        }
        throw std::logic_error("reduce has no built implementation named " + std::string(impl));
    }

    std::string check(std::int64_t result) const override {
        const std::int64_t want = reduce_exact_sum(m_n);
        if (result == want) return {};
        // Every x[i] is at least 1, so a skipped index shows as too small a sum, a doubled one as too large.
        return "sum " + std::to_string(result) + ", expected " + std::to_string(want) + " (" +
               (result < want ? "too small: an index left out?" : "too large: an index added twice?") + ")";
    }

    std::vector<json_member> json_members() const override {
        return {{"n", std::to_string(m_n)}, {"bytes_per_run", std::to_string(sizeof(double) * m_n)}};
    }

    std::vector<json_member> result_members(unsigned /*workers*/, double median_s,
                                            double /*serial_median_s*/) const override {
        return {{"gb_s", number(static_cast<double>(sizeof(double) * m_n) / median_s * 1e-9)}};
    }

private:
    std::size_t m_n = 100'000'000;
};

}  // namespace

std::unique_ptr<workload> make_reduce_workload() { return std::make_unique<reduce_workload>(); }

}  // namespace forkline_bench

// bench/triad/triad_workload.cpp: triad's options, variants, answer check and bandwidth.
#include <cstddef>      // size_t
#include <cstdint>      // int64_t, uint64_t
#include <cstdio>       // snprintf
#include <memory>       // make_unique, unique_ptr
#include <stdexcept>    // logic_error
#include <string>       // string, to_string
#include <string_view>  // string_view
#include <vector>       // vector

#include "triad.hpp"     // run_triad_*, make_triad_workload, forkline_bench_triad_omp, triad_*
#include "variants.hpp"  // FORKLINE_BENCH_*_VARIANT, omp_entry

namespace forkline_bench {
namespace {

// 2^28: three arrays of 2 GiB. The checksum stays far below 2^63.
constexpr long long k_max_n = 1LL << 28;
constexpr long long k_max_passes = 100000;
// STREAM's count per index and pass: read b[i], read c[i], write a[i].
constexpr std::uint64_t k_bytes_per_index = 3 * sizeof(double);

struct triad_variant {
    impl_info info;
    sample (*run)(std::size_t n, unsigned passes, unsigned workers);  // null when not built
};

sample run_serial_any_workers(std::size_t n, unsigned passes, unsigned /*workers*/) {
    return run_triad_serial(n, passes);
}

#if FORKLINE_BENCH_HAVE_OPENMP
sample run_omp_from_module(std::size_t n, unsigned passes, unsigned workers) {
    const auto entry = omp_entry<decltype(forkline_bench_triad_omp)>("forkline_bench_triad_omp");
    sample s;
    entry(n, passes, workers, &s);
    return s;
}
#endif

const triad_variant k_variants[] = {
    {{"forkline-affinity", true, ""}, &run_triad_forkline_affinity},
    {{"forkline", true, ""}, &run_triad_forkline},
    {{"serial", false, ""}, &run_serial_any_workers},
    FORKLINE_BENCH_TBB_VARIANT(&run_triad_tbb),
    FORKLINE_BENCH_OMP_VARIANT(&run_omp_from_module),
};

// The checksum from the index alone, in integers: a[i] = b[i] + 3 c[i].
std::int64_t checksum_from_index(std::size_t n) {
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const auto b = static_cast<std::int64_t>(i % 1024);
        const auto c = static_cast<std::int64_t>(i % 7 + 1);
        sum += (b + 3 * c) * triad_weight(i);
    }
    return sum;
}

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

class triad_workload final : public workload {
public:
    bool parse_option(std::string_view key, std::string_view value) override {
        if (key == "n") {
            m_n = static_cast<std::size_t>(parse_integer(value, 1, k_max_n, "--n"));
            m_expected = -1;
            return true;
        }
        if (key == "passes") {
            m_passes = static_cast<unsigned>(parse_integer(value, 1, k_max_passes, "--passes"));
            return true;
        }
        return false;
    }

    std::vector<impl_info> impls() const override {
        std::vector<impl_info> out;
        for (const triad_variant& v : k_variants) out.push_back(v.info);
        return out;
    }

    std::string label() const override {
        return "triad n=" + std::to_string(m_n) + " passes=" + std::to_string(m_passes);
    }

    // Loops, not spawns: ns per task would mean nothing.
    std::uint64_t tasks_per_run() const override { return 0; }

    std::int64_t expected_result() const override {
        if (m_expected < 0) m_expected = checksum_from_index(m_n);  // once, in the parent
        return m_expected;
    }

    sample run(std::string_view impl, unsigned workers) const override {
        for (const triad_variant& v : k_variants) {
            if (v.info.name == impl && v.run != nullptr) return v.run(m_n, m_passes, workers);
        }
        throw std::logic_error("triad has no built implementation named " + std::string(impl));
    }

    std::string check(std::int64_t result) const override {
        const std::int64_t want = expected_result();
        if (result == want) return {};
        return "checksum " + std::to_string(result) + ", expected " + std::to_string(want) +
               ": some a[i] is not b[i] + 3 c[i] after the passes (an index skipped, written twice or misplaced)";
    }

    std::vector<json_member> json_members() const override {
        return {{"n", std::to_string(m_n)},
                {"passes", std::to_string(m_passes)},
                {"bytes_per_run", std::to_string(k_bytes_per_index * m_n * m_passes)}};
    }

    std::vector<json_member> result_members(unsigned /*workers*/, double median_s,
                                            double /*serial_median_s*/) const override {
        return {{"gb_s", number(bytes_per_run() / median_s * 1e-9)}};
    }

private:
    double bytes_per_run() const noexcept {
        return static_cast<double>(k_bytes_per_index) * static_cast<double>(m_n) * static_cast<double>(m_passes);
    }

    std::size_t m_n = std::size_t{1} << 25;
    unsigned m_passes = 10;
    mutable std::int64_t m_expected = -1;  // -1: not worked out yet (checksums are positive)
};

}  // namespace

std::unique_ptr<workload> make_triad_workload() { return std::make_unique<triad_workload>(); }

}  // namespace forkline_bench

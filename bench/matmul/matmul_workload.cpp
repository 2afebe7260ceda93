// bench/matmul/matmul_workload.cpp: matmul's options, variants and answer check.
#include <cstddef>      // size_t
#include <cstdint>      // int64_t, uint64_t
#include <cstdio>       // snprintf
#include <memory>       // make_unique, unique_ptr
#include <stdexcept>    // logic_error
#include <string>       // string, to_string
#include <string_view>  // string_view
#include <vector>       // vector

#include "matmul.hpp"    // run_matmul_*, make_matmul_workload, forkline_bench_matmul_omp, matmul_*
#include "variants.hpp"  // FORKLINE_BENCH_*_VARIANT, omp_entry

namespace forkline_bench {
namespace {

// 128: the smallest size with a fork in it. 4096: four matrices of 128 MiB.
constexpr long long k_min_n = 128;
constexpr long long k_max_n = 4096;

struct matmul_variant {
    impl_info info;
    sample (*run)(std::size_t n, unsigned workers);  // null when not built
};

sample run_serial_any_workers(std::size_t n, unsigned /*workers*/) { return run_matmul_serial(n); }

#if FORKLINE_BENCH_HAVE_OPENMP
sample run_omp_from_module(std::size_t n, unsigned workers) {
    const auto entry = omp_entry<decltype(forkline_bench_matmul_omp)>("forkline_bench_matmul_omp");
    sample s;
    entry(n, workers, &s);
    return s;
}
#endif

const matmul_variant k_variants[] = {
    {{"forkline", true, ""}, &run_matmul_forkline},
    {{"serial", false, ""}, &run_serial_any_workers},
    FORKLINE_BENCH_TBB_VARIANT(&run_matmul_tbb),
    FORKLINE_BENCH_OMP_VARIANT(&run_omp_from_module),
};

// Forks (row or column splits) in the recursion over an m x n x k product.
std::uint64_t forks_of(std::size_t m, std::size_t n, std::size_t k) {
    switch (choose_matmul_split(m, n, k)) {
        case matmul_split::none: return 0;
        case matmul_split::rows: return 1 + forks_of(m / 2, n, k) + forks_of(m - m / 2, n, k);
        case matmul_split::cols: return 1 + forks_of(m, n / 2, k) + forks_of(m, n - n / 2, k);
        case matmul_split::inner: return forks_of(m, n, k / 2) + forks_of(m, n, k - k / 2);
    }
    return 0;
}

// The right checksum, from the inputs alone: the sum of C is
// sum_k (column k of A summed) * (row k of B summed), and each sampled entry
// a naive dot product. All whole numbers well below 2^53, so exact.
std::int64_t checksum_from_inputs(std::size_t n) {
    std::int64_t sum = 0;
    for (std::size_t k = 0; k < n; ++k) {
        std::int64_t column_of_a = 0;
        std::int64_t row_of_b = 0;
        for (std::size_t i = 0; i < n; ++i) {
            column_of_a += static_cast<std::int64_t>(matmul_input(0, i, k, n));
            row_of_b += static_cast<std::int64_t>(matmul_input(1, k, i, n));
        }
        sum += column_of_a * row_of_b;
    }
    std::int64_t samples[k_matmul_samples];
    for (unsigned s = 0; s < k_matmul_samples; ++s) {
        std::size_t row = 0;
        std::size_t col = 0;
        matmul_sample_position(s, n, row, col);
        std::int64_t dot = 0;
        for (std::size_t k = 0; k < n; ++k) {
            dot += static_cast<std::int64_t>(matmul_input(0, row, k, n)) *
                   static_cast<std::int64_t>(matmul_input(1, k, col, n));
        }
        samples[s] = dot;
    }
    return matmul_checksum(sum, samples);
}

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

class matmul_workload final : public workload {
public:
    bool parse_option(std::string_view key, std::string_view value) override {
        if (key != "n") return false;
        const long long n = parse_integer(value, k_min_n, k_max_n, "--n");
        if ((n & (n - 1)) != 0) {
            throw usage_error("--n " + std::string(value) + " is not a power of two (128, 256, ... 4096)");
        }
        m_n = static_cast<std::size_t>(n);
        m_expected = -1;
        return true;
    }

    std::vector<impl_info> impls() const override {
        std::vector<impl_info> out;
        for (const matmul_variant& v : k_variants) out.push_back(v.info);
        return out;
    }

    std::string label() const override { return "matmul n=" + std::to_string(m_n); }

    std::uint64_t tasks_per_run() const override { return forks_of(m_n, m_n, m_n); }

    std::int64_t expected_result() const override {
        if (m_expected < 0) m_expected = checksum_from_inputs(m_n);  // once, in the parent
        return m_expected;
    }

    sample run(std::string_view impl, unsigned workers) const override {
        for (const matmul_variant& v : k_variants) {
            if (v.info.name == impl && v.run != nullptr) return v.run(m_n, workers);
        }
        throw std::logic_error("matmul has no built implementation named " + std::string(impl));
    }

    std::string check(std::int64_t result) const override {
        const std::int64_t want = expected_result();
        if (result == want) return {};
        return "checksum " + std::to_string(result) + ", expected " + std::to_string(want) +
               ": the sum of C or one of the " + std::to_string(k_matmul_samples) +
               " sampled entries differs from the naive product";
    }

    std::vector<json_member> json_members() const override {
        return {{"n", std::to_string(m_n)},
                {"block", std::to_string(k_matmul_block)},
                {"tasks_per_run", std::to_string(tasks_per_run())},
                {"flops_per_run", std::to_string(2 * m_n * m_n * m_n)}};
    }

    std::vector<json_member> result_members(unsigned /*workers*/, double median_s,
                                            double /*serial_median_s*/) const override {
        return {{"gflops", number(flops() / median_s * 1e-9)}};
    }

private:
    double flops() const noexcept {
        const double n = static_cast<double>(m_n);
        return 2.0 * n * n * n;
    }

    std::size_t m_n = 1024;
    mutable std::int64_t m_expected = -1;  // -1: not worked out yet (checksums are non-negative)
};

}  // namespace

std::unique_ptr<workload> make_matmul_workload() { return std::make_unique<matmul_workload>(); }

}  // namespace forkline_bench

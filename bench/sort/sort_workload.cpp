// bench/sort/sort_workload.cpp: sort's options, variants and answer check.
#include <cstddef>      // size_t
#include <cstdint>      // int64_t, uint64_t
#include <memory>       // make_unique, unique_ptr
#include <stdexcept>    // logic_error
#include <string>       // string, to_string
#include <string_view>  // string_view
#include <vector>       // vector

#include "sort.hpp"      // run_sort_*, make_sort_workload, forkline_bench_sort_omp, sort_key, sort_checksum
#include "variants.hpp"  // FORKLINE_BENCH_*_VARIANT, omp_entry, k_omp_absent

#ifndef FORKLINE_BENCH_SORT_HAVE_GNU_PARALLEL
#define FORKLINE_BENCH_SORT_HAVE_GNU_PARALLEL 0
#endif

namespace forkline_bench {
namespace {

// 2^28 keys: 2 GiB of input, 2 GiB to sort, and forkline's 2 GiB merge buffer.
constexpr long long k_max_n = 1LL << 28;

struct sort_variant {
    impl_info info;
    sample (*run)(std::size_t n, unsigned workers);  // null when not built
};

sample run_serial_any_workers(std::size_t n, unsigned /*workers*/) { return run_sort_serial(n); }

#if FORKLINE_BENCH_HAVE_OPENMP && FORKLINE_BENCH_SORT_HAVE_GNU_PARALLEL
sample run_omp_from_module(std::size_t n, unsigned workers) {
    const auto entry = omp_entry<decltype(forkline_bench_sort_omp)>("forkline_bench_sort_omp");
    sample s;
    entry(n, workers, &s);
    return s;
}
#define FORKLINE_BENCH_SORT_OMP_ROW FORKLINE_BENCH_OMP_VARIANT(&run_omp_from_module)
#elif FORKLINE_BENCH_HAVE_OPENMP
// OpenMP is there, but the omp variant is libstdc++'s parallel mode, which this compiler does not build.
#define FORKLINE_BENCH_SORT_OMP_ROW \
    {{"omp", true, "the omp sort is GCC's parallel mode (__gnu_parallel::sort): build with g++"}, nullptr}
#else
#define FORKLINE_BENCH_SORT_OMP_ROW {{"omp", true, k_omp_absent}, nullptr}
#endif

const sort_variant k_variants[] = {
    {{"forkline", true, ""}, &run_sort_forkline},
    {{"serial", false, ""}, &run_serial_any_workers},
    FORKLINE_BENCH_TBB_VARIANT(&run_sort_tbb),
#if FORKLINE_BENCH_HAVE_TBB
    {{"std-par", true, ""}, &run_sort_std_par},
#else
    {{"std-par", true, k_tbb_absent}, nullptr},
#endif
    FORKLINE_BENCH_SORT_OMP_ROW,
};

std::int64_t input_checksum(std::size_t n) {
    sort_checksum sum;
    for (std::size_t i = 0; i < n; ++i) sum.add(sort_key(i));
    return sum.value();
}

class sort_workload final : public workload {
public:
    bool parse_option(std::string_view key, std::string_view value) override {
        if (key != "n") return false;
        m_n = static_cast<std::size_t>(parse_integer(value, 1, k_max_n, "--n"));
        m_expected_for_n = 0;  // recompute on demand
        return true;
    }

    std::vector<impl_info> impls() const override {
        std::vector<impl_info> out;
        for (const sort_variant& v : k_variants) out.push_back(v.info);
        return out;
    }

    std::string label() const override { return "sort n=" + std::to_string(m_n); }

    // Spawns depend on the cutoff and on the merges' splits: ns per task would mean nothing.
    std::uint64_t tasks_per_run() const override { return 0; }

    std::int64_t expected_result() const override {
        // The parent asks once per repetition; 10^7 hashes are cheap, but not free.
        if (m_expected_for_n != m_n) {
            m_expected = input_checksum(m_n);
            m_expected_for_n = m_n;
        }
        return m_expected;
    }

    sample run(std::string_view impl, unsigned workers) const override {
        for (const sort_variant& v : k_variants) {
            if (v.info.name == impl && v.run != nullptr) return v.run(m_n, workers);
        }
        throw std::logic_error("sort has no built implementation named " + std::string(impl));
    }

    std::string check(std::int64_t result) const override {
        // The child has already checked the order; this checks the keys are the input's.
        const std::int64_t want = expected_result();
        if (result == want) return {};
        return "checksum of the sorted keys " + std::to_string(result) + ", expected the input's " +
               std::to_string(want) + " (a key lost, doubled or altered)";
    }

    std::vector<json_member> json_members() const override {
        return {{"n", std::to_string(m_n)}, {"bytes_per_run", std::to_string(sizeof(std::uint64_t) * m_n)}};
    }

private:
    std::size_t m_n = 10'000'000;
    mutable std::int64_t m_expected = 0;
    mutable std::size_t m_expected_for_n = 0;  // 0: not computed (n is at least 1)
};

}  // namespace

std::unique_ptr<workload> make_sort_workload() { return std::make_unique<sort_workload>(); }

}  // namespace forkline_bench

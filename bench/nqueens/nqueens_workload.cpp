// bench/nqueens/nqueens_workload.cpp: nqueens's options, variants and answer check.
#include <cstdint>      // int64_t, uint64_t, uint32_t
#include <memory>       // make_unique, unique_ptr
#include <stdexcept>    // logic_error
#include <string>       // string, to_string
#include <string_view>  // string_view
#include <vector>       // vector

#include "nqueens.hpp"   // run_nqueens_*, make_nqueens_workload, forkline_bench_nqueens_omp
#include "variants.hpp"  // FORKLINE_BENCH_*_VARIANT, omp_entry

namespace forkline_bench {
namespace {

constexpr int k_min_n = 4;

// Solutions of the N-queens problem for N = 0..15, as published (OEIS A000170).
constexpr std::int64_t k_solutions[k_nqueens_max_n + 1] = {
    1, 1, 0, 0, 2, 10, 4, 40, 92, 352, 724, 2680, 14200, 73712, 365596, 2279184,
};

struct nqueens_variant {
    impl_info info;
    sample (*run)(int n, unsigned workers);  // null when not built
};

sample run_serial_any_workers(int n, unsigned /*workers*/) { return run_nqueens_serial(n); }

#if FORKLINE_BENCH_HAVE_OPENMP
sample run_omp_from_module(int n, unsigned workers) {
    const auto entry = omp_entry<decltype(forkline_bench_nqueens_omp)>("forkline_bench_nqueens_omp");
    sample s;
    entry(n, workers, &s);
    return s;
}
#endif

const nqueens_variant k_variants[] = {
    {{"forkline", true, ""}, &run_nqueens_forkline},
    {{"serial", false, ""}, &run_serial_any_workers},
    FORKLINE_BENCH_TBB_VARIANT(&run_nqueens_tbb),
    FORKLINE_BENCH_OMP_VARIANT(&run_omp_from_module),
};

// Valid partial boards with at least one queen: one spawn each. Counted with
// bit masks of attacked columns and diagonals, so that it shares no code with
// the search it describes.
std::uint64_t placements_below(int n, std::uint32_t cols, std::uint32_t left, std::uint32_t right) {
    const std::uint32_t all = (1u << n) - 1;
    std::uint32_t free = all & ~(cols | left | right);
    std::uint64_t count = 0;
    while (free != 0) {
        const std::uint32_t bit = free & (0u - free);
        free &= free - 1;
        count += 1 + placements_below(n, cols | bit, ((left | bit) << 1) & all, (right | bit) >> 1);
    }
    return count;
}

class nqueens_workload final : public workload {
public:
    bool parse_option(std::string_view key, std::string_view value) override {
        if (key != "n") return false;
        m_n = static_cast<int>(parse_integer(value, k_min_n, k_nqueens_max_n, "--n"));
        m_placements = 0;
        return true;
    }

    std::vector<impl_info> impls() const override {
        std::vector<impl_info> out;
        for (const nqueens_variant& v : k_variants) out.push_back(v.info);
        return out;
    }

    std::string label() const override { return "nqueens n=" + std::to_string(m_n); }

    std::uint64_t tasks_per_run() const override {
        // Counted once, in the parent, when the table or the JSON asks
        // (n=14: about 27 million boards, a few tenths of a second).
        if (m_placements == 0) m_placements = placements_below(m_n, 0, 0, 0);
        return m_placements;
    }

    std::int64_t expected_result() const override { return k_solutions[m_n]; }

    sample run(std::string_view impl, unsigned workers) const override {
        for (const nqueens_variant& v : k_variants) {
            if (v.info.name == impl && v.run != nullptr) return v.run(m_n, workers);
        }
        throw std::logic_error("nqueens has no built implementation named " + std::string(impl));
    }

    std::string check(std::int64_t result) const override {
        const std::int64_t want = k_solutions[m_n];
        if (result == want) return {};
        return std::to_string(m_n) + " queens: " + std::to_string(result) + " solutions, expected " +
               std::to_string(want);
    }

    std::vector<json_member> json_members() const override {
        return {{"n", std::to_string(m_n)}, {"tasks_per_run", std::to_string(tasks_per_run())}};
    }

private:
    int m_n = 12;
    mutable std::uint64_t m_placements = 0;  // 0: not counted yet
};

}  // namespace

std::unique_ptr<workload> make_nqueens_workload() { return std::make_unique<nqueens_workload>(); }

}  // namespace forkline_bench

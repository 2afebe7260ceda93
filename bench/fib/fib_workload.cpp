// bench/fib/fib_workload.cpp: fib's options, variants and answer check.
#include <cstdint>      // int64_t, uint64_t
#include <memory>       // make_unique, unique_ptr
#include <stdexcept>    // logic_error
#include <string>       // string, to_string
#include <string_view>  // string_view
#include <vector>       // vector

#include "fib.hpp"       // run_fib_*, make_fib_workload, forkline_bench_fib_omp
#include "variants.hpp"  // FORKLINE_BENCH_*_VARIANT, omp_entry

namespace forkline_bench {
namespace {

// fib(93) no longer fits in 64 bits.
constexpr int k_max_n = 92;

struct fib_variant {
    impl_info info;
    sample (*run)(int n, unsigned workers);  // null when not built
};

sample run_serial_any_workers(int n, unsigned /*workers*/) { return run_fib_serial(n); }

#if FORKLINE_BENCH_HAVE_OPENMP
sample run_omp_from_module(int n, unsigned workers) {
    const auto entry = omp_entry<decltype(forkline_bench_fib_omp)>("forkline_bench_fib_omp");
    sample s;
    entry(n, workers, &s);
    return s;
}
#endif

const fib_variant k_variants[] = {
    {{"forkline", true, ""}, &run_fib_forkline},
    {{"serial", false, ""}, &run_serial_any_workers},
    FORKLINE_BENCH_TBB_VARIANT(&run_fib_tbb),
    FORKLINE_BENCH_OMP_VARIANT(&run_omp_from_module),
};

// Computed without recursion, so it shares no code with what it checks.
std::int64_t fib_by_iteration(int n) {
    std::int64_t prev = 0;
    std::int64_t cur = 1;
    if (n == 0) return 0;
    for (int i = 1; i < n; ++i) {
        const std::int64_t next = prev + cur;
        prev = cur;
        cur = next;
    }
    return cur;
}

// Calls with n >= 2, each of which spawns once: s(n) = s(n-1) + s(n-2) + 1,
// s(0) = s(1) = 0 (which is fib(n + 1) - 1).
std::uint64_t spawns_of_fib(int n) {
    std::uint64_t prev = 0;  // s(i - 1)
    std::uint64_t cur = 0;   // s(i)
    for (int i = 2; i <= n; ++i) {
        const std::uint64_t next = cur + prev + 1;
        prev = cur;
        cur = next;
    }
    return cur;
}

class fib_workload final : public workload {
public:
    bool parse_option(std::string_view key, std::string_view value) override {
        if (key != "n") return false;
        m_n = static_cast<int>(parse_integer(value, 2, k_max_n, "--n"));
        return true;
    }

    std::vector<impl_info> impls() const override {
        std::vector<impl_info> out;
        for (const fib_variant& v : k_variants) out.push_back(v.info);
        return out;
    }

    std::string label() const override { return "fib n=" + std::to_string(m_n); }

    std::uint64_t tasks_per_run() const override { return spawns_of_fib(m_n); }

    std::int64_t expected_result() const override { return fib_by_iteration(m_n); }

    sample run(std::string_view impl, unsigned workers) const override {
        for (const fib_variant& v : k_variants) {
            if (v.info.name == impl && v.run != nullptr) return v.run(m_n, workers);
        }
        // The driver only asks for built variants it got from impls().
        throw std::logic_error("fib has no built implementation named " + std::string(impl));
    }

    std::string check(std::int64_t result) const override {
        const std::int64_t want = fib_by_iteration(m_n);
        if (result == want) return {};
        return "fib(" + std::to_string(m_n) + ") = " + std::to_string(result) + ", expected " +
               std::to_string(want);
    }

    std::vector<json_member> json_members() const override {
        return {{"n", std::to_string(m_n)}, {"tasks_per_run", std::to_string(spawns_of_fib(m_n))}};
    }

private:
    int m_n = 30;
};

}  // namespace

std::unique_ptr<workload> make_fib_workload() { return std::make_unique<fib_workload>(); }

}  // namespace forkline_bench

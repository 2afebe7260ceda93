// bench/workload.hpp: what a workload hands the driver.
//
// The driver (driver.cpp) owns the command line, the child processes, the
// statistics and the output. A workload only parses its own options, names
// its implementations, runs one of them inside the child and checks the
// answer in the parent. To add one: a folder bench/<name>/ with a
// make_<name>_workload(), a subdir() in bench/meson.build and one line in the
// registry at the top of driver.cpp.
#pragma once

#include <cstdint>      // int64_t, uint64_t
#include <memory>       // unique_ptr
#include <stdexcept>    // runtime_error
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

#include "timing.hpp"  // sample

namespace forkline_bench {

/// Bad command-line input. The driver prints the message and the usage, and exits 2.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// One implementation of a workload, as the command line names it.
struct impl_info {
    std::string_view name;           ///< "forkline", "serial", "tbb", "omp"
    bool uses_workers = true;        ///< false: run once per repetition, reported as workers=1
    std::string_view absent_reason;  ///< empty when built; otherwise why it was compiled out

    bool built() const noexcept { return absent_reason.empty(); }
};

/// A member a workload adds to every JSON result object; `json` is already
/// rendered JSON ("30", "\"text\"").
struct json_member {
    std::string key;
    std::string json;
};

class workload {
public:
    virtual ~workload() = default;

    /// Takes `--key value` when `key` is one of this workload's options and
    /// returns true; false when it is not. Throws usage_error on a bad value.
    virtual bool parse_option(std::string_view key, std::string_view value) = 0;
    /// Every implementation, built or not, in the default order.
    virtual std::vector<impl_info> impls() const = 0;
    /// Names the workload and its input for progress lines and the table: "fib n=30".
    virtual std::string label() const = 0;
    /// Tasks one repetition spawns, for ns per task; 0 where that means nothing.
    virtual std::uint64_t tasks_per_run() const = 0;
    /// The right answer, for the table heading.
    virtual std::int64_t expected_result() const = 0;
    /// In the child: sets up `impl` with `workers`, warms up, times one repetition.
    /// May throw; the driver reports the message as that run's failure.
    virtual sample run(std::string_view impl, unsigned workers) const = 0;
    /// Empty when `result` is right; otherwise what is wrong ("fib(30) = 5, expected 832040").
    virtual std::string check(std::int64_t result) const = 0;
    /// Workload-specific members of each JSON result object ("n": 30).
    virtual std::vector<json_member> json_members() const = 0;
    /// Members that depend on one configuration's own median (skew: "ideal_s",
    /// "vs_ideal"; matmul: "gflops"), added to its JSON object and shown after
    /// its table row. `serial_median_s` is the serial variant's median in the
    /// same run, 0 when there is none. Called only for configurations with a
    /// good repetition; most workloads add nothing.
    virtual std::vector<json_member> result_members(unsigned /*workers*/, double /*median_s*/,
                                                    double /*serial_median_s*/) const {
        return {};
    }
};

/// A registry line: how the driver finds a workload by name.
struct workload_entry {
    std::string_view name;
    std::string_view summary;  ///< one line for --help
    std::string_view options;  ///< its own options, one "    --opt X  meaning\n" line each
    std::unique_ptr<workload> (*make)();
};

/// Parses a whole decimal integer within [lo, hi]. Throws usage_error naming
/// `what` and the accepted range otherwise.
long long parse_integer(std::string_view text, long long lo, long long hi, std::string_view what);

}  // namespace forkline_bench

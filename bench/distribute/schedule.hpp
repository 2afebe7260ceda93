// bench/distribute/schedule.hpp: the open-loop request stream of
// `forkline-bench distribute`, made whole from a seed before a run, so that
// every policy replays exactly the same arrivals, service times and keys.
#pragma once

#include <cstdint>      // uint64_t, uint32_t
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

namespace forkline_bench::distribute {

enum class service_shape { fixed, exponential, bimodal };

std::string_view shape_name(service_shape s) noexcept;
/// false when `text` names no shape.
bool parse_shape(std::string_view text, service_shape& out) noexcept;

struct schedule_config {
    std::uint64_t seed = 1;
    unsigned workers = 2;
    double rho = 0.8;                  ///< offered load: arrival rate = rho * workers / mean service
    double mean_service_ns = 100'000;  ///< 0: empty requests (throughput mode)
    service_shape shape = service_shape::exponential;
    std::uint32_t requests = 4000;
    std::uint32_t keys = 1024;         ///< Zipf over [0, keys)
    double zipf_s = 0.99;
};

/// One request. Times in nanoseconds from the start of the run.
struct request {
    std::uint64_t arrival_ns;
    std::uint64_t service_ns;
    std::uint32_t key;
};

/// Poisson arrivals at rate rho * workers / mean; service fixed, exponential,
/// or bimodal (99.5% short, 0.5% 100x longer, the mean kept); keys Zipf(s).
std::vector<request> make_schedule(const schedule_config& c);

/// Busy-spins for `ns` nanoseconds of steady_clock time (one vDSO clock read
/// per round, about 20-30 ns, so the spin is its own calibration).
void spin_for(std::uint64_t ns) noexcept;

/// steady_clock now, in nanoseconds since its epoch.
std::uint64_t now_ns() noexcept;

}  // namespace forkline_bench::distribute

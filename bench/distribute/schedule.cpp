// bench/distribute/schedule.cpp: see schedule.hpp.
#include "distribute/schedule.hpp"

#include <algorithm>  // lower_bound
#include <chrono>     // steady_clock
#include <cmath>      // pow, log
#include <random>     // mt19937_64, exponential_distribution, uniform_real_distribution

namespace forkline_bench::distribute {

std::string_view shape_name(service_shape s) noexcept {
    switch (s) {
    case service_shape::fixed: return "fixed";
    case service_shape::exponential: return "exp";
    case service_shape::bimodal: return "bimodal";
    }
    return "?";
}

bool parse_shape(std::string_view text, service_shape& out) noexcept {
    if (text == "fixed") out = service_shape::fixed;
    else if (text == "exp" || text == "exponential") out = service_shape::exponential;
    else if (text == "bimodal") out = service_shape::bimodal;
    else return false;
    return true;
}

std::vector<request> make_schedule(const schedule_config& c) {
    std::mt19937_64 rng(c.seed);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::vector<request> out(c.requests);

    // Zipf by inversion of the cumulative weights: exact, and cheap for the
    // key counts used here.
    std::vector<double> cdf(std::max<std::uint32_t>(c.keys, 1));
    double sum = 0;
    for (std::size_t k = 0; k < cdf.size(); ++k) {
        sum += 1.0 / std::pow(static_cast<double>(k + 1), c.zipf_s);
        cdf[k] = sum;
    }

    // Bimodal: a share p of requests 100x longer, the short ones sized so
    // that the mean stays: (1 - p) s + p 100 s = mean.
    constexpr double k_long_share = 0.005;
    constexpr double k_long_factor = 100.0;
    const double short_ns = c.mean_service_ns / (1.0 - k_long_share + k_long_share * k_long_factor);

    const bool empty = c.mean_service_ns <= 0.0;
    const double rate_per_ns = empty ? 0.0 : c.rho * c.workers / c.mean_service_ns;
    std::exponential_distribution<double> gap(empty ? 1.0 : rate_per_ns);
    std::exponential_distribution<double> service_exp(empty ? 1.0 : 1.0 / c.mean_service_ns);

    double t = 0;
    for (request& r : out) {
        if (!empty) t += gap(rng);
        r.arrival_ns = static_cast<std::uint64_t>(t);
        double s = 0;
        switch (c.shape) {
        case service_shape::fixed: s = c.mean_service_ns; break;
        case service_shape::exponential: s = empty ? 0.0 : service_exp(rng); break;
        case service_shape::bimodal: s = unit(rng) < k_long_share ? short_ns * k_long_factor : short_ns; break;
        }
        r.service_ns = static_cast<std::uint64_t>(s);
        const double u = unit(rng) * sum;
        r.key = static_cast<std::uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
        if (r.key >= cdf.size()) r.key = static_cast<std::uint32_t>(cdf.size() - 1);
    }
    return out;
}

std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

void spin_for(std::uint64_t ns) noexcept {
    if (ns == 0) return;
    const std::uint64_t until = now_ns() + ns;
    while (now_ns() < until) {
    }
}

}  // namespace forkline_bench::distribute

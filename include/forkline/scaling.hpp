/// @file forkline/scaling.hpp
/// Models of how a run's time falls with workers, fitted to measurements.
///
/// @code
/// std::vector<forkline::scaling_sample> s = {{1, {2.00, 2.02, 1.99}}, {2, {1.10, 1.12, 1.11}}};
/// forkline::amdahl_fit a = forkline::fit_amdahl(s);   // a.serial_fraction ~ 0.1
/// forkline::usl_fit u = forkline::fit_usl(s);         // fit_status::too_few_points: 2 < 3
/// @endcode
///
/// Pure functions of the numbers: no runtime, no clock. forkline-probe and
/// forkline::probe (probe.hpp) feed them; tests feed them synthetic curves.
/// See "Scaling models" in runtime/DESIGN.md.
#pragma once

#include <cstdint>  // uint64_t
#include <span>     // span
#include <limits>   // numeric_limits
#include <string>   // string
#include <vector>   // vector

namespace forkline {

/// Every repetition's time at one worker count.
struct scaling_sample {
    unsigned workers = 0;         ///< the worker count, >= 1
    std::vector<double> seconds;  ///< one per repetition, each > 0
    /// The host's compute slowdown at this count (probe::compute_ceiling):
    /// the parallel part runs this much slower per thread when `workers`
    /// threads run than when one does, so fit_amdahl models the time as
    /// T1 (s + (1 - s) slowdown / N). 1 (the default): no correction.
    /// fit_usl ignores it (its contention term takes the host's share).
    double slowdown = 1;
};

/// What a fit could make of the data. Anything but `ok` comes with a note
/// that says so in words.
enum class fit_status {
    ok,              ///< the fit's numbers mean what they say
    too_few_points,  ///< fewer distinct worker counts than the model has parameters
    linear,          ///< no serial part / contention / coherency measurable: speedup = N
    no_peak,         ///< USL: beta = 0, the curve flattens but never turns down
    superlinear,     ///< faster than N at some N (caches): Amdahl's s would be negative
    retrograde,      ///< slower with more workers at every N > 1
    bad_input,       ///< a time <= 0 or not finite, a worker count of 0, duplicate counts
};

/// "ok", "too_few_points", ... as the JSON output spells them.
const char* to_string(fit_status s) noexcept;

/// Amdahl's law, T(N) = T1 (s + (1 - s) / N), fitted by least squares on
/// 1/speedup against 1/N (intercept and slope free; s = intercept /
/// (intercept + slope), which does not need a 1-worker point).
struct amdahl_fit {
    fit_status status = fit_status::bad_input;  ///< whether the numbers below mean anything
    double serial_fraction = 0;  ///< s; clamped to [0, 1] only in max_speedup
    /// 95% interval of s: by bootstrap over the repetitions when some point
    /// has two or more (2000 resamples, fixed seed, so the same data always
    /// gives the same interval); else from the regression's residuals when
    /// there are three or more points; else NaN.
    double ci_low = 0;
    double ci_high = 0;      ///< upper end of that interval
    double max_speedup = 0;  ///< 1 / s (infinity when s <= 0)
    double t1_seconds = 0;   ///< the fitted 1-worker time, intercept + slope
    std::string note;        ///< why, when status is not ok; empty otherwise
};

/// The Universal Scalability Law, X(N) = gamma N / (1 + alpha (N - 1) +
/// beta N (N - 1)), X = 1 / median time (runs per second), fitted by least
/// squares with alpha, beta >= 0 (each sign pattern of the bounds solved as
/// its own problem, the best feasible one kept).
struct usl_fit {
    fit_status status = fit_status::bad_input;  ///< whether the numbers below mean anything
    double alpha = 0;  ///< contention: the serialised share
    double beta = 0;   ///< coherency: the cost of keeping N workers in agreement, per pair
    double gamma = 0;  ///< runs per second of one worker
    /// N* = sqrt((1 - alpha) / beta), where throughput peaks; 0 when there is
    /// no peak (beta = 0); 1 when the formula gives less than 1 (throughput
    /// is highest at one worker). Real-valued: the best whole count is floor
    /// or ceil of it.
    double peak_workers = 0;
    /// Highest speedup the fit allows: X(N*) / gamma with a peak, 1 / alpha
    /// without one (approached as N grows; 1 when alpha >= 1), infinity
    /// when linear.
    double max_speedup = 0;
    double r_squared = 0;  ///< of the throughput fit; NaN with under 4 points
    std::string note;      ///< why, when status is not ok; empty otherwise
};

/// What a USL fit says of N workers: where the time goes and when adding
/// workers stops paying. With D = 1 + alpha (N - 1) + beta N (N - 1), the
/// time at N is T(1) D / N against the ideal T(1) / N.
struct usl_costs {
    double workers = 0;  ///< N
    /// Effective workers: the speedup N / D.
    double speedup = std::numeric_limits<double>::quiet_NaN();
    /// Pairs of workers that may have to agree, N (N - 1) / 2: what the
    /// coherency term grows with.
    double paths = 0;
    /// Of the time at N, the share lost to contention, alpha (N - 1) / D.
    double contention_share = std::numeric_limits<double>::quiet_NaN();
    /// Of the time at N, the share lost to coherency, beta N (N - 1) / D.
    double coherency_share = std::numeric_limits<double>::quiet_NaN();
    /// The N at which efficiency (speedup / N) falls to one half (D = 2);
    /// infinity when the fit never gets there (alpha = beta = 0).
    double half_efficiency_workers = std::numeric_limits<double>::quiet_NaN();
};
/// usl_costs of `f` at `workers`; NaN figures when f has no usable fit
/// (status other than ok, no_peak or linear).
/// @code
/// const forkline::usl_costs c = forkline::usl_costs_at(forkline::fit_usl(samples), 16);
/// std::printf("%.0f%% of the time at 16 lost to contention\n", 100 * c.contention_share);
/// @endcode
usl_costs usl_costs_at(const usl_fit& f, double workers);

/// What a change did to one measurement, by compare_medians.
enum class change {
    faster,        ///< the second set's median is lower, beyond the noise
    slower,        ///< higher, beyond the noise
    within_noise,  ///< the interval of the ratio holds 1
    unknown,       ///< fewer than five repetitions on a side: no verdict (an interval from two or more)
    bad_input,     ///< empty, non-finite or non-positive times
};
/// "faster", "slower", "within noise", "unknown", "bad input".
const char* to_string(change c) noexcept;

/// Two sets of repetition times of the same workload at the same count
/// ("before" and "after" a change), compared by the ratio of medians
/// after / before, with a 95% interval by bootstrap (each side resampled
/// from its own repetitions, 2000 times, fixed seed: the same data always
/// gives the same interval). Below 1 is faster.
struct median_ratio {
    double ratio = std::numeric_limits<double>::quiet_NaN();    ///< median(after) / median(before)
    double ci_low = std::numeric_limits<double>::quiet_NaN();   ///< 2.5% quantile of the resampled ratios
    double ci_high = std::numeric_limits<double>::quiet_NaN();  ///< 97.5% quantile
    change verdict = change::bad_input;  ///< faster / slower when the interval excludes 1
    std::string note;                    ///< why, for unknown and bad_input
};
/// @code
/// const forkline::median_ratio m = forkline::compare_medians(before_s, after_s);
/// std::printf("%.3fx [%.3f, %.3f] %s\n", m.ratio, m.ci_low, m.ci_high, forkline::to_string(m.verdict));
/// @endcode
median_ratio compare_medians(std::span<const double> before, std::span<const double> after);

/// Karp-Flatt experimentally determined serial fraction at each point:
/// e(N) = (1/S - 1/N) / (1 - 1/N), S = T(1) / T(N) with medians. One value per
/// sample in input order; NaN for N = 1 and for every point when there is no
/// 1-worker sample. A value that grows with N points at an overhead that
/// grows with N, not at a fixed serial part.
/// @code
/// std::vector<double> e = forkline::karp_flatt(samples);  // NaN where workers == 1
/// @endcode
std::vector<double> karp_flatt(std::span<const scaling_sample> samples);

/// Median of the sample's seconds (NaN when empty).
double median_seconds(const scaling_sample& s);

/// Fits Amdahl's law (two parameters: at least two worker counts).
/// @code
/// forkline::amdahl_fit a = forkline::fit_amdahl(samples);
/// if (a.status == forkline::fit_status::ok) std::printf("serial %.3f, at most %.1fx\n", a.serial_fraction, a.max_speedup);
/// @endcode
amdahl_fit fit_amdahl(std::span<const scaling_sample> samples);
/// Fits the Universal Scalability Law (three parameters: at least three worker
/// counts). Unlike Amdahl's law it can say where adding workers starts to hurt.
/// @code
/// forkline::usl_fit u = forkline::fit_usl(samples);
/// if (u.status == forkline::fit_status::ok) std::printf("peak at %.1f workers\n", u.peak_workers);
/// @endcode
usl_fit fit_usl(std::span<const scaling_sample> samples);

}  // namespace forkline

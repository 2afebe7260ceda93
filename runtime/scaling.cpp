// runtime/scaling.cpp: the Amdahl and USL fits, Karp-Flatt, and the checks
// that turn a curve that does not fit into a status with a note.
//
// Both fits are ordinary least squares, unweighted: Amdahl's on median time
// against 1/N (a straight line, closed form), the USL's on throughput 1/median
// against N (non-linear, Levenberg-Marquardt). Medians, not means: one slow
// repetition (a page-cache miss, a migration) must not move the curve.
// No numeric library: the problems are at most 3 parameters and a few dozen
// points, and a small Householder least-squares solver covers them all.
#include "forkline/scaling.hpp"

#include <algorithm>  // sort, nth_element, max_element, adjacent_find, copy, fill, max, min
#include <array>      // array (fixed-size parameter vectors, the t table)
#include <cmath>      // sqrt, fabs, isfinite, isnan, copysign
#include <cstddef>    // size_t, ptrdiff_t
#include <cstdint>    // uint64_t
#include <cstdio>     // snprintf (numbers in notes)
#include <limits>     // numeric_limits (NaN, infinity)
#include <string>     // string, to_string
#include <utility>    // move
#include <vector>     // vector

namespace forkline {

namespace {

constexpr double k_nan = std::numeric_limits<double>::quiet_NaN();
constexpr double k_inf = std::numeric_limits<double>::infinity();

// A fitted quantity within this of 0 is 0: below it the difference is
// rounding in the fit of noise-free data, not anything a clock can measure.
constexpr double k_zero_tolerance = 1e-9;

constexpr unsigned k_bootstrap_resamples = 2000;
// Fixed, so that the same data always gives the same interval.
constexpr std::uint64_t k_bootstrap_seed = 0x9e3779b97f4a7c15ULL;
/// compare_medians gives a verdict only with this many repetitions a side
/// (the house rule for any reported figure).
constexpr std::size_t k_compare_min_reps = 5;

/// A number for a note: four significant digits are what a reader can use.
std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

/// splitmix64: tiny, good enough to draw resample indices, and the same
/// draws with every standard library (std::uniform_int_distribution's
/// output is left to the implementation).
class splitmix64 {
public:
    explicit splitmix64(std::uint64_t seed) : m_state(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (m_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    /// Uniform in [0, n): the top 53 bits as a fraction; the bias for the
    /// n of a repetition count is far below what 2000 resamples resolve.
    std::size_t below(std::size_t n) {
        const double u = static_cast<double>(next() >> 11) * 0x1.0p-53;
        const auto i = static_cast<std::size_t>(u * static_cast<double>(n));
        return i < n ? i : n - 1;
    }

private:
    std::uint64_t m_state;
};

/// Median of `v`, reordering it.
double median_in_place(std::vector<double>& v) {
    if (v.empty()) return k_nan;
    const std::size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
    const double upper = v[mid];
    if (v.size() % 2 == 1) return upper;
    const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
    return lower + (upper - lower) / 2;
}

/// Why the samples cannot be fitted, in words; empty when they can.
std::string input_problem(std::span<const scaling_sample> samples) {
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const scaling_sample& s = samples[i];
        if (s.workers == 0) return "sample " + std::to_string(i) + " has a worker count of 0";
        if (s.seconds.empty()) return "no times at " + std::to_string(s.workers) + " workers";
        if (!std::isfinite(s.slowdown) || s.slowdown <= 0)
            return "a host slowdown of " + num(s.slowdown) + " at " + std::to_string(s.workers) +
                   " workers (it must be finite and > 0)";
        for (const double t : s.seconds) {
            if (!std::isfinite(t) || t <= 0)
                return "a time of " + num(t) + " s at " + std::to_string(s.workers) +
                       " workers (every time must be finite and > 0)";
        }
    }
    std::vector<unsigned> counts;
    counts.reserve(samples.size());
    for (const scaling_sample& s : samples) counts.push_back(s.workers);
    std::sort(counts.begin(), counts.end());
    const auto dup = std::adjacent_find(counts.begin(), counts.end());
    if (dup != counts.end())
        return "worker count " + std::to_string(*dup) + " appears twice (merge its repetitions into one sample)";
    return {};
}

/// t quantile 0.975 for `dof` degrees of freedom (two-sided 95%).
double t_quantile_975(std::size_t dof) {
    static constexpr std::array<double, 30> table = {
        12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010,  2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796,  2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423};
    if (dof == 0) return k_nan;
    if (dof <= table.size()) return table[dof - 1];
    // Cornish-Fisher expansion around the normal quantile; within 1e-4 of the
    // exact value beyond 30 degrees of freedom.
    const double z = 1.959963984540054;
    const double v = static_cast<double>(dof);
    const double z3 = z * z * z;
    const double z5 = z3 * z * z;
    return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v);
}

/// The `p` quantile (0..1) of sorted `v`, interpolating between neighbours.
double quantile_sorted(const std::vector<double>& v, double p) {
    const double pos = p * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(pos);
    const double frac = pos - static_cast<double>(lo);
    if (frac == 0 || lo + 1 >= v.size()) return v[lo];
    // Written so that an infinite neighbour gives infinity, not NaN.
    return v[lo] * (1 - frac) + v[lo + 1] * frac;
}

// ---------------------------------------------------------------- Amdahl

/// y = a + b x by least squares.
struct line_fit {
    double a = 0;
    double b = 0;
    double x_mean = 0;
    double sxx = 0;  ///< sum of squared deviations of x
};

line_fit fit_line(const std::vector<double>& x, const std::vector<double>& y) {
    line_fit f;
    const auto n = static_cast<double>(x.size());
    double y_mean = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        f.x_mean += x[i];
        y_mean += y[i];
    }
    f.x_mean /= n;
    y_mean /= n;
    // Centred sums: the uncentred normal equations lose digits when 1/N
    // spans little (counts 32..64).
    double sxy = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double dx = x[i] - f.x_mean;
        f.sxx += dx * dx;
        sxy += dx * (y[i] - y_mean);
    }
    f.b = sxy / f.sxx;
    f.a = y_mean - f.b * f.x_mean;
    return f;
}

/// s = a / (a + b). With b > 0, a + b > 0 always (the line is fitted through
/// points with x <= 1 and positive y). a + b <= 0 only happens on a falling
/// throughput curve, when the line extrapolated to one worker reaches 0: no
/// serial fraction describes that, and infinity sorts it above every real one.
double serial_fraction_of(double a, double b) {
    const double t1 = a + b;
    return t1 > 0 ? a / t1 : k_inf;
}

/// 2.5% and 97.5% quantiles of s over resamples of each point's repetitions.
std::array<double, 2> bootstrap_interval(std::span<const scaling_sample> samples, const std::vector<double>& x,
                                         const std::vector<double>& medians) {
    splitmix64 rng(k_bootstrap_seed);
    std::vector<double> y(medians);
    std::vector<double> scratch;
    std::vector<double> fractions;
    fractions.reserve(k_bootstrap_resamples);
    for (unsigned r = 0; r < k_bootstrap_resamples; ++r) {
        for (std::size_t i = 0; i < samples.size(); ++i) {
            const std::vector<double>& reps = samples[i].seconds;
            if (reps.size() < 2) continue;  // one repetition resamples to itself
            scratch.resize(reps.size());
            for (double& v : scratch) v = reps[rng.below(reps.size())];
            y[i] = median_in_place(scratch);
        }
        const line_fit f = fit_line(x, y);
        fractions.push_back(serial_fraction_of(f.a, f.b));
    }
    std::sort(fractions.begin(), fractions.end());
    return {quantile_sorted(fractions, 0.025), quantile_sorted(fractions, 0.975)};
}

/// s +- t * se(s), se(s) by the delta method from the line's covariance.
/// The covariance assumes relative noise, Var(y_i) = sigma^2 fitted_i^2 with
/// one sigma from all residuals (each over its fitted value, corrected for
/// its leverage), not the textbook sigma^2 (X'X)^-1: timing noise is
/// relative, so the few-worker points carry the largest errors, and the
/// 1-worker point sits far out at x = 1 where the line passes close to it
/// whatever its error. On 16-point curves with 5% noise the textbook
/// interval held the true s in about 70% of runs, the leverage-scaled
/// sandwich (HC3) in 87%, this one in 95 to 100%.
std::array<double, 2> residual_interval(const line_fit& f, const std::vector<double>& x,
                                        const std::vector<double>& y) {
    const std::size_t n = x.size();
    const auto dn = static_cast<double>(n);
    // In centred form y = c + b (x - x_mean) the columns are orthogonal:
    // X'X = diag(n, sxx), and the leverage is 1/n + d^2 / sxx.
    double rel2 = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = x[i] - f.x_mean;
        const double fitted = f.a + f.b * x[i];
        // A line that predicts no time at some count (strongly superlinear
        // data) has no relative error there: no interval from this model.
        if (!(fitted > 0)) return {k_nan, k_nan};
        const double e = (y[i] - fitted) / fitted;
        const double leverage = 1 / dn + d * d / f.sxx;
        rel2 += e * e / (1 - leverage);
    }
    rel2 /= dn;
    double w_sum = 0;
    double wd_sum = 0;
    double wdd_sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = x[i] - f.x_mean;
        const double fitted = f.a + f.b * x[i];
        const double w = rel2 * fitted * fitted;
        w_sum += w;
        wd_sum += w * d;
        wdd_sum += w * d * d;
    }
    const double var_c = w_sum / (dn * dn);
    const double cov_cb = wd_sum / (dn * f.sxx);
    const double var_b = wdd_sum / (f.sxx * f.sxx);
    // a = c - b x_mean.
    const double var_a = var_c - 2 * f.x_mean * cov_cb + f.x_mean * f.x_mean * var_b;
    const double cov_ab = cov_cb - f.x_mean * var_b;
    const double t1 = f.a + f.b;
    // ds/da = b / t1^2, ds/db = -a / t1^2.
    const double var_s =
        (f.b * f.b * var_a - 2 * f.a * f.b * cov_ab + f.a * f.a * var_b) / (t1 * t1 * t1 * t1);
    const double half = t_quantile_975(n - 2) * std::sqrt(std::max(var_s, 0.0));
    const double s = f.a / t1;
    return {s - half, s + half};
}

// ---------------------------------------------------------------- USL

struct usl_point {
    double n = 0;  ///< workers
    double x = 0;  ///< throughput, 1 / median seconds
};

/// gamma, alpha, beta.
using usl_params = std::array<double, 3>;

double usl_denominator(double alpha, double beta, double n) { return 1 + alpha * (n - 1) + beta * n * (n - 1); }

/// Sum of squared throughput residuals; infinity where the denominator is
/// not positive at some measured count (the model has no meaning there).
double usl_cost(std::span<const usl_point> pts, const usl_params& p) {
    double c = 0;
    for (const usl_point& q : pts) {
        const double d = usl_denominator(p[1], p[2], q.n);
        if (!(d > 0)) return k_inf;
        const double r = q.x - p[0] * q.n / d;
        c += r * r;
    }
    return std::isfinite(c) ? c : k_inf;
}

/// For fixed alpha and beta the model is gamma * f(N): gamma by linear least
/// squares.
double usl_best_gamma(std::span<const usl_point> pts, double alpha, double beta) {
    double xf = 0;
    double ff = 0;
    for (const usl_point& q : pts) {
        const double f = q.n / usl_denominator(alpha, beta, q.n);
        xf += q.x * f;
        ff += f * f;
    }
    return ff > 0 ? xf / ff : k_nan;
}

/// min ||A z - b|| for an m x k matrix A (row-major, k <= 3) by Householder
/// QR; false when A's columns are dependent to working precision.
bool solve_least_squares(std::vector<double> a, std::vector<double> b, std::size_t k, std::array<double, 3>& z) {
    const std::size_t m = b.size();
    if (m < k) return false;
    auto at = [&](std::size_t i, std::size_t j) -> double& { return a[i * k + j]; };
    double largest_diag = 0;
    for (std::size_t j = 0; j < k; ++j) {
        double norm2 = 0;
        for (std::size_t i = j; i < m; ++i) norm2 += at(i, j) * at(i, j);
        const double norm = std::sqrt(norm2);
        if (norm == 0) return false;
        // Reflect column j onto -sign(a_jj) |a_j| e_j (the sign avoids cancellation).
        const double diag = -std::copysign(norm, at(j, j));
        const double v0 = at(j, j) - diag;
        const double vnorm2 = norm2 - at(j, j) * at(j, j) + v0 * v0;
        at(j, j) = v0;  // the reflector lives in column j below the diagonal for now
        for (std::size_t c = j + 1; c < k; ++c) {
            double dot = 0;
            for (std::size_t i = j; i < m; ++i) dot += at(i, j) * at(i, c);
            const double f = 2 * dot / vnorm2;
            for (std::size_t i = j; i < m; ++i) at(i, c) -= f * at(i, j);
        }
        double dot = 0;
        for (std::size_t i = j; i < m; ++i) dot += at(i, j) * b[i];
        const double f = 2 * dot / vnorm2;
        for (std::size_t i = j; i < m; ++i) b[i] -= f * at(i, j);
        at(j, j) = diag;
        largest_diag = std::max(largest_diag, std::fabs(diag));
    }
    for (std::size_t j = 0; j < k; ++j) {
        if (std::fabs(at(j, j)) <= 1e-14 * largest_diag) return false;
    }
    for (std::size_t jj = k; jj-- > 0;) {
        double s = b[jj];
        for (std::size_t c = jj + 1; c < k; ++c) s -= at(jj, c) * z[c];
        z[jj] = s / at(jj, jj);
    }
    return true;
}

/// Which of alpha and beta a sub-problem leaves free (the others are held at 0).
struct usl_pattern {
    bool alpha = false;
    bool beta = false;
};

/// Levenberg-Marquardt on gamma and the pattern's free parameters, from
/// `start`, with Marquardt's column scaling (beta's column is N^2 times
/// alpha's). Returns the best parameters found.
usl_params usl_levenberg_marquardt(std::span<const usl_point> pts, usl_params p, usl_pattern pat) {
    std::array<std::size_t, 3> index{};  // parameter slot of each unknown
    std::size_t k = 0;
    index[k++] = 0;
    if (pat.alpha) index[k++] = 1;
    if (pat.beta) index[k++] = 2;
    if (!pat.alpha) p[1] = 0;
    if (!pat.beta) p[2] = 0;

    double cost = usl_cost(pts, p);
    if (!std::isfinite(cost)) return p;
    const std::size_t m = pts.size();
    std::vector<double> jac(m * k);
    std::vector<double> res(m);
    std::vector<double> aug_a((m + k) * k);
    std::vector<double> aug_b(m + k);
    double lambda = 1e-3;
    for (int iteration = 0; iteration < 500 && cost > 0; ++iteration) {
        std::array<double, 3> col_norm{};
        for (std::size_t i = 0; i < m; ++i) {
            const double n = pts[i].n;
            const double d = usl_denominator(p[1], p[2], n);
            const double model = p[0] * n / d;
            res[i] = pts[i].x - model;
            for (std::size_t j = 0; j < k; ++j) {
                double g = 0;
                switch (index[j]) {
                    case 0: g = n / d; break;                    // d/dgamma
                    case 1: g = -model * (n - 1) / d; break;     // d/dalpha
                    default: g = -model * n * (n - 1) / d; break;  // d/dbeta
                }
                jac[i * k + j] = g;
                col_norm[j] += g * g;
            }
        }
        for (std::size_t j = 0; j < k; ++j) col_norm[j] = col_norm[j] > 0 ? std::sqrt(col_norm[j]) : 1;

        bool accepted = false;
        double previous = cost;
        while (lambda < 1e16) {
            // [J; sqrt(lambda) D] dz = [r; 0], the damped step as a least-squares problem.
            std::copy(jac.begin(), jac.end(), aug_a.begin());
            std::copy(res.begin(), res.end(), aug_b.begin());
            std::fill(aug_a.begin() + static_cast<std::ptrdiff_t>(m * k), aug_a.end(), 0.0);
            std::fill(aug_b.begin() + static_cast<std::ptrdiff_t>(m), aug_b.end(), 0.0);
            const double damping = std::sqrt(lambda);
            for (std::size_t j = 0; j < k; ++j) aug_a[(m + j) * k + j] = damping * col_norm[j];
            std::array<double, 3> step{};
            if (solve_least_squares(aug_a, aug_b, k, step)) {
                usl_params trial = p;
                for (std::size_t j = 0; j < k; ++j) trial[index[j]] += step[j];
                const double c = usl_cost(pts, trial);
                if (c < cost) {
                    p = trial;
                    cost = c;
                    lambda = std::max(lambda * 0.1, 1e-12);
                    accepted = true;
                    break;
                }
            }
            lambda *= 10;
        }
        // No step lowers the cost: a minimum to working precision. A step
        // that gains under 1e-15 of the cost: the same, reached slowly.
        if (!accepted || previous - cost <= 1e-15 * previous) break;
    }
    return p;
}

/// Linearised start: N / X = (1/gamma)(1 + alpha (N-1) + beta N (N-1)) is
/// linear in the pattern's parameters; exact on noise-free data, close on
/// noisy data, and free of any need for a 1-worker point.
usl_params usl_linear_start(std::span<const usl_point> pts, usl_pattern pat, double n_max) {
    const std::size_t k = 1 + (pat.alpha ? 1 : 0) + (pat.beta ? 1 : 0);
    std::vector<double> a;
    std::vector<double> b;
    for (const usl_point& q : pts) {
        // Columns scaled to order 1 by the largest count so that QR sees
        // comparable columns.
        a.push_back(1);
        if (pat.alpha) a.push_back((q.n - 1) / n_max);
        if (pat.beta) a.push_back(q.n * (q.n - 1) / (n_max * n_max));
        b.push_back(q.n / q.x);
    }
    std::array<double, 3> z{};
    usl_params p{k_nan, 0, 0};
    if (!solve_least_squares(a, b, k, z) || !(z[0] > 0)) return p;
    std::size_t j = 1;
    if (pat.alpha) p[1] = std::max(0.0, z[j++] / n_max / z[0]);
    if (pat.beta) p[2] = std::max(0.0, z[j] / (n_max * n_max) / z[0]);
    p[0] = usl_best_gamma(pts, p[1], p[2]);
    return p;
}

/// alpha's and beta's share of the denominator at the largest count: what
/// decides whether either is distinguishable from 0.
std::array<double, 2> usl_terms(const usl_params& p, double n_max) {
    return {p[1] * (n_max - 1), p[2] * n_max * (n_max - 1)};
}

}  // namespace

const char* to_string(fit_status s) noexcept {
    switch (s) {
        case fit_status::ok: return "ok";
        case fit_status::too_few_points: return "too_few_points";
        case fit_status::linear: return "linear";
        case fit_status::no_peak: return "no_peak";
        case fit_status::superlinear: return "superlinear";
        case fit_status::retrograde: return "retrograde";
        case fit_status::bad_input: return "bad_input";
    }
    return "unknown";
}

double median_seconds(const scaling_sample& s) {
    std::vector<double> v(s.seconds);
    return median_in_place(v);
}

usl_costs usl_costs_at(const usl_fit& f, double workers) {
    usl_costs c;
    c.workers = workers;
    c.paths = workers * (workers - 1) / 2;
    if (f.status != fit_status::ok && f.status != fit_status::no_peak && f.status != fit_status::linear) return c;
    if (!(workers >= 1)) return c;
    const double a = f.alpha;
    const double b = f.beta;
    const double d = 1 + a * (workers - 1) + b * workers * (workers - 1);
    c.speedup = workers / d;
    c.contention_share = a * (workers - 1) / d;
    c.coherency_share = b * workers * (workers - 1) / d;
    // D = 2: b N^2 + (a - b) N - (1 + a) = 0, the positive root.
    if (b > 0) {
        c.half_efficiency_workers = (-(a - b) + std::sqrt((a - b) * (a - b) + 4 * b * (1 + a))) / (2 * b);
    } else if (a > 0) {
        c.half_efficiency_workers = 1 + 1 / a;
    } else {
        c.half_efficiency_workers = std::numeric_limits<double>::infinity();
    }
    return c;
}

std::vector<double> karp_flatt(std::span<const scaling_sample> samples) {
    std::vector<double> e(samples.size(), k_nan);
    double t1 = k_nan;
    for (const scaling_sample& s : samples) {
        if (s.workers == 1) {
            t1 = median_seconds(s);
            break;
        }
    }
    if (!(t1 > 0) || !std::isfinite(t1)) return e;
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const unsigned w = samples[i].workers;
        const double tn = median_seconds(samples[i]);
        if (w < 2 || !(tn > 0) || !std::isfinite(tn)) continue;
        const double inv_n = 1.0 / w;
        // 1/S = T(N) / T(1).
        e[i] = (tn / t1 - inv_n) / (1 - inv_n);
    }
    return e;
}

// Amdahl: T(N) = a + b / N with a = T1 s, b = T1 (1 - s). Statuses, first
// that applies:
//   bad_input       input_problem() says why;
//   too_few_points  fewer than 2 worker counts;
//   retrograde      the fitted slope b <= 0: time does not fall as N grows
//                   (s = a / (a + b) is then >= 1, or infinity when the line
//                   reaches 0 at one worker);
//   superlinear     s < 0 beyond noise: the interval's upper end below
//                   -1e-9, or without an interval s itself below -1e-9;
//   linear          0 within the interval widened by 1e-9, or without one
//                   |s| <= 1e-9;
//   ok.
amdahl_fit fit_amdahl(std::span<const scaling_sample> samples) {
    amdahl_fit fit;
    fit.serial_fraction = fit.ci_low = fit.ci_high = fit.max_speedup = fit.t1_seconds = k_nan;
    if (std::string why = input_problem(samples); !why.empty()) {
        fit.status = fit_status::bad_input;
        fit.note = std::move(why);
        return fit;
    }
    if (samples.size() < 2) {
        fit.status = fit_status::too_few_points;
        fit.note = (samples.empty() ? std::string("no samples") : "1 worker count") +
                   ": Amdahl's law needs 2 (an intercept and a slope)";
        return fit;
    }

    // Sorted by worker count, so that the same points in another order give
    // bit-for-bit the same fit and the same bootstrap draws.
    std::vector<scaling_sample> sorted(samples.begin(), samples.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const scaling_sample& l, const scaling_sample& r) { return l.workers < r.workers; });
    std::vector<double> x;
    std::vector<double> y;
    bool repeated = false;
    for (const scaling_sample& s : sorted) {
        // Corrected for the host: the parallel part's time at N is its
        // 1-worker time x slowdown / N.
        x.push_back(s.slowdown / s.workers);
        y.push_back(median_seconds(s));
        repeated = repeated || s.seconds.size() >= 2;
    }
    const line_fit line = fit_line(x, y);
    const double s = serial_fraction_of(line.a, line.b);
    fit.serial_fraction = s;
    fit.t1_seconds = line.a + line.b;
    fit.max_speedup = s > 0 ? 1 / std::min(s, 1.0) : k_inf;

    std::string interval_kind;  // for the notes
    if (repeated) {
        const auto ci = bootstrap_interval(sorted, x, y);
        fit.ci_low = ci[0];
        fit.ci_high = ci[1];
        interval_kind = "bootstrap 95% interval";
    } else if (samples.size() >= 3 && line.b > 0) {
        const auto ci = residual_interval(line, x, y);
        fit.ci_low = ci[0];
        fit.ci_high = ci[1];
        interval_kind = "95% interval from the residuals";
    }
    const bool has_interval = !std::isnan(fit.ci_low);
    // What s rests on, for the notes.
    const std::string basis =
        has_interval ? interval_kind + " " + num(fit.ci_low) + " to " + num(fit.ci_high)
        : samples.size() == 2 ? "2 worker counts, so an exact fit through both and no interval"
                              : "no interval";

    if (!(line.b > 0)) {
        fit.status = fit_status::retrograde;
        fit.note = "time does not fall with more workers: the fitted time against 1/N has slope " + num(line.b) +
                   " s (<= 0), so " +
                   (std::isfinite(s) ? "s = " + num(s) + " is no serial fraction"
                                     : "its 1-worker time, " + num(fit.t1_seconds) +
                                           " s, is not positive and no serial fraction describes it");
    } else if (has_interval ? fit.ci_high < -k_zero_tolerance : s < -k_zero_tolerance) {
        fit.status = fit_status::superlinear;
        fit.note = "s = " + num(s) + " (" + basis +
                   ") is below 0: faster than N workers should allow (caches or memory that grow with N?); s kept "
                   "as fitted";
    } else if (has_interval ? fit.ci_low <= k_zero_tolerance && fit.ci_high >= -k_zero_tolerance
                            : std::fabs(s) <= k_zero_tolerance) {
        fit.status = fit_status::linear;
        fit.note = "s = " + num(s) + " (" + basis + ") is 0 " +
                   (has_interval ? "within its interval" : "within 1e-9") +
                   ": no serial part measurable, speedup = N";
    } else {
        fit.status = fit_status::ok;
    }
    return fit;
}

// USL on throughput X = 1 / median. Each pattern of the bounds (alpha and
// beta free, alpha = 0, beta = 0, both 0) is its own unconstrained problem,
// solved by Levenberg-Marquardt from a few starts; a solution with a
// negative alpha or beta is infeasible, and the feasible one with the
// smallest residual is the constrained optimum. A term that moves the
// denominator at the largest count by under 1e-9 is reported as 0: so an
// Amdahl curve gives beta = 0 exactly, not 1e-19 and a peak at 3e9 workers.
// Statuses, first that applies:
//   bad_input, too_few_points (fewer than 3 worker counts);
//   retrograde  the fitted throughput at every measured count above the
//               smallest is no higher than at the smallest;
//   linear      alpha = beta = 0;
//   no_peak     beta = 0 (alpha > 0);
//   ok.
usl_fit fit_usl(std::span<const scaling_sample> samples) {
    usl_fit fit;
    fit.alpha = fit.beta = fit.gamma = fit.peak_workers = fit.max_speedup = fit.r_squared = k_nan;
    if (std::string why = input_problem(samples); !why.empty()) {
        fit.status = fit_status::bad_input;
        fit.note = std::move(why);
        return fit;
    }
    if (samples.size() < 3) {
        fit.status = fit_status::too_few_points;
        fit.note = std::to_string(samples.size()) + " worker count" + (samples.size() == 1 ? "" : "s") +
                   " for 3 parameters (alpha, beta, gamma)";
        return fit;
    }

    std::vector<usl_point> pts;
    for (const scaling_sample& s : samples) pts.push_back({static_cast<double>(s.workers), 1 / median_seconds(s)});
    std::sort(pts.begin(), pts.end(), [](const usl_point& l, const usl_point& r) { return l.n < r.n; });
    const double n_min = pts.front().n;
    const double n_max = pts.back().n;

    usl_params best{usl_best_gamma(pts, 0, 0), 0, 0};  // both bounds active: always feasible
    double best_cost = usl_cost(pts, best);
    constexpr std::array<usl_pattern, 3> patterns = {{{true, true}, {false, true}, {true, false}}};
    // Starts besides the linearised one: mild, strong contention, strong coherency.
    constexpr std::array<std::array<double, 2>, 3> others = {{{0.05, 1e-4}, {0.3, 1e-3}, {0.01, 0.02}}};
    for (const usl_pattern& pat : patterns) {
        std::vector<usl_params> starts;
        const usl_params linear_start = usl_linear_start(pts, pat, n_max);
        if (std::isfinite(linear_start[0])) starts.push_back(linear_start);
        starts.push_back({usl_best_gamma(pts, 0, 0), 0, 0});
        for (const auto& o : others) {
            const double a = pat.alpha ? o[0] : 0;
            const double b = pat.beta ? o[1] : 0;
            starts.push_back({usl_best_gamma(pts, a, b), a, b});
        }
        for (const usl_params& start : starts) {
            usl_params p = usl_levenberg_marquardt(pts, start, pat);
            const auto terms = usl_terms(p, n_max);
            if (std::fabs(terms[0]) <= k_zero_tolerance) p[1] = 0;
            if (std::fabs(terms[1]) <= k_zero_tolerance) p[2] = 0;
            if (p[1] < 0 || p[2] < 0) continue;  // outside the bounds: another pattern covers it
            p[0] = usl_best_gamma(pts, p[1], p[2]);
            const double c = usl_cost(pts, p);
            if (c < best_cost) {
                best = p;
                best_cost = c;
            }
        }
    }

    const double gamma = best[0];
    const double alpha = best[1];
    const double beta = best[2];
    fit.gamma = gamma;
    fit.alpha = alpha;
    fit.beta = beta;
    if (beta > 0 && alpha + beta <= 1) {
        fit.peak_workers = std::sqrt((1 - alpha) / beta);
        fit.max_speedup = fit.peak_workers / usl_denominator(alpha, beta, fit.peak_workers);
    } else if (beta > 0 && alpha < 1) {
        // N* < 1: on whole worker counts throughput is highest at one worker.
        // N* itself would put N (N - 1) < 0 into the denominator.
        fit.peak_workers = 1;
        fit.max_speedup = 1;
    } else {
        fit.peak_workers = 0;
        // Without a peak the curve rises toward 1/alpha when alpha < 1; with
        // alpha >= 1 it never rises above one worker's throughput.
        fit.max_speedup = alpha == 0 && beta == 0 ? k_inf : alpha < 1 ? 1 / alpha : 1.0;
    }
    if (pts.size() >= 4) {
        double mean = 0;
        for (const usl_point& q : pts) mean += q.x;
        mean /= static_cast<double>(pts.size());
        double sst = 0;
        for (const usl_point& q : pts) sst += (q.x - mean) * (q.x - mean);
        fit.r_squared = sst > 0 ? 1 - best_cost / sst : k_nan;
    }

    auto fitted = [&](double n) { return gamma * n / usl_denominator(alpha, beta, n); };
    bool rises = false;
    for (const usl_point& q : pts) rises = rises || (q.n > n_min && fitted(q.n) > fitted(n_min));
    const std::string params = "alpha " + num(alpha) + ", beta " + num(beta);
    if (!rises) {
        fit.status = fit_status::retrograde;
        fit.note = "the fitted throughput at " + num(pts[1].n) + " to " + num(n_max) +
                   " workers is no higher than at " + num(n_min) + " (" + params +
                   "): slower with more workers";
    } else if (alpha == 0 && beta == 0) {
        fit.status = fit_status::linear;
        fit.note = "alpha and beta are 0 (each moves the denominator at " + num(n_max) +
                   " workers by under 1e-9): throughput grows as N, no limit measurable";
    } else if (beta == 0) {
        fit.status = fit_status::no_peak;
        fit.note = "beta = 0 (alpha " + num(alpha) + "): throughput flattens toward " + num(fit.max_speedup) +
                   " times one worker's but never turns down";
    } else {
        fit.status = fit_status::ok;
    }
    return fit;
}

const char* to_string(change c) noexcept {
    switch (c) {
        case change::faster: return "faster";
        case change::slower: return "slower";
        case change::within_noise: return "within noise";
        case change::unknown: return "unknown";
        case change::bad_input: return "bad input";
    }
    return "?";
}

median_ratio compare_medians(std::span<const double> before, std::span<const double> after) {
    median_ratio m;
    for (const auto& [side, name] : {std::pair{before, "before"}, std::pair{after, "after"}}) {
        if (side.empty()) {
            m.note = std::string("no times ") + name;
            return m;
        }
        for (const double t : side) {
            if (!std::isfinite(t) || t <= 0) {
                m.note = "a time of " + num(t) + " s " + name + " (every time must be finite and > 0)";
                return m;
            }
        }
    }
    std::vector<double> a(before.begin(), before.end());
    std::vector<double> b(after.begin(), after.end());
    m.ratio = median_in_place(b) / median_in_place(a);
    if (before.size() < 2 || after.size() < 2) {
        m.verdict = change::unknown;
        m.note = "one repetition on a side: no interval, so no verdict";
        return m;
    }
    const bool few = before.size() < k_compare_min_reps || after.size() < k_compare_min_reps;
    splitmix64 rng(k_bootstrap_seed);
    std::vector<double> ratios;
    ratios.reserve(k_bootstrap_resamples);
    for (unsigned r = 0; r < k_bootstrap_resamples; ++r) {
        for (double& v : a) v = before[rng.below(before.size())];
        for (double& v : b) v = after[rng.below(after.size())];
        ratios.push_back(median_in_place(b) / median_in_place(a));
    }
    std::sort(ratios.begin(), ratios.end());
    m.ci_low = quantile_sorted(ratios, 0.025);
    m.ci_high = quantile_sorted(ratios, 0.975);
    if (few) {
        // Resampling 3 values has 10 distinct medians: an interval from so
        // few is far too narrow to call a change on.
        m.verdict = change::unknown;
        m.note = "fewer than " + std::to_string(k_compare_min_reps) +
                 " repetitions on a side: too few to trust a bootstrap interval (--min-reps 5)";
        return m;
    }
    m.verdict = m.ci_high < 1 ? change::faster : m.ci_low > 1 ? change::slower : change::within_noise;
    return m;
}

}  // namespace forkline

/// @file forkline/probe.hpp
/// Measure how a workload scales on this host, and why it stops scaling where
/// it does.
///
/// @code
/// forkline::probe::options o;                     // workers 1..P, repeated until stable
/// auto r = forkline::probe::scaling("fib", [](forkline::runtime& rt) {
///     rt.run([] { fib(30); });
/// }, o);
/// // r.points[i].median_s, r.amdahl.serial_fraction, r.usl.peak_workers, r.verdict
///
/// auto ws = forkline::probe::measure_work_span([] { fib(25); });
/// // ws.parallelism = work / span of the fork-join graph fib(25) builds
/// @endcode
///
/// The same result structure comes out of forkline-probe's external-command
/// mode (tools/), so a user's own program is measured the same way.
/// See "Probe" in runtime/DESIGN.md.
#pragma once

#include <cstdint>      // uint64_t
#include <functional>   // function (per repetition, never per task)
#include <iosfwd>       // ostream
#include <limits>       // numeric_limits
#include <optional>     // optional
#include <span>         // span
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

#include "forkline/detail/measure.hpp"  // measuring_scope
#include "forkline/pipeline.hpp"        // pipeline_stats, stage_mode
#include "forkline/runtime.hpp"         // runtime, worker_stats
#include "forkline/scaling.hpp"         // scaling_sample, amdahl_fit, usl_fit
#include "forkline/topology.hpp"        // topology, placement_policy

/// Measuring how a workload scales with workers, and saying what limits it.
namespace forkline::probe {

/// Where the workers' time went during the timed repetitions of one point,
/// as shares of workers x wall time (they add up to 1 within rounding).
struct time_shares {
    double working = 0;       ///< running tasks (including waits the counters cannot see)
    double stealing = 0;      ///< searching for work, search ended with a job
    double failed_search = 0; ///< searching, search ended with nothing (then parking)
    double parked = 0;        ///< asleep with nothing to do
    double join_waiting = 0;  ///< in a join or task_group::wait, nothing found to help with
};

/// One worker count's measurements.
struct point {
    /// The worker count; for a run of several processes (forkline-probe
    /// --ranks), all of them: ranks x workers per rank.
    unsigned workers = 0;
    /// Processes (MPI ranks) the run used, each with workers / ranks
    /// workers; 0 for a run in one process.
    unsigned ranks = 0;
    std::vector<double> seconds;  ///< every timed repetition, in the order run
    /// When each of `seconds` began, in seconds since the probe's first timed
    /// repetition; empty where not known (a report read back from a file
    /// without them). The fits use them to pair repetitions run close in
    /// time (see analyse).
    std::vector<double> started_s;
    double median_s = 0;          ///< median of `seconds`
    double min_s = 0;             ///< fastest repetition
    double max_s = 0;             ///< slowest repetition
    /// (q3 - q1) / median of `seconds`: the stability test for stopping.
    double spread = 0;
    double speedup = 0;     ///< 1-worker median / this median; NaN without a 1-worker point
    double efficiency = 0;  ///< speedup / workers
    double karp_flatt = 0;  ///< NaN at 1 worker and without a 1-worker point
    /// In-process runs: from the runtime's counters (runtime::stats()).
    std::optional<time_shares> shares;
    /// Working time (workers x wall x shares.working) over the 1-worker
    /// point's: above 1 when each piece of work gets slower as workers are
    /// added (memory bandwidth, shared caches, contention). NaN when unknown.
    double work_inflation = 0;
    /// Repetitions found disturbed (a busy host, see disturbance): each was
    /// set aside and run again, up to options::max_disturbed per count;
    /// past that they were kept, and `disturbed` says so.
    unsigned disturbed_reps = 0;
    bool disturbed = false;  ///< some of `seconds` come from disturbed repetitions
    /// The largest others_cpus over the kept repetitions (NaN: not measured).
    double others_cpus = std::numeric_limits<double>::quiet_NaN();
    /// The host's compute slowdown at this count (compute_ceiling): how much
    /// longer independent, cache-resident work takes per thread with this
    /// many threads running than with one. NaN when not measured.
    double host_slowdown = std::numeric_limits<double>::quiet_NaN();
    /// Bytes per second the workload moved to and from memory at this count:
    /// options::bytes_per_repetition over the median. NaN when not given.
    double bytes_per_s = std::numeric_limits<double>::quiet_NaN();
    /// The host's memory ceiling at this count (memory_ceiling), bytes per
    /// second of all threads together. NaN when not measured.
    double host_bytes_per_s = std::numeric_limits<double>::quiet_NaN();
    /// External-command runs: medians of the child's rusage. NaN / -1 in-process.
    double user_s = 0;
    double sys_s = 0;        ///< system CPU time, as user_s
    long peak_rss_kb = -1;   ///< peak resident memory in KiB, as user_s
};

/// Work and span of a fork-join computation (see measure_work_span).
struct work_span {
    double work_s = 0;             ///< all strands' time, as if run by one worker
    double span_s = 0;             ///< the critical path
    double burdened_span_s = 0;    ///< span with burden_s added at every spawn on the path
    double burden_s = 0;           ///< per-steal cost used
    double parallelism = 0;        ///< work / span: no schedule can do better
    double burdened_parallelism = 0;  ///< work / burdened span: what to expect with steal costs
    std::uint64_t spawns = 0;      ///< invoke pairs and task_group spawns recorded
    /// Time the measuring thread was not running (preempted), found at the
    /// end of strands over 50 us and taken out of them: strands are timed by
    /// the clock, and one preempted strand would otherwise set the span.
    double preempted_s = 0;
    unsigned nominal_workers = 0;  ///< worker count loops split for
};

/// A pipeline's serial stages bound its speedup: with serial stages taking a
/// share s of all stage time, no worker count beats 1/s (the busiest serial
/// stage bounds throughput on its own: total busy / its busy).
struct pipeline_bound {
    /// One stage's part of the pipeline's busy time.
    struct stage {
        std::string name;                        ///< as given to forkline::stage()
        stage_mode mode = stage_mode::parallel;  ///< serial stages make the bound
        double busy_s = 0;                       ///< time inside its callable, all threads
        double share = 0;  ///< of all stages' busy time
    };
    std::vector<stage> stages;  ///< in chain order
    std::string bottleneck;  ///< the serial stage with the most busy time ("" if none)
    double serial_share = 0; ///< all serial stages' share
    double bound = 0;        ///< total busy / the bottleneck's busy (infinity without serial stages)
};
/// The bound that one run's stage figures imply.
/// @code
/// forkline::pipeline_stats s = forkline::run_pipeline(rt, 16, read, parse, store);
/// forkline::probe::pipeline_bound b = forkline::probe::bound_of(s);  // b.bottleneck, b.bound
/// @endcode
pipeline_bound bound_of(const pipeline_stats& stats);

/// What limits a curve, decided by analyse(). See "Probe" in runtime/DESIGN.md.
enum class limit {
    unknown,          ///< one point, or nothing to decide on
    scales,           ///< efficiency at the largest count >= 0.9
    parallelism,      ///< speedup near the measured (burdened) parallelism
    serial_stage,     ///< a pipeline at its serial-stage bound
    overhead,         ///< workers busy searching, failing to steal, waiting in joins
    bandwidth,        ///< workers busy, each piece of work slower, and the bytes moved near the memory ceiling
    /// Workers busy and each piece of work slower than the host's compute
    /// ceiling explains, with memory far from (or not known to be near) its
    /// ceiling: shared caches, coherence traffic, false sharing, locks.
    contention,
    host,             ///< as far as the host's own compute ceiling lets any work scale (see compute_ceiling)
    serial_fraction,  ///< external runs: Amdahl's s explains the curve, no counters to say more
    failed,           ///< the workload failed; no fit
};
/// "scales", "parallelism", ... as the JSON output spells them.
const char* to_string(limit l) noexcept;

/// How busy the host was during one repetition, from outside the workload:
/// see "Busy host" in runtime/DESIGN.md. NaN where not measured.
struct disturbance {
    /// Other processes' CPU time on the cpus this process may use (from
    /// /proc/stat, less this process's or the command's own rusage), over
    /// the repetition's wall time: 1.0 is one whole cpu taken by others.
    double others_cpus = std::numeric_limits<double>::quiet_NaN();
    /// How far others_cpus may be off: /proc/stat counts in clock ticks,
    /// so one tick per cpu at each end, over the wall time.
    double others_error = std::numeric_limits<double>::quiet_NaN();
    /// VM steal time on those cpus over wall time x cpus (the hypervisor ran
    /// someone else while a vcpu wanted to run).
    double steal_share = std::numeric_limits<double>::quiet_NaN();
    /// In-process: the time this process's threads waited on a run queue
    /// (/proc/self/task/*/schedstat) over wall time x workers.
    double wait_share = std::numeric_limits<double>::quiet_NaN();
    bool disturbed = false;  ///< beyond the thresholds of options / the tool
};

/// Thresholds for calling a repetition disturbed (see disturbance).
struct busy_thresholds {
    double others_cpus = 0.25;  ///< others_cpus less its error above this
    double steal_share = 0.05;  ///< steal above this
    double wait_share = 0.05;   ///< in-process run-queue wait above this
};

/// Measures a disturbance around one repetition: start() before it,
/// finish() after. Reads /proc/stat (and, with in_process, this process's
/// threads' schedstat); where those cannot be read every figure stays NaN
/// and nothing is called disturbed.
class host_meter {
public:
    /// in_process: also measure this process's threads' run-queue wait.
    explicit host_meter(bool in_process);
    /// Takes the "before" readings; call just before the repetition.
    void start();
    /// own_cpu_s: the CPU time of the measured work in the repetition (this
    /// process's rusage difference, or the command's); workers: how many
    /// threads the work ran on (for wait_share).
    disturbance finish(double wall_s, double own_cpu_s, unsigned workers, const busy_thresholds& t) const;
    /// This process's user + system CPU time so far, in seconds.
    static double own_cpu_seconds();

private:
    struct stat_sample {
        double busy_s = 0, steal_s = 0;
        bool ok = false;
    };
    stat_sample read_stat() const;
    double read_wait() const;  // this process's threads' run-queue wait, seconds; NaN if unknown
    bool m_in_process;
    std::vector<unsigned> m_cpus;  // the cpus this process may use
    double m_tick_s = 0.01;
    stat_sample m_before;
    double m_wait_before = 0;
};

/// The host's own compute ceiling at one thread count: N threads, pinned as
/// N workers would be, each running an independent loop (integer and
/// floating-point arithmetic on registers, no shared data, no memory
/// traffic). Per-thread speed at N against 1 is what the host gives any work
/// (turbo falling as cores wake, SMT siblings, a hypervisor's vcpus); a
/// workload's work inflation up to it is the host's, not the workload's.
struct compute_ceiling {
    unsigned workers = 0;  ///< threads running at once
    double slowdown = 1;  ///< per-thread time at `workers` over at 1 (>= ~1)
};

/// The slowdown that paired windows show: each ratio is one thread alone's
/// rate over n threads' per-thread rate, measured back to back. The median,
/// when the middle half of the ratios (first to third quartile) lies wholly
/// above 1; else 1, since noise that straddles 1, or ratios below it (which
/// independent register-bound loops cannot give), is no slowdown the
/// windows can tell. NaN for no ratios or any that is not positive.
double slowdown_of(std::span<const double> ratios);

/// Measures compute_ceiling at each count, on runtimes placed as scaling()
/// places them (policy, use_smt): nine pairs of windows, one thread alone
/// then all, 0.6 x `seconds` each, read by slowdown_of. About
/// counts.size() x seconds x 11 in all.
std::vector<compute_ceiling> measure_compute_ceiling(std::span<const unsigned> counts,
                                                     placement_policy policy = placement_policy::compact,
                                                     bool use_smt = false, double seconds = 0.1);

/// The ceiling as measured before on this host (a file under
/// $XDG_CACHE_HOME/forkline or ~/.cache/forkline, keyed by cpu model, cpus
/// this process may use, placement and kernel), measuring and saving the
/// counts it lacks; `recalibrate` measures every count afresh. A cache that
/// cannot be read or written is measured around, not an error.
std::vector<compute_ceiling> host_compute_ceiling(std::span<const unsigned> counts, placement_policy policy,
                                                  bool use_smt, bool recalibrate, double seconds = 0.1);

/// The host's memory ceiling at one thread count: STREAM's triad
/// (a = b + q c, 24 bytes per element as STREAM counts them) by N threads
/// pinned as N workers would be, each on its own block of arrays several
/// times the last-level cache, first-touched by the thread that sweeps it.
/// A workload that moves bytes at a rate near it is bandwidth-limited; one
/// far below it that still slows down per thread is not.
struct memory_ceiling {
    unsigned workers = 0;    ///< threads running at once
    double bytes_per_s = 0;  ///< all threads together
};

/// Measures memory_ceiling at each count (the median of three windows of
/// `seconds`, after the arrays are first-touched), placed as scaling()
/// places workers. Arrays of 3 x 64-256 MiB (twice the last-level caches
/// where that fits, an eighth of the free memory at most).
std::vector<memory_ceiling> measure_memory_ceiling(std::span<const unsigned> counts,
                                                   placement_policy policy = placement_policy::compact,
                                                   bool use_smt = false, double seconds = 0.1);

/// The memory ceiling as measured before on this host, cached as
/// host_compute_ceiling caches its figures (a file of its own beside it).
std::vector<memory_ceiling> host_memory_ceiling(std::span<const unsigned> counts, placement_policy policy,
                                                bool use_smt, bool recalibrate, double seconds = 0.1);

/// The outcome of probing one workload.
struct result {
    std::string name;                        ///< the workload's name
    std::string command;  ///< external mode: the command line as given
    std::vector<point> points;               ///< one per worker count, ascending
    /// Amdahl's law fitted to the medians; where every point has the host's
    /// compute slowdown (options::ceiling), corrected for it (see
    /// scaling_sample::slowdown), and `amdahl_uncorrected` is the plain fit.
    amdahl_fit amdahl;
    bool amdahl_corrected = false;   ///< whether `amdahl` is corrected for the host
    amdahl_fit amdahl_uncorrected;   ///< the fit without the correction (equal to `amdahl` when none)
    usl_fit usl;                             ///< the Universal Scalability Law fitted to the medians
    std::optional<work_span> graph;          ///< work and span, when measured
    std::optional<pipeline_bound> pipeline;  ///< the serial-stage bound, for a pipeline workload
    limit verdict = limit::unknown;          ///< what limits the curve
    std::string why;    ///< one or two sentences with the numbers behind the verdict
    std::string error;  ///< set when the workload failed (verdict failed)
    /// options::bytes_per_repetition as given: analyse() sets each point's
    /// bytes_per_s from it. NaN: not known.
    double bytes_per_repetition = std::numeric_limits<double>::quiet_NaN();
    /// Repetitions found disturbed over all counts (set aside or kept), and
    /// whether any kept one was: then the figures are the busy host's too,
    /// and `why` starts by saying so.
    unsigned disturbed_reps = 0;
    bool disturbed = false;  ///< some point kept disturbed repetitions
};

/// A progress report after every repetition (the tool prints a line from it).
struct progress {
    std::string_view name;    ///< the workload's name; valid during the call only
    unsigned workers = 0;     ///< the worker count just run
    unsigned repetition = 0;  ///< 0 for a warm-up
    double seconds = 0;       ///< how long it took
};

/// How scaling() measures. The defaults give stable figures in seconds to
/// minutes; cut max_reps and max_point_seconds for a quick look.
/// @code
/// forkline::probe::options o;
/// o.workers = {1, 2, 4, 8};
/// o.on_progress = [](const forkline::probe::progress& p) { std::fprintf(stderr, "%u workers: %.3f s\n", p.workers, p.seconds); };
/// @endcode
struct options {
    /// Worker counts to measure; empty: default_worker_counts(discover()).
    std::vector<unsigned> workers;
    unsigned warmup = 1;      ///< untimed runs at each count first
    unsigned min_reps = 3;    ///< timed runs at each count, at least
    unsigned max_reps = 10;   ///< timed runs at each count, at most
    /// Stop repeating a count once its spread is at most this (after min_reps).
    double target_spread = 0.05;
    /// Stop repeating a count after this much time on it (after min_reps).
    double max_point_seconds = 30;
    placement_policy policy = placement_policy::compact;  ///< where each runtime's workers go
    bool use_smt = false;  ///< also place workers on SMT siblings (see default_worker_counts())
    /// Called after each repetition; may be empty.
    std::function<void(const progress&)> on_progress;
    /// When a repetition counts as disturbed (a busy host).
    busy_thresholds busy;
    /// Disturbed repetitions set aside and run again per count; past this
    /// they are kept and the point is marked disturbed. 0: never set aside.
    unsigned max_disturbed = 5;
    /// The host's compute ceiling (measure_compute_ceiling); where it has a
    /// count, that point's host_slowdown is set and the verdict can say
    /// "host". Empty: not used.
    std::vector<compute_ceiling> ceiling;
    /// The host's memory ceiling (measure_memory_ceiling); where it has a
    /// count, that point's host_bytes_per_s is set. Empty: not used.
    std::vector<memory_ceiling> memory;
    /// Bytes one repetition moves to and from memory (STREAM's counting:
    /// each element read or written once), so that a slowdown per thread
    /// can be checked against the memory ceiling; 0 for work that stays in
    /// the caches (fib, a tree search), NaN (the default) when not known.
    double bytes_per_repetition = std::numeric_limits<double>::quiet_NaN();
};

/// 1, 2, ... up to 8, then P/4, P/2, 3P/4 where above 8, and always P =
/// the cores this process may use; each NUMA node boundary (the cores of the
/// first k nodes) as an extra point; with SMT and use_smt also the PU count
/// (scaling() places workers beyond P on SMT siblings). Sorted, no duplicates.
std::vector<unsigned> default_worker_counts(const topology& topo, bool use_smt = false);

/// "1,2,4", "1-8", "1-16:2" (start-end:step) and mixes of them. Sorted, no
/// duplicates. Throws config_error naming the part it cannot read.
std::vector<unsigned> parse_worker_counts(std::string_view text);

/// Runs `repetition(rt)` on a runtime of each worker count, pinned as
/// `o.policy` says, warm-ups first, then rounds over the counts (one
/// repetition of every count still short of its stop rule per round, so slow
/// drifts of the host hit every count alike), and fits the curve. An
/// exception from `repetition` stops the probe: the result has verdict
/// `failed`, `error` set, and no fit.
/// @code
/// forkline::probe::result r = forkline::probe::scaling("sort", [&](forkline::runtime& rt) {
///     std::vector<int> v = data;  // each repetition sorts a fresh copy
///     rt.run([&] { forkline::parallel_sort(v.begin(), v.end()); });
/// });
/// std::printf("%s: %s\n", forkline::probe::to_string(r.verdict), r.why.c_str());
/// @endcode
result scaling(std::string name, const std::function<void(runtime&)>& repetition, const options& o = {});

/// Fills median_s, min_s, max_s and spread from p.seconds.
void summarise(point& p);

/// The times the fits see, one sample per point in the points' order (sorted
/// by count). Where every point has its started_s, each repetition is
/// divided by the lowest count's repetition that started last before it (in
/// a round the counts run in ascending order: the same round's, which ended
/// as this one began) and multiplied by that count's median. The fits then
/// see ratios of times measured back to back, which a host whose speed
/// drifts or jumps between states (a VM's clock, a neighbour) moves alike.
/// Without start times, the times as measured.
std::vector<scaling_sample> paired_seconds(const std::vector<point>& points);

/// Fills speedup, efficiency, Karp-Flatt, work inflation, the fits and the
/// verdict from `r.points` (and r.graph / r.pipeline when set). The fits
/// take paired_seconds; the speedups the plain medians. scaling() calls it;
/// the external mode calls it on its own points.
void analyse(result& r);

/// How a work/span measurement is made.
struct work_span_options {
    /// Loops split as for this many workers (parallel_for's grain depends on
    /// it); 0: the cores this process may use.
    unsigned nominal_workers = 0;
    /// Added per spawn on the burdened path; negative: measure_steal_cost().
    double burden_s = -1;
};

/// Runs fn() once on the calling thread in measuring mode: invoke, task_group,
/// parallel_for/reduce/sort run their pieces one after another in program
/// order, and a clock read at every fork and join gives each strand's time,
/// so that work (the sum) and span (the longest chain of dependent strands)
/// come out. Work is measured, not counted: it includes the measuring.
/// fn must use the fork-join API directly: runtime::run() or a pipeline
/// inside runs on that runtime's workers unmeasured, as one strand.
/// Throws config_error when called from a worker thread.
/// @code
/// forkline::probe::work_span ws = forkline::probe::measure_work_span([] { fib(25); });
/// std::printf("parallelism %.0f (burdened %.0f)\n", ws.parallelism, ws.burdened_parallelism);
/// @endcode
template <class F>
work_span measure_work_span(F&& fn, const work_span_options& o = {}) {
    detail::measuring_scope scope(o.nominal_workers, o.burden_s);
    fn();
    return scope.finish();
}

/// The cost of one steal as seen by the joiner on this host: a 2-worker
/// runtime pushes a job that the other worker takes, runs and completes
/// while the pusher waits; the median over many rounds, in seconds. 0 on a
/// host with one usable core.
double measure_steal_cost();

/// Writes the results as one JSON document: {"host": {...}, "workloads":
/// [{"name", "points": [{"workers", "ranks"?, "workers_per_rank"?, "median_s", "min_s", "max_s", "reps",
/// "spread", "speedup", "efficiency", "karp_flatt", "shares"?, ...}],
/// "amdahl": {"serial_fraction", "ci_low", "ci_high", "max_speedup",
/// "status", "note"}, "usl": {"alpha", "beta", "gamma", "peak_workers"
/// (null without a peak), "max_speedup", "status", "note"}, "karp_flatt":
/// [...], "work_span"?, "pipeline"?, "disturbed_reps", "disturbed", "verdict", "why", "error"?}]}
/// (each point also has "disturbed_reps", "disturbed", "others_cpus", "host_slowdown"). NaN and
/// infinity are written as null.
void write_json(std::ostream& out, std::span<const result> results);
/// One row per (workload, worker count): name,workers,median_s,min_s,max_s,
/// reps,spread,speedup,efficiency,karp_flatt,working,stealing,failed_search,
/// parked,join_waiting,user_s,sys_s,peak_rss_kb,ranks. Empty cells for unknowns
/// (ranks: empty for a run in one process).
void write_csv(std::ostream& out, std::span<const result> results);

}  // namespace forkline::probe

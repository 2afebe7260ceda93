// tools/probe_command.hpp: forkline-probe's external-command mode.
//
//   forkline-probe --workers 1,2,4 -- ./my-pipeline --threads {workers} in.dat
//
// Each run gets FORKLINE_WORKERS=N in its environment and every "{workers}"
// in its arguments replaced by N; it is timed (wall clock around fork to
// wait4) with the child's user and system time and peak RSS from wait4's
// rusage. A run that exits non-zero or dies of a signal stops the probe.
#pragma once

#include <span>    // span
#include <string>  // string
#include <vector>  // vector

#include "forkline/probe.hpp"  // probe::result, probe::options

namespace forkline_probe {

/// One run of the command.
struct command_run {
    double wall_s = 0;
    double user_s = 0;
    double sys_s = 0;
    long peak_rss_kb = 0;  ///< ru_maxrss of the child
    int exit_code = 0;     ///< valid when signal == 0
    int signal = 0;        ///< the signal that ended it, 0 if it exited
    std::string stderr_tail;  ///< the last 4 KiB it wrote to stderr
    bool ok() const noexcept { return signal == 0 && exit_code == 0; }
};

/// argv with every occurrence of "{workers}" (also inside a longer
/// argument, e.g. "-j{workers}") replaced by the decimal count, and, when
/// ranks > 0, every "{ranks}" by the rank count.
std::vector<std::string> substitute_workers(std::span<const std::string> argv, unsigned workers, unsigned ranks = 0);

/// Runs argv (looked up in PATH like execvp) with FORKLINE_WORKERS=workers
/// set (replacing any inherited value), stdin from /dev/null, stdout to
/// /dev/null unless show_output (then inherited), stderr captured (and also
/// copied to ours when show_output). Throws forkline::system_failure naming
/// the call (pipe2, fork, wait4, ...) when the run cannot be made; a command
/// that cannot be executed (ENOENT, EACCES) comes back as exit code 127 / 126
/// with the reason in stderr_tail.
command_run run_command(std::span<const std::string> argv, unsigned workers, bool show_output);

/// The whole mode: warm-ups, then rounds over the counts exactly as
/// forkline::probe::scaling does (same stop rule, same on_progress calls),
/// then probe::analyse(). The result's name is the program's base name and
/// `command` the command line. The first failing run stops it: verdict
/// failed, no fit, `error` = "COMMAND (at N workers) exited with status S"
/// or "... was killed by signal NAME", then its stderr tail.
///
/// With `ranks` (the --ranks mode, for MPI programs): every (ranks, workers)
/// pair of the two lists is a point, "{ranks}" in argv becomes the rank
/// count and "{workers}" (and FORKLINE_WORKERS) the workers per rank; the
/// point's `workers` is ranks x workers per rank, the count the fits see,
/// and its `ranks` the rank count. Pairs with the same product are separate
/// points (1 rank of 2 workers is not 2 ranks of 1).
forkline::probe::result probe_command(std::span<const std::string> argv, const forkline::probe::options& o,
                                      bool show_output, std::span<const unsigned> ranks = {});

/// What the fits say of N nodes of W workers each (n = N x W, the count the
/// USL and Amdahl's law are evaluated at), for --nodes: the speedup over one
/// worker (USL and Amdahl), the effective workers (the USL speedup), and the
/// coordination paths between nodes, N (N - 1) / 2.
struct node_prediction {
    unsigned nodes = 0;
    unsigned workers = 0;      ///< per node
    double usl_speedup = 0;    ///< over one worker; NaN without a USL fit
    double amdahl_speedup = 0; ///< over one worker; NaN without an Amdahl fit
    double paths = 0;          ///< N (N - 1) / 2
    double beyond = 0;         ///< n over the largest measured count: how far the fit is stretched
};
std::vector<node_prediction> predict_nodes(const forkline::probe::result& r, std::span<const unsigned> nodes,
                                           unsigned workers_per_node);

}  // namespace forkline_probe

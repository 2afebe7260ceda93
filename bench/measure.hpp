// bench/measure.hpp: one measurement in a child process, and the statistics over repetitions.
//
// Each measurement runs in a fork()ed child, which sets up one variant, warms
// it up, times one repetition and writes the answer to the parent through a
// pipe. A fresh process per measurement means one runtime's threads never
// linger into the next variant's run, and wait4() reports that variant's own
// peak RSS. The parent never starts a runtime (forkline, TBB or OpenMP), so
// it stays single-threaded and safe to fork.
#pragma once

#include <cstdint>      // int64_t
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

#include "timing.hpp"    // sample
#include "workload.hpp"  // workload

namespace forkline_bench {

/// What the parent learnt from one child.
struct child_outcome {
    bool ok = false;        ///< answered, answer right, exited cleanly
    bool answered = false;  ///< the child sent a measurement (right or wrong)
    sample measured;        ///< valid when answered
    long peak_rss_kib = 0;  ///< the child's ru_maxrss; 0 when it could not be started
    std::string error;      ///< why not ok
};

/// Forks, runs w.run(impl, workers) in the child, reads its answer and
/// checks it here. A child still running after `timeout_s` is killed.
/// With a trace_path, the child runs with FORKLINE_TRACE set to it and, once
/// it has answered, exits through exit() so that the trace is written (a
/// variant that starts no forkline runtime writes nothing).
child_outcome measure_in_child(const workload& w, std::string_view impl, unsigned workers,
                               double timeout_s, const std::string& trace_path = {});

/// FORKLINE_TRACE's file for one configuration: `base` with ".IMPL.wN"
/// inserted before a ".json" ending, or appended with ".json" otherwise.
std::string trace_file_for(const std::string& base, std::string_view impl, unsigned workers);

/// One (impl, workers) configuration and all its repetitions.
struct config_result {
    std::string impl;
    unsigned workers = 1;
    std::vector<double> seconds;      ///< good repetitions only: a wrong answer is not a time
    bool have_result = false;
    std::int64_t result = 0;          ///< the last answer a child gave, right or wrong
    long peak_rss_kib = 0;            ///< the highest over all repetitions
    unsigned failures = 0;
    std::vector<std::string> errors;  ///< "rep 3: ..." per failed repetition
    std::string trace_file;           ///< FORKLINE_TRACE's file of its last repetition, when one was written

    void add(unsigned rep, const child_outcome& outcome);
    bool ok() const noexcept { return failures == 0 && !seconds.empty(); }
};

struct spread {
    double median = 0.0;
    double min = 0.0;
    double max = 0.0;
};

/// Median (mean of the middle two for an even count), min and max. `v` not empty.
spread summarise(std::vector<double> v);

}  // namespace forkline_bench

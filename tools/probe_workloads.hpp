// tools/probe_workloads.hpp: the built-in workloads forkline-probe runs with
// no command: each one a shape of work whose limit differs.
#pragma once

#include <functional>  // function
#include <string>      // string
#include <vector>      // vector

#include "forkline/probe.hpp"  // probe::result, probe::options

namespace forkline_probe {

/// How long the built-in suite runs: quick (~30 s on 2 cores), normal (at
/// most ~2 minutes on 2 cores), thorough (bigger inputs, more repetitions).
enum class effort { quick, normal, thorough };

struct builtin {
    std::string name;         ///< "fib", "uts", "triad", "pipeline"
    std::string description;  ///< one line: the input and what it stresses
    /// Probes the workload over o.workers (scaling curve, plus its work/span
    /// or pipeline bound), calls probe::analyse and returns the result. A
    /// wrong answer from any repetition (checked every time) is a failure:
    /// verdict failed with the expected and the actual value in `error`.
    std::function<forkline::probe::result(const forkline::probe::options& o, effort e)> run;
};

/// In the order the suite runs them.
std::vector<builtin> builtin_workloads();

}  // namespace forkline_probe

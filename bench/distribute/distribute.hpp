// bench/distribute/distribute.hpp: `forkline-bench distribute`, the
// comparison of work-distribution policies on one open-loop request stream.
#pragma once

namespace forkline_bench::distribute {

/// argv[0] is "distribute"; returns the process exit status (0 every point
/// has a figure, 1 some point has none or an output failed, 2 bad command line).
int run_distribute(int argc, char** argv);

}  // namespace forkline_bench::distribute

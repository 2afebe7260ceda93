// bench/distribute/herd.hpp: the thundering-herd benchmark. 1,000 waiters on
// one "configuration changed" event, each then calling a simulated service
// of fixed capacity: woken all at once, all at once with full jitter, or one
// at a time with tokens. See herd.cpp and bench/RESULTS.md, "Thundering herd".
#pragma once

namespace forkline_bench::distribute {

/// argv[0] is the program's or the subcommand's name ("herd"); the options
/// follow (--help lists them). Returns the process exit status: 0 every run
/// served every waiter, 1 a run failed or an output could not be written,
/// 2 bad command line.
int herd_main(int argc, char** argv);

}  // namespace forkline_bench::distribute

// forkline-herd: the thundering-herd benchmark on its own (herd.cpp), until
// forkline-bench runs it as `forkline-bench distribute herd`.
//   forkline-herd [--reps 5] [--json FILE]   (--help for the rest)
#include "herd.hpp"  // herd_main

int main(int argc, char** argv) { return forkline_bench::distribute::herd_main(argc, argv); }

// bench/uts/uts.hpp: Unbalanced Tree Search, a spawn for every child of every node.
//
// Every parallel variant walks the tree the same way. A node with k
// children splits the range [0, k) of child indices in two, makes the upper
// half a task that others may steal and walks the lower half at once, down to
// single children; so a node spawns k - 1 tasks, the whole tree leaves - 1.
// Counts (nodes, leaves, greatest depth) come back up the recursion in each
// frame's locals: no shared counter, no allocation per node beyond what the
// runtime itself does for a task. No serial cutoff: the time is the SHA-1 work
// per node (about 0.1-0.2 us) plus the runtime's cost per spawn and join.
#pragma once

#include <cstddef>  // size_t
#include <memory>   // unique_ptr

#include "timing.hpp"     // sample
#include "uts_tree.hpp"   // tree, tree_params, tree_counts
#include "workload.hpp"   // workload

namespace forkline_bench {

std::unique_ptr<workload> make_uts_workload();

/// The stack of every thread that walks a tree, in every variant: the
/// thread that runs the variant in the child, forkline's workers, TBB's
/// and OpenMP's threads. T3L is 17,844 levels deep and a walk takes about
/// 1 KiB of stack per level (more in some variants), and any thread may
/// take a subtree near the root. Only the pages a walk touches count in RSS.
inline constexpr std::size_t k_uts_stack_bytes = std::size_t{256} << 20;

/// One child's measurement: the timing, and what the warm-up and the timed
/// traversal counted (sample::result carries the nodes only; the workload
/// checks leaves and depth in the child).
struct uts_sample {
    sample timing;
    uts::tree_counts warmup;
    uts::tree_counts timed;
};

// One source file per variant, so that only uts_tbb.cpp sees TBB's flags and
// only uts_omp.cpp is built with -fopenmp. Each sets up its implementation
// with `workers` threads in all, warms up with one traversal, times a second.
uts_sample run_uts_forkline(const uts::tree_params& p, unsigned workers);
uts_sample run_uts_serial(const uts::tree_params& p);
uts_sample run_uts_tbb(const uts::tree_params& p, unsigned workers);

/// The forkline traversal itself; call it on a forkline worker (inside
/// runtime::run). tests/test_uts.cpp checks it against uts::count_serial.
uts::tree_counts count_uts_forkline(const uts::tree& t);

}  // namespace forkline_bench

/// In forkline-bench-openmp.so, found by name (see bench/openmp_module.hpp).
extern "C" void forkline_bench_uts_omp(const forkline_bench::uts::tree_params* p, unsigned workers,
                                       forkline_bench::uts_sample* out);

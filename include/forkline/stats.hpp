/// @file forkline/stats.hpp
/// What a runtime did, as numbers: per-worker counters, their total,
/// per-stage totals of the pipelines it ran, and its stream executors.
///
/// @code
/// forkline::runtime_report r = forkline::report(rt);
/// std::printf("%llu steals\n", (unsigned long long)(r.total.steals_near + r.total.steals_far));
/// forkline::write_stats_text(std::cerr, r);   // what FORKLINE_STATS=1 prints
/// @endcode
///
/// FORKLINE_STATS=1 prints the text form to stderr when a runtime stops;
/// FORKLINE_STATS=json:FILE writes every stopped runtime's report to FILE.
/// See "Counters" in runtime/DESIGN.md.
#pragma once

#include <cstddef>  // size_t
#include <cstdint>  // uint64_t
#include <iosfwd>   // ostream
#include <span>     // span
#include <string>   // string
#include <vector>   // vector

#include "forkline/pipeline.hpp"  // stage_mode
#include "forkline/runtime.hpp"   // runtime, worker_stats
#include "forkline/stream.hpp"    // stream_stats

namespace forkline {

/// One stage's totals over every run of the same pipeline (the same stage
/// names in the same order) on one runtime.
struct stage_totals {
    std::string pipeline;  ///< the stage names joined with '|', such as "read|parse|fold"
    std::string stage;     ///< the stage's name
    stage_mode mode = stage_mode::parallel;  ///< as given to stage()
    std::uint64_t runs = 0;  ///< run_pipeline calls
    std::uint64_t items = 0;    ///< items it took, over all runs
    std::uint64_t busy_ns = 0;  ///< time inside its callable, all threads, all runs
    std::uint64_t wall_ns = 0;  ///< of the pipeline's runs (the same for each of its stages)
};

/// A snapshot of a runtime's counters.
struct runtime_report {
    unsigned workers = 0;                  ///< the runtime's worker count
    double uptime_s = 0;  ///< since the runtime started
    std::vector<worker_stats> per_worker;  ///< in worker order
    worker_stats total;  ///< sums; `worker` and `cpu` are 0
    std::vector<stage_totals> stages;      ///< each stage of each distinct pipeline it ran
    /// Its stream executors: a snapshot of each live one, then the last
    /// stats of each that ended (the first k_streams_kept; later ones are
    /// counted in streams_dropped).
    std::vector<stream_stats> streams;
    std::uint64_t streams_dropped = 0;  ///< ended executors past k_streams_kept, not listed
};

/// The most ended stream executors a runtime keeps for its report.
inline constexpr std::size_t k_streams_kept = 256;

/// Sums of every counter (worker and cpu left 0).
worker_stats total_of(std::span<const worker_stats> workers);

/// A snapshot of rt's counters and pipeline totals; may be called while rt
/// runs, for example before and after a phase to compare them.
/// @code
/// forkline::runtime_report r = forkline::report(rt);
/// for (const forkline::worker_stats& w : r.per_worker)
///     std::printf("worker %u: %llu tasks\n", w.worker, (unsigned long long)w.tasks);
/// @endcode
runtime_report report(const runtime& rt);

/// One line per worker, one total, one per pipeline stage, one per stream
/// executor (stats_line), each starting "forkline-stats:" and made of
/// key=value fields, e.g.
///   forkline-stats: worker=0 cpu=0 tasks=1021 spawned=1020 steals_near=3 ...
///   forkline-stats: total workers=2 uptime_s=0.51 tasks=2042 ...
///   forkline-stats: stage=parse pipeline=read|parse|fold mode=parallel runs=1 items=64 busy_ms=410.2 wall_ms=210.7
///   forkline-stats: stream=orders arrived=300 done=300 ... class0_p99_us=41.0 ...
void write_stats_text(std::ostream& out, const runtime_report& r);

/// {"runtimes": [{"workers", "uptime_s", "total": {...}, "per_worker":
/// [{...}], "stages": [{...}], "streams": [{"name", "arrived", ...,
/// "classes": [{"count", "p50_ns", ...}]}], "streams_dropped"}]}: counters
/// as integers, times as *_ns.
void write_stats_json(std::ostream& out, std::span<const runtime_report> reports);

}  // namespace forkline

// runtime/stats_state.hpp: what a runtime keeps for FORKLINE_STATS: when it
// started, the pipelines it ran (per-stage totals) and where to report.
// Private to the runtime. See "Counters" in runtime/DESIGN.md.
#pragma once

#include <chrono>  // steady_clock
#include <mutex>   // mutex
#include <string>  // string
#include <vector>  // vector

#include "forkline/stats.hpp"  // stage_totals, runtime_report

namespace forkline::detail {

class stats_state {
public:
    /// `setting`: "off", "1"/"text", "json:FILE", or "" for the
    /// environment's FORKLINE_STATS. Throws config_error naming the value
    /// when it is none of those.
    explicit stats_state(const std::string& setting);

    /// Adds one run_pipeline's figures (once per run, never per item).
    void record(const pipeline_stats& s);
    std::vector<stage_totals> stages() const;
    double uptime_s() const;

    /// At stop: prints or writes the report as configured, once.
    void report_at_stop(const runtime& rt) noexcept;

private:
    enum class mode { off, text, json };
    mode m_mode = mode::off;
    std::string m_path;
    std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
    mutable std::mutex m_mutex;
    std::vector<stage_totals> m_stages;  // guarded by m_mutex
    bool m_reported = false;             // guarded by m_mutex
};

/// The runtime's stats_state (defined in runtime.cpp, next to runtime_core).
stats_state& stats_of(const runtime& rt);
/// The same from a worker's core, for pipelines.
void record_pipeline(runtime_core& core, const pipeline_stats& s);

}  // namespace forkline::detail

// runtime/stats_state.hpp: what a runtime keeps for FORKLINE_STATS: when it
// started, the pipelines it ran (per-stage totals) and where to report.
// Private to the runtime. See "Counters" in runtime/DESIGN.md.
#pragma once

#include <algorithm>  // find
#include <chrono>   // steady_clock
#include <cstdlib>  // getenv
#include <mutex>    // mutex
#include <string>   // string
#include <vector>   // vector

#include "forkline/errors.hpp"  // config_error
#include "forkline/stats.hpp"   // stage_totals, runtime_report

namespace forkline::detail {

class stats_state {
public:
    /// `setting`: "off", "1"/"text", "json:FILE", or "" for the
    /// environment's FORKLINE_STATS. Throws config_error naming the value
    /// when it is none of those.
    /// Defined here, not in stats.cpp, so that it can be called without the
    /// runtime (tests/fuzz/ feeds it every value).
    explicit stats_state(const std::string& setting);

    /// Adds one run_pipeline's figures (once per run, never per item).
    void record(const pipeline_stats& s);
    std::vector<stage_totals> stages() const;
    double uptime_s() const;

    /// FORKLINE_STATS asks for text lines on stderr.
    bool text() const noexcept { return m_mode == mode::text; }

    /// A stream executor made on this runtime: report() takes its snapshot.
    void add_stream(const stream_executor* ex);
    /// It ends: report() keeps its last stats instead (up to k_streams_kept).
    void end_stream(const stream_executor* ex, stream_stats last) noexcept;
    /// Snapshots of the live executors, then the ended ones' last stats.
    std::vector<stream_stats> streams(std::uint64_t& dropped) const;

    /// At stop: prints or writes the report as configured, once.
    void report_at_stop(const runtime& rt) noexcept;

private:
    enum class mode { off, text, json };
    mode m_mode = mode::off;
    std::string m_path;
    std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
    mutable std::mutex m_mutex;
    std::vector<stage_totals> m_stages;  // guarded by m_mutex
    std::vector<const stream_executor*> m_live_streams;  // guarded by m_mutex
    std::vector<stream_stats> m_ended_streams;           // guarded by m_mutex
    std::uint64_t m_streams_dropped = 0;                 // guarded by m_mutex
    bool m_reported = false;             // guarded by m_mutex
};

inline stats_state::stats_state(const std::string& setting) {
    std::string value = setting;
    const char* source = "runtime_config::stats";
    if (value.empty()) {
        if (const char* env = std::getenv("FORKLINE_STATS")) value = env;
        source = "FORKLINE_STATS";
    }
    if (value.empty() || value == "0" || value == "off") {
        m_mode = mode::off;
    } else if (value == "1" || value == "text") {
        m_mode = mode::text;
    } else if (value.rfind("json:", 0) == 0 && value.size() > 5) {
        m_mode = mode::json;
        m_path = value.substr(5);
    } else {
        throw config_error(std::string(source) + "='" + value +
                           "' is not understood: use 1 (text on stderr at shutdown), json:FILE, or 0/off");
    }
}

/// The runtime's stats_state (defined in runtime.cpp, next to runtime_core).
stats_state& stats_of(const runtime& rt);
/// The same from a worker's core, for pipelines.
void record_pipeline(runtime_core& core, const pipeline_stats& s);

}  // namespace forkline::detail

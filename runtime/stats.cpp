// runtime/stats.cpp: FORKLINE_STATS, and the report structures of stats.hpp.
// See "Counters" in runtime/DESIGN.md.
#include "forkline/stats.hpp"

#include <cerrno>    // errno
#include <cstdio>    // fprintf, snprintf
#include <cstring>   // strerror
#include <fstream>   // ofstream
#include <iostream>  // cerr
#include <sstream>   // ostringstream

#include "stats_state.hpp"  // stats_state

namespace forkline {

namespace {

const char* mode_name(stage_mode m) {
    switch (m) {
        case stage_mode::serial_in_order: return "serial_in_order";
        case stage_mode::serial_out_of_order: return "serial_out_of_order";
        case stage_mode::parallel: return "parallel";
    }
    return "parallel";
}

std::string ms(std::uint64_t ns) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ns) * 1e-6);
    return buf;
}

/// JSON string body: the names here are stage names a program chose.
std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

void counters_text(std::ostream& out, const worker_stats& s) {
    out << "tasks=" << s.tasks << " spawned=" << s.spawned << " steals_near=" << s.steals_near
        << " steals_far=" << s.steals_far << " failed_steals=" << s.failed_steals << " parks=" << s.parks
        << " wakeups=" << s.wakeups << " injected=" << s.injected << " idle_ms=" << ms(s.idle_ns)
        << " search_ms=" << ms(s.search_ns) << " failed_search_ms=" << ms(s.failed_search_ns)
        << " parked_ms=" << ms(s.parked_ns) << " join_wait_ms=" << ms(s.join_wait_ns);
}

void counters_json(std::ostream& out, const worker_stats& s) {
    out << "\"tasks\": " << s.tasks << ", \"spawned\": " << s.spawned << ", \"steals_near\": " << s.steals_near
        << ", \"steals_far\": " << s.steals_far << ", \"failed_steals\": " << s.failed_steals
        << ", \"parks\": " << s.parks << ", \"wakeups\": " << s.wakeups << ", \"injected\": " << s.injected
        << ", \"idle_ns\": " << s.idle_ns << ", \"search_ns\": " << s.search_ns
        << ", \"failed_search_ns\": " << s.failed_search_ns << ", \"parked_ns\": " << s.parked_ns
        << ", \"join_wait_ns\": " << s.join_wait_ns;
}

/// Every report written to a json:FILE so far in this process, so that the
/// file holds all runtimes that stopped, not just the last.
std::mutex g_json_mutex;
std::vector<runtime_report>& json_reports() {
    static std::vector<runtime_report> all;
    return all;
}

}  // namespace

worker_stats total_of(std::span<const worker_stats> workers) {
    worker_stats t;
    for (const worker_stats& s : workers) {
        t.spawned += s.spawned;
        t.tasks += s.tasks;
        t.steals_near += s.steals_near;
        t.steals_far += s.steals_far;
        t.failed_steals += s.failed_steals;
        t.parks += s.parks;
        t.wakeups += s.wakeups;
        t.idle_ns += s.idle_ns;
        t.search_ns += s.search_ns;
        t.failed_search_ns += s.failed_search_ns;
        t.parked_ns += s.parked_ns;
        t.join_wait_ns += s.join_wait_ns;
        t.injected += s.injected;
    }
    return t;
}

runtime_report report(const runtime& rt) {
    runtime_report r;
    r.workers = rt.worker_count();
    r.per_worker = rt.stats();
    r.total = total_of(r.per_worker);
    const detail::stats_state& st = detail::stats_of(rt);
    r.uptime_s = st.uptime_s();
    r.stages = st.stages();
    r.streams = st.streams(r.streams_dropped);
    return r;
}

void write_stats_text(std::ostream& out, const runtime_report& r) {
    for (const worker_stats& s : r.per_worker) {
        out << "forkline-stats: worker=" << s.worker << " cpu=" << s.cpu << " ";
        counters_text(out, s);
        out << "\n";
    }
    char up[48];
    std::snprintf(up, sizeof up, "%.3f", r.uptime_s);
    out << "forkline-stats: total workers=" << r.workers << " uptime_s=" << up << " ";
    counters_text(out, r.total);
    out << "\n";
    for (const stage_totals& s : r.stages) {
        out << "forkline-stats: stage=" << s.stage << " pipeline=" << s.pipeline << " mode=" << mode_name(s.mode)
            << " runs=" << s.runs << " items=" << s.items << " busy_ms=" << ms(s.busy_ns)
            << " wall_ms=" << ms(s.wall_ns) << "\n";
    }
    for (const stream_stats& s : r.streams) out << stats_line(s) << "\n";
    if (r.streams_dropped > 0) out << "forkline-stats: streams_dropped=" << r.streams_dropped << "\n";
}

void write_stats_json(std::ostream& out, std::span<const runtime_report> reports) {
    out << "{\"runtimes\": [";
    bool first_runtime = true;
    for (const runtime_report& r : reports) {
        out << (first_runtime ? "\n" : ",\n") << "  {\"workers\": " << r.workers;
        char up[48];
        std::snprintf(up, sizeof up, "%.9g", r.uptime_s);
        out << ", \"uptime_s\": " << up << ",\n   \"total\": {";
        counters_json(out, r.total);
        out << "},\n   \"per_worker\": [";
        for (std::size_t i = 0; i < r.per_worker.size(); ++i) {
            const worker_stats& s = r.per_worker[i];
            out << (i == 0 ? "\n    {" : ",\n    {") << "\"worker\": " << s.worker << ", \"cpu\": " << s.cpu << ", ";
            counters_json(out, s);
            out << "}";
        }
        out << "],\n   \"stages\": [";
        for (std::size_t i = 0; i < r.stages.size(); ++i) {
            const stage_totals& s = r.stages[i];
            out << (i == 0 ? "\n    {" : ",\n    {") << "\"pipeline\": " << quoted(s.pipeline)
                << ", \"stage\": " << quoted(s.stage) << ", \"mode\": \"" << mode_name(s.mode)
                << "\", \"runs\": " << s.runs << ", \"items\": " << s.items << ", \"busy_ns\": " << s.busy_ns
                << ", \"wall_ns\": " << s.wall_ns << "}";
        }
        out << "],\n   \"streams\": [";
        for (std::size_t i = 0; i < r.streams.size(); ++i) {
            const stream_stats& s = r.streams[i];
            const stream_counters& c = s.counters;
            char rates[160];
            std::snprintf(rates, sizeof rates,
                          "\"uptime_s\": %.9g, \"utilisation\": %.6g, \"arrival_per_s\": %.9g, \"completion_per_s\": %.9g",
                          s.uptime_s, s.utilisation, s.arrival_rate, s.completion_rate);
            out << (i == 0 ? "\n    {" : ",\n    {") << "\"name\": " << quoted(s.name) << ", \"arrived\": " << c.arrived
                << ", \"done\": " << c.done << ", \"failed\": " << c.failed << ", \"rejected\": " << c.rejected
                << ", \"expired\": " << c.expired << ", \"cancelled\": " << c.cancelled << ", \"queued\": " << c.queued
                << ", \"running\": " << c.running << ", \"peak_queued\": " << s.peak_queued << ", " << rates
                << ", \"classes\": [";
            for (std::size_t k = 0; k < s.latency.size(); ++k) {
                const latency_summary& l = s.latency[k];
                out << (k == 0 ? "" : ", ") << "{\"class\": " << k << ", \"queued\": "
                    << (k < s.queued_by_class.size() ? s.queued_by_class[k] : 0) << ", \"count\": " << l.count
                    << ", \"p50_ns\": " << l.p50 << ", \"p90_ns\": " << l.p90 << ", \"p99_ns\": " << l.p99
                    << ", \"p999_ns\": " << l.p999 << ", \"max_ns\": " << l.max << "}";
            }
            out << "]}";
        }
        out << "], \"streams_dropped\": " << r.streams_dropped << "}";
        first_runtime = false;
    }
    out << "\n]}\n";
}

namespace detail {

void stats_state::record(const pipeline_stats& s) {
    // Kept whatever the mode: report() shows them too. Once per run.
    std::string key;
    for (const stage_stats& st : s.stages) key += (key.empty() ? "" : "|") + st.name;
    std::lock_guard<std::mutex> lock(m_mutex);
    for (const stage_stats& st : s.stages) {
        stage_totals* t = nullptr;
        for (stage_totals& e : m_stages) {
            if (e.pipeline == key && e.stage == st.name) t = &e;
        }
        if (t == nullptr) {
            m_stages.push_back({key, st.name, st.mode, 0, 0, 0, 0});
            t = &m_stages.back();
        }
        t->runs += 1;
        t->items += st.items;
        t->busy_ns += st.busy_ns;
        t->wall_ns += s.wall_ns;
    }
}

void stats_state::add_stream(const stream_executor* ex) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_live_streams.push_back(ex);
}

void stats_state::end_stream(const stream_executor* ex, stream_stats last) noexcept {
    std::lock_guard<std::mutex> lock(m_mutex);
    const auto it = std::find(m_live_streams.begin(), m_live_streams.end(), ex);
    if (it != m_live_streams.end()) m_live_streams.erase(it);  // never dangling, whatever follows
    bool kept = false;
    if (m_ended_streams.size() < k_streams_kept) {
        try {
            m_ended_streams.push_back(std::move(last));
            kept = true;
        } catch (...) {  // no memory: counted, not listed
        }
    }
    if (!kept) ++m_streams_dropped;
}

// Holding m_mutex while a live executor takes its snapshot: its destructor
// waits in end_stream, so it cannot go away meanwhile (and it takes its own
// mutex only before that, never while calling in here).
std::vector<stream_stats> stats_state::streams(std::uint64_t& dropped) const {
    std::lock_guard<std::mutex> lock(m_mutex);
    std::vector<stream_stats> out;
    out.reserve(m_live_streams.size() + m_ended_streams.size());
    for (const stream_executor* ex : m_live_streams) out.push_back(ex->stats());
    out.insert(out.end(), m_ended_streams.begin(), m_ended_streams.end());
    dropped = m_streams_dropped;
    return out;
}

std::vector<stage_totals> stats_state::stages() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_stages;
}

double stats_state::uptime_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
}

void stats_state::report_at_stop(const runtime& rt) noexcept {
    if (m_mode == mode::off) return;
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (m_reported) return;
        m_reported = true;
    }
    try {
        const runtime_report r = report(rt);
        if (m_mode == mode::text) {
            std::ostringstream text;  // one write, so lines of two runtimes do not interleave
            write_stats_text(text, r);
            std::fputs(text.str().c_str(), stderr);
            return;
        }
        std::lock_guard<std::mutex> lock(g_json_mutex);
        json_reports().push_back(r);
        std::ofstream f(m_path, std::ios::trunc);
        if (f) write_stats_json(f, json_reports());
        f.flush();
        if (!f) {
            const int e = errno;
            std::fprintf(stderr, "forkline: FORKLINE_STATS: cannot write %s: %s\n", m_path.c_str(),
                         e != 0 ? std::strerror(e) : "write failed");
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "forkline: FORKLINE_STATS: no report: %s\n", e.what());
    }
}

}  // namespace detail

}  // namespace forkline

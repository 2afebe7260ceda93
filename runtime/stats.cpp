// runtime/stats.cpp: FORKLINE_STATS, and the report structures of stats.hpp.
// See "Counters" in runtime/DESIGN.md.
#include "forkline/stats.hpp"

#include <cerrno>    // errno
#include <cstdio>    // fprintf, snprintf
#include <cstring>   // strerror
#include <fstream>   // ofstream
#include <iostream>  // cerr
#include <sstream>   // ostringstream

#include "json_writer.hpp"  // json::writer
#include "stats_state.hpp"  // stats_state

namespace forkline {

namespace {

namespace json = forkline::detail::json;

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

void counters_text(std::ostream& out, const worker_stats& s) {
    out << "tasks=" << s.tasks << " spawned=" << s.spawned << " steals_near=" << s.steals_near
        << " steals_far=" << s.steals_far << " failed_steals=" << s.failed_steals << " parks=" << s.parks
        << " wakeups=" << s.wakeups << " injected=" << s.injected << " idle_ms=" << ms(s.idle_ns)
        << " search_ms=" << ms(s.search_ns) << " failed_search_ms=" << ms(s.failed_search_ns)
        << " parked_ms=" << ms(s.parked_ns) << " join_wait_ms=" << ms(s.join_wait_ns);
}

/// The counters as members of the object being written.
void counters_json(json::writer& j, const worker_stats& s) {
    j.key("tasks").value(s.tasks);
    j.key("spawned").value(s.spawned);
    j.key("steals_near").value(s.steals_near);
    j.key("steals_far").value(s.steals_far);
    j.key("failed_steals").value(s.failed_steals);
    j.key("parks").value(s.parks);
    j.key("wakeups").value(s.wakeups);
    j.key("injected").value(s.injected);
    j.key("idle_ns").value(s.idle_ns);
    j.key("search_ns").value(s.search_ns);
    j.key("failed_search_ns").value(s.failed_search_ns);
    j.key("parked_ns").value(s.parked_ns);
    j.key("join_wait_ns").value(s.join_wait_ns);
}

/// One stream executor, on a line of its own.
void stream_json(json::writer& j, const stream_stats& s) {
    const stream_counters& c = s.counters;
    j.begin_object(true);
    j.key("name").value(s.name);
    j.key("arrived").value(c.arrived);
    j.key("done").value(c.done);
    j.key("failed").value(c.failed);
    j.key("rejected").value(c.rejected);
    j.key("expired").value(c.expired);
    j.key("cancelled").value(c.cancelled);
    j.key("queued").value(c.queued);
    j.key("running").value(c.running);
    j.key("peak_queued").value(s.peak_queued);
    j.key("uptime_s").value(s.uptime_s);
    j.key("utilisation").value(s.utilisation, 6);  // %.6g, as it has always been: a share needs no more
    j.key("arrival_per_s").value(s.arrival_rate);
    j.key("completion_per_s").value(s.completion_rate);
    j.key("classes").begin_array(true);
    for (std::size_t k = 0; k < s.latency.size(); ++k) {
        const latency_summary& l = s.latency[k];
        j.begin_object(true);
        j.key("class").value(k);
        j.key("queued").value(k < s.queued_by_class.size() ? s.queued_by_class[k] : 0);
        j.key("count").value(l.count);
        j.key("p50_ns").value(l.p50);
        j.key("p90_ns").value(l.p90);
        j.key("p99_ns").value(l.p99);
        j.key("p999_ns").value(l.p999);
        j.key("max_ns").value(l.max);
        j.end_object();
    }
    j.end_array();
    j.end_object();
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
    json::writer j(out);
    j.begin_object();
    j.key("runtimes").begin_array();
    for (const runtime_report& r : reports) {
        j.begin_object();
        j.key("workers").value(r.workers);
        j.key("uptime_s").value(r.uptime_s);
        j.key("total").begin_object(true);
        counters_json(j, r.total);
        j.end_object();
        j.key("per_worker").begin_array();
        for (const worker_stats& s : r.per_worker) {
            j.begin_object(true);
            j.key("worker").value(s.worker);
            j.key("cpu").value(s.cpu);
            counters_json(j, s);
            j.end_object();
        }
        j.end_array();
        j.key("stages").begin_array();
        for (const stage_totals& s : r.stages) {
            j.begin_object(true);
            j.key("pipeline").value(s.pipeline);
            j.key("stage").value(s.stage);
            j.key("mode").value(mode_name(s.mode));
            j.key("runs").value(s.runs);
            j.key("items").value(s.items);
            j.key("busy_ns").value(s.busy_ns);
            j.key("wall_ns").value(s.wall_ns);
            j.end_object();
        }
        j.end_array();
        j.key("streams").begin_array();
        for (const stream_stats& s : r.streams) stream_json(j, s);
        j.end_array();
        j.key("streams_dropped").value(r.streams_dropped);
        j.end_object();
    }
    j.end_array();
    j.end_object();
    j.finish();
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

// runtime/host_meter.cpp: how busy the host was around one repetition, from
// /proc/stat and this process's threads' schedstat. See "Busy host" in
// runtime/DESIGN.md.
#include <dirent.h>        // opendir, readdir (the threads in /proc/self/task)
#include <sched.h>         // sched_getaffinity, CPU_ISSET
#include <sys/resource.h>  // getrusage
#include <unistd.h>        // sysconf

#include <algorithm>  // binary_search, max
#include <cmath>    // isfinite
#include <cstdio>   // fopen, fgets, sscanf
#include <cstring>  // strncmp
#include <string>   // string

#include "forkline/probe.hpp"

namespace forkline::probe {

namespace {

constexpr double k_nan = std::numeric_limits<double>::quiet_NaN();

double seconds_of(const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
}

}  // namespace

host_meter::host_meter(bool in_process) : m_in_process(in_process) {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    if (sched_getaffinity(0, sizeof mask, &mask) == 0) {
        for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &mask)) m_cpus.push_back(c);
        }
    }
    const long hz = sysconf(_SC_CLK_TCK);
    if (hz > 0) m_tick_s = 1.0 / static_cast<double>(hz);
}

double host_meter::own_cpu_seconds() {
    rusage u{};
    if (getrusage(RUSAGE_SELF, &u) != 0) return k_nan;
    return seconds_of(u.ru_utime) + seconds_of(u.ru_stime);
}

host_meter::stat_sample host_meter::read_stat() const {
    stat_sample s;
    if (m_cpus.empty()) return s;
    std::FILE* f = std::fopen("/proc/stat", "re");
    if (f == nullptr) return s;
    char line[512];
    std::size_t seen = 0;
    unsigned long long busy = 0, steal_ticks = 0;
    while (std::fgets(line, sizeof line, f) != nullptr) {
        if (std::strncmp(line, "cpu", 3) != 0) break;  // the cpu lines come first
        unsigned cpu = 0;
        unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
        // "cpuN user nice system idle iowait irq softirq steal guest guest_nice";
        // guest time is already inside user and nice.
        if (std::sscanf(line, "cpu%u %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &user, &nice, &system, &idle,
                        &iowait, &irq, &softirq, &steal) != 9) {
            continue;  // the "cpu " total line, or an older kernel's shorter one
        }
        // m_cpus is sorted: the constructor collects it in cpu order.
        if (!std::binary_search(m_cpus.begin(), m_cpus.end(), cpu)) continue;
        ++seen;
        busy += user + nice + system + irq + softirq;
        steal_ticks += steal;
    }
    std::fclose(f);
    if (seen != m_cpus.size()) return s;  // a cpu went offline, or the format is not what we know
    s.busy_s = static_cast<double>(busy) * m_tick_s;
    s.steal_s = static_cast<double>(steal_ticks) * m_tick_s;
    s.ok = true;
    return s;
}

double host_meter::read_wait() const {
    // The second field of /proc/self/task/TID/schedstat: nanoseconds the
    // thread spent runnable on a run queue without running.
    DIR* d = opendir("/proc/self/task");
    if (d == nullptr) return k_nan;
    double total = 0;
    bool any = false;
    const std::string self = std::to_string(static_cast<long>(::gettid()));
    while (const dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        // Not the calling thread: it waits for the repetition, and a wait of
        // its own for a cpu the workers hold is this process's, not a busy host.
        if (self == e->d_name) continue;
        const std::string path = std::string("/proc/self/task/") + e->d_name + "/schedstat";
        std::FILE* f = std::fopen(path.c_str(), "re");
        if (f == nullptr) continue;  // a thread that just ended
        unsigned long long run_ns = 0, wait_ns = 0;
        if (std::fscanf(f, "%llu %llu", &run_ns, &wait_ns) == 2) {
            total += static_cast<double>(wait_ns) * 1e-9;
            any = true;
        }
        std::fclose(f);
    }
    closedir(d);
    return any ? total : k_nan;
}

void host_meter::start() {
    m_before = read_stat();
    m_wait_before = m_in_process ? read_wait() : k_nan;
}

disturbance host_meter::finish(double wall_s, double own_cpu_s, unsigned workers, const busy_thresholds& t) const {
    disturbance d;
    if (!(wall_s > 0)) return d;
    const stat_sample after = read_stat();
    const auto cpus = static_cast<double>(m_cpus.size());
    if (m_before.ok && after.ok) {
        if (std::isfinite(own_cpu_s)) {
            const double others = after.busy_s - m_before.busy_s - own_cpu_s;
            d.others_cpus = others > 0 ? others / wall_s : 0.0;
            d.others_error = 2 * m_tick_s * cpus / wall_s;
        }
        d.steal_share = (after.steal_s - m_before.steal_s) / (wall_s * cpus);
    }
    // More workers than cpus wait on each other: that is no other process.
    if (m_in_process && std::isfinite(m_wait_before) && workers > 0 && workers <= m_cpus.size()) {
        const double w = read_wait();
        if (std::isfinite(w)) d.wait_share = std::max(0.0, w - m_wait_before) / (wall_s * workers);
    }
    d.disturbed = (std::isfinite(d.others_cpus) && d.others_cpus - d.others_error > t.others_cpus) ||
                  (std::isfinite(d.steal_share) && d.steal_share > t.steal_share) ||
                  (std::isfinite(d.wait_share) && d.wait_share > t.wait_share);
    return d;
}

}  // namespace forkline::probe

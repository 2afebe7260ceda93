// bench/report.cpp: the machine line, the human table and the JSON results.
#include "report.hpp"

#include <sched.h>        // sched_getaffinity, CPU_COUNT
#include <sys/utsname.h>  // uname
#include <unistd.h>       // sysconf

#include <algorithm>  // max
#include <cstdint>    // uint64_t
#include <ctime>      // time, gmtime_r, strftime
#include <fstream>    // ifstream
#include <string>     // string, getline, to_string

#include "json.hpp"  // json_string, json_number

namespace forkline_bench {
namespace {

std::string read_cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) != 0) continue;
        const auto colon = line.find(':');
        if (colon == std::string::npos) break;
        const auto start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? std::string() : line.substr(start);
    }
    return "unknown";
}

std::string fixed(double v, int decimals) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// The serial variant's median, the figure every speedup is taken against.
const config_result* find_serial(const std::vector<config_result>& results) {
    for (const config_result& r : results) {
        if (r.impl == "serial" && r.ok()) return &r;
    }
    return nullptr;
}

}  // namespace

int count_allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    return CPU_COUNT(&set);
}

host_info describe_host(int argc, char** argv) {
    host_info h;
    h.cpu_model = read_cpu_model();
    h.cpus_online = ::sysconf(_SC_NPROCESSORS_ONLN);
    h.cpus_allowed = count_allowed_cpus();
    utsname u{};
    if (::uname(&u) == 0) h.kernel = std::string(u.sysname) + " " + u.release;
#if defined(__clang__)
    h.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
    h.compiler = "gcc " __VERSION__;
#else
    h.compiler = "unknown";
#endif
    while (!h.compiler.empty() && h.compiler.back() == ' ') h.compiler.pop_back();  // clang's has one
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    char date[32] = "unknown";
    if (::gmtime_r(&now, &utc) != nullptr) std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &utc);
    h.date = date;
    for (int i = 0; i < argc; ++i) {
        if (i > 0) h.command += ' ';
        h.command += argv[i];
    }
    return h;
}

void print_table(std::FILE* out, const workload& w, const host_info& host, unsigned reps,
                 const std::vector<config_result>& results) {
    const std::uint64_t tasks = w.tasks_per_run();
    std::fprintf(out, "%s: %llu tasks per run, answer %lld; %u reps, each in a fresh process after a warm-up\n",
                 w.label().c_str(), static_cast<unsigned long long>(tasks),
                 static_cast<long long>(w.expected_result()), reps);
    std::fprintf(out, "host: %s; %ld cpus online, %d allowed; %s; %s; %s\n\n", host.cpu_model.c_str(),
                 host.cpus_online, host.cpus_allowed, host.kernel.c_str(), host.compiler.c_str(),
                 host.date.c_str());

    const config_result* serial = find_serial(results);
    int impl_width = 8;
    int result_width = 6;
    for (const config_result& r : results) {
        impl_width = std::max(impl_width, static_cast<int>(r.impl.size()));
        if (r.have_result) result_width = std::max(result_width, static_cast<int>(std::to_string(r.result).size()));
    }
    std::fprintf(out, "%-*s %7s %10s %10s %10s %9s %8s %12s %*s  %s\n", impl_width, "impl", "workers",
                 "median_s", "min_s", "max_s", "ns/task", "speedup", "peak_rss_kib", result_width, "result",
                 "status");
    bool any_failed = false;
    for (const config_result& r : results) {
        std::string median = "-", min = "-", max = "-", per_task = "-", speedup = "-";
        if (!r.seconds.empty()) {
            const spread s = summarise(r.seconds);
            median = fixed(s.median, 6);
            min = fixed(s.min, 6);
            max = fixed(s.max, 6);
            if (tasks > 0) per_task = fixed(s.median * 1e9 / static_cast<double>(tasks), 2);
            if (serial != nullptr) speedup = fixed(summarise(serial->seconds).median / s.median, 2) + "x";
        }
        std::string status = "ok";
        if (!r.ok()) {
            any_failed = true;
            status = "FAILED (" + std::to_string(r.failures) + " of " + std::to_string(reps) + " reps)";
        }
        if (!r.seconds.empty()) {  // the workload's own figures for this row, as key=value
            const double serial_median = serial != nullptr ? summarise(serial->seconds).median : 0.0;
            const double median = summarise(r.seconds).median;
            for (const json_member& m : w.result_members(r.workers, median, serial_median)) {
                status += "  " + m.key + "=" + m.json;
            }
        }
        std::fprintf(out, "%-*s %7u %10s %10s %10s %9s %8s %12ld %*s  %s\n", impl_width, r.impl.c_str(),
                     r.workers, median.c_str(), min.c_str(), max.c_str(), per_task.c_str(), speedup.c_str(),
                     r.peak_rss_kib, result_width, r.have_result ? std::to_string(r.result).c_str() : "-",
                     status.c_str());
    }
    std::fprintf(out, "\nns/task: median * 1e9 / tasks per run. speedup: serial median / this median.\n");
    std::fprintf(out, "Times of failed reps are left out; a wrong answer is not a time.\n");
    for (const config_result& r : results) {  // FORKLINE_TRACE: the file each configuration left
        if (!r.trace_file.empty()) {
            std::fprintf(out, "trace of %s w=%u (its last rep, traced): %s\n", r.impl.c_str(), r.workers,
                         r.trace_file.c_str());
        }
    }
    if (!any_failed) return;
    std::fprintf(out, "\n");
    for (const config_result& r : results) {
        if (r.ok()) continue;
        std::fprintf(out, "FAILED %s w=%u:\n", r.impl.c_str(), r.workers);
        for (const std::string& e : r.errors) std::fprintf(out, "  %s\n", e.c_str());
    }
}

void write_json(std::FILE* out, const workload& w, std::string_view workload_name, const host_info& host,
                unsigned reps, const std::vector<config_result>& results) {
    const std::uint64_t tasks = w.tasks_per_run();
    const std::vector<json_member> extra = w.json_members();
    const config_result* serial = find_serial(results);
    const double serial_median = serial != nullptr ? summarise(serial->seconds).median : 0.0;
    std::fprintf(out, "[");
    for (std::size_t i = 0; i < results.size(); ++i) {
        const config_result& r = results[i];
        std::string o = "{";
        auto member = [&o](std::string_view key, const std::string& json) {
            if (o.size() > 1) o += ", ";
            o += json_string(key) + ": " + json;
        };
        member("workload", json_string(workload_name));
        member("impl", json_string(r.impl));
        member("workers", std::to_string(r.workers));
        member("reps", std::to_string(reps));
        member("reps_ok", std::to_string(r.seconds.size()));
        member("ok", r.ok() ? "true" : "false");
        if (r.seconds.empty()) {
            member("median_s", "null");
            member("min_s", "null");
            member("max_s", "null");
            member("ns_per_task", "null");
        } else {
            const spread s = summarise(r.seconds);
            member("median_s", json_number(s.median));
            member("min_s", json_number(s.min));
            member("max_s", json_number(s.max));
            member("ns_per_task", tasks > 0 ? json_number(s.median * 1e9 / static_cast<double>(tasks)) : "null");
        }
        std::vector<json_member> own;  // the workload's figures for this configuration
        if (!r.seconds.empty()) {
            own = w.result_members(r.workers, summarise(r.seconds).median, serial_median);
        }
        std::string samples = "[";
        for (std::size_t k = 0; k < r.seconds.size(); ++k) {
            if (k > 0) samples += ", ";
            samples += json_number(r.seconds[k]);
        }
        member("samples_s", samples + "]");
        member("result", r.have_result ? std::to_string(r.result) : "null");
        member("peak_rss_kib", std::to_string(r.peak_rss_kib));
        for (const json_member& m : extra) member(m.key, m.json);
        for (const json_member& m : own) member(m.key, m.json);
        std::string errors = "[";
        for (std::size_t k = 0; k < r.errors.size(); ++k) {
            if (k > 0) errors += ", ";
            errors += json_string(r.errors[k]);
        }
        member("errors", errors + "]");
        member("cpu_model", json_string(host.cpu_model));
        member("cpus_online", std::to_string(host.cpus_online));
        member("cpus_allowed", std::to_string(host.cpus_allowed));
        member("kernel", json_string(host.kernel));
        member("compiler", json_string(host.compiler));
        member("date", json_string(host.date));
        member("command", json_string(host.command));
        std::fprintf(out, "%s\n  %s", i == 0 ? "" : ",", (o + "}").c_str());
    }
    std::fprintf(out, "%s]\n", results.empty() ? "" : "\n");
}

}  // namespace forkline_bench

// bench/report.hpp: the machine line, the human table and the JSON results.
#pragma once

#include <cstdio>       // FILE
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

#include "measure.hpp"   // config_result
#include "workload.hpp"  // workload

namespace forkline_bench {

/// Where and when the numbers were taken; repeated in every JSON object so
/// that each stands alone once results from several runs are merged.
struct host_info {
    std::string cpu_model;   ///< /proc/cpuinfo "model name"
    long cpus_online = 0;    ///< sysconf(_SC_NPROCESSORS_ONLN)
    int cpus_allowed = 0;    ///< this process's affinity mask (taskset, cgroups)
    std::string kernel;      ///< uname: "Linux 6.1.0"
    std::string compiler;    ///< the compiler that built every variant
    std::string date;        ///< start of the run, UTC, ISO 8601
    std::string command;     ///< the command line, for bench/RESULTS.md
};

host_info describe_host(int argc, char** argv);

/// CPUs in this process's affinity mask; 1 when it cannot be read.
int count_allowed_cpus();

/// The table on stdout: one row per (impl, workers), then the failures.
void print_table(std::FILE* out, const workload& w, const host_info& host, unsigned reps,
                 const std::vector<config_result>& results);

/// A JSON array, one object per (impl, workers).
void write_json(std::FILE* out, const workload& w, std::string_view workload_name,
                const host_info& host, unsigned reps, const std::vector<config_result>& results);

}  // namespace forkline_bench

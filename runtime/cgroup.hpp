// runtime/cgroup.hpp: the CPU bandwidth limit a container's cgroup puts on
// this process (cgroup v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us),
// for the default worker count. See "Container quotas" in runtime/DESIGN.md.
#pragma once

#include <optional>  // optional
#include <string>    // string

namespace forkline::detail {

/// The tightest limit on the process's cgroup and its ancestors.
struct cpu_limit {
    double cpus = 0;     ///< quota / period: how many cpus' worth of time per period
    std::string source;  ///< "cgroup v2 cpu.max '150000 100000' in /sys/fs/cgroup/a"
};

/// Reads the process's cgroup from `proc_cgroup` (the format of
/// /proc/self/cgroup) and the limits under `cgroup_root` (where cgroupfs is
/// mounted: v2 there, v1 in its per-controller directories). nullopt: no
/// limit ("max", -1), or nothing readable (no cgroupfs, another layout):
/// a limit that cannot be read is not applied.
std::optional<cpu_limit> cgroup_cpu_limit(const std::string& proc_cgroup, const std::string& cgroup_root);

}  // namespace forkline::detail

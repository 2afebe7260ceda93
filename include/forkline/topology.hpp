/// @file forkline/topology.hpp
/// The machine as hwloc sees it, and the placement plan.
///
/// A plan (worker i -> PU, core, L3 group, NUMA node, package, and the
/// distance class between every pair of workers) is computed apart from
/// binding, so it can be checked on synthetic topologies such as
/// "pack:2 numa:2 l3:2 core:4 pu:2" that the test machine does not have.
/// See "Placement" in runtime/DESIGN.md.
#pragma once

#include <cstdint>      // uint8_t
#include <functional>   // function (environment lookup, not on any hot path)
#include <memory>       // unique_ptr
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

namespace forkline {

/// How workers are laid over the allowed cores.
enum class placement_policy {
    compact,  ///< fill a core, then the next core of the same L3 / NUMA node / package
    scatter,  ///< round-robin over NUMA nodes (then packages), next free core in each
    list,     ///< exactly the OS cpu numbers in placement_config::cpu_list, in that order
};

/// The most workers one runtime may have, oversubscribed or not. Each worker
/// is a thread with its own stack, and the plan keeps a distance for every
/// pair of workers, so a count far past any machine's cores (a stray
/// FORKLINE_WORKERS=1000000) is refused with a config_error up front.
inline constexpr unsigned k_max_workers = 4096;

/// What the user asks for. Environment overrides come from with_environment().
/// @code
/// forkline::runtime_config c;
/// c.placement.policy = forkline::placement_policy::scatter;  // spread over NUMA nodes for bandwidth
/// c.placement.workers = 8;
/// forkline::runtime rt(c);
/// @endcode
struct placement_config {
    /// Number of workers; 0 means one per usable place (physical core, or PU
    /// when use_smt is set, or entry of cpu_list).
    unsigned workers = 0;
    placement_policy policy = placement_policy::compact;  ///< the order places are taken in
    /// Also place workers on SMT siblings. Without it only one PU per core is used.
    bool use_smt = false;
    /// For placement_policy::list: OS cpu numbers, "0-3,8-11" form.
    std::string cpu_list;
    /// Allow more workers than places: places are then reused round-robin
    /// (up to k_max_workers).
    bool oversubscribe = false;
    /// With workers = 0, no more workers than the container's CPU limit:
    /// ceil(quota / period) of the process's cgroup or its tightest ancestor
    /// (cgroup v2 cpu.max; v1 cpu.cfs_quota_us / cpu.cfs_period_us), and at
    /// least one. An explicit worker count is taken as asked.
    bool respect_cpu_quota = true;
    /// Where that limit is read: the process's cgroup list and the cgroupfs
    /// mount. Tests point them at fake trees.
    std::string proc_cgroup = "/proc/self/cgroup";
    std::string cgroup_root = "/sys/fs/cgroup";  ///< see proc_cgroup
};

/// How far apart two workers are, nearest first. Thieves try smaller classes first.
enum class distance_class : std::uint8_t {
    same_core = 0,     ///< SMT siblings, or the same PU when oversubscribed
    same_l3 = 1,       ///< share a last-level cache
    same_numa = 2,     ///< same NUMA node, different L3
    same_package = 3,  ///< same package, different NUMA node
    remote = 4,        ///< different package
};

/// Where one worker runs. Indices are logical (0-based, hwloc order) except
/// pu_os_index and numa_os_index which are the kernel's numbers.
struct worker_place {
    unsigned pu_os_index = 0;   ///< cpu number as taskset / sched_setaffinity know it
    unsigned core_index = 0;    ///< logical index of the physical core
    unsigned l3_index = 0;      ///< logical index of the L3 group (0 when the machine has none)
    unsigned numa_index = 0;    ///< logical index of the NUMA node
    int numa_os_index = 0;      ///< kernel NUMA node number (libnuma / mbind numbering)
    unsigned package_index = 0; ///< logical index of the package
};

/// The result of planning: one place per worker and the pairwise distances.
struct placement_plan {
    std::vector<worker_place> places;  ///< places[i]: where worker i runs
    /// Row-major workers x workers matrix of distance classes.
    std::vector<distance_class> distances;
    /// What decided the worker count: "asked for 8", "4 places (compact)", or
    /// the cgroup limit that capped it ("cgroup v2 cpu.max '200000 100000'
    /// in /sys/fs/cgroup/app: 2 cpus of 4 places").
    std::string worker_count_reason;

    /// The number of workers planned.
    unsigned worker_count() const noexcept { return static_cast<unsigned>(places.size()); }
    /// How far apart workers `from` and `to` are; both must be below worker_count().
    distance_class distance(unsigned from, unsigned to) const noexcept {
        return distances[static_cast<std::size_t>(from) * places.size() + to];
    }
    /// Human-readable, one line per worker: "w3 -> cpu 6 (core 3, l3 0, numa 0, pkg 0)".
    std::string describe() const;
};

/// Counts of the objects in the allowed part of the machine.
struct topology_summary {
    unsigned packages = 0;    ///< sockets
    unsigned numa_nodes = 0;  ///< memory nodes
    unsigned l3_groups = 0;   ///< last-level cache domains (0 when the machine reports none)
    unsigned cores = 0;       ///< physical cores
    unsigned pus = 0;         ///< hardware threads (cores x SMT ways)
};

/// The machine (or a synthetic one), restricted to the cpus this process may use.
/// Owns an hwloc topology; movable, not copyable.
/// @code
/// forkline::topology t = forkline::topology::synthetic("pack:2 numa:2 l3:2 core:4 pu:2");
/// forkline::placement_plan p = t.plan({.workers = 8, .policy = forkline::placement_policy::scatter});
/// std::fputs(p.describe().c_str(), stdout);
/// @endcode
class topology {
public:
    /// This host, restricted to the process's allowed cpuset (taskset, cgroups).
    /// Throws system_failure naming the hwloc call on failure.
    static topology discover();
    /// A synthetic machine in hwloc's synthetic description syntax, e.g.
    /// "pack:2 numa:2 l3:2 core:4 pu:2". If allowed_cpus is not empty ("0-7"
    /// form, OS PU numbers) the topology is restricted to those PUs, as a
    /// taskset would. Throws config_error on a description hwloc rejects.
    static topology synthetic(std::string_view description, std::string_view allowed_cpus = {});

    /// Takes the other's hwloc topology; the other may only be destroyed or assigned.
    topology(topology&&) noexcept;
    /// Frees this topology and takes the other's.
    topology& operator=(topology&&) noexcept;
    ~topology();

    /// Counts of packages, nodes, caches, cores and PUs this process may use.
    topology_summary summary() const;

    /// Computes where each worker goes. Throws config_error when the request
    /// cannot be met: more workers than places without oversubscribe, an empty
    /// or malformed cpu_list, a cpu outside the allowed set, workers == 0 with
    /// an empty list.
    placement_plan plan(const placement_config& config) const;

    /// The hwloc_topology_t, as void* so that this header does not pull in hwloc.
    void* native_handle() const noexcept;

private:
    struct state;
    explicit topology(std::unique_ptr<state> s);
    std::unique_ptr<state> m_state;
};

/// Parses "0-3,8-11,14" into {0,1,2,3,8,9,10,11,14} in that order. Duplicates
/// are an error. Throws config_error naming the offending part on empty input,
/// a non-number, a reversed range, or a number above 65535.
std::vector<unsigned> parse_cpu_list(std::string_view text);

/// Applies FORKLINE_WORKERS (a positive integer) and FORKLINE_PLACES
/// ("compact", "scatter", "compact+smt", "scatter+smt", or a cpu list such as
/// "0-3,8-11") over `config`. `getenv_fn` defaults to std::getenv; tests pass
/// their own. Throws config_error naming the variable and its value when malformed.
placement_config with_environment(placement_config config,
                                  const std::function<const char*(const char*)>& getenv_fn = {});

}  // namespace forkline

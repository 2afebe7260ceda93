// runtime/topology.cpp: the machine through hwloc, the placement planner,
// cpu-list and environment parsing, and the thread and memory binding that
// runtime/binding.hpp declares. See "Placement" in runtime/DESIGN.md.
#include <forkline/topology.hpp>

#include "binding.hpp"  // bind_current_thread, allocate_on_node, free_on_node
#include "cgroup.hpp"   // cgroup_cpu_limit

#include <forkline/errors.hpp>  // config_error, system_failure

#include <hwloc.h>     // hwloc_topology_*, hwloc_bitmap_*, hwloc_get_*, hwloc_alloc*
#include <sched.h>     // sched_getaffinity, CPU_ALLOC (when hwloc cannot read the binding)
#include <sys/mman.h>  // mmap, munmap (memory for synthetic topologies)

#include <algorithm>  // max
#include <atomic>     // atomic (node_blocks_in_use)
#include <cstdint>    // int64_t
#include <cerrno>     // errno, ENOMEM, EINVAL
#include <charconv>   // from_chars
#include <cmath>      // ceil
#include <cstdlib>    // getenv, free
#include <cstdio>     // snprintf
#include <cstring>    // memset
#include <map>        // map (grouping places by core, NUMA node, package)
#include <new>        // bad_alloc
#include <string>     // string, to_string
#include <utility>    // move

namespace forkline {

namespace {

struct bitmap_deleter {
    void operator()(hwloc_bitmap_s* b) const noexcept { hwloc_bitmap_free(b); }
};
using bitmap_ptr = std::unique_ptr<hwloc_bitmap_s, bitmap_deleter>;

struct topology_deleter {
    void operator()(hwloc_topology* t) const noexcept { hwloc_topology_destroy(t); }
};
using topology_ptr = std::unique_ptr<hwloc_topology, topology_deleter>;

bitmap_ptr make_bitmap() {
    hwloc_bitmap_t b = hwloc_bitmap_alloc();
    if (b == nullptr) throw std::bad_alloc();
    return bitmap_ptr(b);
}

// "0-5,8" form, the way taskset and error messages show a cpu set.
std::string format_set(hwloc_const_bitmap_t set) {
    char* text = nullptr;
    if (hwloc_bitmap_list_asprintf(&text, set) < 0 || text == nullptr) return "?";
    std::string out(text);
    std::free(text);
    return out;
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// hwloc loads its plugins (PCI, OpenCL, OpenGL, libxml2 and what they link)
// at the first hwloc_topology_init of the process, costing about 3 MB of
// resident memory. forkline reads only cpus, caches and NUMA nodes, so it
// turns them off unless the user chose otherwise (HWLOC_PLUGINS_BLACKLIST
// set, or FORKLINE_HWLOC_PLUGINS=all). See "Placement" in DESIGN.md.
void skip_unneeded_hwloc_plugins() {
    static const bool done = [] {
        const char* choice = std::getenv("FORKLINE_HWLOC_PLUGINS");
        if (choice != nullptr && std::string_view(choice) == "all") return true;
        setenv("HWLOC_PLUGINS_BLACKLIST",
               "hwloc_pci,hwloc_opencl,hwloc_gl,hwloc_cuda,hwloc_nvml,hwloc_rsmi,hwloc_levelzero,hwloc_xml_libxml",
               /*overwrite=*/0);
        return true;
    }();
    (void)done;
}

topology_ptr new_topology() {
    skip_unneeded_hwloc_plugins();
    hwloc_topology_t raw = nullptr;
    if (hwloc_topology_init(&raw) != 0)
        throw system_failure("hwloc_topology_init", errno, "cannot create an hwloc topology");
    return topology_ptr(raw);
}

// PUs of the tree that hwloc also marks allowed (cgroup cpuset, restriction).
bitmap_ptr allowed_cpus_of(hwloc_topology_t topo) {
    bitmap_ptr set = make_bitmap();
    hwloc_bitmap_and(set.get(), hwloc_topology_get_allowed_cpuset(topo), hwloc_get_root_obj(topo)->cpuset);
    return set;
}

void load(hwloc_topology_t topo, const char* what_to_try) {
    if (hwloc_topology_load(topo) != 0)
        throw system_failure("hwloc_topology_load", errno, what_to_try);
}

// The calling thread's affinity, for when hwloc cannot report the process binding.
void read_sched_affinity(hwloc_bitmap_t out) {
    // The kernel's mask may be wider than a guess; grow until it fits (EINVAL).
    for (int ncpus = 1024;; ncpus *= 2) {
        cpu_set_t* mask = CPU_ALLOC(ncpus);
        if (mask == nullptr) throw std::bad_alloc();
        const std::size_t size = CPU_ALLOC_SIZE(ncpus);
        CPU_ZERO_S(size, mask);
        if (sched_getaffinity(0, size, mask) == 0) {
            for (int cpu = 0; cpu < ncpus; ++cpu)
                if (CPU_ISSET_S(cpu, size, mask)) hwloc_bitmap_set(out, static_cast<unsigned>(cpu));
            CPU_FREE(mask);
            return;
        }
        const int err = errno;
        CPU_FREE(mask);
        if (err != EINVAL || ncpus >= (1 << 20))
            throw system_failure("sched_getaffinity", err, "cannot read the cpus this process may run on");
    }
}

using core_group = std::vector<worker_place>;  // the usable PUs of one core, logical order

// Buckets in key order (a std::map keeps them sorted by logical index).
template <typename Key>
std::vector<std::vector<core_group>> bucket_by(const std::vector<core_group>& cores, Key key) {
    std::map<unsigned, std::vector<core_group>> buckets;
    for (const core_group& core : cores) buckets[key(core.front())].push_back(core);
    std::vector<std::vector<core_group>> out;
    for (auto& [index, bucket] : buckets) out.push_back(std::move(bucket));
    return out;
}

// One from each bucket in turn; buckets that run out are skipped.
template <typename T>
std::vector<T> interleave(const std::vector<std::vector<T>>& buckets) {
    std::size_t longest = 0;
    for (const auto& b : buckets) longest = std::max(longest, b.size());
    std::vector<T> out;
    for (std::size_t i = 0; i < longest; ++i)
        for (const auto& b : buckets)
            if (i < b.size()) out.push_back(b[i]);
    return out;
}

// First PU of every core in the given order, then (with SMT) every second PU,
// and so on: asking for more workers than cores adds siblings last.
std::vector<worker_place> by_smt_rounds(const std::vector<core_group>& cores, bool use_smt) {
    std::vector<worker_place> out;
    for (std::size_t round = 0;; ++round) {
        bool any = false;
        for (const core_group& core : cores) {
            if (round < core.size()) {
                out.push_back(core[round]);
                any = true;
            }
        }
        if (!any || !use_smt) return out;
    }
}

distance_class distance_between(const worker_place& a, const worker_place& b) {
    if (a.core_index == b.core_index) return distance_class::same_core;
    if (a.l3_index == b.l3_index) return distance_class::same_l3;
    if (a.numa_index == b.numa_index) return distance_class::same_numa;
    if (a.package_index == b.package_index) return distance_class::same_package;
    return distance_class::remote;
}

unsigned count_usable(hwloc_topology_t topo, hwloc_obj_type_t type, hwloc_const_bitmap_t usable) {
    unsigned n = 0;
    for (hwloc_obj_t obj = hwloc_get_next_obj_by_type(topo, type, nullptr); obj != nullptr;
         obj = hwloc_get_next_obj_by_type(topo, type, obj))
        if (obj->cpuset != nullptr && hwloc_bitmap_intersects(obj->cpuset, usable)) ++n;
    return n;
}

unsigned count_all(hwloc_topology_t topo, hwloc_obj_type_t type) {
    return static_cast<unsigned>(std::max(hwloc_get_nbobjs_by_type(topo, type), 0));
}

// Where one PU sits, in the logical indices the planner and the thieves compare.
worker_place place_of(hwloc_topology_t topo, hwloc_obj_t pu) {
    worker_place place;
    place.pu_os_index = pu->os_index;

    // A PU with no Core above it (some synthetic or virtual machines) is its
    // own core; its index goes past the real cores so that it matches none.
    const hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
    place.core_index = core != nullptr ? core->logical_index : count_all(topo, HWLOC_OBJ_CORE) + pu->logical_index;

    // In hwloc 2 NUMA nodes hang off the tree as memory children, so no
    // ancestor walk finds them: take the node whose cpuset holds the PU.
    for (hwloc_obj_t node = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, nullptr); node != nullptr;
         node = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, node)) {
        if (node->cpuset != nullptr && hwloc_bitmap_isset(node->cpuset, pu->os_index)) {
            place.numa_index = node->logical_index;
            place.numa_os_index = static_cast<int>(node->os_index);
            break;
        }
    }

    // A machine without L3 objects: the whole NUMA node is the L3 group, so
    // l3_index = numa_index (and 0 on a one-node machine, as the header says).
    // A PU without an L3 on a machine that has some gets a per-node group
    // numbered past the real L3s, so it shares a cache with no real L3.
    const hwloc_obj_t l3 = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_L3CACHE, pu);
    if (l3 != nullptr)
        place.l3_index = l3->logical_index;
    else
        place.l3_index = count_all(topo, HWLOC_OBJ_L3CACHE) + place.numa_index;

    const hwloc_obj_t package = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pu);
    place.package_index = package != nullptr ? package->logical_index : 0;
    return place;
}

const char* policy_name(const placement_config& config) {
    switch (config.policy) {
    case placement_policy::compact: return config.use_smt ? "compact+smt" : "compact";
    case placement_policy::scatter: return config.use_smt ? "scatter+smt" : "scatter";
    case placement_policy::list: return "list";
    }
    return "?";
}

}  // namespace

struct topology::state {
    topology_ptr topo;
    // PUs that hwloc allows and the process is bound to; plan() hands out no other.
    bitmap_ptr usable;
    // A synthetic machine is not this host: the host's cgroup limit does not
    // apply to its plans, unless a test points the cgroup paths elsewhere.
    bool synthetic = false;
};

topology::topology(std::unique_ptr<state> s) : m_state(std::move(s)) {}
topology::topology(topology&&) noexcept = default;
topology& topology::operator=(topology&&) noexcept = default;
topology::~topology() = default;

void* topology::native_handle() const noexcept { return m_state ? m_state->topo.get() : nullptr; }

topology topology::discover() {
    topology_ptr topo = new_topology();
    // Without HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED hwloc already drops cpus
    // outside the cgroup cpuset; taskset is a per-thread mask it does not
    // apply, so intersect with the process binding below.
    load(topo.get(), "cannot read this machine's topology (are /sys and /proc mounted?)");

    bitmap_ptr bound = make_bitmap();
    if (hwloc_get_cpubind(topo.get(), bound.get(), HWLOC_CPUBIND_PROCESS) != 0) {
        hwloc_bitmap_zero(bound.get());
        read_sched_affinity(bound.get());
    }

    bitmap_ptr usable = allowed_cpus_of(topo.get());
    hwloc_bitmap_and(usable.get(), usable.get(), bound.get());
    if (hwloc_bitmap_iszero(usable.get()))
        throw config_error("no usable cpu: hwloc allows " +
                           format_set(hwloc_topology_get_allowed_cpuset(topo.get())) +
                           " but the process is bound to " + format_set(bound.get()) +
                           " (check taskset and the cgroup cpuset)");
    return topology(std::make_unique<state>(state{std::move(topo), std::move(usable), false}));
}

topology topology::synthetic(std::string_view description, std::string_view allowed_cpus) {
    topology_ptr topo = new_topology();
    const std::string desc(description);
    if (hwloc_topology_set_synthetic(topo.get(), desc.c_str()) != 0)
        throw config_error("synthetic topology " + quoted(desc) +
                           " was rejected by hwloc (expected e.g. 'pack:2 numa:2 l3:2 core:4 pu:2')");
    load(topo.get(), "cannot build the synthetic topology");

    if (!allowed_cpus.empty()) {
        bitmap_ptr allowed = make_bitmap();
        for (const unsigned cpu : parse_cpu_list(allowed_cpus)) {
            if (hwloc_get_pu_obj_by_os_index(topo.get(), cpu) == nullptr)
                throw config_error("allowed cpu " + std::to_string(cpu) + " is not in synthetic topology " +
                                   quoted(desc) + " (its cpus are " +
                                   format_set(hwloc_get_root_obj(topo.get())->cpuset) + ")");
            hwloc_bitmap_set(allowed.get(), cpu);
        }
        // Flags 0: NUMA nodes keep their memory, as under taskset.
        if (hwloc_topology_restrict(topo.get(), allowed.get(), 0) != 0)
            throw system_failure("hwloc_topology_restrict", errno,
                                 "cannot restrict the synthetic topology to " + quoted(allowed_cpus));
    }

    bitmap_ptr usable = allowed_cpus_of(topo.get());
    return topology(std::make_unique<state>(state{std::move(topo), std::move(usable), true}));
}

topology_summary topology::summary() const {
    hwloc_topology_t topo = m_state->topo.get();
    const hwloc_const_bitmap_t usable = m_state->usable.get();
    topology_summary s;
    s.packages = count_usable(topo, HWLOC_OBJ_PACKAGE, usable);
    s.numa_nodes = count_usable(topo, HWLOC_OBJ_NUMANODE, usable);
    s.l3_groups = count_usable(topo, HWLOC_OBJ_L3CACHE, usable);
    s.cores = count_usable(topo, HWLOC_OBJ_CORE, usable);
    s.pus = static_cast<unsigned>(std::max(hwloc_bitmap_weight(usable), 0));
    return s;
}

placement_plan topology::plan(const placement_config& config) const {
    hwloc_topology_t topo = m_state->topo.get();
    const hwloc_const_bitmap_t usable = m_state->usable.get();

    std::vector<worker_place> places;
    if (config.policy == placement_policy::list) {
        for (const unsigned cpu : parse_cpu_list(config.cpu_list)) {
            const hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo, cpu);
            if (pu == nullptr || !hwloc_bitmap_isset(usable, cpu))
                throw config_error("cpu_list " + quoted(config.cpu_list) + ": cpu " + std::to_string(cpu) +
                                   " is not in the allowed set " + format_set(usable) +
                                   " (taskset, cgroup cpuset or the synthetic topology limit it)");
            places.push_back(place_of(topo, pu));
        }
    } else {
        // Usable PUs grouped by core; logical PU order yields cores in logical
        // order, which keeps cores of one L3 / NUMA node / package together.
        std::vector<core_group> cores;
        std::map<unsigned, std::size_t> group_of_core;
        for (hwloc_obj_t pu = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PU, nullptr); pu != nullptr;
             pu = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PU, pu)) {
            if (!hwloc_bitmap_isset(usable, pu->os_index)) continue;
            const worker_place place = place_of(topo, pu);
            const auto [it, added] = group_of_core.try_emplace(place.core_index, cores.size());
            if (added) cores.emplace_back();
            cores[it->second].push_back(place);
        }
        if (config.policy == placement_policy::scatter) {
            // Round-robin over NUMA nodes; inside a node that spans packages
            // (NUMA off in firmware), round-robin over those packages too.
            std::vector<std::vector<core_group>> per_node;
            for (const auto& node : bucket_by(cores, [](const worker_place& p) { return p.numa_index; }))
                per_node.push_back(interleave(bucket_by(node, [](const worker_place& p) { return p.package_index; })));
            cores = interleave(per_node);
        }
        places = by_smt_rounds(cores, config.use_smt);
    }

    if (places.empty())
        throw config_error(std::string("no place for any worker with policy ") + policy_name(config));
    std::size_t workers = config.workers == 0 ? places.size() : config.workers;
    std::string reason = config.workers != 0
                             ? "asked for " + std::to_string(config.workers)
                             : std::to_string(places.size()) + " places (" + policy_name(config) + ")";
    const placement_config defaults;
    const bool host_paths =
        config.proc_cgroup == defaults.proc_cgroup && config.cgroup_root == defaults.cgroup_root;
    if (config.workers == 0 && config.respect_cpu_quota && !(m_state->synthetic && host_paths)) {
        // See "Container quotas" in DESIGN.md: a quota of 1.5 cpus gets 2
        // workers, which share the time the quota allows.
        if (const auto limit = detail::cgroup_cpu_limit(config.proc_cgroup, config.cgroup_root)) {
            const auto allowed = static_cast<std::size_t>(std::ceil(limit->cpus - 1e-9));
            if (allowed < workers) {
                char cpus[32];
                std::snprintf(cpus, sizeof cpus, "%g", limit->cpus);
                reason = limit->source + ": " + cpus + " cpus of " + std::to_string(places.size()) + " places";
                workers = allowed < 1 ? 1 : allowed;
            }
        }
    }
    if (workers > k_max_workers)
        throw config_error("workers=" + std::to_string(workers) + " is past the limit of " +
                           std::to_string(k_max_workers) + " workers per runtime; ask for at most one per core");
    if (workers > places.size() && !config.oversubscribe)
        throw config_error("workers=" + std::to_string(workers) + " but policy " + policy_name(config) +
                           " has only " + std::to_string(places.size()) +
                           " places; ask for fewer workers, use SMT siblings, or set oversubscribe");

    placement_plan result;
    result.worker_count_reason = std::move(reason);
    result.places.reserve(workers);
    for (std::size_t i = 0; i < workers; ++i) result.places.push_back(places[i % places.size()]);
    result.distances.reserve(workers * workers);
    for (const worker_place& from : result.places)
        for (const worker_place& to : result.places) result.distances.push_back(distance_between(from, to));
    return result;
}

std::string placement_plan::describe() const {
    std::string out;
    for (std::size_t i = 0; i < places.size(); ++i) {
        const worker_place& p = places[i];
        // snprintf rather than a chain of string +: g++ 12 at -O3 reports a
        // false -Wrestrict overlap inside "literal" + std::string.
        char line[128];
        std::snprintf(line, sizeof line, "w%zu -> cpu %u (core %u, l3 %u, numa %u, pkg %u)\n", i,
                      p.pu_os_index, p.core_index, p.l3_index, p.numa_index, p.package_index);
        out += line;
    }
    return out;
}

namespace {

constexpr unsigned k_max_cpu = 65535;
constexpr const char* k_cpu_list_example = " (expected e.g. '0-3,8-11,14')";

unsigned parse_cpu_number(std::string_view number, std::string_view list) {
    number = trim(number);
    unsigned long value = 0;
    const char* end = number.data() + number.size();
    const auto [stop, ec] = std::from_chars(number.data(), end, value);
    if (number.empty() || ec == std::errc::invalid_argument || stop != end)
        throw config_error("cpu list " + quoted(list) + ": " + quoted(number) + " is not a cpu number" +
                           k_cpu_list_example);
    if (ec == std::errc::result_out_of_range || value > k_max_cpu)
        throw config_error("cpu list " + quoted(list) + ": cpu " + std::string(number) + " is above " +
                           std::to_string(k_max_cpu));
    return static_cast<unsigned>(value);
}

}  // namespace

std::vector<unsigned> parse_cpu_list(std::string_view text) {
    if (trim(text).empty()) throw config_error("cpu list " + quoted(text) + " is empty" + k_cpu_list_example);
    std::vector<unsigned> cpus;
    std::vector<bool> seen(k_max_cpu + 1);
    for (std::size_t start = 0;;) {
        const std::size_t comma = text.find(',', start);
        const std::string_view part = trim(text.substr(start, comma - start));
        if (part.empty())
            throw config_error("cpu list " + quoted(text) + " has an empty entry" + k_cpu_list_example);
        const std::size_t dash = part.find('-');
        const unsigned first = parse_cpu_number(part.substr(0, dash), text);
        const unsigned last = dash == std::string_view::npos ? first : parse_cpu_number(part.substr(dash + 1), text);
        if (last < first)
            throw config_error("cpu list " + quoted(text) + ": range " + quoted(part) + " is reversed");
        for (unsigned cpu = first; cpu <= last; ++cpu) {
            if (seen[cpu])
                throw config_error("cpu list " + quoted(text) + ": cpu " + std::to_string(cpu) + " appears twice");
            seen[cpu] = true;
            cpus.push_back(cpu);
        }
        if (comma == std::string_view::npos) return cpus;
        start = comma + 1;
    }
}

placement_config with_environment(placement_config config,
                                  const std::function<const char*(const char*)>& getenv_fn) {
    const auto lookup = [&](const char* name) -> const char* {
        return getenv_fn ? getenv_fn(name) : std::getenv(name);
    };

    if (const char* raw = lookup("FORKLINE_WORKERS")) {
        const std::string_view value(raw);
        unsigned workers = 0;
        const auto [stop, ec] = std::from_chars(value.data(), value.data() + value.size(), workers);
        if (ec != std::errc() || stop != value.data() + value.size() || workers == 0)
            throw config_error("FORKLINE_WORKERS=" + quoted(value) +
                               " is not a positive integer (e.g. FORKLINE_WORKERS=8; unset it for one per core)");
        config.workers = workers;
    }

    if (const char* raw = lookup("FORKLINE_PLACES")) {
        const std::string_view value(raw);
        if (value == "compact" || value == "compact+smt" || value == "scatter" || value == "scatter+smt") {
            config.policy = value.starts_with("compact") ? placement_policy::compact : placement_policy::scatter;
            // The variable names the whole placement, so plain "compact" turns SMT off.
            config.use_smt = value.ends_with("+smt");
        } else if (!value.empty() && value.front() >= '0' && value.front() <= '9') {
            try {
                parse_cpu_list(value);
            } catch (const config_error& e) {
                throw config_error("FORKLINE_PLACES=" + quoted(value) + ": " + e.what());
            }
            config.policy = placement_policy::list;
            config.cpu_list = std::string(value);
        } else {
            throw config_error("FORKLINE_PLACES=" + quoted(value) +
                               " is not one of compact, scatter, compact+smt, scatter+smt"
                               " or a cpu list such as 0-3,8-11");
        }
    }
    return config;
}

namespace detail {

namespace {

hwloc_topology_t handle_of(const topology& topo) { return static_cast<hwloc_topology_t>(topo.native_handle()); }

// hwloc maps nothing for zero bytes; both ends ask for one so that sizes match.
std::size_t mapped_length(std::size_t bytes) { return std::max<std::size_t>(bytes, 1); }

}  // namespace

void bind_current_thread(const topology& topo, unsigned pu_os_index) {
    hwloc_topology_t handle = handle_of(topo);
    // hwloc's hooks for a topology that is not this machine report success
    // and bind nothing; a worker must not believe it is pinned.
    if (!hwloc_topology_is_thissystem(handle))
        throw system_failure("hwloc_set_cpubind", ENOSYS,
                             "cannot bind to cpu " + std::to_string(pu_os_index) +
                                 ": the topology is synthetic, not this machine (use topology::discover())");
    bitmap_ptr cpu = make_bitmap();
    hwloc_bitmap_only(cpu.get(), pu_os_index);
    if (hwloc_set_cpubind(handle, cpu.get(), HWLOC_CPUBIND_THREAD) != 0)
        throw system_failure("hwloc_set_cpubind", errno,
                             "cannot bind this thread to cpu " + std::to_string(pu_os_index) +
                                 " (is it in the process's affinity? see taskset -p and the cgroup cpuset)");
}

namespace {
// Blocks handed out and not yet freed; see node_blocks_in_use().
std::atomic<std::int64_t> g_node_blocks{0};
}  // namespace

std::int64_t node_blocks_in_use() noexcept {
    return g_node_blocks.load(std::memory_order_relaxed);  // relaxed: a count for tests
}

void* allocate_on_node(const topology& topo, std::size_t bytes, int numa_os_index) {
    void* p = allocate_on_node_uncounted(topo, bytes, numa_os_index);
    g_node_blocks.fetch_add(1, std::memory_order_relaxed);  // relaxed: as above
    return p;
}

void* allocate_on_node_uncounted(const topology& topo, std::size_t bytes, int numa_os_index) {
    hwloc_topology_t handle = handle_of(topo);
    const std::size_t length = mapped_length(bytes);
    if (!hwloc_topology_is_thissystem(handle)) {
        // hwloc's hooks for a synthetic topology hand out malloc() memory:
        // neither page-aligned nor zeroed. Map it ourselves (free_on_node
        // makes the same test to unmap it).
        void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        return p;
    }
    if (numa_os_index >= 0) {
        bitmap_ptr node = make_bitmap();
        hwloc_bitmap_only(node.get(), static_cast<unsigned>(numa_os_index));
        // STRICT so that a binding the kernel refuses fails here and we take
        // the fallback knowingly, rather than hwloc's silent one.
        void* p = hwloc_alloc_membind(handle, length, node.get(), HWLOC_MEMBIND_BIND,
                                      HWLOC_MEMBIND_BYNODESET | HWLOC_MEMBIND_STRICT);
        if (p != nullptr) return p;  // a fresh anonymous mapping on Linux: zero-filled
        const int err = errno;
        if (err == ENOMEM) throw std::bad_alloc();
        if (err == EINVAL)
            throw system_failure("hwloc_alloc_membind", err,
                                 "NUMA node " + std::to_string(numa_os_index) + " is not a node of this machine");
        // ENOSYS, EXDEV, EPERM (seccomp without CAP_SYS_NICE): unbound memory
        // still works, only slower on a multi-node machine.
    }
    void* p = hwloc_alloc(handle, length);
    if (p == nullptr) throw std::bad_alloc();
    std::memset(p, 0, length);  // hwloc may take it from the heap, which does not zero
    return p;
}

void free_on_node(const topology& topo, void* p, std::size_t bytes) noexcept {
    if (p == nullptr) return;
    g_node_blocks.fetch_sub(1, std::memory_order_relaxed);  // relaxed: as above
    hwloc_topology_t handle = handle_of(topo);
    if (hwloc_topology_is_thissystem(handle))
        hwloc_free(handle, p, mapped_length(bytes));
    else
        munmap(p, mapped_length(bytes));
}

}  // namespace detail

}  // namespace forkline

// runtime/binding.hpp: pinning threads to PUs and placing memory on NUMA
// nodes. Private to the runtime; implemented in runtime/topology.cpp next to
// the hwloc topology it works on. See "Placement" in runtime/DESIGN.md.
#pragma once

#include <cstddef>  // size_t
#include <cstdint>  // int64_t

#include <forkline/topology.hpp>  // topology

namespace forkline::detail {

/// Pins the calling thread to one PU (hwloc_set_cpubind, HWLOC_CPUBIND_THREAD).
/// Throws system_failure naming hwloc_set_cpubind, the cpu and errno; ENOSYS
/// for a synthetic topology, on which hwloc would bind nothing.
void bind_current_thread(const topology& topo, unsigned pu_os_index);

/// Page-aligned, zero-filled memory bound to one NUMA node (kernel numbering).
/// Falls back to unbound memory where binding is unsupported or refused
/// (ENOSYS, EXDEV, EPERM from a seccomp filter, a synthetic topology); a
/// negative node asks for unbound memory. Throws std::bad_alloc when there is
/// no memory, system_failure naming hwloc_alloc_membind when the node does not
/// exist. Release with free_on_node() on the same topology and size.
void* allocate_on_node(const topology& topo, std::size_t bytes, int numa_os_index);

/// Releases memory from allocate_on_node(); null is ignored.
void free_on_node(const topology& topo, void* p, std::size_t bytes) noexcept;

/// allocate_on_node() without the count below (its implementation).
void* allocate_on_node_uncounted(const topology& topo, std::size_t bytes, int numa_os_index);

/// Blocks from allocate_on_node() not yet released, over the whole process:
/// lets tests see a leak that LeakSanitizer cannot (hwloc maps the memory).
std::int64_t node_blocks_in_use() noexcept;

}  // namespace forkline::detail

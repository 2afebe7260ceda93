/// @file forkline/numa_memory.hpp
/// Arrays whose pages live on the NUMA node of the worker that uses them, and
/// where a page actually is.
///
/// @code
/// forkline::runtime rt;
/// forkline::numa_array<double> x(rt, n);   // block i bound to worker i's node
/// forkline::first_touch(rt, x, 0.0);       // fault every page in, in parallel
/// // worker i works on affinity_block(0, n, i, rt.worker_count())
/// @endcode
///
/// The partition is affinity_block() (forkline/affinity.hpp): contiguous,
/// near-equal blocks in worker order. parallel_for(..., static_affinity) uses
/// the same function, so the loop that reads a block runs where its pages are.
/// See "NUMA-local arrays" in runtime/DESIGN.md.
#pragma once

#include <cstddef>      // size_t
#include <span>         // span
#include <string>       // string (binding report)
#include <type_traits>  // is_trivially_*
#include <utility>      // exchange, move
#include <vector>       // vector

#include "forkline/affinity.hpp"  // affinity_block (the partition)
#include "forkline/runtime.hpp"   // runtime (plan(), first_touch)
#include "forkline/topology.hpp"  // placement_plan

namespace forkline {

/// One worker's share of a numa_array: its elements, and the pages bound to
/// its node. A page belongs to the block that holds its first byte, so a page
/// that straddles two blocks goes to the earlier one, and a block smaller than
/// a page may own no page at all.
struct numa_block {
    std::size_t begin = 0;       ///< first element (affinity_block over [0, n))
    std::size_t end = 0;         ///< one past the last element
    int numa_os_index = 0;       ///< the worker's kernel NUMA node; negative: leave unbound
    std::size_t first_page = 0;  ///< pages [first_page, end_page) from the array's start
    std::size_t end_page = 0;    ///< one past its last page
};

/// The layout of n elements of element_bytes over the plan's workers: block i
/// is affinity_block(0, n, i, workers) on plan.places[i].numa_os_index, with
/// the pages of page_bytes that it owns. Pure: no memory is touched, so it can
/// be checked on synthetic topologies. Throws config_error on an empty plan,
/// a zero element or page size, or a size that overflows size_t.
std::vector<numa_block> plan_numa_blocks(std::size_t n, std::size_t element_bytes, std::size_t page_bytes,
                                         const placement_plan& plan);

/// The kernel's page size (sysconf(_SC_PAGESIZE)).
std::size_t system_page_bytes() noexcept;

/// How a numa_array's pages were placed.
struct numa_binding {
    /// Every block's pages are bound (mbind MPOL_BIND) to its node, blocks
    /// with a negative node aside (they are left unbound on purpose); true
    /// for an array of 0 elements, which has nothing to bind; false for a
    /// default-constructed or moved-from array.
    bool bound = false;
    /// errno of the mbind the kernel refused; 0 when bound.
    int error = 0;
    /// Empty when bound; otherwise the call, node, errno and what it means.
    std::string reason;
};

/// The NUMA node of each page overlapping [p, p + bytes), in order, as
/// move_pages(2) reports it with no target nodes: a node number, or a negative
/// errno for a page with no frame (-ENOENT: never touched; -EFAULT: the zero
/// page or not mapped). Empty for bytes == 0. Throws system_failure naming
/// move_pages when the call itself fails (ENOSYS without NUMA support, EPERM
/// under a seccomp filter).
/// @code
/// std::vector<int> nodes = forkline::page_nodes(x.data(), x.size() * sizeof(double));
/// auto on_node0 = std::ranges::count(nodes, 0);
/// @endcode
std::vector<int> page_nodes(const void* p, std::size_t bytes);

namespace detail {

/// The untyped part of numa_array: one anonymous mapping bound block by block.
class numa_region {
public:
    numa_region() noexcept = default;
    /// Maps and binds; throws system_failure naming mmap (size, errno) when
    /// the mapping fails, config_error from plan_numa_blocks.
    numa_region(std::size_t n, std::size_t element_bytes, const placement_plan& plan);
    numa_region(numa_region&& other) noexcept;
    numa_region& operator=(numa_region&& other) noexcept;
    numa_region(const numa_region&) = delete;
    numa_region& operator=(const numa_region&) = delete;
    ~numa_region();

    void* data() const noexcept { return m_base; }
    std::size_t mapped_bytes() const noexcept { return m_mapped_bytes; }
    const std::vector<numa_block>& blocks() const noexcept { return m_blocks; }
    const numa_binding& binding() const noexcept { return m_binding; }

private:
    void bind_blocks(std::size_t page_bytes);

    void* m_base = nullptr;
    std::size_t m_mapped_bytes = 0;
    std::vector<numa_block> m_blocks;
    numa_binding m_binding;
};

using fill_function = void (*)(void* first, std::size_t count, const void* value);

/// Runs fill over block i on worker i of rt (static affinity), for every
/// non-empty block.
void touch_blocks(runtime& rt, void* base, std::size_t element_bytes, const std::vector<numa_block>& blocks,
                  fill_function fill, const void* value);

}  // namespace detail

/// An array of n elements, page-aligned, whose block i (affinity_block over
/// [0, n)) is bound to the NUMA node of worker i of a placement plan. Pages
/// are allocated at first touch; until then elements read as zero. Where the
/// kernel refuses a binding (no NUMA support, a seccomp filter, a node that
/// does not exist) the memory stays usable, unbound, and binding() says why.
/// Move-only; the destructor unmaps.
/// @code
/// forkline::numa_array<double> x(rt, n);
/// forkline::first_touch(rt, x, 0.0);
/// if (!x.binding().bound) std::fprintf(stderr, "not NUMA-bound: %s\n", x.binding().reason.c_str());
/// forkline::parallel_for(std::size_t{0}, x.size(), [&](std::size_t i) { x[i] += 1; }, forkline::static_affinity);
/// @endcode
template <class T>
    requires std::is_trivially_copyable_v<T> && std::is_trivially_default_constructible_v<T>
class numa_array {
public:
    /// No elements and no mapping.
    numa_array() noexcept = default;
    /// n elements laid out over `plan`'s workers.
    numa_array(const placement_plan& plan, std::size_t n) : m_region(n, sizeof(T), plan), m_size(n) {}
    /// n elements laid out over rt's workers.
    numa_array(const runtime& rt, std::size_t n) : numa_array(rt.plan(), n) {}

    /// Takes other's mapping; other is left empty.
    numa_array(numa_array&& other) noexcept
        : m_region(std::move(other.m_region)), m_size(std::exchange(other.m_size, 0)) {}
    /// Releases this array's mapping and takes other's; other is left empty.
    numa_array& operator=(numa_array&& other) noexcept {
        m_region = std::move(other.m_region);
        m_size = std::exchange(other.m_size, 0);
        return *this;
    }

    T* data() noexcept { return static_cast<T*>(m_region.data()); }                   ///< the first element
    const T* data() const noexcept { return static_cast<const T*>(m_region.data()); }   ///< the first element
    std::size_t size() const noexcept { return m_size; }                                ///< number of elements
    bool empty() const noexcept { return m_size == 0; }                                 ///< size() == 0
    T& operator[](std::size_t i) noexcept { return data()[i]; }                         ///< element i, unchecked
    const T& operator[](std::size_t i) const noexcept { return data()[i]; }             ///< element i, unchecked
    T* begin() noexcept { return data(); }                                              ///< for range-for and algorithms
    T* end() noexcept { return data() + m_size; }                                       ///< one past the last element
    const T* begin() const noexcept { return data(); }                                  ///< for range-for and algorithms
    const T* end() const noexcept { return data() + m_size; }                           ///< one past the last element
    std::span<T> span() noexcept { return {data(), m_size}; }                           ///< the elements as a span
    std::span<const T> span() const noexcept { return {data(), m_size}; }               ///< the elements as a span

    /// One entry per worker of the plan, in worker order.
    const std::vector<numa_block>& blocks() const noexcept { return m_region.blocks(); }
    /// Whether the binding took, and if not, why.
    const numa_binding& binding() const noexcept { return m_region.binding(); }
    /// The length of the mapping: size() * sizeof(T) rounded up to pages.
    std::size_t mapped_bytes() const noexcept { return m_region.mapped_bytes(); }

private:
    detail::numa_region m_region;
    std::size_t m_size = 0;
};

/// Writes `value` to every element, in parallel on rt's workers, block i by
/// worker i (parallel_for with static_affinity). Placement comes first from
/// the binding: a bound page is allocated on its node whoever touches it.
/// Where the binding was refused, first touch is what places the pages, and
/// a block whose worker's mailbox was busy is written by another worker (see
/// "NUMA-local arrays" in runtime/DESIGN.md).
/// @code
/// forkline::numa_array<float> grid(rt, cells);
/// forkline::first_touch(rt, grid, 0.0f);  // before the first timed step, not inside it
/// @endcode
template <class T>
void first_touch(runtime& rt, numa_array<T>& array, const T& value) {
    const detail::fill_function fill = [](void* first, std::size_t count, const void* v) {
        T* out = static_cast<T*>(first);
        const T x = *static_cast<const T*>(v);
        for (std::size_t i = 0; i < count; ++i) out[i] = x;
    };
    detail::touch_blocks(rt, array.data(), sizeof(T), array.blocks(), fill, &value);
}

}  // namespace forkline

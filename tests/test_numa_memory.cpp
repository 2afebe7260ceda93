// tests/test_numa_memory.cpp: the block layout of numa_array on synthetic
// multi-node machines, allocation, binding and first touch on this host, the
// fallback when the kernel refuses a binding, page_nodes, and the errors.
#include <doctest/doctest.h>

#include <numa.h>      // numa_max_node
#include <numaif.h>    // get_mempolicy, MPOL_F_NODE, MPOL_F_ADDR, MPOL_BIND, MPOL_DEFAULT
#include <sys/mman.h>  // msync (is a range still mapped?)

#include <cerrno>    // ENOMEM, ENOENT, EINVAL, EPERM, ENOSYS
#include <cstddef>   // byte, size_t
#include <cstdint>   // uint8_t, uintptr_t
#include <limits>    // numeric_limits
#include <set>       // set
#include <string>    // string
#include <utility>   // move
#include <vector>    // vector

#include "forkline/errors.hpp"       // system_failure, config_error
#include "forkline/numa_memory.hpp"  // numa_array, first_touch, page_nodes, plan_numa_blocks
#include "forkline/runtime.hpp"      // runtime
#include "forkline/topology.hpp"     // topology, placement_config
#include "support.hpp"               // config_for, scaled

using namespace forkline;

namespace {

constexpr const char* k_two_socket = "pack:2 numa:2 l3:2 core:4 pu:2";

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::size_t div_ceil(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

// Checks every property of a layout against the plan it came from.
void check_layout(const std::vector<numa_block>& blocks, const placement_plan& plan, std::size_t n,
                  std::size_t element_bytes, std::size_t page_bytes) {
    const unsigned workers = plan.worker_count();
    REQUIRE(blocks.size() == workers);
    std::size_t next_element = 0;
    std::size_t next_page = 0;
    for (unsigned i = 0; i < workers; ++i) {
        CAPTURE(i);
        const numa_block& b = blocks[i];
        // The affinity partition, on worker i's node.
        const auto [lo, hi] = affinity_block(std::size_t{0}, n, i, workers);
        REQUIRE(b.begin == lo);
        REQUIRE(b.end == hi);
        REQUIRE(b.numa_os_index == plan.places[i].numa_os_index);
        // Contiguous, in order, no overlap, near-equal.
        REQUIRE(b.begin == next_element);
        REQUIRE(b.begin <= b.end);
        REQUIRE(b.end - b.begin <= n / workers + 1);
        next_element = b.end;
        // Pages: contiguous too, each owned by the block holding its first byte.
        REQUIRE(b.first_page == next_page);
        REQUIRE(b.first_page <= b.end_page);
        for (std::size_t p = b.first_page; p < b.end_page; ++p) {
            REQUIRE(p * page_bytes >= b.begin * element_bytes);
            REQUIRE(p * page_bytes < b.end * element_bytes);
        }
        next_page = b.end_page;
    }
    REQUIRE(next_element == n);
    REQUIRE(next_page == div_ceil(n * element_bytes, page_bytes));
}

// The node each page of `a` should be on: that of the block owning it.
template <class T>
std::vector<int> expected_page_nodes(const numa_array<T>& a) {
    std::vector<int> nodes(a.mapped_bytes() / system_page_bytes(), -1);
    for (const numa_block& b : a.blocks())
        for (std::size_t p = b.first_page; p < b.end_page; ++p) nodes[p] = b.numa_os_index;
    return nodes;
}

// True when the kernel may refuse NUMA calls for reasons outside the test's
// control (no NUMA support, a seccomp filter); placement is then unverifiable.
bool refused_by_environment(int err) { return err == EPERM || err == ENOSYS; }

bool still_mapped(const void* p, std::size_t bytes) {
    return msync(const_cast<void*>(p), bytes, MS_ASYNC) == 0;  // ENOMEM once unmapped
}

}  // namespace

TEST_CASE("blocks over a synthetic two-socket machine map block i to worker i's node and cover [0, n)") {
    const topology topo = topology::synthetic(k_two_socket);
    for (const placement_policy policy : {placement_policy::compact, placement_policy::scatter}) {
        for (unsigned workers = 1; workers <= 32; ++workers) {
            placement_config config;
            config.policy = policy;
            config.workers = workers;
            config.use_smt = true;
            const placement_plan plan = topo.plan(config);
            std::set<int> nodes;
            for (const worker_place& p : plan.places) nodes.insert(p.numa_os_index);
            // 32 cores in 4 nodes of 8: the plans really span nodes.
            const unsigned all_nodes_from = policy == placement_policy::compact ? 25 : 4;
            if (workers >= all_nodes_from) REQUIRE(nodes.size() == 4);
            for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4096 * 3 + 5}}) {
                for (const std::size_t element_bytes : {std::size_t{1}, std::size_t{8}, std::size_t{24}}) {
                    CAPTURE(workers);
                    CAPTURE(n);
                    CAPTURE(element_bytes);
                    check_layout(plan_numa_blocks(n, element_bytes, 4096, plan), plan, n, element_bytes, 4096);
                }
            }
        }
    }
}

TEST_CASE("plan_numa_blocks rejects an empty plan, zero sizes and overflow") {
    const placement_plan empty;
    CHECK_THROWS_AS(plan_numa_blocks(10, 8, 4096, empty), config_error);
    const placement_plan plan = topology::synthetic(k_two_socket).plan({});
    CHECK_THROWS_AS(plan_numa_blocks(10, 0, 4096, plan), config_error);
    CHECK_THROWS_AS(plan_numa_blocks(10, 8, 0, plan), config_error);
    CHECK_THROWS_AS(plan_numa_blocks(std::numeric_limits<std::size_t>::max() / 4, 8, 4096, plan), config_error);
}

TEST_CASE("on this machine: allocation, binding, first touch and page nodes") {
    runtime rt(config_for(4));
    const std::size_t n = scaled(std::size_t{1} << 20, std::size_t{1} << 16);  // doubles: 8 MiB in release
    numa_array<double> a(rt, n);
    REQUIRE(a.size() == n);
    REQUIRE(a.data() != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % system_page_bytes() == 0);
    CHECK(a.mapped_bytes() == div_ceil(n * sizeof(double), system_page_bytes()) * system_page_bytes());
    CHECK(a.blocks().size() == rt.worker_count());
    check_layout(a.blocks(), rt.plan(), n, sizeof(double), system_page_bytes());

    // Nothing is touched yet: no page has a frame.
    for (const int node : page_nodes(a.data(), n * sizeof(double))) REQUIRE(node < 0);

    first_touch(rt, a, 2.5);
    std::size_t wrong = 0;
    for (const double x : a)
        if (x != 2.5) ++wrong;
    CHECK(wrong == 0);

    if (!a.binding().bound) {
        MESSAGE("binding refused: " << a.binding().reason);
        REQUIRE(refused_by_environment(a.binding().error));
        return;
    }
    CHECK(a.binding().error == 0);
    CHECK(a.binding().reason.empty());

    const std::vector<int> nodes = page_nodes(a.data(), n * sizeof(double));
    const std::vector<int> expected = expected_page_nodes(a);
    REQUIRE(nodes.size() == expected.size());
    const bool single_node = numa_max_node() == 0;
    for (std::size_t p = 0; p < nodes.size(); ++p) {
        CAPTURE(p);
        REQUIRE(nodes[p] == expected[p]);
        if (single_node) REQUIRE(nodes[p] == 0);
        // The kernel's other view agrees: the node of the page, and the policy on it.
        const char* addr = reinterpret_cast<const char*>(a.data()) + p * system_page_bytes();
        int node = -1;
        REQUIRE(get_mempolicy(&node, nullptr, 0, const_cast<char*>(addr), MPOL_F_NODE | MPOL_F_ADDR) == 0);
        REQUIRE(node == expected[p]);
        int mode = -1;
        unsigned long mask[16] = {};
        REQUIRE(get_mempolicy(&mode, mask, sizeof(mask) * 8, const_cast<char*>(addr), MPOL_F_ADDR) == 0);
        REQUIRE(mode == MPOL_BIND);
        REQUIRE((mask[expected[p] / 64] >> (expected[p] % 64) & 1UL) == 1UL);
    }
}

TEST_CASE("small and empty arrays") {
    runtime rt(config_for(3));
    numa_array<int> empty(rt, 0);
    CHECK(empty.empty());
    CHECK(empty.data() == nullptr);
    CHECK(empty.begin() == empty.end());
    CHECK(empty.mapped_bytes() == 0);
    CHECK(empty.binding().bound);
    first_touch(rt, empty, 5);
    CHECK(page_nodes(empty.data(), 0).empty());

    numa_array<std::uint8_t> seven(rt, 7);
    CHECK(seven.size() == 7);
    CHECK(seven.mapped_bytes() == system_page_bytes());
    first_touch(rt, seven, std::uint8_t{9});
    for (const std::uint8_t x : seven) CHECK(x == 9);
    seven[3] = 4;
    CHECK(seven.span()[3] == 4);
    // One page, whichever block holds its first byte owns it.
    CHECK(page_nodes(seven.data(), 7).size() == 1);
}

TEST_CASE("page_nodes counts every page the range overlaps") {
    runtime rt(config_for(2));
    const std::size_t page = system_page_bytes();
    numa_array<char> a(rt, 4 * page);
    first_touch(rt, a, 'x');
    CHECK(page_nodes(a.data(), 1).size() == 1);
    CHECK(page_nodes(a.data(), page).size() == 1);
    CHECK(page_nodes(a.data(), page + 1).size() == 2);
    CHECK(page_nodes(a.data() + 100, page).size() == 2);
    CHECK(page_nodes(a.data() + page - 1, 2).size() == 2);
    CHECK(page_nodes(a.data(), 4 * page).size() == 4);
    for (const int node : page_nodes(a.data(), 4 * page)) CHECK(node >= 0);
}

TEST_CASE("a binding the kernel refuses leaves the memory usable, unbound, with the reason") {
    runtime rt(config_for(4));
    // A node past the last one this machine has: mbind answers EINVAL.
    const int missing = numa_max_node() + 1;
    placement_plan plan = rt.plan();
    plan.places.back().numa_os_index = missing;  // the earlier blocks bind, then this one fails
    const std::size_t n = 64 * system_page_bytes() / sizeof(long);
    numa_array<long> a(plan, n);
    REQUIRE_FALSE(a.binding().bound);
    CHECK(a.binding().error != 0);
    if (!refused_by_environment(a.binding().error)) {
        CHECK(a.binding().error == EINVAL);
        CHECK(contains(a.binding().reason, "mbind"));
        CHECK(contains(a.binding().reason, "node " + std::to_string(missing)));
        CHECK(contains(a.binding().reason, "unbound"));
        // The blocks that were bound before the refusal were reset: one policy throughout.
        for (std::size_t p = 0; p < a.mapped_bytes() / system_page_bytes(); ++p) {
            int mode = -1;
            char* addr = reinterpret_cast<char*>(a.data()) + p * system_page_bytes();
            REQUIRE(get_mempolicy(&mode, nullptr, 0, addr, MPOL_F_ADDR) == 0);
            REQUIRE(mode == MPOL_DEFAULT);
        }
    }
    first_touch(rt, a, 17L);
    for (const long x : a) REQUIRE(x == 17);
    for (const int node : page_nodes(a.data(), n * sizeof(long))) CHECK(node >= 0);
}

TEST_CASE("an allocation mmap cannot satisfy throws system_failure naming mmap, the size and errno") {
    const placement_plan plan = topology::synthetic(k_two_socket).plan({});
    const std::size_t huge = std::size_t{1} << 50;
    try {
        numa_array<std::byte> a(plan, huge);
        FAIL("a 1 PiB mapping succeeded");
    } catch (const system_failure& e) {
        CHECK(e.call() == "mmap");
        CHECK(e.code().value() == ENOMEM);
        CHECK(contains(e.what(), std::to_string(huge)));
    }
    // A size that does not even fit in size_t.
    try {
        numa_array<double> a(plan, std::numeric_limits<std::size_t>::max() / 4);
        FAIL("an overflowing size was accepted");
    } catch (const system_failure& e) {
        CHECK(e.call() == "mmap");
        CHECK(contains(e.what(), "overflow"));
    }
}

TEST_CASE("move-only: moves hand the mapping over; destruction unmaps it") {
    const placement_plan plan = topology::synthetic(k_two_socket).plan({});
    const std::size_t bytes = 3 * system_page_bytes();
    const void* first = nullptr;
    {
        numa_array<int> a(plan, bytes / sizeof(int));
        first = a.data();
        a[0] = 1;
        numa_array<int> b(std::move(a));
        CHECK(a.data() == nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
        CHECK(a.size() == 0);
        CHECK(a.blocks().empty());
        CHECK(b.data() == first);
        CHECK(b[0] == 1);
        numa_array<int> c(plan, 10);
        const void* second = c.data();
        c = std::move(b);
        CHECK(c.data() == first);
        CHECK_FALSE(still_mapped(second, system_page_bytes()));  // the overwritten array's pages
        CHECK(still_mapped(first, bytes));
    }
    CHECK_FALSE(still_mapped(first, bytes));
}

// runtime/numa_memory.cpp: the block layout of numa_array, its mapping and
// per-block binding, first touch, and the page-location query.
// See "NUMA-local arrays" in runtime/DESIGN.md.
#include "forkline/numa_memory.hpp"

#include <numaif.h>    // mbind, move_pages, MPOL_BIND, MPOL_DEFAULT
#include <sys/mman.h>  // mmap, munmap
#include <unistd.h>    // sysconf

#include <cerrno>     // errno, EINVAL, EPERM, ENOSYS, ENOMEM
#include <cstdint>    // uintptr_t
#include <cstring>    // strerror
#include <limits>     // numeric_limits
#include <string>     // string, to_string

#include "forkline/errors.hpp"        // config_error, system_failure
#include "forkline/parallel_for.hpp"  // parallel_for, static_affinity (first touch)

namespace forkline {

namespace {

constexpr std::size_t k_bits_per_word = std::numeric_limits<unsigned long>::digits;

std::size_t div_ceil(std::size_t a, std::size_t b) noexcept { return a / b + (a % b != 0 ? 1 : 0); }

// What an mbind refusal most likely means, for the recorded reason.
const char* mbind_hint(int err) noexcept {
    switch (err) {
    case EINVAL: return "the node does not exist or has no memory on this machine";
    case EPERM: return "not permitted (a seccomp filter, e.g. a container without CAP_SYS_NICE)";
    case ENOSYS: return "the kernel has no NUMA support";
    case ENOMEM: return "the kernel is out of memory for the policy";
    default: return "unexpected";
    }
}

// Binds [first, first + bytes) to one node. Returns 0 or the errno.
int bind_range(void* first, std::size_t bytes, int node) {
    const std::size_t words = static_cast<std::size_t>(node) / k_bits_per_word + 1;
    std::vector<unsigned long> mask(words, 0);
    mask[static_cast<std::size_t>(node) / k_bits_per_word] = 1UL << (static_cast<std::size_t>(node) % k_bits_per_word);
    // maxnode is one more than the bits in the mask: the kernel drops the last
    // bit (a historical off-by-one that libnuma also compensates for).
    const unsigned long maxnode = static_cast<unsigned long>(words * k_bits_per_word + 1);
    if (mbind(first, bytes, MPOL_BIND, mask.data(), maxnode, 0) != 0) return errno;
    return 0;
}

}  // namespace

std::size_t system_page_bytes() noexcept {
    const long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<std::size_t>(p) : std::size_t{4096};
}

std::vector<numa_block> plan_numa_blocks(std::size_t n, std::size_t element_bytes, std::size_t page_bytes,
                                         const placement_plan& plan) {
    if (plan.places.empty()) throw config_error("numa_array: the placement plan has no workers");
    if (element_bytes == 0 || page_bytes == 0)
        throw config_error("numa_array: element size and page size must be positive (got " +
                           std::to_string(element_bytes) + " and " + std::to_string(page_bytes) + ")");
    if (n > std::numeric_limits<std::size_t>::max() / element_bytes)
        throw config_error("numa_array: " + std::to_string(n) + " elements of " + std::to_string(element_bytes) +
                           " bytes overflow size_t");
    const unsigned workers = plan.worker_count();
    std::vector<numa_block> blocks(workers);
    for (unsigned i = 0; i < workers; ++i) {
        const auto [b, e] = affinity_block(std::size_t{0}, n, i, workers);
        numa_block& out = blocks[i];
        out.begin = b;
        out.end = e;
        out.numa_os_index = plan.places[i].numa_os_index;
        // A page belongs to the block that holds its first byte.
        out.first_page = div_ceil(b * element_bytes, page_bytes);
        out.end_page = div_ceil(e * element_bytes, page_bytes);
    }
    return blocks;
}

namespace detail {

numa_region::numa_region(std::size_t n, std::size_t element_bytes, const placement_plan& plan) {
    const std::size_t page = system_page_bytes();
    if (element_bytes != 0 && n > std::numeric_limits<std::size_t>::max() / element_bytes)
        throw system_failure("mmap", ENOMEM,
                             "cannot map " + std::to_string(n) + " elements of " + std::to_string(element_bytes) +
                                 " bytes: the size overflows size_t");
    m_blocks = plan_numa_blocks(n, element_bytes, page, plan);
    m_binding.bound = true;
    if (n == 0) return;
    const std::size_t bytes = n * element_bytes;
    if (bytes > std::numeric_limits<std::size_t>::max() - (page - 1))
        throw system_failure("mmap", ENOMEM, "cannot map " + std::to_string(bytes) + " bytes: the size overflows");
    const std::size_t length = div_ceil(bytes, page) * page;
    void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        const int err = errno;
        throw system_failure("mmap", err,
                             "cannot map " + std::to_string(length) + " bytes for a numa_array of " +
                                 std::to_string(n) + " elements (check free memory, ulimit -v and "
                                 "/proc/sys/vm/overcommit_memory)");
    }
    m_base = p;
    m_mapped_bytes = length;
    try {
        bind_blocks(page);
    } catch (...) {  // bad_alloc from a node mask or the reason: the destructor will not run
        munmap(m_base, m_mapped_bytes);
        throw;
    }
}

void numa_region::bind_blocks(std::size_t page) {
    void* const p = m_base;
    const std::size_t length = m_mapped_bytes;
    // Bind runs of consecutive blocks on the same node with one call each:
    // every call splits the mapping's VMA, so fewer calls keep it compact.
    auto* base = static_cast<unsigned char*>(p);
    std::size_t i = 0;
    while (i < m_blocks.size()) {
        const int node = m_blocks[i].numa_os_index;
        const std::size_t first = m_blocks[i].first_page;
        std::size_t last = m_blocks[i].end_page;
        std::size_t j = i + 1;
        while (j < m_blocks.size() && m_blocks[j].numa_os_index == node) last = m_blocks[j++].end_page;
        i = j;
        if (node < 0 || first == last) continue;
        const int err = bind_range(base + first * page, (last - first) * page, node);
        if (err == 0) continue;
        // Refused: undo what was bound so the whole array has one policy (the
        // process default), and say why. The memory itself is fine.
        mbind(p, length, MPOL_DEFAULT, nullptr, 0, 0);
        m_binding.bound = false;
        m_binding.error = err;
        m_binding.reason = "mbind(MPOL_BIND, node " + std::to_string(node) + ", pages " + std::to_string(first) +
                           "-" + std::to_string(last - 1) + ") failed: " + std::strerror(err) + " (errno " +
                           std::to_string(err) + ", " + mbind_hint(err) + "); the array is left unbound";
        return;
    }
}

numa_region::numa_region(numa_region&& other) noexcept
    : m_base(std::exchange(other.m_base, nullptr)),
      m_mapped_bytes(std::exchange(other.m_mapped_bytes, 0)),
      m_blocks(std::move(other.m_blocks)),
      m_binding(std::move(other.m_binding)) {
    other.m_blocks.clear();
    other.m_binding = numa_binding{};
}

numa_region& numa_region::operator=(numa_region&& other) noexcept {
    if (this != &other) {
        if (m_base != nullptr) munmap(m_base, m_mapped_bytes);
        m_base = std::exchange(other.m_base, nullptr);
        m_mapped_bytes = std::exchange(other.m_mapped_bytes, 0);
        m_blocks = std::move(other.m_blocks);
        m_binding = std::move(other.m_binding);
        other.m_blocks.clear();
        other.m_binding = numa_binding{};
    }
    return *this;
}

numa_region::~numa_region() {
    if (m_base != nullptr) munmap(m_base, m_mapped_bytes);
}

void touch_blocks(runtime& rt, void* base, std::size_t element_bytes, const std::vector<numa_block>& blocks,
                  fill_function fill, const void* value) {
    if (base == nullptr) return;
    auto* bytes = static_cast<unsigned char*>(base);
    // Static affinity over the block indices: with one block per worker,
    // affinity_block(0, P, i, P) is {i, i + 1}, so worker i writes block i
    // and even unbound (fallback) memory is first touched on its node. Bound
    // pages are placed by the policy whoever writes them.
    rt.run([&] {
        parallel_for(
            std::size_t{0}, blocks.size(),
            [&](std::size_t i) {
                const numa_block& b = blocks[i];
                if (b.begin < b.end) fill(bytes + b.begin * element_bytes, b.end - b.begin, value);
            },
            static_affinity);
    });
}

}  // namespace detail

std::vector<int> page_nodes(const void* p, std::size_t bytes) {
    if (bytes == 0) return {};
    const std::size_t page = system_page_bytes();
    const auto start = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t first = start - start % page;
    const std::uintptr_t stop = start + bytes;  // one past the last byte
    const std::size_t count = div_ceil(stop - first, page);
    std::vector<void*> pages(count);
    for (std::size_t i = 0; i < count; ++i) pages[i] = reinterpret_cast<void*>(first + i * page);
    std::vector<int> status(count, 0);
    // nodes == nullptr: move nothing, report where each page is.
    if (move_pages(0, count, pages.data(), nullptr, status.data(), 0) != 0) {
        const int err = errno;
        throw system_failure("move_pages", err,
                             "cannot query the nodes of " + std::to_string(count) + " pages" +
                                 (err == EPERM ? " (a seccomp filter may forbid it without CAP_SYS_NICE)" : ""));
    }
    return status;
}

}  // namespace forkline

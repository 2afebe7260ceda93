// forkline/detail/task_pool.hpp: fixed-size slots for task_group jobs.
//
// Each worker owns a pool. Allocation pops the owner's free list (no atomics);
// a slot freed by another worker goes on the owner's remote list (a lock-free
// push), which the owner takes whole when its own list runs dry. Chunks of
// slots are allocated on the worker's NUMA node and kept until the runtime
// stops. See "Task slots" in runtime/DESIGN.md.
#pragma once

#include <atomic>   // atomic
#include <cstddef>  // size_t, max_align_t

#include "forkline/detail/deque.hpp"  // k_cache_line

namespace forkline::detail {

class task_pool {
public:
    static constexpr std::size_t k_slot_size = 128;
    static constexpr std::size_t k_slot_align = 16;

    struct alignas(k_slot_align) slot_header {
        slot_header* next;
        task_pool* owner;
    };
    static constexpr std::size_t k_payload = k_slot_size - sizeof(slot_header);

    /// `node` is the kernel NUMA node for chunks; `topo` the runtime's hwloc
    /// topology (void* to keep hwloc out of public headers).
    task_pool(const void* topo, int node) noexcept : m_topo(topo), m_node(node) {}
    ~task_pool();
    task_pool(const task_pool&) = delete;
    task_pool& operator=(const task_pool&) = delete;

    /// k_payload bytes aligned to k_slot_align. Owner thread only.
    void* allocate() {
        if (slot_header* s = m_free) {
            m_free = s->next;
            return s + 1;
        }
        return allocate_slow();
    }

    /// Any worker thread of the same runtime.
    static void release(void* payload, const task_pool* caller) noexcept {
        slot_header* s = static_cast<slot_header*>(payload) - 1;
        if (s->owner == caller) {
            s->next = s->owner->m_free;
            s->owner->m_free = s;
        } else {
            s->owner->release_remote(s);
        }
    }

private:
    void* allocate_slow();
    void release_remote(slot_header* s) noexcept;

    // owner-private
    slot_header* m_free = nullptr;
    void* m_chunks = nullptr;  // singly linked through each chunk's first word
    const void* m_topo;
    int m_node;
    // written by: other workers (push); taken by: the owner (exchange)
    alignas(k_cache_line) std::atomic<slot_header*> m_remote_free{nullptr};
};

}  // namespace forkline::detail

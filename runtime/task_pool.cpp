// runtime/task_pool.cpp: the slow paths of the task slot pool.
// See "Task slots" in runtime/DESIGN.md.
#include "forkline/detail/task_pool.hpp"

#include <new>  // bad_alloc

#include "binding.hpp"            // allocate_on_node, free_on_node
#include "forkline/topology.hpp"  // topology

namespace forkline::detail {

namespace {
// 64 KiB chunks: 511 slots each after the chunk's own link slot.
constexpr std::size_t k_chunk_bytes = std::size_t{64} << 10;
constexpr std::size_t k_slots_per_chunk = k_chunk_bytes / task_pool::k_slot_size;
}  // namespace

task_pool::~task_pool() {
    const auto& topo = *static_cast<const topology*>(m_topo);
    while (m_chunks != nullptr) {
        void* next = *static_cast<void**>(m_chunks);
        free_on_node(topo, m_chunks, k_chunk_bytes);
        m_chunks = next;
    }
}

void* task_pool::allocate_slow() {
    // acquire: pairs with the release CAS in release_remote(), so the slots'
    // last users are done with them before we hand them out again.
    slot_header* remote = m_remote_free.exchange(nullptr, std::memory_order_acquire);
    if (remote == nullptr) {
        const auto& topo = *static_cast<const topology*>(m_topo);
        auto* chunk = static_cast<unsigned char*>(allocate_on_node(topo, k_chunk_bytes, m_node));
        *reinterpret_cast<void**>(chunk) = m_chunks;
        m_chunks = chunk;
        // Slot 0 holds the chunk link; thread the rest onto a list.
        for (std::size_t i = k_slots_per_chunk - 1; i >= 1; --i) {
            auto* s = reinterpret_cast<slot_header*>(chunk + i * k_slot_size);
            s->owner = this;
            s->next = remote;
            remote = s;
        }
    }
    slot_header* s = remote;
    m_free = s->next;
    return s + 1;
}

void task_pool::release_remote(slot_header* s) noexcept {
    slot_header* head = m_remote_free.load(std::memory_order_relaxed);
    do {
        s->next = head;
        // release: our use of the slot happens before the owner reuses it.
    } while (!m_remote_free.compare_exchange_weak(head, s, std::memory_order_release,
                                                  std::memory_order_relaxed));
}

}  // namespace forkline::detail

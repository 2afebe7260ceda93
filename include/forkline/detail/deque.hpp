// forkline/detail/deque.hpp: the per-worker work-stealing deque.
//
// A bounded Chase-Lev deque with the memory orderings of Lê, Pop, Cohen and
// Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak Memory
// Models" (PPoPP'13), as corrected by Norris and Demsky's CDSChecker
// (OOPSLA'13). See "Steal protocol" in runtime/DESIGN.md.
//
// Capability-typed handles: the storage is shared; `worker_deque` is the owner
// end (push/pop, one thread, not copyable), `stealer` the thief end (copyable).
// `Atomics` is the atomics policy (atomics.hpp): std_atomics in production,
// the model checker's in tests/test_explore_deque.cpp.
//
// Departure from the paper: the buffer never grows. A full deque refuses the
// push and the caller runs the work inline (work-first), which is always
// correct for fork-join and keeps push free of allocation. Because the buffer
// pointer never changes, the CDSChecker fix (the thief's load of the array
// pointer must be acquire, and push must reload it after a resize) has nothing
// to apply to: there is no array pointer to load.
#pragma once

#include <atomic>   // memory_order
#include <cstddef>  // size_t
#include <cstdint>  // int64_t

#include "forkline/detail/atomics.hpp"  // std_atomics, full_fence, has_mutation

namespace forkline::detail {

inline constexpr std::size_t k_cache_line = 64;

/// The three outcomes of a steal. `lost_race` means another thief (or the
/// owner taking the last item) won; the deque may still hold work.
enum class steal_outcome { taken, empty, lost_race };

template <class T>
struct steal_result {
    steal_outcome outcome;
    T* item;  // non-null only when outcome == taken
};

/// Shared storage of one deque: indices and the ring of item pointers.
template <class T, class Atomics = std_atomics>
class deque_storage {
public:
    template <class U>
    using atomic = typename Atomics::template atomic<U>;

    /// `buffer` holds `capacity` slots (a power of two); the caller owns it
    /// (so that it can live on the owner's NUMA node) and keeps it alive.
    deque_storage(atomic<T*>* buffer, std::int64_t capacity) noexcept
        : m_buffer(buffer), m_mask(capacity - 1) {}
    deque_storage(const deque_storage&) = delete;
    deque_storage& operator=(const deque_storage&) = delete;

    std::int64_t capacity() const noexcept { return m_mask + 1; }

    /// A racy size, good for heuristics (victim choice, "is there more").
    std::int64_t size_estimate() const noexcept {
        // relaxed: a hint only; no decision that needs exactness uses it.
        const std::int64_t b = m_bottom.load(std::memory_order_relaxed);
        const std::int64_t t = m_top.load(std::memory_order_relaxed);
        return b > t ? b - t : 0;
    }

private:
    template <class, class>
    friend class worker_deque;
    template <class, class>
    friend class stealer;

    // written by: thieves (CAS) and the owner (CAS on the last item); read by: all
    alignas(k_cache_line) atomic<std::int64_t> m_top{0};
    // written by: owner only; read by: thieves
    alignas(k_cache_line) atomic<std::int64_t> m_bottom{0};
    // immutable after construction
    alignas(k_cache_line) atomic<T*>* const m_buffer;
    const std::int64_t m_mask;
};

/// The owner end, which holds the storage itself (so the owner's fast path
/// has no pointer to chase). Only the thread that owns the deque may call
/// push/pop; thieves get a `stealer` from storage().
template <class T, class Atomics = std_atomics>
class worker_deque {
public:
    using storage_type = deque_storage<T, Atomics>;

    worker_deque(typename storage_type::template atomic<T*>* buffer, std::int64_t capacity) noexcept
        : m_storage(buffer, capacity) {}
    worker_deque(const worker_deque&) = delete;
    worker_deque& operator=(const worker_deque&) = delete;

    storage_type& storage() noexcept { return m_storage; }
    const storage_type& storage() const noexcept { return m_storage; }

    /// Index the next push will use. Items at or above a remembered bottom were
    /// pushed after it was read (see "Join protocol" in runtime/DESIGN.md).
    std::int64_t bottom() const noexcept {
        // relaxed: only the owner writes bottom, so its own load is exact.
        return m_storage.m_bottom.load(std::memory_order_relaxed);
    }

    /// Returns false when full; the caller then runs the item itself.
    bool push(T* item) noexcept {
        const std::int64_t b = m_storage.m_bottom.load(std::memory_order_relaxed);
        // acquire: pairs with the seq_cst CAS on top in steal(), so that a slot a
        // thief has finished reading is not overwritten before the thief's CAS.
        const std::int64_t t = m_storage.m_top.load(std::memory_order_acquire);
        if (b - t > m_storage.m_mask) return false;
        m_storage.m_buffer[b & m_storage.m_mask].store(item, std::memory_order_relaxed);
        // release: publishes the slot (and the item it points to) to a thief
        // whose acquire load of bottom in steal() reads b + 1. Lê et al. use a
        // release fence and a relaxed store; a release store is a plain mov
        // on x86 either way, one instruction on ARMv8 (stlr, where the fence
        // is dmb ish; str), and lets ThreadSanitizer, which ignores fences,
        // see the hand-over.
        m_storage.m_bottom.store(b + 1, std::memory_order_release);
        return true;
    }

    /// Takes the most recently pushed item, or nullptr when empty (or when a
    /// thief won the race for the last item).
    T* pop() noexcept {
        const std::int64_t b = m_storage.m_bottom.load(std::memory_order_relaxed) - 1;
        m_storage.m_bottom.store(b, k_pop_bottom_order);
        // seq_cst: orders the store of bottom before the load of top against the
        // thieves' seq_cst fence between their loads of top and bottom (the
        // Dekker pair of the protocol). acq_rel is not enough (CDSChecker).
        Atomics::fence();
        std::int64_t t = m_storage.m_top.load(std::memory_order_relaxed);
        if (t > b) {  // empty: restore
            m_storage.m_bottom.store(b + 1, k_pop_bottom_order);
            return nullptr;
        }
        T* item = m_storage.m_buffer[b & m_storage.m_mask].load(std::memory_order_relaxed);
        if (t == b) {
            // The last item: race the thieves for it on top. Relaxed success
            // order: the paper has seq_cst, which its authors confirmed is not
            // needed (noted by CDSChecker); the fence above already orders us.
            if (!m_storage.m_top.compare_exchange_strong(t, t + 1, std::memory_order_relaxed,
                                                    std::memory_order_relaxed)) {
                item = nullptr;
            }
            m_storage.m_bottom.store(b + 1, k_pop_bottom_order);
        }
        return item;
    }

    std::int64_t size_estimate() const noexcept { return m_storage.size_estimate(); }

    /// For the stand-in worker of a measuring scope, built with capacity -1:
    /// bottom one below top, so every push fails (b - t = -1 > mask = -2)
    /// and lazy splitting sees every half it left behind as stolen (top >=
    /// the mark bottom() + 1), so loops split down to their chunk, as they
    /// do when thieves are hungry. See "Work and span" in runtime/DESIGN.md.
    void make_measuring_stand_in() noexcept {
        // relaxed: only the measuring thread ever looks at this deque.
        m_storage.m_bottom.store(m_storage.m_top.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    }

    /// Index of the oldest item not yet taken. Items below it were taken by
    /// thieves (or popped as the last item); lazy splitting reads it to learn
    /// whether the half it pushed has been stolen.
    std::int64_t top_relaxed() const noexcept {
        // relaxed: a hint; a stale value only delays one split.
        return m_storage.m_top.load(std::memory_order_relaxed);
    }

private:
    // release, not relaxed, for pop's stores of bottom: since C++20 (P0982)
    // a release sequence no longer extends to later plain stores of the same
    // thread, so a thief whose acquire load of bottom reads a store of pop()
    // would otherwise not be synchronized with the pushes before it (and
    // could read a slot before the item in it). A plain mov on x86.
    static constexpr std::memory_order k_pop_bottom_order =
        has_mutation<Atomics>(mutation::pop_relaxed_bottom) ? std::memory_order_relaxed : std::memory_order_release;

    storage_type m_storage;
};

/// The thief end. Copyable; any thread may steal.
template <class T, class Atomics = std_atomics>
class stealer {
public:
    explicit stealer(deque_storage<T, Atomics>& s) noexcept : m_s(&s) {}

    steal_result<T> steal() const noexcept {
        // relaxed: the paper has acquire; the seq_cst fence that follows makes
        // it redundant (CDSChecker/AutoMO, confirmed by the paper's authors).
        std::int64_t t = m_s->m_top.load(std::memory_order_relaxed);
        // seq_cst: the thieves' half of the Dekker pair with pop()'s fence.
        if constexpr (!has_mutation<Atomics>(mutation::steal_without_fence)) Atomics::fence();
        // acquire: pairs with the release store of bottom in push(), making
        // the slot and the item's contents visible.
        const std::int64_t b = m_s->m_bottom.load(std::memory_order_acquire);
        if (t >= b) return {steal_outcome::empty, nullptr};
        // Lê et al. load the slot with consume; we use relaxed, ordered after
        // the acquire load of bottom above (consume is promoted to acquire by
        // every compiler anyway, and ThreadSanitizer does not model it).
        T* item = m_s->m_buffer[t & m_s->m_mask].load(std::memory_order_relaxed);
        // seq_cst: one total order over all updates of top (thieves and the
        // owner's last-item CAS), as the protocol requires.
        if (!m_s->m_top.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                                std::memory_order_relaxed)) {
            return {steal_outcome::lost_race, nullptr};
        }
        return {steal_outcome::taken, item};
    }

    std::int64_t size_estimate() const noexcept { return m_s->size_estimate(); }
    bool looks_empty() const noexcept { return m_s->size_estimate() == 0; }

private:
    deque_storage<T, Atomics>* m_s;
};

}  // namespace forkline::detail

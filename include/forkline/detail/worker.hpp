// forkline/detail/worker.hpp: the part of a worker the inline fast paths touch.
//
// invoke() and task_group::spawn() are templates, so the push, the pop and the
// wake check are compiled into user code; everything slower (stealing,
// joining a stolen job, parking) is out of line in runtime/.
#pragma once

#include <atomic>   // atomic
#include <cstdint>  // uint32_t, uint64_t, int64_t

#include "forkline/detail/cancel.hpp" // cancel_context
#include "forkline/detail/deque.hpp"  // deque_storage, worker_deque, stealer
#include "forkline/detail/job.hpp"    // job, join_job
#include "forkline/detail/parking.hpp"  // parking_words, wake_needed_after_push

namespace forkline::detail {

class runtime_core;
class task_pool;
struct measure_context;

/// Shared idle bookkeeping of one runtime: the words of the parking protocol
/// (sleepers, epoch, wake token, whether pushes need a fence). See "Parking
/// protocol" in runtime/DESIGN.md.
struct alignas(k_cache_line) idle_control : parking_words<> {};

/// Per-worker event counts. Single writer (the worker), so an increment is a
/// relaxed load and store, not a locked RMW; readers get a racy but
/// tear-free snapshot.
struct alignas(k_cache_line) worker_counters {
    std::atomic<std::uint64_t> spawned{0};       ///< jobs made stealable by this worker
    std::atomic<std::uint64_t> tasks{0};         ///< jobs run by this worker (inline or stolen)
    std::atomic<std::uint64_t> steals_near{0};   ///< steals from a worker in the same NUMA node
    std::atomic<std::uint64_t> steals_far{0};    ///< steals from another NUMA node
    std::atomic<std::uint64_t> failed_steals{0}; ///< attempts that found nothing or lost a race
    std::atomic<std::uint64_t> parks{0};         ///< times the worker went to sleep
    std::atomic<std::uint64_t> wakeups{0};       ///< times it was woken from sleep
    std::atomic<std::uint64_t> idle_ns{0};       ///< time spent looking for work or parked (the three below)
    std::atomic<std::uint64_t> search_ns{0};     ///< looking for work, when the search found some
    std::atomic<std::uint64_t> failed_search_ns{0};  ///< looking for work, when it ended in a park
    std::atomic<std::uint64_t> parked_ns{0};     ///< asleep, completed sleeps
    /// now_ns() when the current search (searching_since) or sleep
    /// (parked_since) began, 0 when not in one: lets a snapshot count the
    /// interval still going on (runtime::stats()).
    std::atomic<std::uint64_t> searching_since{0};
    std::atomic<std::uint64_t> parked_since{0};
    /// Sequence lock over the idle fields above (idle_ns, search_ns,
    /// failed_search_ns, parked_ns and the two starts): odd while the worker
    /// changes them, so that a snapshot never sees an interval both added
    /// to a total and still going on. See "Counters" in runtime/DESIGN.md.
    std::atomic<std::uint32_t> idle_seq{0};
    std::atomic<std::uint64_t> join_wait_ns{0};  ///< in a join or group wait with nothing found to run
    std::atomic<std::uint64_t> injected{0};      ///< jobs this worker took from the injection queue
};

inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t by = 1) noexcept {
    // relaxed load and store: single writer; readers tolerate staleness.
    c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

struct worker {
    worker(std::atomic<job*>* buffer, std::int64_t capacity) noexcept : deque(buffer, capacity) {}

    worker_deque<job> deque;       // owner end; thieves build stealers from deque.storage()
    idle_control* idle = nullptr;  // the runtime's
    runtime_core* core = nullptr;
    task_pool* pool = nullptr;     // slots for task_group jobs
    unsigned index = 0;
    unsigned peers = 1;            // workers in this runtime, for automatic grain
    // Set only on the stand-in worker of a measuring_scope; read only where
    // a push failed. See "Work and span" in runtime/DESIGN.md.
    measure_context* measure = nullptr;
    // The cancellation context of the job this worker runs (null: none).
    // written and read by: the owner only; set by jobs that carry a context
    // and restored when they end. See "Cancellation" in runtime/DESIGN.md.
    const cancel_context* context = nullptr;
    worker_counters counters;
    // A job meant for this worker only (affinity). written by: posters (CAS
    // from null), the owner (exchange to null); read by: the owner, parkers' scan.
    alignas(k_cache_line) std::atomic<job*> mailbox{nullptr};
    // Isolation depth: above 0 while this worker runs inside isolate(), or a
    // job stolen from a worker that was; its waits then run only its own
    // jobs pushed above isolation_base ("Isolation" in runtime/DESIGN.md).
    // written by: the owner; read by: thieves right after a steal (relaxed).
    std::atomic<unsigned> isolated{0};
    std::int64_t isolation_base = 0;  // owner only
};

/// Marks w isolated for the scope: its waits run only jobs it pushes from
/// here on. Owner only.
class isolation_scope {
public:
    explicit isolation_scope(worker& w) noexcept : m_worker(w), m_saved_base(w.isolation_base) {
        w.isolation_base = w.deque.bottom();
        // relaxed: thieves read it only as a hint about jobs they took
        // (conservative either way: see "Isolation").
        w.isolated.store(w.isolated.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    ~isolation_scope() {
        m_worker.isolated.store(m_worker.isolated.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
        m_worker.isolation_base = m_saved_base;
    }
    isolation_scope(const isolation_scope&) = delete;
    isolation_scope& operator=(const isolation_scope&) = delete;

private:
    worker& m_worker;
    std::int64_t m_saved_base;
};

/// The worker running on this thread, or nullptr on threads forkline did not
/// start. initial-exec: a plain %fs-relative load instead of a call to
/// __tls_get_addr; fine for a library linked at start-up (not dlopen'ed late).
/// constinit: no dynamic initialisation, hence no TLS wrapper call per access.
extern constinit thread_local worker* t_current_worker __attribute__((tls_model("initial-exec")));

inline worker* current_worker() noexcept { return t_current_worker; }

/// Sets w's current context for the lifetime of the scope (C3 in
/// "Cancellation", runtime/DESIGN.md): a job that carries a context runs under it.
class context_scope {
public:
    context_scope(worker& w, const cancel_context* c) noexcept : m_worker(w), m_saved(w.context) { w.context = c; }
    ~context_scope() { m_worker.context = m_saved; }
    context_scope(const context_scope&) = delete;
    context_scope& operator=(const context_scope&) = delete;

private:
    worker& m_worker;
    const cancel_context* m_saved;
};

// Out of line, in runtime/runtime.cpp.
void wake_one_sleeper(worker& w) noexcept;
/// Wakes every thread sleeping on `word` (futex). Safe to call on a word whose
/// owner may already have returned: the kernel only hashes the address.
void wake_waiters(const std::atomic<std::uint32_t>& word) noexcept;
inline void wake_joiner(const std::atomic<std::uint32_t>& word) noexcept { wake_waiters(word); }
void join_stolen(worker& w, join_job& j) noexcept;
/// Runs one job of the injection queue on w, unless w is past its stack's
/// help floor; clears injected_waiting when the queue is empty.
/// See "Injection bound" in runtime/DESIGN.md.
void help_injected(worker& w) noexcept;
/// At a join: outside work waits for no worker to be idle, so take it here
/// (one relaxed load of a line the push just read).
inline void run_waiting_injected(worker& w) noexcept {
    // relaxed: a hint; a stale false delays the job to the next join or to
    // a worker's search, a stale true costs one look at the queue.
    if (w.idle->injected_waiting.load(std::memory_order_relaxed)) [[unlikely]] help_injected(w);
}
void run_job(worker& w, job* j) noexcept;
/// Puts j in the mailbox of worker `target` of w's runtime and wakes it if
/// it sleeps. False when that mailbox is occupied: the caller runs j another way.
/// See "Affinity mailboxes" in runtime/DESIGN.md.
bool post_to_worker(worker& w, unsigned target, job* j) noexcept;
/// Runs jobs above `base` in w's deque and steals until `(word & count_mask)`
/// is zero; used by waits with no single job to watch (task_group). When
/// there is nothing to do it sets `waiter_bit` in `word` and sleeps on it
/// (futex, with a timeout so that it looks for work again).
void help_until(worker& w, std::int64_t base, std::atomic<std::uint32_t>& word,
                std::uint32_t count_mask, std::uint32_t waiter_bit) noexcept;

/// After a push: wake a parked worker if there is one (N1).
/// See "Parking protocol" in runtime/DESIGN.md for why a compiler barrier is
/// enough here when the parker issues membarrier().
inline void notify_after_push(worker& w) noexcept {
    if (wake_needed_after_push(*w.idle)) wake_one_sleeper(w);
}

}  // namespace forkline::detail

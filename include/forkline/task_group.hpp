/// @file forkline/task_group.hpp
/// Spawn any number of tasks, then wait for all.
///
/// @code
/// forkline::task_group tg;
/// for (auto& part : parts) tg.spawn([&part] { process(part); });
/// tg.wait();  // rethrows the first exception a task threw
/// @endcode
///
/// On a worker, spawn() places the task in a pooled fixed-size slot (no heap
/// allocation for callables up to task_pool::k_payload bytes less two
/// pointers; larger ones are heap-allocated) and pushes it on the worker's
/// deque. wait() runs and steals work until every task of the group is done.
/// From a thread that is not a worker, spawn() hands tasks to the default
/// runtime and wait() sleeps.
///
/// Cancellation: a group made inside a task is bound to that task's
/// context, so cancelling an outer group also cancels the groups its tasks
/// made (and the loops running in them); a group made with
/// forkline::isolated is cancelled only by its own cancel(). See
/// "Cancellation" in runtime/DESIGN.md.
#pragma once

#include <atomic>       // atomic
#include <cstdint>      // uint32_t, int64_t
#include <exception>    // exception_ptr
#include <new>          // placement new
#include <type_traits>  // decay_t
#include <utility>      // forward

#include "forkline/detail/cancel.hpp"     // cancel_context
#include "forkline/detail/measure.hpp"    // measured_spawn, measured_sync (measuring mode)
#include "forkline/detail/probes.hpp"     // FORKLINE_PROBE
#include "forkline/detail/task_pool.hpp"  // task_pool
#include "forkline/detail/worker.hpp"     // worker, job, help_until
#include "forkline/runtime.hpp"           // default_runtime

namespace forkline {

class task_group;

namespace detail {

void wait_word_zero(std::atomic<std::uint32_t>& word, std::uint32_t count_mask,
                    std::uint32_t waiter_bit) noexcept;

template <class F>
struct group_job : job {
    group_job(task_group* g, F&& f, bool pooled) : m_group(g), m_pooled(pooled), m_fn(std::move(f)) {
        execute = &run;
    }
    static void run(job* self) noexcept;
    task_group* m_group;
    bool m_pooled;
    F m_fn;
};

}  // namespace detail

/// What task_group::wait() reports when no task threw.
enum class task_group_status {
    complete,   ///< every task spawned since the last wait() ran
    cancelled,  ///< the group was cancelled (its own cancel() or an outer group's): some tasks may have been skipped
};

/// The type of forkline::isolated, which makes a task_group that an outer
/// group's cancellation does not reach.
struct isolated_t {
    /// Makes the tag; use the isolated constant instead.
    explicit isolated_t() = default;
};
/// Pass to task_group's constructor for a group that is cancelled only by
/// its own cancel() (or a failing task), not by the group whose task made it.
/// @code
/// forkline::task_group cleanup(forkline::isolated);  // runs even if the caller's group is cancelled
/// @endcode
inline constexpr isolated_t isolated{};

/// Tasks spawned one by one and waited for together: for work whose shape is
/// known only as it runs (a tree walk, a work list). For a fixed set of
/// callables invoke() is cheaper; for index ranges, parallel_for.
/// @code
/// void walk(const node& n, std::atomic<long>& sum) {
///     forkline::task_group tg;
///     for (const node& c : n.children) tg.spawn([&c, &sum] { walk(c, sum); });
///     sum.fetch_add(n.value, std::memory_order_relaxed);  // relaxed: read after the outermost wait()
///     tg.wait();
/// }
/// @endcode
class task_group {
public:
    /// An empty group. Cheap (no allocation): make one where the tasks are
    /// spawned. Made inside a task, it is bound to that task's cancellation
    /// context: it must be destroyed before that task returns.
    task_group() noexcept : task_group(detail::current_worker(), true) {}
    /// An empty group that no outer cancellation reaches (see isolated).
    explicit task_group(isolated_t) noexcept : task_group(detail::current_worker(), false) {}
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;
    /// Waits for the tasks still running. An exception they threw and that no
    /// wait() returned is discarded: call wait() to observe it.
    ~task_group() { wait_quietly(); }

    /// Starts f() as a task of this group. May run it at once when the
    /// worker's deque is full. Skipped if the group is cancelled before it starts.
    /// All or nothing: if building the task throws (f's copy or move
    /// constructor, or memory for its slot), the exception propagates and
    /// nothing was added to the group.
    template <class F>
    void spawn(F&& f) {
        detail::worker* w = detail::current_worker();
        if (w == nullptr) {
            spawn_from_outside(std::forward<F>(f));
            return;
        }
        detail::job* j = make_job(*w, std::forward<F>(f));  // may throw: nothing counted yet
        // relaxed: the push below (release) publishes the count with the job;
        // a completion cannot drive the count to zero before this task, the
        // spawner itself, or an enclosing task of the group is done.
        m_word.fetch_add(1, std::memory_order_relaxed);
        push_or_run(*w, j);
    }

    /// Starts f() as a task of this group on worker `worker` (modulo the
    /// worker count; the caller's own index is allowed): it waits in that
    /// worker's mailbox, which the worker checks before any other work. If
    /// the mailbox is taken (another affinity task is waiting there), the
    /// task goes on the caller's deque like spawn() and may run anywhere.
    /// From a thread that is not a worker it is spawn(). All or nothing, as
    /// spawn(). See "Affinity mailboxes" in runtime/DESIGN.md.
    template <class F>
    void spawn_on(unsigned worker, F&& f) {
        detail::worker* w = detail::current_worker();
        if (w == nullptr) {
            spawn(std::forward<F>(f));
            return;
        }
        detail::job* j = make_job(*w, std::forward<F>(f));  // may throw: nothing counted yet
        m_word.fetch_add(1, std::memory_order_relaxed);  // relaxed: as in spawn()
        if (!detail::post_to_worker(*w, worker % w->peers, j)) push_or_run(*w, j);
    }

    /// Returns when every task spawned so far (and every task they spawned
    /// into this group) has finished; rethrows the first exception one threw.
    /// Otherwise @returns task_group_status::cancelled if the group was
    /// cancelled (see is_cancelled()) before it returned, else complete.
    /// The group can be reused afterwards: its own cancellation is cleared
    /// (an outer group's is not).
    task_group_status wait() {
        wait_quietly();
        if (m_failed.load(std::memory_order_acquire)) {
            std::exception_ptr e = std::move(m_error);
            m_error = nullptr;
            m_failed.store(false, std::memory_order_relaxed);
            m_context.clear();
            std::rethrow_exception(e);
        }
        const bool cancelled = m_context.is_cancelled();
        m_context.clear();
        return cancelled ? task_group_status::cancelled : task_group_status::complete;
    }

    /// Tasks of the group that have not started yet will be skipped, and so
    /// will the unstarted chunks of loops running in its tasks and of groups
    /// bound to it.
    void cancel() noexcept { m_context.request(); }
    /// Whether cancel() was called, or a task threw, since the last wait(),
    /// or the group it is bound to is cancelled: a long task may poll it to
    /// stop early.
    bool is_cancelled() const noexcept { return m_context.is_cancelled(); }

private:
    template <class>
    friend struct detail::group_job;

    task_group(detail::worker* w, bool bound) noexcept
        : m_context(bound && w != nullptr ? w->context : nullptr),
          m_owner(w),
          m_base(w != nullptr ? w->deque.bottom() : 0) {}

    /// The job for f in a pooled slot of w's pool (or on the heap when f is
    /// too big for a slot).
    template <class F>
    detail::job* make_job(detail::worker& w, F&& f) {
        using fn = std::decay_t<F>;
        using job_type = detail::group_job<fn>;
        if constexpr (sizeof(job_type) <= detail::task_pool::k_payload &&
                      alignof(job_type) <= detail::task_pool::k_slot_align) {
            void* slot = w.pool->allocate();
            try {
                return new (slot) job_type(this, fn(std::forward<F>(f)), true);
            } catch (...) {
                detail::task_pool::release(slot, w.pool);  // the slot goes back unused
                throw;
            }
        } else {
            return new job_type(this, fn(std::forward<F>(f)), false);
        }
    }

    void push_or_run(detail::worker& w, detail::job* j) {
        if (!w.deque.push(j)) {  // full: nobody could steal it anyway
            if (w.measure != nullptr) [[unlikely]] {
                detail::measured_spawn(w, j, this);
                return;
            }
            // Run in place like invoke's work on a full deque: no task in
            // the counters (tasks = spawned + injected, "Counters").
            j->execute(j);
            return;
        }
        detail::bump(w.counters.spawned);
        FORKLINE_PROBE(spawn);
        detail::notify_after_push(w);
    }

    template <class F>
    void spawn_from_outside(F&& f) {
        using fn = std::decay_t<F>;
        auto* j = new detail::group_job<fn>(this, fn(std::forward<F>(f)), false);  // may throw: nothing counted yet
        m_word.fetch_add(1, std::memory_order_relaxed);  // relaxed: the injection (release) publishes it
        try {
            detail::inject_into(default_runtime(), j);
        } catch (...) {
            delete j;
            finish_one();
            throw;
        }
    }
    static constexpr std::uint32_t k_waiter_bit = 1u << 31;
    static constexpr std::uint32_t k_count_mask = k_waiter_bit - 1;

    void wait_quietly() noexcept {
        if (m_owner != nullptr && m_owner->measure != nullptr) [[unlikely]] {
            detail::measured_sync(*m_owner, this);
        }
        // acquire: pairs with the release of each task's finish_one().
        if ((m_word.load(std::memory_order_acquire) & k_count_mask) != 0) {
            detail::worker* w = detail::current_worker();
            if (w != nullptr) {
                const std::int64_t base = (w == m_owner) ? m_base : w->deque.bottom();
                detail::help_until(*w, base, m_word, k_count_mask, k_waiter_bit);
            } else {
                detail::wait_word_zero(m_word, k_count_mask, k_waiter_bit);
            }
        }
        // relaxed: no task is left to race with; clears a stale waiter bit.
        m_word.store(0, std::memory_order_relaxed);
    }

    void record(std::exception_ptr e) noexcept {
        // acq_rel: only the first failure writes m_error; its release in
        // finish_one() publishes it to wait().
        if (!m_failed.exchange(true, std::memory_order_acq_rel)) m_error = std::move(e);
        m_context.request();
    }

    void finish_one() noexcept {
        // acq_rel: release publishes this task's effects to wait(); the last
        // touch of *this when the waiter may return at once.
        const std::uint32_t old = m_word.fetch_sub(1, std::memory_order_acq_rel);
        if ((old & k_count_mask) == 1 && (old & k_waiter_bit) != 0) detail::wake_waiters(m_word);
    }

    // written by: spawners (+1), finishing tasks (-1), the waiter (waiter bit)
    std::atomic<std::uint32_t> m_word{0};
    // cancel(), a failing task; bound to the context of the task that made the group
    detail::cancel_context m_context;
    std::atomic<bool> m_failed{false};
    std::exception_ptr m_error;      // written once, by the first failing task
    detail::worker* const m_owner;   // the worker that made the group, or null
    const std::int64_t m_base;       // its deque bottom then: items below are not ours to pop
};

namespace detail {

template <class F>
void group_job<F>::run(job* self) noexcept {
    auto* me = static_cast<group_job*>(self);
    task_group* g = me->m_group;
    worker* w = current_worker();
    if (!g->is_cancelled()) {
        // C3 in "Cancellation": the task runs under its group's context.
        const cancel_context* saved = nullptr;
        if (w != nullptr) {
            saved = w->context;
            w->context = &g->m_context;
        }
        try {
            me->m_fn();
        } catch (...) {
            g->record(std::current_exception());
        }
        if (w != nullptr) w->context = saved;
    }
    if (me->m_pooled) {
        me->~group_job();
        task_pool::release(me, w != nullptr ? w->pool : nullptr);
    } else {
        delete me;
    }
    g->finish_one();
}

}  // namespace detail

}  // namespace forkline

/// @file forkline/runtime.hpp
/// The runtime object, and how outside threads hand it work.
///
/// @code
/// forkline::runtime rt;                       // one pinned worker per core
/// int v = rt.run([] { return fib(30); });     // blocks until done
/// auto fut = rt.submit([] { return 42; });    // std::future<int>
/// @endcode
///
/// Shutdown semantics (stop() and the destructor): new submissions are refused
/// with runtime_stopped; everything already accepted runs to completion,
/// including all work it spawns (tasks left in a task_group that nobody waited
/// for, and tasks posted to a worker's mailbox, included); then the workers
/// exit and are joined, and threads still blocked in submit() have left. A
/// destructor therefore never drops accepted work, never leaks and never hangs
/// unless accepted work itself never ends.
///
/// Called from one of the runtime's own workers (std::exit from a task runs a
/// static runtime's destructor there), stop() cannot wait for itself: it
/// refuses new work and returns; the workers finish the accepted work and
/// exit on their own, and a destructor so called leaves the runtime's memory
/// to the process's end rather than free it under them.
#pragma once

#include <atomic>       // atomic
#include <cstddef>      // size_t
#include <cstdint>      // uint32_t, uint64_t
#include <exception>    // exception_ptr
#include <future>       // future, promise
#include <memory>       // unique_ptr, addressof
#include <optional>     // optional (result storage)
#include <stop_token>   // stop_token, stop_callback
#include <string>       // string (runtime_config::stats)
#include <type_traits>  // invoke_result_t, decay_t
#include <utility>      // move, forward
#include <vector>       // vector

#include "forkline/detail/cancel.hpp"  // cancel_context
#include "forkline/detail/job.hpp"     // job, join_state
#include "forkline/detail/worker.hpp"  // worker, wake_waiters, context_scope
#include "forkline/errors.hpp"         // cancelled
#include "forkline/topology.hpp"       // placement_config, placement_plan

/// The public API. Names under forkline::detail are internal and may change.
namespace forkline {

/// How a runtime is set up. The defaults (one pinned worker per physical
/// core, the environment applied) suit most programs.
/// @code
/// forkline::runtime_config c;
/// c.placement.workers = 4;     // FORKLINE_WORKERS would still override it...
/// c.read_environment = false;  // ...unless the environment is ignored
/// forkline::runtime rt(c);
/// @endcode
struct runtime_config {
    /// How many workers, and on which cores (see topology.hpp).
    placement_config placement;
    /// Pin each worker to its planned PU. Off only for experiments.
    bool pin = true;
    /// Apply FORKLINE_WORKERS and FORKLINE_PLACES over `placement`.
    bool read_environment = true;
    /// Bound of the injection queue (outside threads' submissions); rounded up
    /// to a power of two (1 stays 1). submit() blocks and try_submit() fails
    /// beyond it; a submit() from one of the runtime's own workers never
    /// sleeps: it runs queued jobs until there is room. 0 and values above
    /// 2^62 are a config_error.
    std::size_t injection_capacity = 1024;
    /// Stack of each worker thread. Joins run other tasks on top of the
    /// joiner's frames, so deep recursion needs more than a plain thread's.
    std::size_t stack_bytes = std::size_t{16} << 20;
    /// What to report when the runtime stops (see stats.hpp): "off", "1"
    /// (text lines on stderr) or "json:FILE". Empty: FORKLINE_STATS, read
    /// whatever read_environment says (that one is about placement), so a
    /// program that fixes its worker count can still be asked for stats.
    std::string stats;
    /// The parking protocol's heavy side ("Parking protocol" in
    /// runtime/DESIGN.md). true: a worker about to sleep issues an expedited
    /// membarrier (an interrupt to every cpu running the process) and a push
    /// pays only a compiler barrier. false: every push pays a full fence and
    /// parking makes no such call; for hosts where membarrier is slow or
    /// refused, and to measure the difference. FORKLINE_MEMBARRIER=0 in the
    /// environment also turns it off (read, like FORKLINE_STATS, whatever
    /// read_environment says).
    bool membarrier = true;
};

/// One worker's counters, as read by runtime::stats().
/// They only grow: subtract two snapshots to see one stretch of a run.
struct worker_stats {
    unsigned worker = 0;                 ///< index of the worker in its runtime
    unsigned cpu = 0;                    ///< OS cpu number of its planned place
    std::uint64_t spawned = 0;           ///< jobs it made stealable (pushed on its deque)
    std::uint64_t tasks = 0;             ///< jobs it ran: spawned ones (its own or stolen) and injected ones
    std::uint64_t steals_near = 0;       ///< jobs it stole from a worker on its NUMA node
    std::uint64_t steals_far = 0;        ///< jobs it stole from a worker on another node
    std::uint64_t failed_steals = 0;     ///< steal attempts that found nothing or lost a race
    std::uint64_t parks = 0;             ///< times it went to sleep for want of work
    std::uint64_t wakeups = 0;           ///< times it was woken from that sleep
    std::uint64_t idle_ns = 0;           ///< search_ns + failed_search_ns + parked_ns
    std::uint64_t search_ns = 0;         ///< looking for work, searches that found some
    std::uint64_t failed_search_ns = 0;  ///< looking for work, searches that ended in a park
    std::uint64_t parked_ns = 0;         ///< asleep
    std::uint64_t join_wait_ns = 0;      ///< joins and group waits with nothing found to run
    std::uint64_t injected = 0;          ///< jobs it took from outside threads (run(), submit())
};

/// What try_submit() did with the callable.
enum class submit_status {
    accepted,  ///< queued; the future will hold its result
    full,      ///< the injection queue is at its bound: try later, or block in submit()
    stopped,   ///< the runtime is stopping or stopped
};

/// The outcome of try_submit: a future when accepted; otherwise why not.
/// @code
/// auto r = rt.try_submit([] { return 42; });
/// if (r.status == forkline::submit_status::accepted) std::printf("%d\n", r.future.get());
/// @endcode
template <class R>
struct submit_result {
    submit_status status;   ///< accepted, or why not
    std::future<R> future;  ///< valid only when status == accepted
};

namespace detail {

class runtime_core;

/// A run() call's job: lives in the caller's frame, which blocks until done.
template <class F, class R>
struct external_job : job {
    explicit external_job(F& f) noexcept : m_fn(&f) { execute = &run; }
    static void run(job* self) noexcept {
        auto* me = static_cast<external_job*>(self);
        try {
            if constexpr (std::is_void_v<R>) {
                (*me->m_fn)();
            } else if constexpr (std::is_reference_v<R>) {
                R&& r = (*me->m_fn)();  // R& or R&&: binds to what f returned
                me->m_result = std::addressof(r);
            } else {
                me->m_result.emplace((*me->m_fn)());
            }
        } catch (...) {
            me->m_error = std::current_exception();
        }
        // release: publishes the result to wait_done()'s acquire.
        if (me->m_state.exchange(k_done, std::memory_order_release) == k_sleeping) {
            wake_waiters(me->m_state);
        }
    }
    F* m_fn;
    // A reference result is kept as a pointer (optional<T&> does not exist).
    std::conditional_t<std::is_void_v<R>, char,
                       std::conditional_t<std::is_reference_v<R>, std::remove_reference_t<R>*, std::optional<R>>>
        m_result{};
    std::exception_ptr m_error;
    std::atomic<std::uint32_t> m_state{k_pending};
};

/// A submit() job: owns the callable and the promise; deletes itself.
template <class F, class R>
struct submitted_job : job {
    explicit submitted_job(F&& f) : m_fn(std::move(f)) { execute = &run; }
    static void run(job* self) noexcept {
        auto* me = static_cast<submitted_job*>(self);
        try {
            if constexpr (std::is_void_v<R>) {
                me->m_fn();
                me->m_promise.set_value();
            } else {
                me->m_promise.set_value(me->m_fn());
            }
        } catch (...) {
            me->m_promise.set_exception(std::current_exception());
        }
        delete me;
    }
    F m_fn;
    std::promise<R> m_promise;
};

/// Blocks the calling (non-worker) thread until `state` is k_done.
void wait_done(std::atomic<std::uint32_t>& state) noexcept;

/// Runs f on this worker under a context bound to `parent` that `token`'s
/// stop request cancels; throws cancelled, without running f, when it is
/// cancelled already. C8 in "Cancellation", runtime/DESIGN.md.
template <class F>
decltype(auto) run_under_token(const std::stop_token& token, const cancel_context* parent, F& f) {
    cancel_context context(parent);
    // The callback runs at once if stop was requested already; its
    // destructor waits for a callback running on another thread.
    std::stop_callback on_stop(token, [&context]() noexcept { context.request(); });
    if (context.is_cancelled()) {
        throw cancelled("forkline: stop was requested before the work started; it did not run");
    }
    const context_scope scope(*current_worker(), &context);
    return f();
}

}  // namespace detail

class runtime;
namespace detail {
/// Hands a job to `rt` from any thread, blocking while the queue is full.
void inject_into(runtime& rt, job* j);
class stats_state;
/// The runtime's FORKLINE_STATS state (runtime/stats_state.hpp).
stats_state& stats_of(const runtime& rt);
}  // namespace detail

/// A set of workers, pinned to cores, that run fork-join work by stealing
/// from each other; also the door through which other threads hand it work.
/// Most programs make one, in main(); the fork-join calls made on a thread
/// that is not a worker use default_runtime() instead.
/// @code
/// forkline::runtime rt;                               // one pinned worker per core
/// int v = rt.run([] { return 6 * 7; });               // runs on a worker; blocks until done
/// std::future<int> f = rt.submit([] { return 42; });  // returns at once
/// @endcode
class runtime {
public:
    /// Discovers the machine, plans placement, starts and pins the workers.
    /// Throws config_error (bad placement or environment) or system_failure.
    explicit runtime(runtime_config config = {});
    /// stop(): finishes all accepted work, then joins the workers.
    ~runtime();
    runtime(const runtime&) = delete;
    runtime& operator=(const runtime&) = delete;

    /// The number of workers, fixed for the runtime's life.
    unsigned worker_count() const noexcept;
    /// How many workers are asleep now (parked, or about to be): a snapshot,
    /// for tools that want a runtime settled before they time something
    /// else (the probe waits for it between its points). worker_count()
    /// when the runtime is idle and settled.
    unsigned sleeping_workers() const noexcept;
    /// Where each worker runs, and how far apart they are.
    const placement_plan& plan() const noexcept;

    /// Runs f on a worker and returns its value (or rethrows its exception).
    /// From one of this runtime's own workers f simply runs in place; from
    /// any other thread (a worker of another runtime included) the caller
    /// sleeps until f is done. Throws runtime_stopped after stop().
    /// @code
    /// std::vector<int> v = load();
    /// rt.run([&] { forkline::parallel_sort(v.begin(), v.end()); });
    /// @endcode
    template <class F>
    auto run(F&& f) -> std::invoke_result_t<F&> {
        using result = std::invoke_result_t<F&>;
        if (detail::worker* w = detail::current_worker(); w != nullptr && w->core == m_core.get()) {
            return f();
        }
        detail::external_job<std::remove_reference_t<F>, result> j(f);
        inject(&j, /*block=*/true);
        detail::wait_done(j.m_state);
        if (j.m_error) std::rethrow_exception(j.m_error);
        if constexpr (std::is_reference_v<result>) {
            return static_cast<result>(*j.m_result);
        } else if constexpr (!std::is_void_v<result>) {
            return std::move(*j.m_result);
        }
    }

    /// As run(f), cancellable by `token`: if stop is requested before f
    /// starts, f does not run and run() throws forkline::cancelled; once f
    /// runs, the loops and task groups inside it see the request as a
    /// cancellation (they skip their unstarted chunks and tasks) and run()
    /// returns f's result. Called from a task, it is also cancelled with
    /// that task's group. See "Cancellation" in runtime/DESIGN.md.
    /// @code
    /// std::stop_source stop;  // stop.request_stop() from any thread
    /// rt.run(stop.get_token(), [&] { forkline::parallel_for(0, n, body); });
    /// @endcode
    template <class F>
    auto run(std::stop_token token, F&& f) -> std::invoke_result_t<F&> {
        if (token.stop_requested()) {
            throw cancelled("forkline: stop was requested before the work started; it did not run");
        }
        const detail::worker* w = detail::current_worker();
        // The caller blocks until f is done, so its context outlives f's (C2).
        const detail::cancel_context* parent = w != nullptr ? w->context : nullptr;
        auto guarded = [&]() -> decltype(auto) { return detail::run_under_token(token, parent, f); };
        return run(guarded);
    }

    /// Hands f to the runtime and returns its future. Blocks while the
    /// injection queue is full; on one of this runtime's own workers it runs
    /// queued jobs instead of sleeping. Throws runtime_stopped after stop().
    /// f's exception, if any, is rethrown by the future's get().
    /// @code
    /// std::future<long> f = rt.submit([] { return fib(30); });
    /// // ... other work on this thread ...
    /// long v = f.get();
    /// @endcode
    template <class F>
    auto submit(F&& f) -> std::future<std::invoke_result_t<std::decay_t<F>&>> {
        using result = std::invoke_result_t<std::decay_t<F>&>;
        auto* j = new detail::submitted_job<std::decay_t<F>, result>(std::forward<F>(f));
        auto fut = j->m_promise.get_future();
        try {
            inject(j, /*block=*/true);
        } catch (...) {
            delete j;
            throw;
        }
        return fut;
    }

    /// As submit(f), cancellable by `token`: if stop is requested before f
    /// starts, f does not run and the future holds forkline::cancelled;
    /// once f runs, its loops and task groups see the request as a
    /// cancellation. Not bound to the caller's task group (the caller does
    /// not wait for it).
    /// @code
    /// std::stop_source stop;
    /// auto fut = rt.submit(stop.get_token(), [] { return fib(40); });
    /// stop.request_stop();  // fut.get() throws forkline::cancelled if fib had not started
    /// @endcode
    template <class F>
    auto submit(std::stop_token token, F&& f) -> std::future<std::invoke_result_t<std::decay_t<F>&>> {
        return submit([token = std::move(token), fn = std::decay_t<F>(std::forward<F>(f))]() mutable -> decltype(auto) {
            return detail::run_under_token(token, nullptr, fn);
        });
    }

    /// As submit(), but never blocks: status full when the queue is at its
    /// bound, stopped after stop(). f is not run unless accepted.
    template <class F>
    auto try_submit(F&& f) -> submit_result<std::invoke_result_t<std::decay_t<F>&>> {
        using result = std::invoke_result_t<std::decay_t<F>&>;
        auto* j = new detail::submitted_job<std::decay_t<F>, result>(std::forward<F>(f));
        auto fut = j->m_promise.get_future();
        const submit_status s = try_inject(j);
        if (s != submit_status::accepted) {
            delete j;
            return {s, {}};
        }
        return {s, std::move(fut)};
    }

    /// Refuses new work, finishes all accepted work, joins the workers.
    /// Idempotent; the destructor calls it.
    void stop() noexcept;

    /// A snapshot of every worker's counters.
    std::vector<worker_stats> stats() const;

    /// Index of the calling thread's worker in this runtime, or -1.
    int current_worker_index() const noexcept;

private:
    friend void detail::inject_into(runtime& rt, detail::job* j);
    friend detail::stats_state& detail::stats_of(const runtime& rt);
    void inject(detail::job* j, bool block);
    submit_status try_inject(detail::job* j);
    std::unique_ptr<detail::runtime_core> m_core;
};

/// The runtime used by invoke(), task_group and parallel_for when called from
/// a thread that is not a worker: created on first use with the default
/// config (and the environment), stopped at exit.
/// @code
/// std::printf("%u workers\n", forkline::default_runtime().worker_count());
/// @endcode
runtime& default_runtime();

}  // namespace forkline

/// @file forkline/invoke.hpp
/// Fork-join of a fixed set of callables.
///
/// @code
/// int a, b;
/// forkline::invoke([&] { a = fib(n - 1); }, [&] { b = fib(n - 2); });
/// @endcode
///
/// On a worker, the second callable is pushed as a job that lives in this
/// frame, the first runs at once, and the join pops the second back and runs it
/// inline unless a thief took it; then the join helps (steals, preferring the
/// thief) instead of blocking. No allocation, lock or syscall on that path.
/// Called from a thread that is not a worker, invoke runs itself on the
/// default runtime (see default_runtime()).
#pragma once

#include <exception>    // exception_ptr, rethrow_exception, current_exception
#include <type_traits>  // remove_reference_t
#include <utility>      // forward

#include "forkline/detail/measure.hpp"  // measured_invoke (measuring mode only)
#include "forkline/detail/probes.hpp"   // FORKLINE_PROBE
#include "forkline/detail/worker.hpp"   // worker, join_job, notify_after_push, context_scope
#include "forkline/runtime.hpp"        // default_runtime

namespace forkline {

namespace detail {

template <class G>
struct fork_job : join_job {
    fork_job(G& g, const cancel_context* context) noexcept : m_fn(&g), m_context(context) { execute = &run; }

    /// Run by a thief (a job popped back by its spawner is called directly).
    static void run(job* self) noexcept {
        auto* me = static_cast<fork_job*>(self);
        worker* w = current_worker();
        // relaxed: a hint for the joiner's choice of victim, nothing more.
        me->thief.store(w->index, std::memory_order_relaxed);
        // C3 and C6 in "Cancellation" (DESIGN.md): the stolen half runs under
        // its spawner's context, and not at all if that is cancelled.
        if (!is_cancelled(me->m_context)) {
            const context_scope scope(*w, me->m_context);
            try {
                (*me->m_fn)();
            } catch (...) {
                me->error = std::current_exception();
            }
        }
        // acq_rel: release publishes g's effects and `error` to the joiner's
        // acquire; acquire is not needed but exchange keeps one RMW.
        if (me->state.exchange(k_done, std::memory_order_acq_rel) == k_sleeping) {
            wake_joiner(me->state);  // last touch of *me is the exchange above
        }
    }

    G* m_fn;
    const cancel_context* m_context;  // the spawner's, for a thief
};

template <class F, class G>
__attribute__((always_inline)) inline void invoke_on_worker(worker& w, F& f, G& g) {
    fork_job<G> jg(g, w.context);
    if (!w.deque.push(&jg)) [[unlikely]] {  // deque full: no one can steal, run both here
        if (w.measure != nullptr) {
            measured_invoke(*w.measure, f, g);
            return;
        }
        f();
        g();
        return;
    }
    bump(w.counters.spawned);
    FORKLINE_PROBE(spawn);  // no argument: clang would copy one to the stack ("Probes", DESIGN.md)
    notify_after_push(w);
    std::exception_ptr first_error;
    try {
        f();
    } catch (...) {
        first_error = std::current_exception();
    }
    run_waiting_injected(w);
    // Pop until our job comes back or turns out stolen. Anything above it was
    // pushed by f and left behind (a spawn into an outer task_group): run it.
    for (;;) {
        job* top = w.deque.pop();
        if (top == &jg) {
            bump(w.counters.tasks);
            if (!first_error) g();  // f threw: g never started, skip it (cancel)
            break;
        }
        if (top == nullptr) {
            join_stolen(w, jg);
            if (!first_error && jg.error) first_error = jg.error;
            break;
        }
        run_job(w, top);
    }
    if (first_error) std::rethrow_exception(first_error);
}

/// invoke() from a thread that is not a worker: kept out of line so that the
/// worker path stays small.
template <class F, class G>
__attribute__((noinline)) void invoke_from_outside(F& f, G& g) {
    default_runtime().run([&] { invoke_on_worker(*current_worker(), f, g); });
}

}  // namespace detail

/// Runs every callable, potentially in parallel, and returns when all have
/// finished. If any throws, the first exception (in argument order among those
/// that ran) is rethrown after all started callables have finished; callables
/// not yet started when one threw may be skipped.
/// @code
/// long fib(int n) {
///     if (n < 2) return n;
///     long a = 0, b = 0;
///     forkline::invoke([&] { a = fib(n - 1); }, [&] { b = fib(n - 2); });
///     return a + b;
/// }
/// @endcode
template <class F, class G>
void invoke(F&& f, G&& g) {
    if (detail::worker* w = detail::current_worker()) [[likely]] {
        detail::invoke_on_worker(*w, f, g);
    } else {
        detail::invoke_from_outside(f, g);
    }
}

/// Three or more callables: as above, split as f against the rest, so each
/// fork costs the same as with two.
template <class F, class G, class H, class... Rest>
void invoke(F&& f, G&& g, H&& h, Rest&&... rest) {
    invoke(std::forward<F>(f), [&] {
        invoke(std::forward<G>(g), std::forward<H>(h), std::forward<Rest>(rest)...);
    });
}

/// One callable: runs it here. Lets generic code pass any number of callables.
template <class F>
void invoke(F&& f) {
    std::forward<F>(f)();
}

/// The name oneTBB users look for: the same as invoke().
/// @code
/// forkline::parallel_invoke([&] { sort_part(a); }, [&] { sort_part(b); }, [&] { sort_part(c); });
/// @endcode
template <class... Fs>
void parallel_invoke(Fs&&... fs) {
    invoke(std::forward<Fs>(fs)...);
}

}  // namespace forkline

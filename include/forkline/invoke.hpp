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

#include <cstddef>      // size_t
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

template <class F>
void invoke_each_on_worker(worker& w, F& f, std::size_t begin, std::size_t end);

/// The indices of invoke_each not yet handed out, waiting in the spawner's
/// frame: one job however many indices, reused from index to index.
template <class F>
struct each_job : join_job {
    each_job(F& f, std::size_t next, std::size_t end, const cancel_context* context) noexcept
        : m_fn(&f), m_next(next), m_end(end), m_context(context) {
        execute = &run;
    }

    /// Run by a thief: the rest of the indices, shared again from the thief's
    /// own frame (a job popped back by its spawner is never executed).
    static void run(job* self) noexcept {
        auto* me = static_cast<each_job*>(self);
        worker* w = current_worker();
        // relaxed: a hint for the joiner's choice of victim, as in fork_job.
        me->thief.store(w->index, std::memory_order_relaxed);
        if (!is_cancelled(me->m_context)) {
            const context_scope scope(*w, me->m_context);
            try {
                invoke_each_on_worker(*w, *me->m_fn, me->m_next, me->m_end);
            } catch (...) {
                me->error = std::current_exception();
            }
        }
        // acq_rel: as in fork_job::run.
        if (me->state.exchange(k_done, std::memory_order_acq_rel) == k_sleeping) {
            wake_joiner(me->state);  // last touch of *me is the exchange above
        }
    }

    F* m_fn;
    std::size_t m_next;  // written by: the owner, only while the job is out of the deque
    std::size_t m_end;
    const cancel_context* m_context;  // the spawner's, for a thief
};

/// invoke_each in measuring mode: halves, as a thief would see them.
template <class F>
void measured_each(measure_context& m, F& f, std::size_t begin, std::size_t end) {
    if (end - begin == 1) {
        f(begin);
        return;
    }
    const std::size_t mid = begin + (end - begin) / 2;
    auto low = [&] { measured_each(m, f, begin, mid); };
    auto high = [&] { measured_each(m, f, mid, end); };
    measured_invoke(m, low, high);
}

/// f(begin) .. f(end - 1), end > begin. The job offers [i + 1, end) while
/// f(i) runs here; popped back, it offers the next index, so the frame is
/// one whatever the count, and the stack grows by one frame per level of a
/// recursion, not by log2(count). See "invoke_each" in runtime/DESIGN.md.
template <class F>
void invoke_each_on_worker(worker& w, F& f, std::size_t begin, std::size_t end) {
    if (end - begin == 1) {
        f(begin);
        return;
    }
    each_job<F> rest(f, begin + 1, end, w.context);
    std::size_t i = begin;
    std::exception_ptr first_error;
    for (;;) {
        if (!w.deque.push(&rest)) [[unlikely]] {
            // Full (no one can steal), or measuring: the rest runs here.
            if (w.measure != nullptr) {
                measured_each(*w.measure, f, i, end);
                return;
            }
            for (std::size_t k = i; k < end; ++k) f(k);
            return;
        }
        bump(w.counters.spawned);
        FORKLINE_PROBE(spawn);
        notify_after_push(w);
        try {
            f(i);
        } catch (...) {
            first_error = std::current_exception();
        }
        run_waiting_injected(w);
        // Pop until the job comes back or turns out stolen; anything above it
        // was pushed by f(i) and left behind (a spawn into an outer task_group).
        bool stolen = false;
        for (;;) {
            job* top = w.deque.pop();
            if (top == &rest) break;
            if (top == nullptr) {
                stolen = true;
                break;
            }
            run_job(w, top);
        }
        if (stolen) {
            join_stolen(w, rest);
            if (!first_error && rest.error) first_error = rest.error;
            break;
        }
        if (first_error) break;  // f(i) threw: the indices not started are skipped
        // C7 in "Cancellation" (DESIGN.md): a cancelled context starts no more.
        if (is_cancelled(rest.m_context)) break;
        bump(w.counters.tasks);  // the job came back: its first index runs here
        i = rest.m_next;
        if (i + 1 == end) {
            try {
                f(i);  // the last: nothing left to offer
            } catch (...) {
                first_error = std::current_exception();
            }
            break;
        }
        rest.m_next = i + 1;
    }
    if (first_error) std::rethrow_exception(first_error);
}

template <class F>
__attribute__((noinline)) void invoke_each_from_outside(F& f, std::size_t n) {
    default_runtime().run([&] { invoke_each_on_worker(*current_worker(), f, 0, n); });
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

/// Calls f(0), f(1), ... f(n - 1), potentially in parallel, and returns when
/// all have finished: the children of a node in a tree walk, a handful of
/// independent parts counted at run time. Unlike nested invoke() or an
/// eagerly split loop, it costs one frame however large n is: one job in
/// this frame offers the indices not yet started and is taken back between
/// them, so a recursion through it grows the stack by one frame per level.
/// A thief that takes the job shares the rest again the same way. For many
/// cheap indices, parallel_for is the better tool (it splits by demand). If
/// any f(i) throws, the first exception (in index order among those that
/// ran) is rethrown after all started calls have finished; indices not yet
/// started may be skipped.
/// @code
/// void walk(const node& n, counts& c) {
///     forkline::invoke_each(n.children.size(), [&](std::size_t i) { walk(n.children[i], c); });
/// }
/// @endcode
template <class F>
void invoke_each(std::size_t n, F&& f) {
    if (n == 0) return;
    if (detail::worker* w = detail::current_worker()) [[likely]] {
        detail::invoke_each_on_worker(*w, f, 0, n);
    } else {
        detail::invoke_each_from_outside(f, n);
    }
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

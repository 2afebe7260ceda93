/// @file forkline/isolate.hpp
/// Isolation: the joins and waits inside a region run only the region's own
/// tasks.
///
/// @code
/// std::mutex m;
/// forkline::parallel_for(0, n, [&](int i) {
///     std::lock_guard hold(m);
///     forkline::isolate([&] {
///         // While this worker waits for the inner loop, it does not pick up
///         // another outer iteration, which would try to lock m again.
///         forkline::parallel_for(0, k, [&](int j) { work(i, j); });
///     });
/// });
/// @endcode
///
/// A worker waiting at a join normally helps: it steals and runs whatever is
/// there, which may be an unrelated task of an outer loop. That keeps every
/// core busy and the span short, but a task that holds a lock and waits on
/// nested parallel work may then run another task that takes the same lock
/// (a deadlock with a plain mutex), and helping grows the stack by whole
/// unrelated tasks. Inside isolate(f), a worker's joins and waits run only
/// jobs it pushed inside f itself, and otherwise wait; a worker that steals
/// one of f's tasks runs it under the same rule. Tasks inside f still run in
/// parallel on the other workers. One exception: a block of a static_affinity
/// loop posted to this very worker is still run (its poster waits for this
/// worker alone), so do not hold the lock across an outer loop with
/// static_affinity. See "Isolation" in runtime/DESIGN.md.
#pragma once

#include <type_traits>  // invoke_result_t
#include <utility>      // forward

#include "forkline/detail/worker.hpp"  // current_worker, isolation_scope

namespace forkline {

/// Runs f() here and returns its result; while it runs, the calling
/// worker's joins and waits run only tasks spawned inside f (by it, or by the
/// workers running f's tasks), not outer or outside work. Nests. Outside a
/// worker it simply calls f: the calling thread runs no tasks while it waits,
/// but note that the parallel calls f makes there run on the default
/// runtime's workers unisolated; call isolate inside the task instead.
template <class F>
decltype(auto) isolate(F&& f) {
    detail::worker* w = detail::current_worker();
    if (w == nullptr) return std::forward<F>(f)();
    const detail::isolation_scope scope(*w);
    return std::forward<F>(f)();
}

}  // namespace forkline

// forkline/detail/cancel.hpp: cancellation contexts.
//
// A context is a flag and a pointer to the context it is bound to (its
// parent). It is cancelled when its own flag or any ancestor's is set, so
// cancelling an outer group reaches every group made inside its tasks
// without a list of children. Each worker knows the context of the job it
// runs (worker::context); loops read it once at entry and poll it per chunk.
// See "Cancellation" in runtime/DESIGN.md.
#pragma once

#include <atomic>  // atomic

namespace forkline::detail {

struct cancel_context {
    /// A context bound to `parent` (null: a root, cancelled only by itself).
    /// The parent must outlive it: see C2 in "Cancellation".
    explicit cancel_context(const cancel_context* parent) noexcept : m_parent(parent) {}
    cancel_context(const cancel_context&) = delete;
    cancel_context& operator=(const cancel_context&) = delete;

    /// Sets this context's own flag (C4). Any thread; idempotent.
    void request() noexcept {
        // relaxed: the flag carries no data; pollers only stop earlier or later.
        m_requested.store(true, std::memory_order_relaxed);
    }
    /// Clears this context's own flag (a task_group's wait()); ancestors keep theirs.
    void clear() noexcept { m_requested.store(false, std::memory_order_relaxed); }
    /// Whether this context or one it is bound to was cancelled (C5).
    bool is_cancelled() const noexcept {
        for (const cancel_context* c = this; c != nullptr; c = c->m_parent) {
            // relaxed: as in request().
            if (c->m_requested.load(std::memory_order_relaxed)) return true;
        }
        return false;
    }
    const cancel_context* parent() const noexcept { return m_parent; }

private:
    // written by: cancel(), a failing task, a stop_callback; read by: pollers
    std::atomic<bool> m_requested{false};
    const cancel_context* const m_parent;
};

/// The poll of a loop: null means no context, never cancelled.
inline bool is_cancelled(const cancel_context* c) noexcept { return c != nullptr && c->is_cancelled(); }

}  // namespace forkline::detail

/// @file forkline/stream.hpp
/// A stream executor: independent requests from any thread, run on a
/// runtime's workers, under bounded admission, priority classes, optional
/// per-key order and deadlines, each ending exactly one way and counted.
///
/// @code
/// forkline::runtime rt;
/// forkline::stream_executor ex(rt, {.capacity = 256, .admission = forkline::admission_policy::shed});
/// forkline::request_options o;
/// o.priority = 0;                                            // the highest class
/// o.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
/// if (ex.post([] { serve(); }, o) != forkline::post_status::accepted) { /* refused: retry later */ }
/// ex.drain();
/// @endcode
///
/// The ends of a request (request_outcome): done (the callable returned),
/// failed (it threw; the exception goes to the completion hook and is
/// counted), rejected (refused at post), expired (its deadline passed before
/// it started: it never runs late), cancelled (its stop_token was requested
/// before it started, or the executor was shut down with it queued). At every
/// moment stats() shows arrived == done + failed + rejected + expired +
/// cancelled + queued + running.
///
/// Requests reach the workers through the runtime's submit path: the
/// executor keeps its own bounded queues and keeps up to `pumps` pump jobs
/// injected, each running requests until the queues are empty; the
/// fork-join paths are untouched. See "Stream executor" in runtime/DESIGN.md.
#pragma once

#include <atomic>       // atomic (request_pool)
#include <chrono>       // steady_clock, microseconds
#include <cstddef>      // size_t, max_align_t
#include <cstdint>      // uint64_t
#include <exception>    // exception_ptr
#include <memory>       // unique_ptr
#include <new>          // operator new, placement new
#include <optional>     // optional
#include <stop_token>   // stop_token
#include <string>       // string
#include <type_traits>  // decay_t, is_invocable_v
#include <utility>      // forward, move
#include <vector>       // vector

#include "forkline/latency_histogram.hpp"  // latency_histogram, latency_summary
#include "forkline/runtime.hpp"            // runtime

namespace forkline {

/// How a request ended. Each request ends exactly one of these ways.
enum class request_outcome {
    done,       ///< the callable returned
    failed,     ///< the callable threw; the hook gets the exception
    rejected,   ///< refused at admission (full, shed, or executor shut down)
    expired,    ///< its deadline passed before it started; it did not run
    cancelled,  ///< stop requested before it started, or shut down while queued; it did not run
};

/// What post() does when the queues are at their bound.
enum class admission_policy {
    block,   ///< wait for room (on one of the runtime's workers: run queued requests meanwhile)
    reject,  ///< refuse at once: post_status::rejected_full
    shed,    ///< refuse class c once the depth reaches shed_at[c] * capacity: rejected_shed
};

/// What shutdown() (and the destructor) does with requests still queued.
enum class shutdown_mode {
    drain,   ///< run them (those whose deadline or stop token allows), then return
    cancel,  ///< end them as cancelled without running them; wait only for the running ones
};

/// What post() did with a request. Anything but accepted means the request
/// has already ended (and its hook has been called, on the posting thread).
enum class post_status {
    accepted,          ///< queued; it will end done, failed, expired or cancelled
    rejected_full,     ///< ended rejected: the queues were at capacity
    rejected_shed,     ///< ended rejected: its class is shed at the current depth
    rejected_stopped,  ///< ended rejected: the executor is shutting down
    expired,           ///< ended expired: the deadline had passed already
    cancelled,         ///< ended cancelled: stop was requested already
};

/// How a stream_executor is set up. The constructor throws config_error for
/// a capacity of 0, classes outside [1, 64], a shed_at of the wrong length or
/// with a value outside (0, 1], or a negative aging or linger.
struct stream_config {
    /// Requests admitted but not yet started, all classes together.
    std::size_t capacity = 1024;
    /// What post() does at capacity (or past a class's shed_at): wait, or refuse.
    admission_policy admission = admission_policy::reject;
    /// Priority classes; class 0 is the highest.
    unsigned classes = 3;
    /// shed: class c is refused while depth >= shed_at[c] * capacity (and
    /// every class at capacity). Empty: 1.0 for class 0 falling evenly to
    /// 0.6 for the last ({1.0, 0.8, 0.6} for three classes).
    std::vector<double> shed_at;
    /// Strict priority with aging: one pick in k_aging_share may go to a
    /// lower class's oldest request when it has waited longer than this.
    /// See "Priority and aging" in runtime/DESIGN.md.
    std::chrono::microseconds aging{10'000};
    /// Same key: one at a time, in arrival order.
    bool keyed_order = false;
    /// Most pump jobs at once; 0: the runtime's worker count.
    unsigned pumps = 0;
    /// How long a pump that finds the queues empty spins before it leaves
    /// (a request arriving meanwhile starts without a wake-up).
    std::chrono::microseconds linger{20};
    /// What the destructor does with queued requests.
    shutdown_mode on_destroy = shutdown_mode::drain;
    /// In stats(), the stats line and the runtime's report.
    std::string name = "stream";
};

/// One request's options.
struct request_options {
    unsigned priority = 1;                ///< class, 0 highest; values past the last class mean the last
    std::optional<std::uint64_t> key;     ///< with keyed_order: same key, one at a time, in order
    /// Not started by then: ends expired, unrun.
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    std::stop_token stop;                 ///< cancelled when requested before the request starts
};

/// The ends so far; conserved: arrived == done + failed + rejected +
/// expired + cancelled + queued + running in every snapshot.
struct stream_counters {
    std::uint64_t arrived = 0;    ///< post() calls
    std::uint64_t done = 0;       ///< the callable returned
    std::uint64_t failed = 0;     ///< the callable threw
    std::uint64_t rejected = 0;   ///< refused at admission (full, shed or stopping)
    std::uint64_t expired = 0;    ///< the deadline passed before the start
    std::uint64_t cancelled = 0;  ///< stop requested, or dropped by shutdown_mode::cancel
    std::uint64_t queued = 0;   ///< admitted, not started
    std::uint64_t running = 0;  ///< started, not ended
};

/// A snapshot of an executor.
struct stream_stats {
    std::string name;                            ///< stream_config::name
    stream_counters counters;                    ///< the ends so far
    std::vector<std::uint64_t> queued_by_class;  ///< [c]: class c's admitted, not started
    std::uint64_t peak_queued = 0;    ///< the highest depth seen
    double uptime_s = 0;              ///< since construction
    double utilisation = 0;           ///< time inside callables / (pumps * uptime)
    double arrival_rate = 0;          ///< arrived / uptime_s
    double completion_rate = 0;       ///< (done + failed) / uptime_s
    std::vector<latency_summary> latency;  ///< per class: admission to end of the callable, done and failed
};

namespace detail {

/// Memory for small requests, recycled: a request's end gives its block
/// back onto a lock-free stack (push only, from any thread), and a poster
/// takes the whole stack at once when its own list is empty. One poster at
/// a time owns the list (a try-lock); another poster meanwhile, or a request
/// too large for a block, uses the heap. Blocks go back to the heap when the
/// executor is destroyed, so the pool holds at most the peak of requests in
/// flight. See "Admission" in runtime/DESIGN.md (A5).
class request_pool {
public:
    static constexpr std::size_t k_block = 128;  ///< bytes per block

    request_pool() = default;
    request_pool(const request_pool&) = delete;
    request_pool& operator=(const request_pool&) = delete;
    ~request_pool() {
        free_list(m_list);
        free_list(m_returned.load(std::memory_order_acquire));
    }

    /// A block of k_block bytes (aligned for any scalar).
    void* take() {
        // acquire: pairs with the release below, the list's last owner's.
        if (!m_owned.exchange(true, std::memory_order_acquire)) {
            if (m_list == nullptr) {
                // acquire: the blocks' links, written by the givers, are visible.
                m_list = m_returned.exchange(nullptr, std::memory_order_acquire);
            }
            node* n = m_list;
            if (n != nullptr) m_list = n->next;
            m_owned.store(false, std::memory_order_release);
            if (n != nullptr) return n;
        }
        return ::operator new(k_block);
    }

    /// Gives a block back; any thread.
    void give(void* p) noexcept {
        node* n = static_cast<node*>(p);
        n->next = m_returned.load(std::memory_order_relaxed);
        // release: the link is visible to the taker. A push-only stack taken
        // whole has no ABA problem.
        while (!m_returned.compare_exchange_weak(n->next, n, std::memory_order_release,
                                                 std::memory_order_relaxed)) {
        }
    }

private:
    struct node {
        node* next;
    };
    static void free_list(node* n) noexcept {
        while (n != nullptr) {
            node* next = n->next;
            ::operator delete(n);
            n = next;
        }
    }
    alignas(64) std::atomic<node*> m_returned{nullptr};  // given back, newest first
    alignas(64) std::atomic<bool> m_owned{false};        // a poster owns m_list
    node* m_list = nullptr;                              // guarded by m_owned
};

/// A posted request, type-erased: `run` calls the callable (may throw),
/// `end` calls the hook with the outcome and frees the request.
struct stream_request {
    void (*run)(stream_request* self) = nullptr;
    void (*end)(stream_request* self, request_outcome o, std::exception_ptr e) noexcept = nullptr;
    stream_request* next = nullptr;  // intrusive FIFO link; guarded by the executor's mutex
    std::uint64_t admitted_ns = 0;
    std::chrono::steady_clock::time_point deadline;
    std::stop_token stop;
    std::uint64_t key = 0;
    request_pool* pool = nullptr;  // the block's pool; null: from the heap
    bool keyed = false;
    unsigned cls = 0;
};

template <class F, class H>
struct stream_request_of final : stream_request {
    stream_request_of(F&& f, H&& h) : m_fn(std::move(f)), m_hook(std::move(h)) {
        run = [](stream_request* s) { static_cast<stream_request_of*>(s)->m_fn(); };
        end = [](stream_request* s, request_outcome o, std::exception_ptr e) noexcept {
            auto* me = static_cast<stream_request_of*>(s);
            me->m_hook(o, std::move(e));  // a throwing hook terminates: it runs under noexcept
            request_pool* const pool = me->pool;
            me->~stream_request_of();
            if (pool != nullptr) {
                pool->give(me);
            } else {
                ::operator delete(me);
            }
        };
    }
    F m_fn;
    H m_hook;

    /// Built in a pool block when it fits, else on the heap.
    static stream_request_of* make(request_pool& pool, F&& f, H&& h) {
        constexpr bool fits = sizeof(stream_request_of) <= request_pool::k_block &&
                              alignof(stream_request_of) <= alignof(std::max_align_t);
        void* mem = fits ? pool.take() : ::operator new(sizeof(stream_request_of));
        stream_request_of* r = nullptr;
        try {
            r = ::new (mem) stream_request_of(std::move(f), std::move(h));
        } catch (...) {
            if (fits) {
                pool.give(mem);
            } else {
                ::operator delete(mem);
            }
            throw;
        }
        r->pool = fits ? &pool : nullptr;
        return r;
    }
};

struct no_hook {
    void operator()(request_outcome, std::exception_ptr) const noexcept {}
};

class stream_state;

}  // namespace detail

/// Runs a stream of requests on a runtime. Destroy it before its runtime.
/// post() may be called from any thread, a handler included.
class stream_executor {
public:
    /// One pick in this many may go to an aged lower-class request, so
    /// class 0 keeps at least (k_aging_share - 1) / k_aging_share of the picks.
    static constexpr unsigned k_aging_share = 8;

    /// Throws config_error for a bad config (see stream_config).
    stream_executor(runtime& rt, stream_config config = {});
    /// shutdown(config.on_destroy). Every request has ended when it returns.
    ~stream_executor();
    stream_executor(const stream_executor&) = delete;
    stream_executor& operator=(const stream_executor&) = delete;

    /// Admits f (run as f()) or refuses it. See post_status.
    template <class F>
    post_status post(F&& f, request_options o = {}) {
        return post(std::forward<F>(f), std::move(o), detail::no_hook{});
    }

    /// As post(f, o), and on_end(outcome, exception) is called exactly once,
    /// whichever way the request ends: after f on the worker that ran it, or
    /// on the thread that ended it otherwise (the poster when refused). The
    /// exception is f's for failed, null otherwise. on_end must not throw.
    template <class F, class H>
    post_status post(F&& f, request_options o, H&& on_end) {
        static_assert(std::is_invocable_v<std::decay_t<F>&>, "post(f): f must be callable with no arguments");
        using request = detail::stream_request_of<std::decay_t<F>, std::decay_t<H>>;
        auto* r = request::make(m_pool, std::decay_t<F>(std::forward<F>(f)), std::decay_t<H>(std::forward<H>(on_end)));
        r->deadline = o.deadline;
        r->stop = std::move(o.stop);
        r->keyed = o.key.has_value();
        r->key = o.key.value_or(0);
        r->cls = o.priority;
        return admit(r);
    }

    /// Waits until nothing is queued or running (new posts may come meanwhile).
    /// Not from inside a request of this executor.
    void drain();

    /// Refuses new requests (rejected_stopped), then drains or cancels what is
    /// queued, and waits for the running ones and the pumps. Idempotent.
    void shutdown(shutdown_mode mode);

    /// A consistent snapshot of the counters.
    stream_counters counters() const;
    /// Counters, depth, rates, utilisation and per-class latency.
    stream_stats stats() const;
    /// Adds class cls's latency histogram (merged over the workers) to `into`.
    void merge_latency(unsigned cls, latency_histogram& into) const;

    /// The config as given.
    const stream_config& config() const noexcept;

private:
    post_status admit(detail::stream_request* r);
    detail::request_pool m_pool;  // outlives m_state: declared first, destroyed last
    std::unique_ptr<detail::stream_state> m_state;
};

/// One stats line ("forkline-stats: stream=NAME arrived=... p99_us=...").
std::string stats_line(const stream_stats& s);

}  // namespace forkline

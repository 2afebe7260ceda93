/// @file forkline/batch_stream.hpp
/// Adaptive micro-batching: items posted from any thread reach a handler in
/// batches of up to K, or of whatever arrived within T of the oldest one.
///
/// @code
/// forkline::batch_config c;
/// c.max_items = 32;                               // K
/// c.max_wait = std::chrono::microseconds(200);    // T
/// forkline::batch_stream<row> rows(rt, c, [&](std::span<row> b) { db.insert_many(b); });
/// rows.post(r);                                   // from any thread
/// rows.drain();
/// std::printf("mean batch %.1f\n", rows.stats().mean_batch);
/// @endcode
///
/// Adaptive: a handler takes what is queued, up to K, at once; only when
/// fewer than K are queued does it wait, and then no later than T after the
/// oldest queued item arrived. Under load the batches fill at once (no wait);
/// at low load an item waits at most T. stats() says what it chose.
/// See "Micro-batching" in runtime/DESIGN.md.
#pragma once

#include <algorithm>           // min
#include <chrono>              // steady_clock, microseconds
#include <condition_variable>  // condition_variable
#include <cstddef>             // size_t
#include <cstdint>             // uint64_t
#include <deque>               // deque
#include <functional>          // function
#include <iterator>            // make_move_iterator
#include <mutex>               // mutex, unique_lock
#include <span>                // span
#include <string>              // string, to_string
#include <utility>             // move
#include <vector>              // vector

#include "forkline/errors.hpp"   // config_error
#include "forkline/runtime.hpp"  // runtime, detail::inject_into, detail::job
#include "forkline/stream.hpp"   // admission_policy, post_status

namespace forkline {

/// How a batch_stream is set up. The constructor throws config_error for a
/// max_items of 0, a max_wait of zero or less, a capacity or handlers of 0.
struct batch_config {
    std::size_t max_items = 64;                ///< K: the largest batch
    std::chrono::microseconds max_wait{100};   ///< T: the longest an item waits for company
    std::size_t capacity = 4096;               ///< items queued, not yet in a batch
    /// block or reject (shed is reject: there is one class). From one of the
    /// runtime's workers, block waits too: keep a handler from posting to its
    /// own full stream.
    admission_policy admission = admission_policy::reject;
    unsigned handlers = 1;                     ///< batches in flight at once
    std::string name = "batch";                ///< in stats()
};

/// What a batch_stream did. Conserved: arrived == done + failed + rejected +
/// cancelled + queued + running.
struct batch_stats {
    std::string name;              ///< batch_config::name
    std::uint64_t arrived = 0;     ///< post() calls
    std::uint64_t done = 0;        ///< items whose handler call returned
    std::uint64_t failed = 0;      ///< items whose handler call threw
    std::uint64_t rejected = 0;    ///< items refused by post()
    std::uint64_t cancelled = 0;   ///< items dropped unrun: the runtime stopped before a handler could start
    std::uint64_t queued = 0;      ///< items waiting for a batch
    std::uint64_t running = 0;     ///< items in a handler call now
    std::uint64_t batches = 0;    ///< handler calls
    std::uint64_t max_batch = 0;  ///< the largest batch handed over
    double mean_batch = 0;        ///< items per handler call
    std::vector<std::uint64_t> by_size_log2;  ///< [i]: batches of 2^i to 2^(i+1) - 1 items
};

/// Gathers posted items into batches of up to max_items, waiting at most
/// max_wait for company, and hands each batch to the handler on one of the
/// runtime's workers; at most `handlers` batches run at once.
template <class T>
class batch_stream {
public:
    /// Called with one batch; the items may be moved from.
    using handler_type = std::function<void(std::span<T>)>;

    /// Throws config_error for a bad config or an empty handler.
    batch_stream(runtime& rt, batch_config config, handler_type handler)
        : m_rt(rt), m_cfg(std::move(config)), m_handler(std::move(handler)) {
        if (m_cfg.max_items == 0) throw config_error("batch_config::max_items (K) is 0: give the largest batch, >= 1");
        if (m_cfg.max_wait.count() <= 0) {
            throw config_error("batch_config::max_wait (T) is " + std::to_string(m_cfg.max_wait.count()) +
                               " us: give a positive wait");
        }
        if (m_cfg.capacity == 0) throw config_error("batch_config::capacity is 0: give the bound of queued items");
        if (m_cfg.handlers == 0) throw config_error("batch_config::handlers is 0: give 1 or more");
        if (!m_handler) throw config_error("batch_stream: the handler is empty");
    }

    /// Runs what is queued, then waits for the handlers to return.
    ~batch_stream() {
        std::unique_lock<std::mutex> lk(m_mutex);
        m_stopping = true;
        m_more.notify_all();
        m_space.notify_all();
        m_idle.wait(lk, [this] { return m_stats.queued == 0 && m_stats.running == 0 && m_pumps == 0; });
    }
    batch_stream(const batch_stream&) = delete;
    batch_stream& operator=(const batch_stream&) = delete;

    /// Queues the item, or refuses it (rejected_full; rejected_stopped while
    /// the stream is being destroyed).
    post_status post(T item) {
        std::unique_lock<std::mutex> lk(m_mutex);
        ++m_stats.arrived;
        if (m_cfg.admission == admission_policy::block) {
            m_space.wait(lk, [this] { return m_queue.size() < m_cfg.capacity || m_stopping; });
        }
        if (m_stopping || m_queue.size() >= m_cfg.capacity) {
            ++m_stats.rejected;
            return m_stopping ? post_status::rejected_stopped : post_status::rejected_full;
        }
        m_queue.push_back({std::move(item), std::chrono::steady_clock::now()});
        ++m_stats.queued;
        if (m_waiting > 0 && m_queue.size() >= m_cfg.max_items) m_more.notify_one();
        // B1: one handler per K queued items, up to the bound.
        const bool start = m_pumps == 0 || (m_pumps < m_cfg.handlers && m_queue.size() >= m_cfg.max_items * m_pumps);
        if (start) ++m_pumps;
        lk.unlock();
        if (start) start_pump();
        return post_status::accepted;
    }

    /// Waits until nothing is queued or in a handler. Not from a handler.
    void drain() {
        std::unique_lock<std::mutex> lk(m_mutex);
        m_idle.wait(lk, [this] { return m_stats.queued == 0 && m_stats.running == 0; });
    }

    /// A snapshot of the counters and batch sizes.
    batch_stats stats() const {
        const std::lock_guard<std::mutex> g(m_mutex);
        batch_stats s = m_stats;
        s.name = m_cfg.name;
        const std::uint64_t items = s.done + s.failed + s.running;
        s.mean_batch = s.batches == 0 ? 0.0 : static_cast<double>(items) / static_cast<double>(s.batches);
        return s;
    }

    /// The config as given.
    const batch_config& config() const noexcept { return m_cfg; }

private:
    struct entry {
        T item;
        std::chrono::steady_clock::time_point at;
    };
    struct pump_job : detail::job {
        explicit pump_job(batch_stream* s) noexcept : stream(s) { execute = &run; }
        static void run(detail::job* self) noexcept {
            auto* p = static_cast<pump_job*>(self);
            p->stream->pump(p);
        }
        batch_stream* stream;
    };

    void start_pump() noexcept {
        auto* p = new pump_job(this);
        try {
            detail::inject_into(m_rt, p);
            return;
        } catch (...) {  // runtime_stopped: nobody will take the queue
            delete p;
        }
        const std::lock_guard<std::mutex> g(m_mutex);
        --m_pumps;
        if (m_pumps == 0) {
            m_stats.cancelled += m_queue.size();
            m_stats.queued -= m_queue.size();
            m_queue.clear();
            m_space.notify_all();
            m_idle.notify_all();
        }
    }

    // B2-B4: see "Micro-batching" in runtime/DESIGN.md.
    void pump(pump_job* p) noexcept {
        std::unique_lock<std::mutex> lk(m_mutex);
        std::vector<T> batch;
        for (;;) {
            if (m_queue.empty()) {
                delete p;
                --m_pumps;
                m_idle.notify_all();
                return;
            }
            // B2: fewer than K queued: wait for K, or until T after the oldest arrived.
            if (m_queue.size() < m_cfg.max_items && !m_stopping) {
                const auto until = m_queue.front().at + m_cfg.max_wait;
                ++m_waiting;
                m_more.wait_until(lk, until, [this] { return m_queue.size() >= m_cfg.max_items || m_stopping; });
                --m_waiting;
                if (m_queue.empty()) continue;  // another handler took them
            }
            // B3: take what is there, up to K.
            const std::size_t n = std::min(m_queue.size(), m_cfg.max_items);
            batch.clear();
            for (std::size_t k = 0; k < n; ++k) {
                batch.push_back(std::move(m_queue.front().item));
                m_queue.pop_front();
            }
            m_stats.queued -= n;
            m_stats.running += n;
            ++m_stats.batches;
            m_stats.max_batch = std::max<std::uint64_t>(m_stats.max_batch, n);
            const auto bucket = static_cast<std::size_t>(63 - __builtin_clzll(n));
            if (m_stats.by_size_log2.size() <= bucket) m_stats.by_size_log2.resize(bucket + 1, 0);
            ++m_stats.by_size_log2[bucket];
            m_space.notify_all();
            lk.unlock();
            bool ok = true;
            try {
                m_handler(std::span<T>(batch.data(), batch.size()));
            } catch (...) {
                ok = false;  // B4: the whole batch failed
            }
            lk.lock();
            m_stats.running -= n;
            (ok ? m_stats.done : m_stats.failed) += n;
            if (m_stats.queued == 0 && m_stats.running == 0) m_idle.notify_all();
        }
    }

    runtime& m_rt;
    const batch_config m_cfg;
    handler_type m_handler;
    mutable std::mutex m_mutex;
    std::condition_variable m_more;   // a waiting handler: K queued now, or stopping
    std::condition_variable m_space;  // block-mode posters
    std::condition_variable m_idle;   // drain() and the destructor
    // guarded by m_mutex:
    std::deque<entry> m_queue;
    batch_stats m_stats;
    unsigned m_pumps = 0;
    unsigned m_waiting = 0;
    bool m_stopping = false;
};

}  // namespace forkline

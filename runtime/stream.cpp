// runtime/stream.cpp: the stream executor's queues, admission and pumps.
// See "Stream executor" in runtime/DESIGN.md (admission A1-A5, pumps P1-P6,
// priority and aging, keyed order K1-K4, shutdown D1-D4).
#include "forkline/stream.hpp"

#include <algorithm>           // min, max
#include <atomic>              // atomic
#include <cmath>               // ceil, isfinite
#include <condition_variable>  // condition_variable
#include <cstdio>              // snprintf
#include <iostream>            // cerr
#include <mutex>               // mutex, unique_lock
#include <thread>              // this_thread::yield
#include <unordered_map>       // unordered_map (key chains)

#include "forkline/errors.hpp"          // config_error, runtime_stopped
#include "stats_state.hpp"              // stats_of (FORKLINE_STATS)
#include "trace.hpp"                    // trace::counter (FORKLINE_TRACE)

namespace forkline {
namespace detail {

namespace {

inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

std::uint64_t steady_ns() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

/// An intrusive FIFO of requests (the `next` links).
struct request_fifo {
    stream_request* head = nullptr;
    stream_request* tail = nullptr;
    void push_back(stream_request* r) noexcept {
        r->next = nullptr;
        if (tail != nullptr) tail->next = r; else head = r;
        tail = r;
    }
    void push_front(stream_request* r) noexcept {
        r->next = head;
        head = r;
        if (tail == nullptr) tail = r;
    }
    stream_request* pop_front() noexcept {
        stream_request* r = head;
        if (r != nullptr) {
            head = r->next;
            if (head == nullptr) tail = nullptr;
            r->next = nullptr;
        }
        return r;
    }
};

struct request_end {
    request_outcome outcome;
    unsigned cls;
    bool keyed;
    std::uint64_t key;
};

}  // namespace

struct pump_job : job {
    explicit pump_job(stream_state* s) noexcept : state(s) { execute = &run; }
    static void run(job* self) noexcept;
    stream_state* state;
};

class stream_state {
public:
    stream_state(runtime& rt, stream_config cfg);

    post_status admit(stream_request* r);
    void pump(pump_job* p) noexcept;
    void drain();
    void shutdown(shutdown_mode mode);
    stream_counters counters() const;
    stream_stats stats() const;
    void merge_latency(unsigned cls, latency_histogram& into) const;

    runtime& m_rt;
    const stream_config m_cfg;

private:
    // Per worker, written only by that worker (a request runs on one worker
    // from start to end): no shared writes on the completion path.
    struct alignas(64) worker_slot {
        std::unique_ptr<latency_histogram[]> latency;  // one per class
        std::atomic<std::uint64_t> busy_ns{0};         // relaxed load+store: single writer
    };

    stream_request* pick(std::unique_lock<std::mutex>& lk) noexcept;
    request_end execute(stream_request* r) noexcept;
    void finish(const request_end& e) noexcept;
    void enqueue(stream_request* r) noexcept;
    bool pump_needed() const noexcept;
    void start_pump() noexcept;
    void collect_queued(request_fifo& out) noexcept;
    void end_collected(request_fifo& list, request_outcome o) noexcept;
    void set_ready(std::size_t n) noexcept;
    void wake_idle_waiters() noexcept;
    bool quiescent() const noexcept { return m_counts.queued == 0 && m_counts.running == 0; }

    unsigned m_workers;
    unsigned m_max_pumps;
    std::vector<std::size_t> m_shed_depth;  // per class: refused at this depth
    std::uint64_t m_aging_ns;
    std::uint64_t m_linger_ns;
    std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();

    std::unique_ptr<worker_slot[]> m_slots;  // m_workers + 1: the last for other threads, under m_outside_mutex
    mutable std::mutex m_outside_mutex;

    mutable std::mutex m_mutex;
    std::condition_variable m_space;  // block-mode posters wait for room
    std::condition_variable m_idle;   // drain() and shutdown() wait for quiescence
    // Everything below: guarded by m_mutex.
    std::vector<request_fifo> m_queues;  // per class, runnable (not behind a running request of their key)
    std::unordered_map<std::uint64_t, request_fifo> m_chains;  // key -> requests behind its active one (K1)
    stream_counters m_counts;
    std::vector<std::uint64_t> m_queued_by_class;
    std::uint64_t m_peak = 0;
    std::size_t m_ready = 0;  // requests in m_queues
    std::uint64_t m_picks = 0;
    unsigned m_pumps = 0;      // pump jobs injected or running (P1)
    unsigned m_lingering = 0;  // pumps spinning on an empty queue (P4)
    unsigned m_blocked = 0;    // posters waiting for room
    unsigned m_idle_waiters = 0;
    bool m_stopping = false;
    bool m_runtime_gone = false;

    // Lock-free hints for the lingering pumps' spin; the decision is always
    // retaken under m_mutex. written by: holders of m_mutex; read by: lingering pumps.
    std::atomic<std::size_t> m_ready_hint{0};
    std::atomic<bool> m_stop_hint{false};
};

stream_state::stream_state(runtime& rt, stream_config cfg) : m_rt(rt), m_cfg(std::move(cfg)) {
    const stream_config& c = m_cfg;
    if (c.capacity == 0) throw config_error("stream_config::capacity is 0: give the bound of queued requests (>= 1)");
    if (c.classes == 0 || c.classes > 64) {
        throw config_error("stream_config::classes is " + std::to_string(c.classes) + ": use 1 to 64");
    }
    if (c.aging.count() < 0) throw config_error("stream_config::aging is negative: use 0 or more microseconds");
    if (c.linger.count() < 0) throw config_error("stream_config::linger is negative: use 0 or more microseconds");
    std::vector<double> shed = c.shed_at;
    if (shed.empty()) {
        for (unsigned k = 0; k < c.classes; ++k) {
            shed.push_back(c.classes == 1 ? 1.0 : 1.0 - 0.4 * static_cast<double>(k) / (c.classes - 1));
        }
    } else if (shed.size() != c.classes) {
        throw config_error("stream_config::shed_at has " + std::to_string(shed.size()) + " values for " +
                           std::to_string(c.classes) + " classes: give one per class, or none");
    }
    for (const double f : shed) {
        if (!std::isfinite(f) || f <= 0.0 || f > 1.0) {
            throw config_error("stream_config::shed_at holds " + std::to_string(f) +
                               ": each is a share of capacity in (0, 1]");
        }
        const auto d = static_cast<std::size_t>(std::ceil(f * static_cast<double>(c.capacity)));
        m_shed_depth.push_back(std::clamp<std::size_t>(d, 1, c.capacity));
    }
    m_workers = rt.worker_count();
    m_max_pumps = c.pumps == 0 ? m_workers : c.pumps;
    m_aging_ns = static_cast<std::uint64_t>(c.aging.count()) * 1000;
    m_linger_ns = static_cast<std::uint64_t>(c.linger.count()) * 1000;
    m_slots = std::make_unique<worker_slot[]>(m_workers + 1);
    for (unsigned w = 0; w <= m_workers; ++w) m_slots[w].latency = std::make_unique<latency_histogram[]>(c.classes);
    m_queues.resize(c.classes);
    m_queued_by_class.assign(c.classes, 0);
}

void stream_state::set_ready(std::size_t n) noexcept {
    m_ready = n;
    m_ready_hint.store(n, std::memory_order_relaxed);  // relaxed: a hint; re-read under m_mutex
}

void stream_state::wake_idle_waiters() noexcept {
    if (m_idle_waiters > 0 && quiescent()) m_idle.notify_all();
}

// K1: a keyed request whose key has one queued or running goes behind it.
void stream_state::enqueue(stream_request* r) noexcept {
    if (m_cfg.keyed_order && r->keyed) {
        auto [it, fresh] = m_chains.try_emplace(r->key);
        if (!fresh) {
            it->second.push_back(r);
            return;
        }
    }
    m_queues[r->cls].push_back(r);
    set_ready(m_ready + 1);
}

// P2: start a pump when there are more runnable requests than lingering
// pumps to take them, and fewer pumps than the bound.
bool stream_state::pump_needed() const noexcept { return m_ready > m_lingering && m_pumps < m_max_pumps; }

post_status stream_state::admit(stream_request* r) {
    r->cls = std::min(r->cls, m_cfg.classes - 1);
    const auto now = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lk(m_mutex);
    ++m_counts.arrived;
    post_status refused = post_status::accepted;
    // A1: stopped, cancelled, expired, in that order.
    if (m_stopping) {
        refused = post_status::rejected_stopped;
    } else if (r->stop.stop_requested()) {
        refused = post_status::cancelled;
    } else if (r->deadline <= now) {
        refused = post_status::expired;
    } else if (m_cfg.admission == admission_policy::shed && m_counts.queued >= m_shed_depth[r->cls]) {
        // A3: shed by class.
        refused = m_shed_depth[r->cls] >= m_cfg.capacity ? post_status::rejected_full : post_status::rejected_shed;
    } else if (m_cfg.admission == admission_policy::reject && m_counts.queued >= m_cfg.capacity) {
        refused = post_status::rejected_full;  // A2
    } else if (m_cfg.admission == admission_policy::block) {
        // A4: wait for room; a worker of the runtime runs queued requests
        // instead, so that posting from handlers cannot take every worker.
        const bool own_worker = m_rt.current_worker_index() >= 0;
        while (m_counts.queued >= m_cfg.capacity && !m_stopping) {
            if (own_worker) {
                if (stream_request* q = pick(lk)) {
                    lk.unlock();
                    const request_end e = execute(q);
                    lk.lock();
                    finish(e);
                    if (pump_needed()) {  // finish() may have made a keyed request runnable
                        ++m_pumps;
                        lk.unlock();
                        start_pump();
                        lk.lock();
                    }
                    continue;
                }
            }
            ++m_blocked;
            if (own_worker) {
                // Only requests behind a running one of their key are queued: it ends elsewhere.
                m_space.wait_for(lk, std::chrono::milliseconds(1));
            } else {
                m_space.wait(lk);
            }
            --m_blocked;
        }
        if (m_stopping) refused = post_status::rejected_stopped;
    }
    if (refused != post_status::accepted) {
        request_outcome o = request_outcome::rejected;
        if (refused == post_status::cancelled) {
            ++m_counts.cancelled;
            o = request_outcome::cancelled;
        } else if (refused == post_status::expired) {
            ++m_counts.expired;
            o = request_outcome::expired;
        } else {
            ++m_counts.rejected;
        }
        lk.unlock();
        r->end(r, o, nullptr);
        return refused;
    }
    // A5: admitted.
    r->admitted_ns = steady_ns();
    ++m_counts.queued;
    ++m_queued_by_class[r->cls];
    m_peak = std::max(m_peak, m_counts.queued);
    trace::counter(trace::k_stream_depth, m_counts.queued);
    enqueue(r);
    const bool start = pump_needed();
    if (start) ++m_pumps;
    lk.unlock();
    if (start) start_pump();
    return post_status::accepted;
}

// Strict priority with aging: see "Priority and aging" in runtime/DESIGN.md.
stream_request* stream_state::pick(std::unique_lock<std::mutex>&) noexcept {
    if (m_ready == 0) return nullptr;
    ++m_picks;
    stream_request* r = nullptr;
    if (m_cfg.classes > 1 && m_picks % stream_executor::k_aging_share == 0) {
        const std::uint64_t now = steady_ns();
        unsigned oldest = 0;
        for (unsigned c = 1; c < m_cfg.classes; ++c) {
            const stream_request* h = m_queues[c].head;
            if (h != nullptr && now - h->admitted_ns >= m_aging_ns &&
                (oldest == 0 || h->admitted_ns < m_queues[oldest].head->admitted_ns)) {
                oldest = c;
            }
        }
        if (oldest != 0) r = m_queues[oldest].pop_front();
    }
    for (unsigned c = 0; r == nullptr && c < m_cfg.classes; ++c) r = m_queues[c].pop_front();
    set_ready(m_ready - 1);
    --m_counts.queued;
    --m_queued_by_class[r->cls];
    ++m_counts.running;
    trace::counter(trace::k_stream_depth, m_counts.queued);
    if (m_blocked > 0) m_space.notify_one();
    return r;
}

// P5: a started request runs unless stop was requested or its deadline has
// passed; the hook ends it either way. Runs without the lock.
request_end stream_state::execute(stream_request* r) noexcept {
    request_end e{request_outcome::done, r->cls, r->keyed, r->key};
    std::exception_ptr error;
    if (r->stop.stop_requested()) {
        e.outcome = request_outcome::cancelled;
    } else if (std::chrono::steady_clock::now() > r->deadline) {
        e.outcome = request_outcome::expired;
    } else {
        const std::uint64_t t0 = steady_ns();
        try {
            r->run(r);
        } catch (...) {
            error = std::current_exception();
            e.outcome = request_outcome::failed;
        }
        const std::uint64_t t1 = steady_ns();
        const int w = m_rt.current_worker_index();
        if (w >= 0) {
            worker_slot& s = m_slots[static_cast<unsigned>(w)];
            s.latency[e.cls].record(t1 - r->admitted_ns);
            bump(s.busy_ns, t1 - t0);
        } else {
            const std::lock_guard<std::mutex> g(m_outside_mutex);
            worker_slot& s = m_slots[m_workers];
            s.latency[e.cls].record(t1 - r->admitted_ns);
            bump(s.busy_ns, t1 - t0);
        }
    }
    r->end(r, e.outcome, std::move(error));
    return e;
}

// P6 and K2: count the end; the next request of the key becomes runnable,
// at the front of its class (it is the oldest of its key).
void stream_state::finish(const request_end& e) noexcept {
    --m_counts.running;
    switch (e.outcome) {
        case request_outcome::done: ++m_counts.done; break;
        case request_outcome::failed: ++m_counts.failed; break;
        case request_outcome::rejected: ++m_counts.rejected; break;
        case request_outcome::expired: ++m_counts.expired; break;
        case request_outcome::cancelled: ++m_counts.cancelled; break;
    }
    if (m_cfg.keyed_order && e.keyed) {
        if (auto it = m_chains.find(e.key); it != m_chains.end()) {
            if (stream_request* n = it->second.pop_front()) {
                m_queues[n->cls].push_front(n);
                set_ready(m_ready + 1);
            } else {
                m_chains.erase(it);
            }
        }
    }
    wake_idle_waiters();
}

void pump_job::run(job* self) noexcept {
    auto* p = static_cast<pump_job*>(self);
    p->state->pump(p);
}

void stream_state::start_pump() noexcept {
    auto* p = new pump_job(this);
    try {
        inject_into(m_rt, p);
        return;
    } catch (...) {  // runtime_stopped: nobody will run the queue
        delete p;
    }
    // D4: the runtime is stopping: what is queued can never start.
    request_fifo gone;
    {
        const std::lock_guard<std::mutex> g(m_mutex);
        --m_pumps;
        m_runtime_gone = true;
        if (m_pumps == 0) collect_queued(gone);
    }
    end_collected(gone, request_outcome::cancelled);
}

// P3-P4: run requests until the queues stay empty for the linger time.
void stream_state::pump(pump_job* p) noexcept {
    std::unique_lock<std::mutex> lk(m_mutex);
    unsigned budget = 64;
    for (;;) {
        stream_request* r = pick(lk);
        if (r == nullptr && m_linger_ns > 0 && !m_stopping) {
            ++m_lingering;
            lk.unlock();
            const std::uint64_t until = steady_ns() + m_linger_ns;
            // relaxed: hints; the pick below is under the lock.
            while (m_ready_hint.load(std::memory_order_relaxed) == 0 &&
                   !m_stop_hint.load(std::memory_order_relaxed) && steady_ns() < until) {
                spin_pause();
            }
            lk.lock();
            --m_lingering;
            r = pick(lk);
        }
        if (r == nullptr) {
            // P4: leave. Whoever admits next sees m_pumps lower under the same lock.
            delete p;
            --m_pumps;
            if (m_pumps == 0) m_idle.notify_all();  // shutdown() waits for the pumps
            return;  // lk unlocks: the last touch of this executor
        }
        lk.unlock();
        const request_end e = execute(r);
        lk.lock();
        finish(e);
        if (--budget != 0) continue;
        // P6: a fresh budget either way, so that a budget spent on an empty
        // queue does not wrap around and keep the worker for good.
        budget = 64;
        if (m_ready > 0) {
            // Yield the worker to other injected jobs: requeue this pump (still counted).
            lk.unlock();
            try {
                inject_into(m_rt, p);
                return;
            } catch (...) {  // the runtime is stopping: keep going here
            }
            lk.lock();
        }
    }
}

void stream_state::collect_queued(request_fifo& out) noexcept {
    // D2: take every queued request, runnable or behind its key.
    for (request_fifo& q : m_queues) {
        while (stream_request* r = q.pop_front()) out.push_back(r);
    }
    for (auto& [key, chain] : m_chains) {
        while (stream_request* r = chain.pop_front()) out.push_back(r);
    }
    std::uint64_t n = 0;
    for (stream_request* r = out.head; r != nullptr; r = r->next) ++n;
    set_ready(0);
    m_counts.queued -= n;
    m_counts.running += n;  // ending now
    std::fill(m_queued_by_class.begin(), m_queued_by_class.end(), 0);
}

void stream_state::end_collected(request_fifo& list, request_outcome o) noexcept {
    while (stream_request* r = list.pop_front()) {
        const request_end e{o, r->cls, r->keyed, r->key};
        r->end(r, o, nullptr);
        const std::lock_guard<std::mutex> g(m_mutex);
        finish(e);
    }
}

void stream_state::drain() {
    std::unique_lock<std::mutex> lk(m_mutex);
    ++m_idle_waiters;
    m_idle.wait(lk, [this] { return quiescent(); });
    --m_idle_waiters;
}

void stream_state::shutdown(shutdown_mode mode) {
    request_fifo gone;
    {
        std::unique_lock<std::mutex> lk(m_mutex);
        m_stopping = true;
        m_stop_hint.store(true, std::memory_order_relaxed);  // relaxed: lingering pumps re-check under the lock
        m_space.notify_all();
        // D1-D2: cancel mode, or nobody left to run them.
        if (mode == shutdown_mode::cancel || m_runtime_gone) collect_queued(gone);
    }
    end_collected(gone, request_outcome::cancelled);
    std::unique_lock<std::mutex> lk(m_mutex);
    // D3: wait for the queue to empty (drain), the running requests, and every pump.
    ++m_idle_waiters;
    m_idle.wait(lk, [this] { return quiescent() && m_pumps == 0; });
    --m_idle_waiters;
}

stream_counters stream_state::counters() const {
    const std::lock_guard<std::mutex> g(m_mutex);
    return m_counts;
}

void stream_state::merge_latency(unsigned cls, latency_histogram& into) const {
    if (cls >= m_cfg.classes) return;
    for (unsigned w = 0; w < m_workers; ++w) into.merge(m_slots[w].latency[cls]);
    const std::lock_guard<std::mutex> g(m_outside_mutex);
    into.merge(m_slots[m_workers].latency[cls]);
}

stream_stats stream_state::stats() const {
    stream_stats s;
    s.name = m_cfg.name;
    {
        const std::lock_guard<std::mutex> g(m_mutex);
        s.counters = m_counts;
        s.queued_by_class = m_queued_by_class;
        s.peak_queued = m_peak;
    }
    s.uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
    std::uint64_t busy = 0;
    for (unsigned w = 0; w <= m_workers; ++w) busy += m_slots[w].busy_ns.load(std::memory_order_relaxed);
    if (s.uptime_s > 0) {
        s.utilisation = static_cast<double>(busy) * 1e-9 / (s.uptime_s * m_max_pumps);
        s.arrival_rate = static_cast<double>(s.counters.arrived) / s.uptime_s;
        s.completion_rate = static_cast<double>(s.counters.done + s.counters.failed) / s.uptime_s;
    }
    for (unsigned c = 0; c < m_cfg.classes; ++c) {
        latency_histogram h;
        merge_latency(c, h);
        s.latency.push_back(summarize(h));
    }
    return s;
}

}  // namespace detail

stream_executor::stream_executor(runtime& rt, stream_config config)
    : m_state(std::make_unique<detail::stream_state>(rt, std::move(config))) {}

stream_executor::~stream_executor() {
    m_state->shutdown(m_state->m_cfg.on_destroy);
    // FORKLINE_STATS=1: one line per executor, when it ends (its runtime's lines come at the runtime's stop).
    if (detail::stats_of(m_state->m_rt).text()) std::cerr << stats_line(m_state->stats()) << '\n';
}

post_status stream_executor::admit(detail::stream_request* r) { return m_state->admit(r); }

void stream_executor::drain() { m_state->drain(); }

void stream_executor::shutdown(shutdown_mode mode) { m_state->shutdown(mode); }

stream_counters stream_executor::counters() const { return m_state->counters(); }

stream_stats stream_executor::stats() const { return m_state->stats(); }

void stream_executor::merge_latency(unsigned cls, latency_histogram& into) const {
    m_state->merge_latency(cls, into);
}

const stream_config& stream_executor::config() const noexcept { return m_state->m_cfg; }

std::string stats_line(const stream_stats& s) {
    const stream_counters& c = s.counters;
    std::string out = "forkline-stats: stream=" + s.name + " arrived=" + std::to_string(c.arrived) +
                      " done=" + std::to_string(c.done) + " failed=" + std::to_string(c.failed) +
                      " rejected=" + std::to_string(c.rejected) + " expired=" + std::to_string(c.expired) +
                      " cancelled=" + std::to_string(c.cancelled) + " queued=" + std::to_string(c.queued) +
                      " running=" + std::to_string(c.running) + " peak_queued=" + std::to_string(s.peak_queued);
    char buf[160];
    std::snprintf(buf, sizeof buf, " utilisation=%.3f arrival_per_s=%.1f completion_per_s=%.1f", s.utilisation,
                  s.arrival_rate, s.completion_rate);
    out += buf;
    for (std::size_t k = 0; k < s.latency.size(); ++k) {
        const latency_summary& l = s.latency[k];
        std::snprintf(buf, sizeof buf, " class%zu_p50_us=%.1f class%zu_p99_us=%.1f class%zu_max_us=%.1f", k,
                      static_cast<double>(l.p50) * 1e-3, k, static_cast<double>(l.p99) * 1e-3, k,
                      static_cast<double>(l.max) * 1e-3);
        out += buf;
    }
    return out;
}

}  // namespace forkline

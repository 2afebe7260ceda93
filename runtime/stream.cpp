// runtime/stream.cpp: the stream executor's queues, admission and pumps.
// See "Stream executor" in runtime/DESIGN.md (admission A1-A5, pumps P1-P6,
// priority and aging, keyed order K1-K4, shutdown D1-D4).
#include "forkline/stream.hpp"

#include <algorithm>           // min, max
#include <atomic>              // atomic
#include <cmath>               // ceil, isfinite
#include <condition_variable>  // condition_variable
#include <cstdio>              // snprintf
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

    /// The most requests one pick hands a pump (P3).
    static constexpr std::size_t k_max_batch = 32;
    /// A batch holds about this much expected work, by the running mean (P3).
    static constexpr std::uint64_t k_batch_work_ns = 20'000;

private:
    // Per worker, written only by that worker (a request runs on one worker
    // from start to end): no shared writes on the completion path.
    struct alignas(64) worker_slot {
        std::unique_ptr<latency_histogram[]> latency;  // one per class
        std::atomic<std::uint64_t> busy_ns{0};         // relaxed load+store: single writer
    };

    std::size_t pick(stream_request** out, std::size_t max) noexcept;
    stream_request* pick_one() noexcept;
    void absorb_inbox() noexcept;
    request_end execute(stream_request* r, std::uint64_t& t) noexcept;
    void finish(const request_end& e) noexcept;
    void enqueue(stream_request* r) noexcept;
    std::uint64_t reserve_slot(std::unique_lock<std::mutex>& lk);
    post_status refuse(stream_request* r, post_status why) noexcept;
    void count_refusal(post_status why) noexcept;
    bool take_pump_slot(std::uint64_t runnable) noexcept;
    bool pump_needed() const noexcept;
    void start_pump() noexcept;
    std::size_t batch_size() const noexcept;
    void collect_queued(request_fifo& out) noexcept;
    void end_collected(request_fifo& list, request_outcome o) noexcept;
    void set_ready(std::size_t n) noexcept;
    void wake_idle_waiters() noexcept;
    bool quiescent() const noexcept { return m_depth.load(std::memory_order_seq_cst) == 0 && m_counts.running == 0; }

    unsigned m_workers;
    unsigned m_max_pumps;
    std::vector<std::size_t> m_shed_depth;  // per class: refused at this depth
    std::uint64_t m_aging_ns;
    std::uint64_t m_linger_ns;
    std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();

    std::unique_ptr<worker_slot[]> m_slots;  // m_workers + 1: the last for other threads, under m_outside_mutex
    mutable std::mutex m_outside_mutex;

    // Written by posters only (A1, A6): their own cache line.
    alignas(64) std::atomic<std::uint64_t> m_posting{0};  // posts inside admit() now: shutdown waits for them (D3)
    // Posters and pumps (A3, A5, P2-P4).
    alignas(64) std::atomic<stream_request*> m_inbox{nullptr};  // admitted, not yet sorted: a LIFO stack
    std::atomic<std::uint64_t> m_depth{0};                      // admitted, not started: inbox + FIFOs + chains
    std::atomic<unsigned> m_pumps{0};                           // pump jobs injected or running (P1)
    std::atomic<unsigned> m_lingering{0};                       // pumps spinning on empty queues (P4)
    std::atomic<bool> m_stopping{false};
    // Refusals at the door (A1-A3), counted by posters.
    alignas(64) std::atomic<std::uint64_t> m_refused_rejected{0};
    std::atomic<std::uint64_t> m_refused_expired{0};
    std::atomic<std::uint64_t> m_refused_cancelled{0};
    std::atomic<std::uint64_t> m_peak{0};

    alignas(64) mutable std::mutex m_mutex;
    std::condition_variable m_space;  // block-mode posters wait for room
    std::condition_variable m_idle;   // drain() and shutdown() wait for quiescence
    // Everything below: guarded by m_mutex.
    std::vector<request_fifo> m_queues;  // per class, runnable (not behind a running request of their key)
    std::unordered_map<std::uint64_t, request_fifo> m_chains;  // key -> requests behind its active one (K1)
    stream_counters m_counts;  // done, failed, expired, cancelled and running; the rest is derived
    std::vector<std::uint64_t> m_queued_by_class;
    std::size_t m_ready = 0;  // requests in m_queues
    std::uint64_t m_picks = 0;
    std::uint64_t m_service_ns = 0;  // running mean of a request's time in a pump (P3's batch size)
    unsigned m_blocked = 0;          // posters waiting for room
    unsigned m_idle_waiters = 0;
    bool m_runtime_gone = false;

    // Lock-free hint for the lingering pumps' spin; the decision is always
    // retaken under m_mutex. written by: holders of m_mutex; read by: lingering pumps.
    std::atomic<std::size_t> m_ready_hint{0};
    // shutdown(cancel): a request picked from now on ends cancelled (D2).
    // written by: shutdown, under m_mutex; read by: pumps, relaxed, for picks made after it.
    std::atomic<bool> m_cancel_queued{false};
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
    ++m_queued_by_class[r->cls];
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

// A5 (the pump's side): the posts since the last look, in arrival order.
void stream_state::absorb_inbox() noexcept {
    // acquire: pairs with the posters' release CAS; their requests' fields are visible.
    stream_request* h = m_inbox.exchange(nullptr, std::memory_order_acq_rel);
    stream_request* fifo = nullptr;
    while (h != nullptr) {  // the stack is newest first: reverse it
        stream_request* n = h->next;
        h->next = fifo;
        fifo = h;
        h = n;
    }
    while (fifo != nullptr) {
        stream_request* n = fifo->next;
        enqueue(fifo);
        fifo = n;
    }
}

// P2: a pump is needed for `runnable` requests when more of them wait than
// pumps linger, and fewer pumps run than the bound. Lock-free: a CAS on the count.
bool stream_state::take_pump_slot(std::uint64_t runnable) noexcept {
    unsigned p = m_pumps.load(std::memory_order_seq_cst);
    while (p < m_max_pumps && runnable > m_lingering.load(std::memory_order_seq_cst)) {
        if (m_pumps.compare_exchange_weak(p, p + 1, std::memory_order_seq_cst)) return true;
    }
    return false;
}

bool stream_state::pump_needed() const noexcept {
    return m_ready > m_lingering.load(std::memory_order_seq_cst) &&
           m_pumps.load(std::memory_order_seq_cst) < m_max_pumps;
}

// relaxed: counters; a snapshot reads them under m_mutex, beside the rest.
void stream_state::count_refusal(post_status why) noexcept {
    if (why == post_status::cancelled) {
        m_refused_cancelled.fetch_add(1, std::memory_order_relaxed);
    } else if (why == post_status::expired) {
        m_refused_expired.fetch_add(1, std::memory_order_relaxed);
    } else {
        m_refused_rejected.fetch_add(1, std::memory_order_relaxed);
    }
}

post_status stream_state::refuse(stream_request* r, post_status why) noexcept {
    count_refusal(why);
    const request_outcome o = why == post_status::cancelled ? request_outcome::cancelled
                              : why == post_status::expired ? request_outcome::expired
                                                            : request_outcome::rejected;
    r->end(r, o, nullptr);
    return why;
}

// A refusal counted already (A6): only the hook.
static post_status end_refused(stream_request* r, post_status why) noexcept {
    r->end(r, request_outcome::rejected, nullptr);
    return why;
}

// A4: block mode at the bound. Returns the depth with the slot reserved
// (m_depth counts the request), or 0 when shutdown refuses it.
std::uint64_t stream_state::reserve_slot(std::unique_lock<std::mutex>& lk) {
    const bool own_worker = m_rt.current_worker_index() >= 0;
    for (;;) {
        if (m_stopping.load(std::memory_order_seq_cst)) return 0;
        std::uint64_t d = m_depth.load(std::memory_order_seq_cst);
        if (d < m_cfg.capacity) {
            if (m_depth.compare_exchange_weak(d, d + 1, std::memory_order_seq_cst)) return d + 1;
            continue;
        }
        if (own_worker) {
            // A handler posting to its own full executor runs a queued request instead.
            stream_request* q = nullptr;
            if (pick(&q, 1) == 1) {
                lk.unlock();
                std::uint64_t t = steady_ns();
                const request_end e = execute(q, t);
                lk.lock();
                finish(e);
                if (pump_needed()) {  // finish() may have made a keyed request runnable
                    m_pumps.fetch_add(1, std::memory_order_seq_cst);
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
}

// A1-A6: see "Admission" in runtime/DESIGN.md.
post_status stream_state::admit(stream_request* r) {
    r->cls = std::min(r->cls, m_cfg.classes - 1);
    // A1: held against shutdown until this call leaves (D3). The post counts
    // as arrived once it holds a slot (queued) or is refused (an end).
    m_posting.fetch_add(1, std::memory_order_seq_cst);
    struct leave_guard {
        stream_state* s;
        ~leave_guard() {
            // seq_cst: against shutdown's store of m_stopping and its test of m_posting (D3).
            if (s->m_posting.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
                s->m_stopping.load(std::memory_order_seq_cst)) {
                const std::lock_guard<std::mutex> g(s->m_mutex);
                if (s->m_idle_waiters > 0) s->m_idle.notify_all();
            }
        }
    } leave{this};
    const std::uint64_t now = steady_ns();
    if (m_stopping.load(std::memory_order_seq_cst)) return refuse(r, post_status::rejected_stopped);
    if (r->stop.stop_requested()) return refuse(r, post_status::cancelled);
    if (r->deadline <= std::chrono::steady_clock::time_point(std::chrono::nanoseconds(now))) {
        return refuse(r, post_status::expired);
    }
    // A2-A3: a slot under the class's limit, by CAS, so that the depth never
    // counts a request that is then refused.
    const bool shed = m_cfg.admission == admission_policy::shed;
    const std::uint64_t limit = shed ? m_shed_depth[r->cls] : m_cfg.capacity;
    std::uint64_t d = m_depth.load(std::memory_order_relaxed);
    for (;;) {
        if (d >= limit) {
            if (m_cfg.admission != admission_policy::block) {
                return refuse(r, shed && limit < m_cfg.capacity ? post_status::rejected_shed
                                                                : post_status::rejected_full);
            }
            std::unique_lock<std::mutex> lk(m_mutex);  // A4
            const std::uint64_t reserved = reserve_slot(lk);
            lk.unlock();
            if (reserved == 0) return refuse(r, post_status::rejected_stopped);
            d = reserved - 1;
            break;
        }
        if (m_depth.compare_exchange_weak(d, d + 1, std::memory_order_seq_cst)) break;
    }
    // A6: a shutdown that began meanwhile either sees this slot (and waits
    // for it) or is seen here: then the slot is given back and the post refused.
    if (m_stopping.load(std::memory_order_seq_cst)) {
        {
            // Counted rejected before the slot goes, so `arrived` never dips.
            const std::lock_guard<std::mutex> g(m_mutex);
            count_refusal(post_status::rejected_stopped);
            m_depth.fetch_sub(1, std::memory_order_seq_cst);
            wake_idle_waiters();
        }
        return end_refused(r, post_status::rejected_stopped);
    }
    // A5: stamped, pushed to the inbox, and a pump started if none will see it.
    r->admitted_ns = now;
    const std::uint64_t depth = d + 1;
    std::uint64_t peak = m_peak.load(std::memory_order_relaxed);
    while (depth > peak && !m_peak.compare_exchange_weak(peak, depth, std::memory_order_relaxed)) {
    }
    trace::counter(trace::k_stream_depth, depth);
    stream_request* head = m_inbox.load(std::memory_order_relaxed);
    do {
        r->next = head;
        // seq_cst: against P4's decrement of m_pumps and then its test of the inbox.
    } while (!m_inbox.compare_exchange_weak(head, r, std::memory_order_seq_cst, std::memory_order_relaxed));
    if (take_pump_slot(depth)) start_pump();
    return post_status::accepted;
}

// Strict priority with aging: see "Priority and aging" in runtime/DESIGN.md.
stream_request* stream_state::pick_one() noexcept {
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
    --m_queued_by_class[r->cls];
    return r;
}

// P3: up to `max` requests, in the order single picks would take them.
std::size_t stream_state::pick(stream_request** out, std::size_t max) noexcept {
    // seq_cst: a pump that stopped lingering (P4) sees a post that saw it linger.
    if (m_inbox.load(std::memory_order_seq_cst) != nullptr) absorb_inbox();
    std::size_t n = 0;
    while (n < max) {
        stream_request* r = pick_one();
        if (r == nullptr) break;
        out[n++] = r;
    }
    if (n == 0) return 0;
    const std::uint64_t depth = m_depth.fetch_sub(n, std::memory_order_seq_cst) - n;
    m_counts.running += n;
    trace::counter(trace::k_stream_depth, depth);
    if (m_blocked > 0) m_space.notify_all();
    return n;
}

// P3: one batch holds about k_batch_work_ns of work by the running mean, so
// that short requests share one lock round trip and long ones go one by one.
std::size_t stream_state::batch_size() const noexcept {
    if (m_service_ns == 0) return 1;
    const std::uint64_t k = k_batch_work_ns / m_service_ns;
    return static_cast<std::size_t>(std::clamp<std::uint64_t>(k, 1, k_max_batch));
}

// P5: a started request runs unless stop was requested or its deadline has
// passed; the hook ends it either way. Runs without the lock. `t` is now on
// entry, the end of the request on return.
request_end stream_state::execute(stream_request* r, std::uint64_t& t) noexcept {
    request_end e{request_outcome::done, r->cls, r->keyed, r->key};
    std::exception_ptr error;
    if (m_cancel_queued.load(std::memory_order_relaxed) || r->stop.stop_requested()) {
        e.outcome = request_outcome::cancelled;
    } else if (r->deadline != std::chrono::steady_clock::time_point::max() &&
               std::chrono::steady_clock::time_point(std::chrono::nanoseconds(t)) > r->deadline) {
        e.outcome = request_outcome::expired;
    } else {
        const std::uint64_t t0 = t;
        try {
            r->run(r);
        } catch (...) {
            error = std::current_exception();
            e.outcome = request_outcome::failed;
        }
        const std::uint64_t t1 = steady_ns();
        t = t1;
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
        m_runtime_gone = true;
        if (m_pumps.fetch_sub(1, std::memory_order_seq_cst) == 1) collect_queued(gone);
        // No pump can run: a later post sees m_pumps at 0 and comes here too.
    }
    end_collected(gone, request_outcome::cancelled);
}

// P3-P4: run requests until the queues stay empty for the linger time.
void stream_state::pump(pump_job* p) noexcept {
    std::unique_lock<std::mutex> lk(m_mutex);
    unsigned budget = 64;
    stream_request* batch[k_max_batch];
    request_end ends[k_max_batch];
    for (;;) {
        std::size_t n = pick(batch, batch_size());
        if (n == 0 && m_linger_ns > 0 && !m_stopping.load(std::memory_order_relaxed)) {
            m_lingering.fetch_add(1, std::memory_order_seq_cst);
            lk.unlock();
            const std::uint64_t until = steady_ns() + m_linger_ns;
            // relaxed: hints; the pick below is under the lock.
            while (m_ready_hint.load(std::memory_order_relaxed) == 0 &&
                   m_inbox.load(std::memory_order_relaxed) == nullptr &&
                   !m_stopping.load(std::memory_order_relaxed) && steady_ns() < until) {
                spin_pause();
            }
            lk.lock();
            m_lingering.fetch_sub(1, std::memory_order_seq_cst);
            n = pick(batch, batch_size());
        }
        if (n == 0) {
            // P4: leave, unless a post pushed meanwhile and saw this pump
            // still counted. Its CAS on the inbox and this decrement are
            // both seq_cst, then each reads the other's word: one of the two
            // sees the other, so a request is never left with no pump.
            m_pumps.fetch_sub(1, std::memory_order_seq_cst);
            if (m_inbox.load(std::memory_order_seq_cst) != nullptr && take_pump_slot(1)) continue;
            delete p;
            if (m_pumps.load(std::memory_order_seq_cst) == 0) m_idle.notify_all();  // shutdown waits for the pumps
            return;  // lk unlocks: the last touch of this executor
        }
        lk.unlock();
        std::uint64_t t = steady_ns();
        const std::uint64_t t_start = t;
        for (std::size_t i = 0; i < n; ++i) ends[i] = execute(batch[i], t);
        const std::uint64_t per = (t - t_start) / n;
        lk.lock();
        m_service_ns = m_service_ns == 0 ? per + 1 : (7 * m_service_ns + per) / 8 + 1;
        for (std::size_t i = 0; i < n; ++i) finish(ends[i]);
        if (budget > n) {
            budget -= static_cast<unsigned>(n);
            continue;
        }
        // P6: a fresh budget either way, so that a budget spent on an empty
        // queue does not wrap around and keep the worker for good.
        budget = 64;
        if (m_ready > 0 || m_inbox.load(std::memory_order_relaxed) != nullptr) {
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
    absorb_inbox();
    for (request_fifo& q : m_queues) {
        while (stream_request* r = q.pop_front()) out.push_back(r);
    }
    for (auto& [key, chain] : m_chains) {
        while (stream_request* r = chain.pop_front()) out.push_back(r);
    }
    m_chains.clear();
    std::uint64_t n = 0;
    for (stream_request* r = out.head; r != nullptr; r = r->next) ++n;
    set_ready(0);
    m_depth.fetch_sub(n, std::memory_order_seq_cst);
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
        // seq_cst: against A6's test after a poster's CAS on m_depth.
        m_stopping.store(true, std::memory_order_seq_cst);
        m_space.notify_all();
        // D1-D2: cancel mode, or nobody left to run them.
        if (mode == shutdown_mode::cancel) m_cancel_queued.store(true, std::memory_order_relaxed);
        if (mode == shutdown_mode::cancel || m_runtime_gone) collect_queued(gone);
    }
    end_collected(gone, request_outcome::cancelled);
    std::unique_lock<std::mutex> lk(m_mutex);
    // D3: wait for the queue to empty (drain), the running requests, the
    // posts still inside admit(), and every pump.
    ++m_idle_waiters;
    m_idle.wait(lk, [this] {
        return quiescent() && m_posting.load(std::memory_order_seq_cst) == 0 &&
               m_pumps.load(std::memory_order_seq_cst) == 0;
    });
    --m_idle_waiters;
}

// A post arrives when it takes a slot (queued) or is refused (an end), so
// `arrived` is the sum: exact in every snapshot, and a post still deciding
// (or blocked for room) is not yet counted. test_stream checks it against
// the number of posts made.
stream_counters stream_state::counters() const {
    stream_counters c;
    const std::lock_guard<std::mutex> g(m_mutex);
    c = m_counts;
    c.queued = m_depth.load(std::memory_order_seq_cst);
    c.rejected += m_refused_rejected.load(std::memory_order_relaxed);
    c.expired += m_refused_expired.load(std::memory_order_relaxed);
    c.cancelled += m_refused_cancelled.load(std::memory_order_relaxed);
    c.arrived = c.done + c.failed + c.rejected + c.expired + c.cancelled + c.queued + c.running;
    return c;
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
    s.counters = counters();
    {
        const std::lock_guard<std::mutex> g(m_mutex);
        const_cast<stream_state*>(this)->absorb_inbox();  // sorted by class: the per-class depths are exact
        s.queued_by_class = m_queued_by_class;
    }
    s.peak_queued = m_peak.load(std::memory_order_relaxed);
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
    : m_state(std::make_unique<detail::stream_state>(rt, std::move(config))) {
    detail::stats_of(rt).add_stream(this);  // report(rt) and FORKLINE_STATS list it
}

stream_executor::~stream_executor() {
    m_state->shutdown(m_state->m_cfg.on_destroy);
    // Its last stats stay with the runtime: report(rt) and FORKLINE_STATS at the runtime's stop.
    stream_stats last;
    try {
        last = m_state->stats();
    } catch (...) {  // no memory for the snapshot: listed by name only
        last.name = m_state->m_cfg.name;
    }
    detail::stats_of(m_state->m_rt).end_stream(this, std::move(last));
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

// bench/distribute/policy_queues.cpp: the run context, and the policies built
// on one queue per worker or one queue for all: push round-robin, push with
// two choices, pull, gossip. They share the worker loop and the parking;
// they differ only in where a request goes and what a worker does between
// two requests, so the table compares the distribution, not the plumbing.
#include <pthread.h>  // pthread_setaffinity_np
#include <sched.h>    // sched_getaffinity, cpu_set_t

#include <deque>      // deque
#include <mutex>      // mutex, lock_guard
#include <random>     // minstd_rand
#include <thread>     // thread

#include "distribute/policy.hpp"

namespace forkline_bench::distribute {

unsigned run_context::worker_index() noexcept {
    thread_local std::uint64_t t_run = 0;
    thread_local unsigned t_index = 0;
    if (t_run != run_id) {
        t_run = run_id;
        t_index = next_index.fetch_add(1, std::memory_order_relaxed);  // relaxed: a ticket
    }
    return t_index;
}

void run_context::execute(std::uint32_t i) noexcept {
    const request& r = (*schedule)[i];
    std::uint64_t service = r.service_ns;
    if (straggler && worker_index() == 0) {
        const std::uint64_t at = now_ns() - start_ns;
        if (at >= slow_from_ns && at < slow_until_ns) service = static_cast<std::uint64_t>(service * slow_factor);
    }
    spin_for(service);
    completion_ns[i] = now_ns() - start_ns;
    // release: publishes completion_ns[i]; pairs with the acquire in wait_all().
    if (done.fetch_add(1, std::memory_order_release) + 1 == total()) done.notify_all();
}

void run_context::end_unrun(std::uint32_t i, bool was_expired) noexcept {
    completion_ns[i] = k_not_run;
    (was_expired ? expired : rejected).fetch_add(1, std::memory_order_relaxed);  // relaxed: read after done
    if (done.fetch_add(1, std::memory_order_release) + 1 == total()) done.notify_all();
}

void run_context::wait_all() noexcept {
    for (;;) {
        const std::uint32_t d = done.load(std::memory_order_acquire);  // acquire: pairs with execute's release
        if (d == total()) return;
        done.wait(d, std::memory_order_acquire);
    }
}

void pin_to_allowed_cpu(unsigned w) noexcept {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    const int count = CPU_COUNT(&allowed);
    if (count <= 0) return;
    int want = static_cast<int>(w % static_cast<unsigned>(count));
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (!CPU_ISSET(cpu, &allowed)) continue;
        if (want-- == 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            pthread_setaffinity_np(pthread_self(), sizeof one, &one);
            return;
        }
    }
}

namespace {

// One queue and the word its worker(s) sleep on.
struct alignas(64) mailbox {
    std::mutex lock;
    std::deque<std::uint32_t> items;  // guarded by lock
    // queued + running; written by: pushers (+1), the runner (-1 at completion);
    // read relaxed by two-choices and gossip, which only need an estimate.
    std::atomic<std::uint32_t> load{0};
    // bumped after every push; sleepers wait for it to change.
    std::atomic<std::uint32_t> signal{0};

    void push(std::uint32_t i) {
        load.fetch_add(1, std::memory_order_relaxed);  // relaxed: an estimate
        {
            const std::lock_guard<std::mutex> g(lock);
            items.push_back(i);
        }
        signal.fetch_add(1, std::memory_order_release);  // release: pairs with the sleeper's acquire load
        signal.notify_one();
    }
    bool pop(std::uint32_t& i) {
        const std::lock_guard<std::mutex> g(lock);
        if (items.empty()) return false;
        i = items.front();
        items.pop_front();
        return true;
    }
};

// The common frame: `boxes` queues, `workers` threads, worker w takes from
// box w (or box 0 when there is one box). Subclasses say where a request
// goes and may act between requests.
class queue_pool : public policy {
public:
    void start(run_context& ctx, unsigned workers) override {
        m_ctx = &ctx;
        m_workers = workers;
        m_boxes = std::deque<mailbox>(shared_queue() ? 1 : workers);
        for (unsigned w = 0; w < workers; ++w) m_threads.emplace_back([this, w] { worker_loop(w); });
    }
    void stop() override {
        for (std::thread& t : m_threads) t.join();
        m_threads.clear();
    }

protected:
    virtual bool shared_queue() const { return false; }
    virtual void between_requests(unsigned /*w*/, std::minstd_rand& /*rng*/) {}

    mailbox& box_of(unsigned w) { return m_boxes[m_boxes.size() == 1 ? 0 : w]; }

    run_context* m_ctx = nullptr;
    unsigned m_workers = 0;
    std::deque<mailbox> m_boxes;  // deque: mailbox is neither movable nor copyable

private:
    void worker_loop(unsigned w) {
        pin_to_allowed_cpu(w);
        std::minstd_rand rng(w * 7919u + 1u);
        mailbox& mine = box_of(w);
        const std::uint32_t total = m_ctx->total();
        for (;;) {
            std::uint32_t i = 0;
            if (mine.pop(i)) {
                m_ctx->execute(i);
                mine.load.fetch_sub(1, std::memory_order_relaxed);  // relaxed: an estimate
                between_requests(w, rng);
                continue;
            }
            // acquire: pairs with the release increment in push(), so an
            // item pushed before the value we read is visible to the next pop.
            const std::uint32_t seen = mine.signal.load(std::memory_order_acquire);
            if (mine.pop(i)) {
                m_ctx->execute(i);
                mine.load.fetch_sub(1, std::memory_order_relaxed);
                between_requests(w, rng);
                continue;
            }
            if (m_ctx->done.load(std::memory_order_acquire) == total) break;
            // The last completion bumps every box's signal (finish_all).
            mine.signal.wait(seen, std::memory_order_acquire);
            if (m_ctx->done.load(std::memory_order_acquire) == total) break;
        }
        finish_all();
    }
    void finish_all() {
        for (mailbox& b : m_boxes) {
            b.signal.fetch_add(1, std::memory_order_release);
            b.signal.notify_all();
        }
    }

    std::vector<std::thread> m_threads;
};

class push_round_robin final : public queue_pool {
public:
    void submit(std::uint32_t i) override { m_boxes[i % m_workers].push(i); }
};

class push_two_choices final : public queue_pool {
public:
    void submit(std::uint32_t i) override {
        const unsigned a = static_cast<unsigned>(m_rng() % m_workers);
        const unsigned b = static_cast<unsigned>(m_rng() % m_workers);
        const bool take_b = m_boxes[b].load.load(std::memory_order_relaxed) <
                            m_boxes[a].load.load(std::memory_order_relaxed);  // relaxed: an estimate
        m_boxes[take_b ? b : a].push(i);
    }

private:
    std::minstd_rand m_rng{12345};  // generator thread only
};

class pull final : public queue_pool {
public:
    void submit(std::uint32_t i) override { m_boxes[0].push(i); }

protected:
    bool shared_queue() const override { return true; }
};

// See "Gossip (benchmark policy)" in runtime/DESIGN.md for the numbered steps.
class gossip final : public queue_pool {
public:
    void start(run_context& ctx, unsigned workers) override {
        m_next_round = std::vector<padded_time>(workers);
        queue_pool::start(ctx, workers);
    }
    void submit(std::uint32_t i) override { m_boxes[i % m_workers].push(i); }  // G1

protected:
    void between_requests(unsigned w, std::minstd_rand& rng) override {
        if (m_workers < 2) return;
        const std::uint64_t now = now_ns();
        if (now < m_next_round[w].at) return;  // G2
        m_next_round[w].at = now + k_period_ns;
        mailbox& mine = m_boxes[w];
        const std::uint32_t own = mine.load.load(std::memory_order_relaxed);  // G3; relaxed: an estimate
        if (own < 2) return;
        unsigned best = w;
        std::uint32_t best_load = own;
        for (unsigned probe = 0; probe < k_fanout; ++probe) {  // G4
            const unsigned p = static_cast<unsigned>(rng() % m_workers);
            if (p == w) continue;
            const std::uint32_t l = m_boxes[p].load.load(std::memory_order_relaxed);
            if (l < best_load) {
                best = p;
                best_load = l;
            }
        }
        if (best == w || 3 * best_load >= 2 * own) return;  // G5: less than 2/3 of ours
        // G6: hand over half the difference, oldest first.
        std::uint32_t give = (own - best_load) / 2;
        while (give-- > 0) {
            std::uint32_t i = 0;
            if (!mine.pop(i)) break;
            mine.load.fetch_sub(1, std::memory_order_relaxed);
            m_boxes[best].push(i);
        }
    }

private:
    static constexpr std::uint64_t k_period_ns = 200'000;
    static constexpr unsigned k_fanout = 2;
    struct alignas(64) padded_time {
        std::uint64_t at = 0;  // written and read by its worker only
    };
    std::vector<padded_time> m_next_round;
};

}  // namespace

std::unique_ptr<policy> make_push_round_robin() { return std::make_unique<push_round_robin>(); }
std::unique_ptr<policy> make_push_two_choices() { return std::make_unique<push_two_choices>(); }
std::unique_ptr<policy> make_pull() { return std::make_unique<pull>(); }
std::unique_ptr<policy> make_gossip() { return std::make_unique<gossip>(); }

}  // namespace forkline_bench::distribute

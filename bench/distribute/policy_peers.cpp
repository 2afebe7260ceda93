// bench/distribute/policy_peers.cpp: forkline's stealing scheduler, and the
// pools a user would otherwise pick: a mutex + condition-variable queue pool
// and Boost.Asio's thread_pool. (oneTBB is in policy_tbb.cpp: only that file
// sees TBB's flags.)
#include <condition_variable>  // condition_variable
#include <deque>               // deque
#include <functional>          // function
#include <mutex>               // mutex, unique_lock
#include <optional>            // optional
#include <thread>              // thread

#if FORKLINE_BENCH_HAVE_ASIO
#include <boost/asio/post.hpp>         // post
#include <boost/asio/thread_pool.hpp>  // thread_pool
#endif

#include "distribute/policy.hpp"
#include "forkline/forkline.hpp"  // runtime, runtime_config, detail::inject_into, detail::job
#if FORKLINE_BENCH_HAVE_STREAM
#include "forkline/stream.hpp"  // stream_executor
#endif

namespace forkline_bench::distribute {
namespace {

// "steal": each request is a job handed to the runtime from the generator
// thread through its submit ring, the path task_group::spawn and submit()
// take from outside; idle workers find it in the same search loop in which
// they steal from each other's deques and read their mailboxes. The jobs are
// made before the run, so no allocation is timed (submit() would add a
// promise and a future per request).
class steal final : public policy {
public:
    void start(run_context& ctx, unsigned workers) override {
        forkline::runtime_config c;
        c.placement.workers = workers;
        c.placement.oversubscribe = true;
        c.read_environment = false;
        c.injection_capacity = std::size_t{1} << 20;  // the generator must never block
        m_jobs = std::vector<request_job>(ctx.total());
        for (std::uint32_t i = 0; i < ctx.total(); ++i) {
            m_jobs[i].execute = &request_job::run;
            m_jobs[i].ctx = &ctx;
            m_jobs[i].index = i;
        }
        m_rt.emplace(c);
    }
    void submit(std::uint32_t i) override { forkline::detail::inject_into(*m_rt, &m_jobs[i]); }
    void stop() override { m_rt.reset(); }

private:
    struct request_job : forkline::detail::job {
        run_context* ctx = nullptr;
        std::uint32_t index = 0;
        static void run(forkline::detail::job* self) noexcept {
            auto* me = static_cast<request_job*>(self);
            me->ctx->execute(me->index);
        }
    };
    std::vector<request_job> m_jobs;
    std::optional<forkline::runtime> m_rt;
};

// The pool a user writes in twenty lines: one std::deque of std::function
// behind a mutex, workers sleep on a condition variable.
class mutex_pool final : public policy {
public:
    void start(run_context& ctx, unsigned workers) override {
        m_ctx = &ctx;
        m_closed = false;
        for (unsigned w = 0; w < workers; ++w) {
            m_threads.emplace_back([this, w] {
                pin_to_allowed_cpu(w);
                std::unique_lock<std::mutex> g(m_lock);
                for (;;) {
                    m_ready.wait(g, [this] { return m_closed || !m_items.empty(); });
                    if (m_items.empty()) return;
                    std::function<void()> f = std::move(m_items.front());
                    m_items.pop_front();
                    g.unlock();
                    f();
                    g.lock();
                }
            });
        }
    }
    void submit(std::uint32_t i) override {
        {
            const std::lock_guard<std::mutex> g(m_lock);
            m_items.emplace_back([ctx = m_ctx, i] { ctx->execute(i); });
        }
        m_ready.notify_one();
    }
    void stop() override {
        {
            const std::lock_guard<std::mutex> g(m_lock);
            m_closed = true;
        }
        m_ready.notify_all();
        for (std::thread& t : m_threads) t.join();
        m_threads.clear();
    }

private:
    run_context* m_ctx = nullptr;
    std::mutex m_lock;
    std::condition_variable m_ready;
    std::deque<std::function<void()>> m_items;  // guarded by m_lock
    bool m_closed = false;                      // guarded by m_lock
    std::vector<std::thread> m_threads;
};

#if FORKLINE_BENCH_HAVE_STREAM
// "executor": forkline::stream_executor on a runtime of `workers`, one class,
// reject admission with a bound far above any queue of these runs (so
// nothing is refused below overload), no deadlines. Its completion hook
// counts the requests that end without running.
class stream_policy final : public policy {
public:
    void start(run_context& ctx, unsigned workers) override {
        m_ctx = &ctx;
        forkline::runtime_config c;
        c.placement.workers = workers;
        c.placement.oversubscribe = true;
        c.read_environment = false;
        m_rt.emplace(c);
        forkline::stream_config sc;
        sc.capacity = std::size_t{1} << 20;
        sc.admission = forkline::admission_policy::reject;
        sc.classes = 1;
        sc.name = "distribute";
        m_ex.emplace(*m_rt, sc);
    }
    void submit(std::uint32_t i) override {
        forkline::request_options o;
        o.priority = 0;
        run_context* ctx = m_ctx;
        m_ex->post([ctx, i] { ctx->execute(i); }, o,
                   [ctx, i](forkline::request_outcome out, std::exception_ptr) noexcept {
                       if (out == forkline::request_outcome::done) return;  // counted by execute
                       ctx->end_unrun(i, out == forkline::request_outcome::expired);
                   });
    }
    void stop() override {
        m_ex.reset();
        m_rt.reset();
    }

private:
    run_context* m_ctx = nullptr;
    std::optional<forkline::runtime> m_rt;
    std::optional<forkline::stream_executor> m_ex;
};
#endif

#if FORKLINE_BENCH_HAVE_ASIO
class asio_pool final : public policy {
public:
    void start(run_context& ctx, unsigned workers) override {
        m_ctx = &ctx;
        m_pool.emplace(workers);
    }
    void submit(std::uint32_t i) override {
        boost::asio::post(*m_pool, [ctx = m_ctx, i] { ctx->execute(i); });
    }
    void stop() override {
        m_pool->join();
        m_pool.reset();
    }

private:
    run_context* m_ctx = nullptr;
    std::optional<boost::asio::thread_pool> m_pool;
};
#endif

}  // namespace

std::unique_ptr<policy> make_steal() { return std::make_unique<steal>(); }
std::unique_ptr<policy> make_mutex_pool() { return std::make_unique<mutex_pool>(); }
#if FORKLINE_BENCH_HAVE_STREAM
std::unique_ptr<policy> make_stream_executor() { return std::make_unique<stream_policy>(); }
#else
std::unique_ptr<policy> make_stream_executor() { return nullptr; }
#endif
#if FORKLINE_BENCH_HAVE_ASIO
std::unique_ptr<policy> make_asio_pool() { return std::make_unique<asio_pool>(); }
#else
std::unique_ptr<policy> make_asio_pool() { return nullptr; }
#endif

std::vector<policy_entry> policy_entries() {
    return {
        {"push", "round-robin to per-worker queues", true, {}},
        {"push-p2c", "per-worker queues, the shorter of two random ones", true, {}},
        {"pull", "one shared queue all workers take from", true, {}},
        {"steal", "forkline runtime: the submit ring, idle workers search and steal", true, {}},
        {"gossip", "push round-robin, then overloaded workers hand work to a less loaded peer", true, {}},
        {"executor", "forkline::stream_executor, one class, reject at a far bound", FORKLINE_BENCH_HAVE_STREAM != 0,
         "forkline/stream.hpp not in this tree"},
        {"tbb", "oneTBB task_arena::enqueue", FORKLINE_BENCH_HAVE_TBB != 0, "oneTBB (libtbb-dev) not found"},
        {"asio", "Boost.Asio thread_pool, post", FORKLINE_BENCH_HAVE_ASIO != 0, "Boost.Asio (libboost-dev) not found"},
        {"mutex", "mutex + condition_variable queue pool of std::function", true, {}},
    };
}

std::unique_ptr<policy> make_policy(std::string_view name) {
    if (name == "push") return make_push_round_robin();
    if (name == "push-p2c") return make_push_two_choices();
    if (name == "pull") return make_pull();
    if (name == "steal") return make_steal();
    if (name == "gossip") return make_gossip();
    if (name == "executor") return make_stream_executor();
#if FORKLINE_BENCH_HAVE_TBB
    if (name == "tbb") return make_tbb_arena();
#endif
    if (name == "asio") return make_asio_pool();
    if (name == "mutex") return make_mutex_pool();
    return nullptr;
}

}  // namespace forkline_bench::distribute

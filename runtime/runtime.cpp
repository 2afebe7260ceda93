// runtime/runtime.cpp: workers, stealing, joining, parking and injection.
//
// The protocols are described in runtime/DESIGN.md; the comments here cite
// them by name.
#include "forkline/runtime.hpp"

#include <linux/futex.h>     // FUTEX_WAIT, FUTEX_WAKE, FUTEX_PRIVATE_FLAG
#include <linux/membarrier.h>  // MEMBARRIER_CMD_*
#include <pthread.h>         // pthread_setname_np
#include <sched.h>           // sched_yield (also in stats())
#include <cerrno>            // errno
#include <sys/syscall.h>     // SYS_futex, SYS_membarrier
#include <unistd.h>          // syscall

#include <algorithm>  // stable_sort
#include <chrono>     // steady_clock
#include <climits>    // INT_MAX
#include <cstdio>     // snprintf, fprintf
#include <latch>      // latch
#include <mutex>      // mutex, lock_guard
#include <new>        // placement new
#include <cstdlib>    // getenv
#include <cstring>    // strerror
#include <string>     // string, to_string
#include <string_view>  // string_view (FORKLINE_MEMBARRIER)

#include "binding.hpp"                    // bind_current_thread, allocate_on_node
#include "forkline/detail/task_pool.hpp"  // task_pool
#include "forkline/detail/probes.hpp"     // FORKLINE_PROBE (see "Probes" in DESIGN.md)
#include "forkline/errors.hpp"            // runtime_stopped
#include "stats_state.hpp"                // stats_state (FORKLINE_STATS)

#include "sanitizers.hpp"  // FORKLINE_TSAN, FORKLINE_ASAN
#if FORKLINE_ASAN
#include <sanitizer/lsan_interface.h>  // __lsan_register_root_region
#endif
#include "trace.hpp"       // trace:: hooks (FORKLINE_TRACE)

namespace forkline {
namespace detail {

constinit thread_local worker* t_current_worker __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

constexpr std::int64_t k_deque_capacity = std::int64_t{1} << 13;
// Search rounds before a worker parks: the first use pause-based backoff,
// the rest yield the cpu (which matters when oversubscribed).
constexpr unsigned k_spin_rounds = 32;
constexpr unsigned k_yield_rounds = 16;
// A join with nothing to steal sleeps this long before looking again, so a
// blocked join still helps with work that appears later.
constexpr long k_join_sleep_ns = 1'000'000;
// After membarrier failed, a parked worker looks for work this often: a push
// that skipped its fence before it saw the fallback may not wake it.
constexpr long k_fallback_park_ns = 1'000'000;
// The largest injection_capacity accepted (the ring's cells are allocated).
constexpr std::size_t k_max_injection_capacity = std::size_t{1} << 62;

long futex_call(const std::atomic<std::uint32_t>& word, int op, std::uint32_t val,
                const timespec* timeout) noexcept {
    // The futex word is the atomic's object representation (a plain 32-bit
    // integer on every Linux target).
    auto* addr = reinterpret_cast<std::uint32_t*>(const_cast<std::atomic<std::uint32_t>*>(&word));
    return syscall(SYS_futex, addr, op | FUTEX_PRIVATE_FLAG, val, timeout, nullptr, 0);
}

void futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                const timespec* timeout = nullptr) noexcept {
    futex_call(word, FUTEX_WAIT, expected, timeout);  // EAGAIN, EINTR, ETIMEDOUT: caller rechecks
}

void futex_wake(const std::atomic<std::uint32_t>& word, int count) noexcept {
    futex_call(word, FUTEX_WAKE, static_cast<std::uint32_t>(count), nullptr);
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

/// The address below which this thread's joins stop running other work: the
/// middle of its stack (see "Stack limit" in DESIGN.md). 0 when unknown.
std::uintptr_t help_floor_of_this_thread() noexcept {
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return 0;
    void* low = nullptr;
    std::size_t size = 0;
    const int rc = pthread_attr_getstack(&attr, &low, &size);
    pthread_attr_destroy(&attr);
    if (rc != 0) return 0;
    return reinterpret_cast<std::uintptr_t>(low) + size / 2;
}

/// Whether a join at this depth may run work that is not its own.
inline bool stack_allows_help(const std::uintptr_t floor) noexcept {
    return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)) > floor;
}

/// Waits a little after a search round that found nothing: exponential
/// pause backoff for the first k_spin_rounds rounds, then sched_yield (which
/// matters when oversubscribed). Returns false once both are used up: the
/// caller should sleep.
bool back_off(unsigned round) noexcept {
    if (round < k_spin_rounds) {
        for (unsigned k = 0; k < (1u << (round < 6 ? round : 6)); ++k) cpu_relax();
        return true;
    }
    if (round < k_spin_rounds + k_yield_rounds) {
        sched_yield();
        return true;
    }
    return false;
}

/// run_job, under the name a trace gives the job's span ("task", "injected").
void run_job_as(worker& w, job* j, const char* trace_name) noexcept {
    bump(w.counters.tasks);
    const trace::span traced(trace_name);
    // C3 in "Cancellation" (DESIGN.md): a job runs under no context unless it
    // carries one, not under that of the task whose join or wait picked it up.
    const context_scope none(w, nullptr);
    j->execute(j);
}

/// A job just stolen: isolated here if its victim was ("Isolation").
void run_stolen_as(worker& w, bool victim_isolated, job* j) noexcept {
    if (victim_isolated) {
        const isolation_scope isolated(w);
        run_job_as(w, j, trace::k_task);
    } else {
        run_job_as(w, j, trace::k_task);
    }
}

/// The job posted to this worker, if any. Owner only.
job* take_mail(worker& w) noexcept {
    // relaxed peek first: the common case is an empty mailbox, and it keeps
    // the owner from writing a line posters read.
    if (w.mailbox.load(std::memory_order_relaxed) == nullptr) return nullptr;
    // acquire: pairs with the poster's release CAS; the job's contents are visible.
    return w.mailbox.exchange(nullptr, std::memory_order_acquire);
}

/// Registers for private expedited membarrier; false when the kernel (or a
/// seccomp filter) does not offer it.
bool register_membarrier() noexcept {
#if defined(FORKLINE_TSAN)
    return false;  // ThreadSanitizer cannot see a barrier made by the kernel
#else
    const long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}

/// Bounded multi-producer multi-consumer queue of job pointers: a ring of
/// cells, each with a sequence number that says whose turn it is (the scheme
/// of Vyukov's bounded MPMC queue). See "Submit ring" in DESIGN.md.
class injector {
public:
    explicit injector(std::size_t capacity) {
        if (capacity == 0 || capacity > k_max_injection_capacity) {
            throw config_error("forkline: runtime_config::injection_capacity = " + std::to_string(capacity) +
                               " is out of range: give a bound from 1 to 2^62 jobs");
        }
        std::size_t cap = 1;
        while (cap < capacity) cap <<= 1;
        // The sequence scheme needs two cells at least: with one, a full
        // cell's sequence equals the next lap's empty one. A bound of 1 keeps
        // two cells and refuses a second job by counting.
        m_single = cap == 1;
        if (m_single) cap = 2;
        m_mask = cap - 1;
        m_cells = std::make_unique<cell[]>(cap);
        for (std::size_t i = 0; i < cap; ++i) m_cells[i].seq.store(i, std::memory_order_relaxed);
    }

    bool try_push(job* j) noexcept {
        std::size_t pos = m_tail.load(std::memory_order_relaxed);
        for (;;) {
            cell& c = m_cells[pos & m_mask];
            // acquire: pairs with the release store of seq by the consumer that
            // emptied this cell, so our write of item does not race its read.
            const std::size_t seq = c.seq.load(std::memory_order_acquire);
            const auto diff = static_cast<std::ptrdiff_t>(seq - pos);
            // acquire: a consumer's claim of the last job is seen before we
            // count it; a stale head only makes us answer full.
            if (m_single && pos != m_head.load(std::memory_order_acquire)) return false;
            if (diff == 0) {
                if (m_tail.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    c.item.store(j, std::memory_order_relaxed);
                    // release: publishes item (and the job) to try_pop's acquire.
                    c.seq.store(pos + 1, std::memory_order_release);
                    return true;
                }
            } else if (diff < 0) {
                return false;  // full
            } else {
                pos = m_tail.load(std::memory_order_relaxed);
            }
        }
    }

    job* try_pop() noexcept {
        std::size_t pos = m_head.load(std::memory_order_relaxed);
        for (;;) {
            cell& c = m_cells[pos & m_mask];
            // acquire: pairs with the release store of seq in try_push.
            const std::size_t seq = c.seq.load(std::memory_order_acquire);
            const auto diff = static_cast<std::ptrdiff_t>(seq - (pos + 1));
            if (diff == 0) {
                if (m_head.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    job* j = c.item.load(std::memory_order_relaxed);
                    // release: hands the cell back to the producer one lap later.
                    c.seq.store(pos + m_mask + 1, std::memory_order_release);
                    return j;
                }
            } else if (diff < 0) {
                return nullptr;  // empty
            } else {
                pos = m_head.load(std::memory_order_relaxed);
            }
        }
    }

    bool looks_nonempty() const noexcept {
        // acquire: used in the park scan after a full barrier; exactness comes
        // from that barrier, not from these orders.
        return m_tail.load(std::memory_order_acquire) != m_head.load(std::memory_order_acquire);
    }

    // Producers blocked on a full queue. See "Submit ring" in DESIGN.md.
    // written by: blocked producers; read by: consumers after a pop
    alignas(k_cache_line) std::atomic<std::uint32_t> blocked{0};
    // futex word producers sleep on; bumped by consumers and by stop()
    std::atomic<std::uint32_t> space_epoch{0};

private:
    struct cell {
        std::atomic<std::size_t> seq;
        std::atomic<job*> item{nullptr};
    };
    std::unique_ptr<cell[]> m_cells;
    std::size_t m_mask = 0;
    bool m_single = false;  // a bound of one job in a ring of two cells
    // written by: producers (CAS)
    alignas(k_cache_line) std::atomic<std::size_t> m_tail{0};
    // written by: consumers (CAS)
    alignas(k_cache_line) std::atomic<std::size_t> m_head{0};
};

}  // namespace

/// Everything about one worker. Placed in memory of the worker's NUMA node.
struct worker_home {
    worker_home(std::atomic<job*>* buffer, const topology* topo, int node)
        : w(buffer, k_deque_capacity), pool(topo, node), m_buffer(buffer) {}

    worker w;  // shared with thieves: deque indices live in w.deque.storage()
    task_pool pool;
    // Kernel tid, for steal arrows in traces. written by: the worker before
    // its first push; read by: thieves after a steal from it (ordered by it).
    int os_tid = 0;
    // owner-private below
    alignas(k_cache_line) std::atomic<job*>* m_buffer;
    std::vector<unsigned> victims;      // other workers, nearest distance class first
    std::vector<std::size_t> class_end; // victims[class_end[k-1], class_end[k]) share a class
    std::uint64_t rng = 0;
    // Below this address a join stops helping: see "Stack limit" in DESIGN.md.
    std::uintptr_t help_floor = 0;
    // Whether the victim of the last successful steal was isolated: the job
    // then runs isolated here too ("Isolation").
    bool stolen_isolated = false;
    pthread_t thread{};
    bool started = false;
};

class runtime_core {
public:
    explicit runtime_core(runtime_config cfg);
    ~runtime_core();

    void start();
    void stop() noexcept;

    job* steal_round(worker_home& h) noexcept;
    job* steal_from(worker_home& h, unsigned victim) noexcept;
    bool work_visible() const noexcept;
    bool mail_visible() const noexcept;
    bool should_exit() const noexcept {
        // acquire: pairs with the release store in quiescent() ("Shutdown", Q3).
        return m_exit.load(std::memory_order_acquire);
    }
    bool quiescent() noexcept;
    void begin_stop() noexcept;
    bool stopping_from_own_worker() noexcept;
    void release_homes() noexcept;
    job* take_injected() noexcept;
    void wake_one() noexcept;
    void wake_all() noexcept;
    void park(worker_home& h) noexcept;
    void heavy_barrier() noexcept;
    void membarrier_failed(int err) noexcept;
    void worker_main(worker_home& h, std::latch& started) noexcept;
    void run_injected(worker_home& h, job* j) noexcept;
    void finish_outstanding() noexcept;
    void notify_injection() noexcept;
    void inject(job* j, bool block);
    submit_status try_inject(job* j);
    job* pop_injected() noexcept;

    runtime_config m_config;
    topology m_topo;
    placement_plan m_plan;
    idle_control m_idle;  // the words of "Parking protocol"
    // written by: the constructor, then once by membarrier_failed(); read by: parkers
    std::atomic<bool> m_use_membarrier{false};
    // Set with m_use_membarrier's clearing: parks then sleep with a timeout.
    std::atomic<bool> m_timed_parking{false};
    // Shutdown state. written by: stop(), inject(), finishing root jobs
    alignas(k_cache_line) std::atomic<bool> m_stopping{false};
    std::atomic<std::uint64_t> m_outstanding{0};
    // Set once every worker is parked with nothing left anywhere after stop;
    // the workers then exit. written by: the parker that sees it ("Shutdown").
    std::atomic<bool> m_exit{false};
    // Workers started (so that can ever park); fixed once start() returns.
    std::uint32_t m_live_workers = 0;
    // Outside threads inside inject(); the destructor waits for it to be 0.
    // written by: submitters (+1/-1), futex word for the destructor.
    alignas(k_cache_line) std::atomic<std::uint32_t> m_injecting{0};
    injector m_injector;
    std::vector<worker_home*> m_homes;
    std::mutex m_start_mutex;
    std::exception_ptr m_start_error;  // the first worker's failure to pin, if any
    std::mutex m_stop_mutex;           // stop() may be called from several threads at once
    bool m_stopped = false;            // guarded by m_stop_mutex: workers joined
    bool m_stop_begun = false;         // guarded by m_stop_mutex: stopping set, sleepers woken
    stats_state m_stats;               // FORKLINE_STATS: pipelines run, report at stop
    runtime_core* m_next_orphan = nullptr;  // in the list of cores left to the process's end
};

namespace {
// Cores whose runtime was destroyed on one of its own workers: their workers
// may still run, so the memory stays, reachable from here (so that leak
// checkers do not report it). See "Shutdown", stop from a worker.
std::atomic<runtime_core*> g_orphans{nullptr};

void keep_until_exit(runtime_core* c) noexcept {
#if FORKLINE_ASAN
    // The worker blocks are hwloc mappings, which LeakSanitizer does not
    // scan: name them as roots, or what they point to reads as leaked.
    for (const worker_home* h : c->m_homes) __lsan_register_root_region(h, sizeof(worker_home));
#endif
    runtime_core* head = g_orphans.load(std::memory_order_relaxed);
    do {
        c->m_next_orphan = head;
        // release: nothing reads the list but leak checkers; keeps it well formed.
    } while (!g_orphans.compare_exchange_weak(head, c, std::memory_order_release, std::memory_order_relaxed));
}
}  // namespace

namespace {

void seed_victims(worker_home& h, const placement_plan& plan, unsigned self) {
    const unsigned n = plan.worker_count();
    for (unsigned v = 0; v < n; ++v) {
        if (v != self) h.victims.push_back(v);
    }
    std::stable_sort(h.victims.begin(), h.victims.end(), [&](unsigned a, unsigned b) {
        return plan.distance(self, a) < plan.distance(self, b);
    });
    for (std::size_t i = 0; i < h.victims.size(); ++i) {
        const bool last = i + 1 == h.victims.size();
        if (last || plan.distance(self, h.victims[i]) != plan.distance(self, h.victims[i + 1])) {
            h.class_end.push_back(i + 1);
        }
    }
    h.rng = 0x9e3779b97f4a7c15ull * (self + 1);
}

std::uint64_t next_random(std::uint64_t& s) noexcept {
    // xorshift64*: cheap, and good enough to spread thieves over victims.
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545f4914f6cdd1dull;
}

}  // namespace

runtime_core::runtime_core(runtime_config cfg)
    : m_config(std::move(cfg)),
      m_topo(topology::discover()),
      m_injector(m_config.injection_capacity),
      m_stats(m_config.stats) {
    placement_config pc = m_config.placement;
    if (m_config.read_environment) pc = with_environment(pc);
    try {
        m_plan = m_topo.plan(pc);
    } catch (const config_error& e) {
        // Say where the request came from when the environment changed it.
        std::string from_env;
        for (const char* name : {"FORKLINE_WORKERS", "FORKLINE_PLACES"}) {
            const char* value = m_config.read_environment ? std::getenv(name) : nullptr;
            if (value != nullptr) from_env += std::string(from_env.empty() ? "" : ", ") + name + "=" + value;
        }
        if (from_env.empty()) throw;
        throw config_error(std::string(e.what()) + " (set in the environment: " + from_env + ")");
    }
    const char* membarrier_env = std::getenv("FORKLINE_MEMBARRIER");
    const bool membarrier_wanted =
        m_config.membarrier && !(membarrier_env != nullptr && std::string_view(membarrier_env) == "0");
    const bool membarrier = membarrier_wanted && register_membarrier();
    // relaxed: the workers start after this, ordered by pthread_create.
    m_use_membarrier.store(membarrier, std::memory_order_relaxed);
    m_idle.push_needs_fence.store(!membarrier, std::memory_order_relaxed);

    const unsigned n = m_plan.worker_count();
    m_homes.reserve(n);
    const std::size_t buf_bytes = sizeof(std::atomic<job*>) * k_deque_capacity;
    try {
        for (unsigned i = 0; i < n; ++i) {
            const int node = m_plan.places[i].numa_os_index;
            auto* buf = static_cast<std::atomic<job*>*>(allocate_on_node(m_topo, buf_bytes, node));
            for (std::int64_t k = 0; k < k_deque_capacity; ++k) new (&buf[k]) std::atomic<job*>(nullptr);
            void* mem = nullptr;
            worker_home* h = nullptr;
            try {
                mem = allocate_on_node(m_topo, sizeof(worker_home), node);
                h = new (mem) worker_home(buf, &m_topo, node);
            } catch (...) {
                free_on_node(m_topo, mem, sizeof(worker_home));
                free_on_node(m_topo, buf, buf_bytes);
                throw;
            }
            m_homes.push_back(h);  // reserved: cannot throw; from here release_homes() frees it
            h->w.idle = &m_idle;
            h->w.core = this;
            h->w.pool = &h->pool;
            h->w.index = i;
            h->w.peers = n;
            seed_victims(*h, m_plan, i);
        }
    } catch (...) {
        release_homes();  // the destructor will not run for a half-built core
        throw;
    }
}

void runtime_core::release_homes() noexcept {
    const std::size_t buf_bytes = sizeof(std::atomic<job*>) * k_deque_capacity;
    for (worker_home* h : m_homes) {
        std::atomic<job*>* buf = h->m_buffer;
        h->~worker_home();
        free_on_node(m_topo, h, sizeof(worker_home));
        free_on_node(m_topo, buf, buf_bytes);
    }
    m_homes.clear();
}

runtime_core::~runtime_core() {
    stop();
    // Submitters that stop() woke may still be on their way out of inject().
    // acquire: pairs with their release decrement; nothing of ours is touched after.
    for (std::uint32_t v; (v = m_injecting.load(std::memory_order_acquire)) != 0;) {
        futex_wait(m_injecting, v);
    }
    release_homes();
}

void runtime_core::start() {
    std::latch started(static_cast<std::ptrdiff_t>(m_homes.size()));
    struct launch {
        runtime_core* core;
        worker_home* home;
        std::latch* started;
    };
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    // A worker runs user recursion and, while joining, other tasks on top of
    // it; give it the stack the config asks for rather than the default.
    if (int rc = pthread_attr_setstacksize(&attr, m_config.stack_bytes); rc != 0) {
        pthread_attr_destroy(&attr);
        throw config_error("forkline: runtime_config::stack_bytes = " + std::to_string(m_config.stack_bytes) +
                           " is not a usable thread stack size (pthread_attr_setstacksize: " +
                           std::strerror(rc) + ")");
    }
    std::vector<launch> args;
    args.reserve(m_homes.size());
    m_live_workers = static_cast<std::uint32_t>(m_homes.size());
    for (worker_home* h : m_homes) args.push_back({this, h, &started});
    int failure = 0;
    std::size_t launched = 0;
    for (launch& a : args) {
        failure = pthread_create(
            &a.home->thread, &attr,
            [](void* p) -> void* {
                auto* l = static_cast<launch*>(p);
                l->core->worker_main(*l->home, *l->started);
                return nullptr;
            },
            &a);
        if (failure != 0) break;
        a.home->started = true;
        ++launched;
    }
    pthread_attr_destroy(&attr);
    if (failure != 0) {
        // Workers read it only after seeing m_stopping, which stop() sets after this.
        m_live_workers = static_cast<std::uint32_t>(launched);
        // Release the latch for the workers never created, then stop the rest.
        started.count_down(static_cast<std::ptrdiff_t>(m_homes.size() - launched));
        started.wait();
        stop();
        throw system_failure("pthread_create", failure,
                             "forkline: could not start worker " + std::to_string(launched) + " of " +
                                 std::to_string(m_homes.size()));
    }
    started.wait();
    std::exception_ptr err;
    {
        std::lock_guard<std::mutex> lock(m_start_mutex);
        err = m_start_error;
    }
    if (err) {
        stop();
        std::rethrow_exception(err);
    }
}

namespace {

// The writer side of worker_counters::idle_seq (one writer, the worker): the
// sequence is odd while `change` runs. A seqlock in the C++ memory model:
// relaxed data stores after the odd store, published by the release store of
// the even one; the reader's half is in runtime::stats(). The odd store is a
// seq_cst exchange, a full barrier, not a store and a release fence: `change`
// reads the clock, and a plain store can still sit in the store buffer when
// it does, so a reader could see the even sequence, read a later time, and
// count the interval up to past the end `change` then records (a snapshot
// a few microseconds over, the next one lower). One locked instruction per
// search and per sleep, beside a search's own cost.
template <class Change>
void idle_update(worker_counters& c, Change&& change) noexcept {
    const std::uint32_t seq = c.idle_seq.load(std::memory_order_relaxed);
    c.idle_seq.exchange(seq + 1, std::memory_order_seq_cst);
    change();
    c.idle_seq.store(seq + 2, std::memory_order_release);
}

}  // namespace

void runtime_core::worker_main(worker_home& h, std::latch& started) noexcept {
    t_current_worker = &h.w;
    char name[16];
    std::snprintf(name, sizeof name, "fl-w%u", h.w.index);
    pthread_setname_np(pthread_self(), name);
    h.os_tid = trace::thread_started();
    if (m_config.pin) {
        try {
            bind_current_thread(m_topo, m_plan.places[h.w.index].pu_os_index);
        } catch (...) {
            std::lock_guard<std::mutex> lock(m_start_mutex);
            if (!m_start_error) m_start_error = std::current_exception();
        }
    }
    started.count_down();
    h.help_floor = help_floor_of_this_thread();

    for (;;) {
        if (job* j = take_mail(h.w)) {
            run_job(h.w, j);
            continue;
        }
        if (job* j = h.w.deque.pop()) {
            run_job(h.w, j);
            continue;
        }
        // See "Steal protocol" in DESIGN.md: near victims first, then the
        // injection queue, with backoff; park when nothing turns up.
        // The start is read inside the idle sequence lock (see idle_update),
        // as the end is below. relaxed: inside the lock.
        std::uint64_t t0 = 0;
        idle_update(h.w.counters, [&]() noexcept {
            t0 = now_ns();
            h.w.counters.searching_since.store(t0, std::memory_order_relaxed);
        });
        job* found = nullptr;
        bool injected = false;
        bool stolen = false;
        for (unsigned round = 0;; ++round) {
            if ((found = take_mail(h.w)) != nullptr) break;
            // The injection queue before stealing, so that outside work is
            // not starved by fork-join that always leaves something to steal.
            if ((found = pop_injected()) != nullptr) {
                injected = true;
                break;
            }
            if ((found = steal_round(h)) != nullptr) {
                stolen = true;
                break;
            }
            if (should_exit() || !back_off(round)) break;
        }
        // The end is read inside the sequence lock, so that no snapshot
        // counts this search up to a later time than its total says.
        std::uint64_t searched = 0;
        idle_update(h.w.counters, [&]() noexcept {
            searched = now_ns() - t0;
            bump(h.w.counters.idle_ns, searched);
            bump(found != nullptr ? h.w.counters.search_ns : h.w.counters.failed_search_ns, searched);
            h.w.counters.searching_since.store(0, std::memory_order_relaxed);  // relaxed: as above
        });
        trace::complete(trace::k_search, t0, searched);
        if (found != nullptr) {
            if (injected) {
                run_injected(h, found);
            } else if (stolen) {
                run_stolen_as(h.w, h.stolen_isolated, found);
            } else {
                run_job(h.w, found);
            }
            continue;
        }
        if (should_exit()) break;
        park(h);
    }
    t_current_worker = nullptr;
}

job* runtime_core::pop_injected() noexcept {
    job* j = m_injector.try_pop();
    if (j != nullptr) {
        // More queued and someone asleep: hand it on (ramp-up, as for steals).
        if (m_injector.looks_nonempty() && m_idle.sleepers.load(std::memory_order_relaxed) != 0) {
            wake_one();
        }
        // seq_cst fence: the consumer half of the Dekker pair with a blocked
        // producer's fetch_add of `blocked` (see "Submit ring").
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (m_injector.blocked.load(std::memory_order_relaxed) != 0) {
            m_injector.space_epoch.fetch_add(1, std::memory_order_release);
            futex_wake(m_injector.space_epoch, 1);
        }
    }
    return j;
}

job* runtime_core::steal_from(worker_home& h, unsigned victim) noexcept {
    worker_home& v = *m_homes[victim];
    const steal_result<job> r = stealer<job>(v.w.deque.storage()).steal();
    if (r.outcome != steal_outcome::taken) {
        bump(h.w.counters.failed_steals);
        return nullptr;
    }
    if (m_plan.distance(h.w.index, victim) <= distance_class::same_numa) {
        bump(h.w.counters.steals_near);
    } else {
        bump(h.w.counters.steals_far);
    }
    FORKLINE_PROBE(steal, h.w.index, victim);
    trace::steal(victim, v.os_tid);
    // relaxed: the victim cannot leave an isolated region before this job
    // is done, so a job pushed inside one always reads isolated here; a job
    // pushed before the victim entered one may read isolated too, which only
    // makes this worker's waits in it help less ("Isolation").
    h.stolen_isolated = v.w.isolated.load(std::memory_order_relaxed) != 0;
    // More where that came from and someone asleep: wake one more helper
    // (the ramp-up step of "Parking protocol").
    if (v.w.deque.storage().size_estimate() > 0 && m_idle.sleepers.load(std::memory_order_relaxed) != 0) {
        wake_one();
    }
    return r.item;
}

job* runtime_core::steal_round(worker_home& h) noexcept {
    std::size_t begin = 0;
    for (const std::size_t end : h.class_end) {
        const std::size_t n = end - begin;
        const std::size_t start = next_random(h.rng) % n;
        for (std::size_t k = 0; k < n; ++k) {
            const unsigned v = h.victims[begin + (start + k) % n];
            // A cheap look before the fenced steal keeps idle thieves off
            // the victims' cache lines for top.
            if (m_homes[v]->w.deque.storage().size_estimate() == 0) continue;
            if (job* j = steal_from(h, v)) return j;
        }
        begin = end;
    }
    return nullptr;
}

bool runtime_core::work_visible() const noexcept {
    for (const worker_home* h : m_homes) {
        if (h->w.deque.storage().size_estimate() > 0) return true;
    }
    return m_injector.looks_nonempty();
}

bool runtime_core::mail_visible() const noexcept {
    for (const worker_home* h : m_homes) {
        // acquire: pairs with a poster's release CAS.
        if (h->w.mailbox.load(std::memory_order_acquire) != nullptr) return true;
    }
    return false;
}

// See "Shutdown" in DESIGN.md, Q1-Q3. Called by a parker whose scan found nothing.
bool runtime_core::quiescent() noexcept {
    // Q1: stop has begun and no root job is outstanding.
    if (!m_stopping.load(std::memory_order_seq_cst) || m_outstanding.load(std::memory_order_seq_cst) != 0) {
        return false;
    }
    // Q2: every worker is parked (announced in P3), so none runs a task that
    // could spawn or post more. seq_cst: reads the parkers' seq_cst increments,
    // whose release publishes every push and post made before them...
    if (m_idle.sleepers.load(std::memory_order_seq_cst) != m_live_workers) return false;
    // ...so a scan made after it sees any work they left behind.
    if (work_visible() || mail_visible()) return false;
    // Q3: nothing anywhere and nobody to make more: everyone exits.
    m_exit.store(true, std::memory_order_release);  // release: pairs with should_exit()
    wake_all();
    return true;
}

void runtime_core::heavy_barrier() noexcept {
    // relaxed: the flag only ever goes from true to false; a stale true costs
    // one failing syscall, a stale false one fence too many.
    if (m_use_membarrier.load(std::memory_order_relaxed)) {
        // Asymmetric fence, heavy side: every running thread of the process
        // executes a full barrier before this returns.
        if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return;
        membarrier_failed(errno);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

// See "Parking protocol", "When membarrier fails".
void runtime_core::membarrier_failed(int err) noexcept {
    if (!m_use_membarrier.exchange(false, std::memory_order_acq_rel)) return;  // someone else did this
    // seq_cst: pushes from now on pay the full fence; pushes that have not
    // seen this yet may still miss a parker, hence timed parking for good.
    m_idle.push_needs_fence.store(true, std::memory_order_seq_cst);
    m_timed_parking.store(true, std::memory_order_seq_cst);
    const char* name = strerrorname_np(err);
    std::fprintf(stderr,
                 "forkline: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after start-up with %s (%s), "
                 "perhaps a seccomp filter; from now on pushes pay a full fence and parked workers look for "
                 "work every %ld ms\n",
                 name != nullptr ? name : "an unknown errno", std::strerror(err), k_fallback_park_ns / 1'000'000);
}

namespace {

/// The environment of the parking protocol (parking.hpp): futex(2), and the
/// runtime's heavy barrier.
struct os_parking_env {
    runtime_core* core;
    void futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected) const noexcept {
        // For a while only, once membarrier has failed ("When membarrier
        // fails"). relaxed: either value is safe to act on here.
        const timespec fallback{0, k_fallback_park_ns};
        detail::futex_wait(word, expected,
                           core->m_timed_parking.load(std::memory_order_relaxed) ? &fallback : nullptr);
    }
    void futex_wake(const std::atomic<std::uint32_t>& word, int count) const noexcept {
        detail::futex_wake(word, count);
    }
    void heavy_barrier() const noexcept { core->heavy_barrier(); }
};

}  // namespace

// See "Parking protocol" in DESIGN.md: steps P1-P6 are in detail/parking.hpp.
void runtime_core::park(worker_home& h) noexcept {
    os_parking_env env{this};
    std::uint64_t t0 = 0;
    const bool slept = detail::park(
        m_idle, env,
        [&]() noexcept {
            // P4: every deque, the injector, our mailbox, shutdown (and
            // whether this parker is the one that finds the runtime quiescent).
            return work_visible() || h.w.mailbox.load(std::memory_order_acquire) != nullptr || should_exit() ||
                   quiescent();
        },
        [&]() noexcept {
            bump(h.w.counters.parks);
            FORKLINE_PROBE(park, h.w.index);
            // The start inside the idle sequence lock, as for a search.
            // relaxed: inside the lock.
            idle_update(h.w.counters, [&]() noexcept {
                t0 = now_ns();
                h.w.counters.parked_since.store(t0, std::memory_order_relaxed);
            });
        });
    if (!slept) return;
    bump(h.w.counters.wakeups);
    FORKLINE_PROBE(unpark, h.w.index);
    std::uint64_t slept_ns = 0;
    idle_update(h.w.counters, [&]() noexcept {
        slept_ns = now_ns() - t0;  // inside the lock, as for a search
        bump(h.w.counters.idle_ns, slept_ns);
        bump(h.w.counters.parked_ns, slept_ns);
        h.w.counters.parked_since.store(0, std::memory_order_relaxed);  // relaxed: inside the sequence lock
    });
    trace::complete(trace::k_parked, t0, slept_ns);
}

void runtime_core::wake_one() noexcept {
    // N2-N3 of "Parking protocol".
    os_parking_env env{this};
    detail::wake_one(m_idle, env);
}

void runtime_core::wake_all() noexcept {
    os_parking_env env{this};
    detail::wake_all(m_idle, env);
}

void runtime_core::notify_injection() noexcept {
    // seq_cst: injections come from any thread; pay the full fence here.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (m_idle.sleepers.load(std::memory_order_relaxed) != 0) {
        wake_one();
    } else if (!m_idle.injected_waiting.load(std::memory_order_relaxed)) {
        // Every worker busy: the next join of a fork-join takes the job
        // ("Injection bound"). relaxed: a hint (see parking_words).
        m_idle.injected_waiting.store(true, std::memory_order_relaxed);
    }
}

void runtime_core::run_injected(worker_home& h, job* j) noexcept {
    bump(h.w.counters.injected);
    run_job_as(h.w, j, trace::k_injected);
    finish_outstanding();
}

/// For joins: a job from the injection queue, if there is one. The cheap
/// look first keeps the empty case to two loads of lines rarely written.
job* runtime_core::take_injected() noexcept {
    if (!m_injector.looks_nonempty()) return nullptr;
    return pop_injected();
}

void runtime_core::finish_outstanding() noexcept {
    // seq_cst: see "Shutdown" in DESIGN.md.
    if (m_outstanding.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        m_stopping.load(std::memory_order_seq_cst)) {
        wake_all();
    }
}

submit_status runtime_core::try_inject(job* j) {
    // seq_cst increment before the seq_cst check of stopping: either stop()
    // sees the job outstanding or we see stop (see "Shutdown").
    m_outstanding.fetch_add(1, std::memory_order_seq_cst);
    if (m_stopping.load(std::memory_order_seq_cst)) {
        finish_outstanding();
        return submit_status::stopped;
    }
    if (!m_injector.try_push(j)) {
        finish_outstanding();
        return submit_status::full;
    }
    FORKLINE_PROBE(submit);
    trace::instant(trace::k_submit);
    notify_injection();
    return submit_status::accepted;
}

void runtime_core::inject(job* j, bool block) {
    worker* w = current_worker();
    worker_home* own = (w != nullptr && w->core == this) ? m_homes[w->index] : nullptr;
    // An outside thread is counted, so that the destructor waits for it to
    // leave (see "Shutdown"); our own workers never outlive the runtime.
    struct leave {
        std::atomic<std::uint32_t>* n;
        ~leave() {
            // release: our last touches of the runtime come before the destructor's acquire.
            if (n != nullptr && n->fetch_sub(1, std::memory_order_release) == 1) futex_wake(*n, INT_MAX);
        }
    } on_leave{own == nullptr ? &m_injecting : nullptr};
    if (own == nullptr) m_injecting.fetch_add(1, std::memory_order_relaxed);  // relaxed: we are not leaving yet
    for (;;) {
        const submit_status s = try_inject(j);
        if (s == submit_status::accepted) return;
        if (s == submit_status::stopped) {
            throw runtime_stopped("forkline: the runtime is stopping; submission refused");
        }
        if (!block) return;
        if (own != nullptr) {
            // One of our own workers: sleeping here could leave no one to
            // drain the queue, so it runs a queued job and tries again
            // ("Submit ring", S5).
            if (job* q = pop_injected()) {
                run_injected(*own, q);
            } else {
                cpu_relax();  // a consumer is between its claim and its release of a cell
            }
            continue;
        }
        // Full: sleep until a consumer frees a cell ("Submit ring", S1-S4).
        m_injector.blocked.fetch_add(1, std::memory_order_seq_cst);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        const std::uint32_t e = m_injector.space_epoch.load(std::memory_order_acquire);
        const submit_status again = try_inject(j);
        if (again == submit_status::full) futex_wait(m_injector.space_epoch, e);
        m_injector.blocked.fetch_sub(1, std::memory_order_relaxed);
        if (again == submit_status::accepted) return;
    }
}

void runtime_core::begin_stop() noexcept {
    std::lock_guard<std::mutex> lock(m_stop_mutex);
    if (m_stop_begun) return;
    m_stop_begun = true;
    m_stopping.store(true, std::memory_order_seq_cst);
    // Parked workers wake, find nothing and park again; the last to park sees
    // everyone parked and nothing left, and they all exit ("Shutdown").
    wake_all();
    m_injector.space_epoch.fetch_add(1, std::memory_order_release);
    futex_wake(m_injector.space_epoch, INT_MAX);
}

void runtime_core::stop() noexcept {
    begin_stop();
    // From one of our own workers we cannot wait for ourselves: the workers
    // finish and exit on their own ("Shutdown", stop from a worker).
    if (worker* w = current_worker(); w != nullptr && w->core == this) return;
    std::lock_guard<std::mutex> lock(m_stop_mutex);
    if (m_stopped) return;
    m_stopped = true;
    for (worker_home* h : m_homes) {
        if (h->started) pthread_join(h->thread, nullptr);
        h->started = false;
    }
}

bool runtime_core::stopping_from_own_worker() noexcept {
    worker* w = current_worker();
    if (w == nullptr || w->core != this) return false;
    begin_stop();
    std::lock_guard<std::mutex> lock(m_stop_mutex);
    if (!m_stopped) {
        // Nobody will join them: let their resources go when they exit.
        for (worker_home* h : m_homes) {
            if (h->started) pthread_detach(h->thread);
            h->started = false;
        }
        m_stopped = true;
    }
    return true;
}

// ---- entry points declared in the public headers ----

void run_job(worker& w, job* j) noexcept { run_job_as(w, j, trace::k_task); }

void wake_one_sleeper(worker& w) noexcept { w.core->wake_one(); }

// See "Affinity mailboxes" in DESIGN.md.
bool post_to_worker(worker& w, unsigned target, job* j) noexcept {
    if (w.measure != nullptr) return false;  // measuring: the caller runs j in order
    runtime_core& c = *w.core;
    worker& t = c.m_homes[target]->w;
    job* expected = nullptr;
    // release: publishes the job's contents to the owner's acquire exchange.
    if (!t.mailbox.compare_exchange_strong(expected, j, std::memory_order_release,
                                           std::memory_order_relaxed)) {
        return false;
    }
    bump(w.counters.spawned);
    FORKLINE_PROBE(spawn);
    // The Dekker pair with a parker's P3/P4, as for a push; the target may be
    // any sleeper, and a futex cannot wake a chosen one, so wake them all.
    full_fence();
    if (c.m_idle.sleepers.load(std::memory_order_relaxed) != 0) c.wake_all();
    return true;
}

void wake_waiters(const std::atomic<std::uint32_t>& word) noexcept { futex_wake(word, INT_MAX); }

// See "Injection bound" in DESIGN.md.
void help_injected(worker& w) noexcept {
    runtime_core& c = *w.core;
    worker_home& h = *c.m_homes[w.index];
    if (!stack_allows_help(h.help_floor)) return;  // "Stack limit"
    if (w.isolated.load(std::memory_order_relaxed) != 0) return;  // "Isolation": outside work is not ours
    if (job* q = c.take_injected()) {
        c.run_injected(h, q);
        return;
    }
    // relaxed: a hint. Clear, then look again, so that a job pushed between
    // our empty look and the clear still leaves the flag set.
    c.m_idle.injected_waiting.store(false, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (c.m_injector.looks_nonempty()) c.m_idle.injected_waiting.store(true, std::memory_order_relaxed);
}

// See "Join protocol" in DESIGN.md.
void join_stolen(worker& w, join_job& j) noexcept {
    runtime_core& c = *w.core;
    worker_home& h = *c.m_homes[w.index];
    unsigned idle_rounds = 0;
    // Time with nothing to run goes to join_wait_ns; time in jobs run meanwhile does not.
    std::uint64_t waiting_since = now_ns();
    // Past the middle of the stack, run nothing but our mail ("Stack limit");
    // isolated, likewise: mail only, since its poster may be waiting on us
    // ("Isolation").
    const bool isolated = w.isolated.load(std::memory_order_relaxed) != 0;
    const bool may_help = stack_allows_help(h.help_floor) && !isolated;
    // acquire: pairs with the thief's exchange to k_done.
    while (j.state.load(std::memory_order_acquire) != k_done) {
        // Leapfrogging: the thief's deque holds the pieces of our job.
        const unsigned thief = j.thief.load(std::memory_order_relaxed);
        // Mail first: a poster may be waiting for exactly this worker.
        job* found = take_mail(w);
        bool stolen = false;
        if (found == nullptr && may_help) {
            // Outside work next, so that a fork-join that never runs dry
            // does not starve it ("Steal protocol", injection bound).
            if (job* q = c.take_injected()) {
                bump(w.counters.join_wait_ns, now_ns() - waiting_since);
                c.run_injected(h, q);
                waiting_since = now_ns();
                idle_rounds = 0;
                continue;
            }
            if (thief < c.m_homes.size() && thief != w.index) found = c.steal_from(h, thief);
            if (found == nullptr) found = c.steal_round(h);
            stolen = found != nullptr;
        }
        if (found != nullptr) {
            bump(w.counters.join_wait_ns, now_ns() - waiting_since);
            if (stolen) {
                run_stolen_as(w, h.stolen_isolated, found);
            } else {
                run_job(w, found);
            }
            waiting_since = now_ns();
            idle_rounds = 0;
            continue;
        }
        if (!back_off(idle_rounds++)) {
            std::uint32_t expected = k_pending;
            // acq_rel on success, acquire on failure: if the thief finished
            // meanwhile we must see its writes.
            if (j.state.compare_exchange_strong(expected, k_sleeping, std::memory_order_acq_rel,
                                                std::memory_order_acquire) ||
                expected == k_sleeping) {
                const timespec ts{0, k_join_sleep_ns};
                futex_wait(j.state, k_sleeping, &ts);
            }
        }
    }
    bump(w.counters.join_wait_ns, now_ns() - waiting_since);
}

void help_until(worker& w, std::int64_t base, std::atomic<std::uint32_t>& word,
                std::uint32_t count_mask, std::uint32_t waiter_bit) noexcept {
    runtime_core& c = *w.core;
    worker_home& h = *c.m_homes[w.index];
    unsigned idle_rounds = 0;
    std::uint64_t waiting_since = now_ns();  // as in join_stolen
    // As in join_stolen; isolated, our own jobs only, and only those pushed
    // inside the region ("Isolation").
    const bool isolated = w.isolated.load(std::memory_order_relaxed) != 0;
    const bool may_help = stack_allows_help(h.help_floor) && !isolated;
    const std::int64_t floor = isolated && w.isolation_base > base ? w.isolation_base : base;
    // acquire: pairs with each finishing task's release.
    while ((word.load(std::memory_order_acquire) & count_mask) != 0) {
        job* found = take_mail(w);
        bool stolen = false;
        // Our own group's tasks, whatever the depth: nobody else may be there to run them.
        if (found == nullptr && w.deque.bottom() > floor) found = w.deque.pop();
        if (found == nullptr && may_help) {
            if (job* q = c.take_injected()) {  // as in join_stolen
                bump(w.counters.join_wait_ns, now_ns() - waiting_since);
                c.run_injected(h, q);
                waiting_since = now_ns();
                idle_rounds = 0;
                continue;
            }
            found = c.steal_round(h);
            stolen = found != nullptr;
        }
        if (found != nullptr) {
            bump(w.counters.join_wait_ns, now_ns() - waiting_since);
            if (stolen) {
                run_stolen_as(w, h.stolen_isolated, found);
            } else {
                run_job(w, found);
            }
            waiting_since = now_ns();
            idle_rounds = 0;
            continue;
        }
        if (!back_off(idle_rounds++)) {
            const std::uint32_t v = word.fetch_or(waiter_bit, std::memory_order_acq_rel) | waiter_bit;
            if ((v & count_mask) != 0) {
                const timespec ts{0, k_join_sleep_ns};
                futex_wait(word, v, &ts);
                // Awake: withdraw the announcement, so that whoever kicks
                // sleepers (a pipeline's pushes) does so only while we
                // sleep. We announce again before sleeping again, and a
                // finisher that misses the bit finds us awake.
                // relaxed: no data rides on the bit.
                word.fetch_and(~waiter_bit, std::memory_order_relaxed);
            }
        }
    }
    bump(w.counters.join_wait_ns, now_ns() - waiting_since);
}

void wait_word_zero(std::atomic<std::uint32_t>& word, std::uint32_t count_mask,
                    std::uint32_t waiter_bit) noexcept {
    for (;;) {
        // acq_rel: announce the sleeper; acquire sees the tasks' effects.
        const std::uint32_t v = word.fetch_or(waiter_bit, std::memory_order_acq_rel) | waiter_bit;
        if ((v & count_mask) == 0) return;
        futex_wait(word, v);
    }
}

void wait_done(std::atomic<std::uint32_t>& state) noexcept {
    for (unsigned i = 0; i < 256; ++i) {
        // acquire: pairs with the executor's release exchange.
        if (state.load(std::memory_order_acquire) == k_done) return;
        cpu_relax();
    }
    for (;;) {
        std::uint32_t expected = k_pending;
        if (state.compare_exchange_strong(expected, k_sleeping, std::memory_order_acq_rel,
                                          std::memory_order_acquire) ||
            expected == k_sleeping) {
            futex_wait(state, k_sleeping);
        } else if (expected == k_done) {
            return;
        }
        if (state.load(std::memory_order_acquire) == k_done) return;
    }
}

void inject_into(runtime& rt, job* j) { rt.inject(j, true); }

}  // namespace detail

// ---- runtime ----

runtime::runtime(runtime_config config) : m_core(std::make_unique<detail::runtime_core>(std::move(config))) {
    trace::runtime_created();  // FORKLINE_TRACE, read once; before the workers start
    m_core->start();
}

runtime::~runtime() {
    if (m_core->stopping_from_own_worker()) {
        // Its workers still run (one of them is us): leave them the memory.
        detail::keep_until_exit(m_core.release());
        return;
    }
    stop();
}

unsigned runtime::worker_count() const noexcept { return m_core->m_plan.worker_count(); }

unsigned runtime::sleeping_workers() const noexcept {
    // relaxed: a snapshot for a poll, nothing is published through it.
    return m_core->m_idle.sleepers.load(std::memory_order_relaxed);
}

const placement_plan& runtime::plan() const noexcept { return m_core->m_plan; }

void runtime::stop() noexcept {
    m_core->stop();
    m_core->m_stats.report_at_stop(*this);
}

namespace detail {
stats_state& stats_of(const runtime& rt) { return rt.m_core->m_stats; }
void record_pipeline(runtime_core& core, const pipeline_stats& s) { core.m_stats.record(s); }
}  // namespace detail

void runtime::inject(detail::job* j, bool block) { m_core->inject(j, block); }

submit_status runtime::try_inject(detail::job* j) { return m_core->try_inject(j); }

int runtime::current_worker_index() const noexcept {
    const detail::worker* w = detail::current_worker();
    return (w != nullptr && w->core == m_core.get()) ? static_cast<int>(w->index) : -1;
}

std::vector<worker_stats> runtime::stats() const {
    std::vector<worker_stats> out;
    for (const detail::worker_home* h : m_core->m_homes) {
        const detail::worker_counters& c = h->w.counters;
        worker_stats s;
        s.worker = h->w.index;
        s.cpu = m_core->m_plan.places[h->w.index].pu_os_index;
        // relaxed: a snapshot; each counter has a single writer.
        s.spawned = c.spawned.load(std::memory_order_relaxed);
        s.tasks = c.tasks.load(std::memory_order_relaxed);
        s.steals_near = c.steals_near.load(std::memory_order_relaxed);
        s.steals_far = c.steals_far.load(std::memory_order_relaxed);
        s.failed_steals = c.failed_steals.load(std::memory_order_relaxed);
        s.parks = c.parks.load(std::memory_order_relaxed);
        s.wakeups = c.wakeups.load(std::memory_order_relaxed);
        // The idle fields under their sequence lock (the reader's half of
        // idle_update): retried until no change overlapped the loads, so
        // that an interval counts either as finished or as going on, never
        // both. A search or sleep still going on counts up to now (a search
        // as failed: it has found nothing yet), so that the difference of
        // two snapshots is the idle time between them, never more than the
        // wall time between them.
        std::uint64_t searching_since = 0;
        std::uint64_t parked_since = 0;
        std::uint64_t now = 0;
        for (;;) {
            const std::uint32_t seq = c.idle_seq.load(std::memory_order_acquire);
            if ((seq & 1U) != 0) {
                sched_yield();  // the worker is inside idle_update: a few stores
                continue;
            }
            s.idle_ns = c.idle_ns.load(std::memory_order_relaxed);
            s.search_ns = c.search_ns.load(std::memory_order_relaxed);
            s.failed_search_ns = c.failed_search_ns.load(std::memory_order_relaxed);
            s.parked_ns = c.parked_ns.load(std::memory_order_relaxed);
            searching_since = c.searching_since.load(std::memory_order_relaxed);
            parked_since = c.parked_since.load(std::memory_order_relaxed);
            now = detail::now_ns();  // inside the lock: see worker_main's search
            std::atomic_thread_fence(std::memory_order_acquire);
            if (c.idle_seq.load(std::memory_order_relaxed) == seq) break;
        }
        if (searching_since != 0 && now > searching_since) {
            s.failed_search_ns += now - searching_since;
            s.idle_ns += now - searching_since;
        }
        if (parked_since != 0 && now > parked_since) {
            s.parked_ns += now - parked_since;
            s.idle_ns += now - parked_since;
        }
        s.join_wait_ns = c.join_wait_ns.load(std::memory_order_relaxed);
        s.injected = c.injected.load(std::memory_order_relaxed);
        out.push_back(s);
    }
    return out;
}

runtime& default_runtime() {
    static runtime rt;
    return rt;
}

}  // namespace forkline

// forkline/detail/pipeline_core.hpp: the part of the pipeline engine that
// does not depend on the item types.
//
// The templates of pipeline_engine.hpp own the items and the callables and
// hand this core one function pointer per stage; the core (compiled, in
// runtime/pipeline.cpp) moves tokens between stages, runs serial stages one
// item at a time, pauses and resumes them, and counts what is in flight.
// See "Pipelines" in runtime/DESIGN.md for the protocols named below.
#pragma once

#include <atomic>     // atomic
#include <cstddef>    // size_t
#include <cstdint>    // uint64_t, uint32_t, uintptr_t
#include <exception>  // exception_ptr
#include <limits>     // numeric_limits
#include <memory>     // shared_ptr, unique_ptr
#include <mutex>      // mutex (the failure record, off the fast path)
#include <stop_token> // stop_token (cancellation from outside)
#include <string>     // string
#include <utility>    // move
#include <vector>     // vector

#include "forkline/detail/deque.hpp"   // k_cache_line
#include "forkline/detail/job.hpp"     // job
#include "forkline/detail/worker.hpp"  // worker

namespace forkline {
class flow_control;
class resume_handle;
enum class stage_mode;
struct pipeline_stats;
}  // namespace forkline

namespace forkline::detail {

class pipeline_core;

/// One item's place in the pipeline. The engine derives its slot (the
/// token plus the item values of every stage) from it; there are exactly
/// max_tokens of them, allocated once.
struct pipeline_token {
    std::uint64_t sequence = 0;
    // Link in an inbox, a free list, a reorder chain or a batch. Only the
    // thread that holds the token writes it.
    pipeline_token* next = nullptr;
};

enum class stage_kind : std::uint8_t { source, in_order, out_of_order, parallel };

/// Calls stage fn on the token's item (the engine's typed code). May throw.
using stage_call = void (*)(pipeline_core&, pipeline_token&, flow_control&);
/// Destroys whatever item values a token still holds.
using token_clear = void (*)(pipeline_token&) noexcept;

/// The batching last stage's typed operations.
struct batch_ops {
    std::size_t max_items = 1;
    std::size_t max_bytes = 0;  ///< 0: no byte bound
    std::size_t (*bytes)(pipeline_core&, pipeline_token&) = nullptr;
    void (*take)(pipeline_core&, pipeline_token&) = nullptr;  ///< moves the item into the batch
    void (*call)(pipeline_core&, flow_control&) = nullptr;    ///< may throw
    void (*erase)(pipeline_core&, std::size_t index) noexcept = nullptr;
    void (*clear)(pipeline_core&) noexcept = nullptr;
};

/// A serial stage's pause word, in memory that outlives the pipeline (a
/// resume_handle may be used late). state is generation << 2 | phase.
struct alignas(k_cache_line) pause_slot {
    // written by: the stage's runner (pausing, armed, idle), resumers (early, idle)
    std::atomic<std::uint64_t> state{0};
    // written by: the runner before it publishes `pausing`; read by: fail()'s sweep
    std::atomic<std::uint64_t> sequence{0};
};

/// What resume_handles share with the pipeline.
struct pipeline_shared {
    explicit pipeline_shared(unsigned stages) : slots(new pause_slot[stages]) {}
    /// Valid while any slot is armed (an armed pause keeps the pipeline alive).
    pipeline_core* core = nullptr;
    std::unique_ptr<pause_slot[]> slots;
    /// See "Pause protocol": false when the handle is stale or already used.
    bool resume(unsigned stage, std::uint64_t generation) noexcept;
};

struct pipeline_stage_job : job {
    pipeline_core* core = nullptr;
    unsigned stage = 0;
};

/// Per worker and stage figures. One writer (the worker), so the adds are a
/// relaxed load and store; a cell per line keeps workers apart. Short calls
/// are timed one in k_sample_every (see "Statistics").
struct alignas(k_cache_line) pipeline_stat_cell {
    std::atomic<std::uint64_t> items{0};
    std::atomic<std::uint64_t> calls{0};
    std::atomic<std::uint64_t> timed_calls{0};
    std::atomic<std::uint64_t> timed_ns{0};
    std::atomic<std::uint32_t> untimed_left{0};  ///< calls to skip before timing one again
};

struct pipeline_stage_state {
    // Immutable during a run.
    stage_kind kind = stage_kind::parallel;
    stage_mode mode{};
    unsigned index = 0;
    const std::string* name = nullptr;
    stage_call call = nullptr;
    const batch_ops* batch = nullptr;

    // Serial stages: the inbox, token* | k_busy. See "Serial hand-over".
    // written by: producers (push, claim), the runner (take all, release)
    alignas(k_cache_line) std::atomic<std::uintptr_t> inbox{0};

    // Runner-private: whoever holds the busy bit owns these; the bit's
    // acquire/release passes them from runner to runner.
    alignas(k_cache_line) std::uint64_t next_sequence = 0;  ///< in order: next to run; source: next to produce
    std::unique_ptr<pipeline_token*[]> reorder;             ///< in order: slot sequence % max_tokens
    pipeline_token* fifo_head = nullptr;                    ///< out of order: arrival order; source: free tokens
    pipeline_token* fifo_tail = nullptr;
    std::uint64_t pause_generation = 0;
    // The source's "items are cheap" decision (C4), the worker whose figures
    // made it, and the sequence then.
    bool cheap = false;
    unsigned cheap_worker = ~0u;
    std::uint64_t cheap_checked_at = 0;
    // The sequence a pause of the current call is about: the item's, or the
    // least in a batch. A cut-off at or below it drops the paused call.
    std::uint64_t pause_key = 0;
    // The batch being offered (last stage): its tokens, in order, and the
    // sequence of each item taken into the engine's batch vector.
    pipeline_token* batch_head = nullptr;
    pipeline_token* batch_tail = nullptr;
    std::vector<std::uint64_t> batch_sequences;

    pipeline_stage_job job;
};

/// Tests only; null otherwise. Called by a batching last stage's runner
/// right after it moved the item of `sequence` into the batch, with the
/// run's cut-off, so that a test can lower the cut-off at exactly that point
/// (see "Batches" in runtime/DESIGN.md). Costs a relaxed load per item.
using batch_take_hook = void (*)(std::uint64_t sequence, const std::atomic<std::uint64_t>& cutoff) noexcept;
extern std::atomic<batch_take_hook> g_batch_take_hook;

class pipeline_core {
public:
    static constexpr std::uint64_t k_no_cutoff = std::numeric_limits<std::uint64_t>::max();

    pipeline_core(std::size_t max_tokens, unsigned stage_count);
    ~pipeline_core();
    pipeline_core(const pipeline_core&) = delete;
    pipeline_core& operator=(const pipeline_core&) = delete;

    /// Called by the engine for each stage before run(). Throws config_error.
    void configure(unsigned stage, stage_mode mode, const std::string& name, stage_call call,
                   const batch_ops* batch);
    /// Gives the core its tokens (before run()).
    void add_token(pipeline_token& t) noexcept;
    void set_clear(token_clear clear) noexcept { m_clear = clear; }
    /// A token whose stop request cancels the run (before run()). See
    /// "Cancellation" in runtime/DESIGN.md.
    void set_stop(std::stop_token stop) noexcept { m_stop = std::move(stop); }

    /// Runs the pipeline on the calling worker's runtime; returns when nothing
    /// is in flight. Throws pipeline_error, or pipeline_cancelled.
    pipeline_stats run();
    /// X1: the stop token's callback (any thread, at most once).
    void cancel() noexcept;

    // Used by flow_control::pause() and the resume path.
    resume_handle pause(flow_control& fc);
    void unpause(flow_control& fc) noexcept;
    void schedule_resumed(unsigned stage) noexcept;

private:
    struct failure {
        std::uint64_t sequence = k_no_cutoff;
        unsigned stage = 0;
        std::exception_ptr cause;
        std::string text;
    };
    enum class call_outcome { done, paused, stopped, failed };
    enum class pause_outcome { armed, call_again, dropped };

    static void run_stage_job(job* j) noexcept;
    void stage_job(unsigned s) noexcept;
    void carry(worker& w, pipeline_token* t, unsigned s, bool holding) noexcept;
    pipeline_token* source_step(worker& w, bool& holding) noexcept;
    bool items_are_cheap(worker& w, pipeline_stage_state& st) noexcept;
    pipeline_token* serial_step(worker& w, pipeline_stage_state& st, pipeline_token* in_hand) noexcept;
    pipeline_token* batch_step(worker& w, pipeline_stage_state& st, pipeline_token* in_hand) noexcept;
    void call_parallel(worker& w, pipeline_stage_state& st, pipeline_token& t) noexcept;
    call_outcome call_guarded(worker& w, pipeline_stage_state& st, flow_control& fc,
                              pipeline_token* item, std::uint64_t key) noexcept;
    pause_outcome settle_pause(pipeline_stage_state& st, flow_control& fc) noexcept;

    bool offer(pipeline_stage_state& st, pipeline_token* t) noexcept;
    void take_inbox(pipeline_stage_state& st) noexcept;
    /// A runner with no item to take: takes new offers (false), or gives up
    /// the stage's busy bit when there are none (true).
    bool refill_or_release(pipeline_stage_state& st) noexcept;
    void place(pipeline_stage_state& st, pipeline_token* t) noexcept;
    pipeline_token* head(pipeline_stage_state& st) noexcept;
    void consume_head(pipeline_stage_state& st) noexcept;
    void hand_on(worker& w, pipeline_stage_state& st) noexcept;
    pipeline_token* return_tokens(worker& w, pipeline_token* chain, bool* holding) noexcept;
    void close_source() noexcept;
    void release_live(std::uint64_t n) noexcept;
    void push_stage_job(worker& w, unsigned s) noexcept;
    void take_outside_requests(worker& w) noexcept;

    bool dead(const pipeline_token& t) const noexcept;
    void fail(unsigned stage, std::uint64_t sequence, std::exception_ptr cause, std::string text) noexcept;
    pipeline_stat_cell& cell(const worker& w, unsigned s) noexcept {
        return m_stats[static_cast<std::size_t>(w.index) * m_stage_count + s];
    }

    // Immutable during a run.
    const std::size_t m_max_tokens;
    const unsigned m_stage_count;
    std::unique_ptr<pipeline_stage_state[]> m_stages;
    std::shared_ptr<pipeline_shared> m_shared;
    token_clear m_clear = nullptr;
    const runtime_core* m_runtime = nullptr;  // the runtime of the workers that run us
    std::unique_ptr<pipeline_stat_cell[]> m_stats;

    // Sequence of the first failed item; items at or after it are dropped.
    // written by: fail() (CAS to a smaller value); read by: every stage call
    alignas(k_cache_line) std::atomic<std::uint64_t> m_cutoff{k_no_cutoff};

    // 1 for the open source, plus the tokens outside the pool once it has
    // closed. See "Counting what is in flight".
    // written by: the source's close, token returns after it
    alignas(k_cache_line) std::atomic<std::uint64_t> m_live{1};

    // What the waiting caller sleeps on: k_wait_armed while there is nothing
    // to tell it; a request bit per stage resumed from outside the runtime;
    // k_wait_done at the end. See "Waiting".
    // written by: outside resumers, the finisher, the waiter, help_until
    alignas(k_cache_line) std::atomic<std::uint32_t> m_wait{0};

    // Set by cancel() (X1); read by the source before each call (X2) and by
    // P3 for a pausing source.
    // written by: the stop callback; read by: the source's runner
    alignas(k_cache_line) std::atomic<bool> m_cancel{false};
    std::stop_token m_stop;  // immutable during a run
    // The source closed because of m_cancel (X2). written by: the source's
    // runner before its close (C2); read by: run() after the end (m_live, m_wait).
    bool m_cancelled = false;

    std::mutex m_failure_mutex;
    failure m_failure;  // guarded by m_failure_mutex
};

}  // namespace forkline::detail

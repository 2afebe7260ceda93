/// @file forkline/pipeline.hpp
/// read -> transform -> write, with at most N items in flight.
///
/// @code
/// forkline::run_pipeline(rt, 16,
///     forkline::stage(forkline::serial_in_order, "read",
///                     [&](forkline::flow_control& fc) -> block {
///                         block b;
///                         if (!read_block(b)) fc.stop();
///                         return b;
///                     }),
///     forkline::stage(forkline::parallel, "compress", [](block& b) { return compress(b); }),
///     forkline::stage(forkline::serial_in_order, "write", [&](packed& p) { write(p); }));
/// @endcode
///
/// The first stage produces items (it is always serial and called for item 0,
/// 1, 2 ... in turn); each later stage takes the previous stage's item by
/// reference and returns the next stage's, and the last returns void. The
/// chain's types are checked at compile time. At most max_tokens items are
/// between the first stage's call and the last stage's return, so memory is
/// bounded whatever the input's size.
///
/// Serial stages run one item at a time; serial_in_order ones take items in
/// sequence order (a reorder buffer holds those that arrive early).
/// parallel stages run on any number of workers at once.
///
/// A serial stage that cannot go on now (no input ready, no room downstream)
/// calls fc.pause(), returns, and later calls resume() on the handle, from any
/// thread; the stage is then called again, with the same item if it had one.
/// No worker blocks meanwhile.
///
/// Errors: when a stage throws, no further items are read; items already in
/// flight that come before the failed one in sequence order go on through the
/// remaining stages; the rest are dropped; run_pipeline waits for what is in
/// flight, then throws pipeline_error naming the stage, the item's sequence
/// number and the cause. No item is processed twice by a stage. If several
/// items fail, the one first in sequence order is reported (and is the
/// cut-off), so that the error does not depend on timing; a failed batch
/// reports the least sequence number in it.
/// "No further items are read", exactly: the first stage checks for a
/// failure before each call, with the call's token already in hand, and is
/// not called again once it has seen one; only a call that had passed its
/// check when the failure came may still read an item (which is dropped).
/// So when no item can leave the last stage before the failed one (the last
/// stage is serial_in_order), at most max_tokens items from the failed one
/// on are read: items read <= K + max_tokens, K being its sequence number.
///
/// Cancellation: the overloads that take a std::stop_token stop reading
/// when a stop is requested (from any thread, or from inside a stage): the
/// first stage is not called again once it has seen the request (a call
/// that had already passed its check may still run; a first stage paused
/// for input is woken to see it). Items already read are not dropped: they
/// go on through every remaining stage, as in a normal end, and
/// run_pipeline then throws pipeline_cancelled, whose stats() count them.
/// A stage paused on an item is still waited for (its resume must come), so
/// a cancelled pipeline ends as soon as what it had read is through. A stop
/// requested after the input ended changes nothing (the run returns
/// normally); a failure wins over a cancellation (pipeline_error).
/// See "Pipelines" in runtime/DESIGN.md.
#pragma once

#include <cstddef>    // size_t
#include <cstdint>    // uint64_t
#include <exception>  // exception_ptr
#include <memory>     // shared_ptr
#include <stdexcept>  // runtime_error
#include <stop_token> // stop_token
#include <string>     // string
#include <type_traits>  // is_same_v
#include <utility>    // move
#include <vector>     // vector

#include "forkline/errors.hpp"   // config_error
#include "forkline/runtime.hpp"  // runtime

namespace forkline {

/// How a stage's calls may overlap. Make a stage parallel unless it keeps
/// state across items or must see them in order.
enum class stage_mode {
    serial_in_order,      ///< one call at a time, items in sequence order (output in input order)
    serial_out_of_order,  ///< one call at a time, items as they arrive (no reorder wait)
    parallel,             ///< any number of calls at once, on any workers
};

/// Shorthand for stage_mode::serial_in_order in stage() calls.
inline constexpr stage_mode serial_in_order = stage_mode::serial_in_order;
/// Shorthand for stage_mode::serial_out_of_order in stage() calls.
inline constexpr stage_mode serial_out_of_order = stage_mode::serial_out_of_order;
/// Shorthand for stage_mode::parallel in stage() calls.
inline constexpr stage_mode parallel = stage_mode::parallel;

namespace detail {
class pipeline_core;
struct pipeline_shared;
struct flow_access;
template <class F, class SizeFn>
struct batched;
/// batch()'s default size_of: none (max_bytes must then be 0).
struct no_size_of {};
}  // namespace detail

/// Wakes a paused serial stage. Copyable; any thread; calls after the first
/// (and calls after the pipeline ended) do nothing. A default-constructed
/// handle does nothing either.
/// @code
/// forkline::resume_handle h = fc.pause();
/// on_input_ready([h] { h.resume(); });  // from whatever thread sees the input arrive
/// @endcode
class resume_handle {
public:
    /// A handle that wakes nothing; flow_control::pause() gives real ones.
    resume_handle() noexcept = default;
    /// Calls the paused stage again (with the item it kept, if any).
    void resume() const;

private:
    friend class detail::pipeline_core;
    resume_handle(std::shared_ptr<detail::pipeline_shared> shared, unsigned stage,
                  std::uint64_t generation) noexcept
        : m_shared(std::move(shared)), m_stage(stage), m_generation(generation) {}
    // Outlives the pipeline, so that a late resume() finds a closed slot
    // instead of freed memory. See "Pause protocol" in runtime/DESIGN.md.
    std::shared_ptr<detail::pipeline_shared> m_shared;
    unsigned m_stage = 0;
    std::uint64_t m_generation = 0;
};

/// What a stage may tell the pipeline about the current call. A stage that
/// needs it takes `flow_control&` as its last parameter.
/// @code
/// forkline::stage(forkline::serial_in_order, "read", [&](forkline::flow_control& fc) -> std::string {
///     std::string line;
///     if (!std::getline(in, line)) fc.stop();  // the input has ended
///     return line;
/// })
/// @endcode
class flow_control {
public:
    flow_control(const flow_control&) = delete;
    flow_control& operator=(const flow_control&) = delete;

    /// First stage only: the input has ended; this call's return value is
    /// dropped. (Elsewhere the call fails with a logic_error.)
    void stop() noexcept { m_stopped = true; }
    /// Serial stages only (a logic_error elsewhere): nothing can be done now;
    /// this call's return value is dropped and the item, if any, is kept. A
    /// paused batch is offered again unchanged. Calling it twice in one call
    /// returns the same handle.
    resume_handle pause();
    /// Cancels this call's pause(): the call counts as if pause() had not
    /// been called, and resume() on its handle does nothing. For a stage fed
    /// by another thread, pausing first and then checking is race-free:
    /// @code
    /// forkline::resume_handle h = fc.pause();
    /// switch (in.try_next(c, [h] { h.resume(); })) {
    ///     case forkline::io::reader::poll::ready: fc.unpause(); break;
    ///     case forkline::io::reader::poll::end: fc.unpause(); fc.stop(); break;
    ///     case forkline::io::reader::poll::pending: break;  // called again after resume()
    /// }
    /// return c;
    /// @endcode
    void unpause() noexcept;
    /// The sequence number of the item this call is for (0, 1, 2 ...); for a
    /// batch, that of its first item.
    std::uint64_t sequence() const noexcept { return m_sequence; }

private:
    friend struct detail::flow_access;
    flow_control(detail::pipeline_core& core, unsigned stage, std::uint64_t sequence) noexcept
        : m_core(&core), m_stage(stage), m_sequence(sequence) {}
    detail::pipeline_core* m_core;
    unsigned m_stage;
    bool m_stopped = false;
    bool m_paused = false;
    std::uint64_t m_sequence;
    std::uint64_t m_generation = 0;
};

/// A stage: mode, name (for errors and stats) and the callable. Callable forms:
/// @code
/// first:  T fn(flow_control&)
/// middle: U fn(T&)           or U fn(T&, flow_control&)
/// last:   void fn(T&)        or void fn(T&, flow_control&)
/// @endcode
/// The last stage may take batches, if serial: see batch(). Made by stage(),
/// which deduces F.
/// @code
/// auto parse = forkline::stage(forkline::parallel, "parse", [](std::string& line) { return parse_record(line); });
/// @endcode
template <class F>
class pipeline_stage {
public:
    /// As stage(mode, name, fn), which spares naming F.
    pipeline_stage(stage_mode mode, std::string name, F fn)
        : m_mode(mode), m_name(std::move(name)), m_fn(std::move(fn)) {}

    /// A stage whose fn takes std::span<T> (or std::span<T>, flow_control&):
    /// consecutive ready items, at most max_items and, when max_bytes > 0, at
    /// most max_bytes by size_of(item) (a single larger item still goes
    /// alone). Last stage only (checked at compile time), serial only, and
    /// max_items >= 1, max_bytes > 0 only with a size_of (config_error).
    /// A batch is made of the items ready when the stage runs; it never waits
    /// for more. Batching lets the last stage pay once per batch for what
    /// costs per call (a write, a lock, a flush).
    /// @code
    /// auto store = forkline::stage(forkline::serial_in_order, "store",
    ///                              [&](std::span<record> rs) { db.insert_all(rs); }).batch(256);
    /// @endcode
    template <class SizeFn = detail::no_size_of>
    pipeline_stage<detail::batched<F, SizeFn>> batch(std::size_t max_items, std::size_t max_bytes = 0,
                                                     SizeFn size_of = {}) && {
        check_batch(max_items, max_bytes, std::is_same_v<SizeFn, detail::no_size_of>);
        return {m_mode, std::move(m_name),
                detail::batched<F, SizeFn>{std::move(m_fn), std::move(size_of), max_items, max_bytes}};
    }
    /// As above, on a copy of this stage.
    template <class SizeFn = detail::no_size_of>
    pipeline_stage<detail::batched<F, SizeFn>> batch(std::size_t max_items, std::size_t max_bytes = 0,
                                                     SizeFn size_of = {}) const& {
        return pipeline_stage(*this).batch(max_items, max_bytes, std::move(size_of));
    }

    stage_mode mode() const noexcept { return m_mode; }           ///< how its calls may overlap
    const std::string& name() const noexcept { return m_name; }  ///< the name errors and stats use
    F& fn() noexcept { return m_fn; }                            ///< the callable

private:
    void check_batch(std::size_t max_items, std::size_t max_bytes, bool no_size_of) const {
        const std::string where = "forkline: stage '" + m_name + "'.batch(): ";
        if (m_mode == stage_mode::parallel) {
            throw config_error(where + "a parallel stage cannot take batches; make it serial_in_order or "
                                       "serial_out_of_order");
        }
        if (max_items == 0) throw config_error(where + "max_items must be at least 1");
        if (max_bytes > 0 && no_size_of) {
            throw config_error(where + "max_bytes > 0 needs a size_of(item) callable as third argument");
        }
    }
    stage_mode m_mode;
    std::string m_name;
    F m_fn;
};

/// Makes a pipeline stage from its mode, a name for errors and statistics, and
/// a callable of one of the forms pipeline_stage lists.
/// @code
/// forkline::stage(forkline::parallel, "compress", [](block& b) { return compress(b); })
/// @endcode
template <class F>
pipeline_stage<F> stage(stage_mode mode, std::string name, F fn) {
    return pipeline_stage<F>(mode, std::move(name), std::move(fn));
}

/// Per-stage figures of one run (for forkline-probe and FORKLINE_STATS).
struct stage_stats {
    std::string name;           ///< as given to stage()
    stage_mode mode;            ///< as given to stage()
    std::uint64_t items = 0;    ///< calls that took an item (batches count their items; paused calls do not)
    /// Time inside the stage's callable, all threads. Calls under a few
    /// microseconds are timed one in 32 and the rest estimated from them.
    std::uint64_t busy_ns = 0;
};

/// What one run_pipeline() call measured. A serial stage whose busy_ns is
/// near wall_ns is the bottleneck.
struct pipeline_stats {
    std::vector<stage_stats> stages;  ///< one per stage, in chain order
    std::uint64_t items = 0;  ///< items the first stage produced
    std::uint64_t wall_ns = 0;  ///< the run's wall-clock time
};

/// A stage threw. what(): "pipeline stage 'NAME' failed on item SEQ: CAUSE".
/// @code
/// try {
///     forkline::run_pipeline(rt, 16, read, parse, store);
/// } catch (const forkline::pipeline_error& e) {
///     std::fprintf(stderr, "%s\n", e.what());
///     std::rethrow_exception(e.cause());  // or handle the stage's own error type
/// }
/// @endcode
class pipeline_error : public std::runtime_error {
public:
    /// Made by run_pipeline(); cause_text is the cause's what(), or a note when it has none.
    pipeline_error(std::string stage, std::uint64_t sequence, std::exception_ptr cause,
                   const std::string& cause_text);
    const std::string& stage() const noexcept { return m_stage; }         ///< the failed stage's name
    std::uint64_t sequence() const noexcept { return m_sequence; }        ///< the failed item's (a batch's least)
    std::exception_ptr cause() const noexcept { return m_cause; }         ///< what the stage threw

private:
    std::string m_stage;
    std::uint64_t m_sequence;
    std::exception_ptr m_cause;
};

/// run_pipeline() with a std::stop_token was cancelled before the input
/// ended. Every item read went through every stage (see "Cancellation" at
/// the top of this header). what(): "pipeline cancelled after N items; each
/// went through every stage".
/// @code
/// std::stop_source stop;  // stop.request_stop() from any thread ends the reading
/// try {
///     forkline::run_pipeline(rt, 16, stop.get_token(), read, parse, store);
/// } catch (const forkline::pipeline_cancelled& e) {
///     std::printf("stopped after %llu records\n", static_cast<unsigned long long>(e.items()));
/// }
/// @endcode
class pipeline_cancelled : public std::runtime_error {
public:
    /// Made by run_pipeline(), with the run's figures.
    explicit pipeline_cancelled(pipeline_stats stats);
    const pipeline_stats& stats() const noexcept { return m_stats; }   ///< the cancelled run's figures
    std::uint64_t items() const noexcept { return m_stats.items; }      ///< items read, each fully processed

private:
    pipeline_stats m_stats;
};

/// Runs the chain on rt's workers and returns when every item has left the
/// last stage. max_tokens >= 1 (0 is a config_error); the first stage must be
/// serial (config_error). From a worker of rt it helps instead of blocking.
/// Between 2 and 28 stages.
/// @code
/// std::uint64_t total = 0;
/// forkline::run_pipeline(rt, 8,
///     forkline::stage(forkline::serial_in_order, "read", [&](forkline::flow_control& fc) -> std::string {
///         std::string line;
///         if (!std::getline(in, line)) fc.stop();
///         return line;
///     }),
///     forkline::stage(forkline::parallel, "length", [](std::string& line) { return line.size(); }),
///     forkline::stage(forkline::serial_out_of_order, "sum", [&](std::size_t& n) { total += n; }));
/// @endcode
template <class... Stages>
pipeline_stats run_pipeline(runtime& rt, std::size_t max_tokens, Stages&&... stages);

/// The same on the runtime of the calling worker, or on default_runtime().
template <class... Stages>
pipeline_stats run_pipeline(std::size_t max_tokens, Stages&&... stages);

/// As run_pipeline(rt, max_tokens, stages...), cancelled by a stop request
/// on `stop`: reading stops, what was read goes through, and then
/// pipeline_cancelled is thrown (unless the input had ended first).
template <class... Stages>
pipeline_stats run_pipeline(runtime& rt, std::size_t max_tokens, std::stop_token stop, Stages&&... stages);

/// The same on the runtime of the calling worker, or on default_runtime().
template <class... Stages>
pipeline_stats run_pipeline(std::size_t max_tokens, std::stop_token stop, Stages&&... stages);

}  // namespace forkline

#include "forkline/detail/pipeline_engine.hpp"  // run_pipeline's definition

// forkline/pipeline.hpp: read -> transform -> write, with at most N items in flight.
//
//   forkline::run_pipeline(rt, 16,
//       forkline::stage(forkline::serial_in_order, "read",
//                       [&](forkline::flow_control& fc) -> block {
//                           block b;
//                           if (!read_block(b)) fc.stop();
//                           return b;
//                       }),
//       forkline::stage(forkline::parallel, "compress", [](block& b) { return compress(b); }),
//       forkline::stage(forkline::serial_in_order, "write", [&](packed& p) { write(p); }));
//
// The first stage produces items (it is always serial and called for item 0,
// 1, 2 ... in turn); each later stage takes the previous stage's item by
// reference and returns the next stage's, and the last returns void. The
// chain's types are checked at compile time. At most max_tokens items are
// between the first stage's call and the last stage's return, so memory is
// bounded whatever the input's size.
//
// Serial stages run one item at a time; serial_in_order ones take items in
// sequence order (a reorder buffer holds those that arrive early).
// parallel stages run on any number of workers at once.
//
// A serial stage that cannot go on now (no input ready, no room downstream)
// calls fc.pause(), returns, and later calls resume() on the handle, from any
// thread; the stage is then called again, with the same item if it had one.
// No worker blocks meanwhile. Pausing first and checking after is race-free,
// because a resume() that comes before the paused call returns is kept, and
// a stage that finds it can go on after all calls fc.unpause():
//
//   [&](forkline::flow_control& fc) -> forkline::io::chunk {
//       forkline::io::chunk c;
//       forkline::resume_handle h = fc.pause();
//       switch (in.try_next(c, [h] { h.resume(); })) {
//           case forkline::io::reader::poll::ready: fc.unpause(); break;
//           case forkline::io::reader::poll::end: fc.unpause(); fc.stop(); break;
//           case forkline::io::reader::poll::pending: break;  // called again after resume()
//       }
//       return c;
//   }
//
// Errors: when a stage throws, no further items are read; items already in
// flight that come before the failed one in sequence order go on through the
// remaining stages; the rest are dropped; run_pipeline waits for what is in
// flight, then throws pipeline_error naming the stage, the item's sequence
// number and the cause. No item is processed twice by a stage.
// See "Pipelines" in runtime/DESIGN.md.
#pragma once

#include <cstddef>    // size_t
#include <cstdint>    // uint64_t
#include <exception>  // exception_ptr
#include <memory>     // shared_ptr
#include <stdexcept>  // runtime_error
#include <string>     // string
#include <vector>     // vector

#include "forkline/runtime.hpp"  // runtime

namespace forkline {

enum class stage_mode { serial_in_order, serial_out_of_order, parallel };

inline constexpr stage_mode serial_in_order = stage_mode::serial_in_order;
inline constexpr stage_mode serial_out_of_order = stage_mode::serial_out_of_order;
inline constexpr stage_mode parallel = stage_mode::parallel;

/// Wakes a paused serial stage. Copyable; any thread; calls after the first
/// (and calls after the pipeline ended) do nothing.
class resume_handle {
public:
    void resume() const;
    // implementation-defined members
};

/// What a stage may tell the pipeline about the current call.
class flow_control {
public:
    /// First stage only: the input has ended; this call's return value is
    /// dropped.
    void stop() noexcept;
    /// Serial stages only (a logic_error elsewhere): nothing can be done now;
    /// this call's return value is dropped and the item, if any, is kept.
    resume_handle pause();
    /// Cancels this call's pause(): the call counts as if pause() had not
    /// been called, and resume() on its handle does nothing.
    void unpause() noexcept;
    /// The sequence number of the item this call is for (0, 1, 2 ...).
    std::uint64_t sequence() const noexcept;
    // implementation-defined members
};

/// A stage: mode, name (for errors and stats) and the callable. Callable forms:
///   first:  T fn(flow_control&)
///   middle: U fn(T&)           or U fn(T&, flow_control&)
///   last:   void fn(T&)        or void fn(T&, flow_control&)
/// The last stage may take batches, if serial: see batch().
template <class F>
class pipeline_stage;  // implementation-defined

template <class F>
pipeline_stage<F> stage(stage_mode mode, std::string name, F fn);

// pipeline_stage<F>::batch(std::size_t max_items, std::size_t max_bytes = 0,
//                          SizeFn size_of = {}) -> a stage whose fn takes
// std::span<T> (or std::span<T>, flow_control&): consecutive ready items, at
// most max_items and, when max_bytes > 0, at most max_bytes by size_of(item)
// (a single larger item still goes alone). Last stage only, serial only.

/// Per-stage figures of one run (for forkline-probe and FORKLINE_STATS).
struct stage_stats {
    std::string name;
    stage_mode mode;
    std::uint64_t items = 0;    ///< calls that took an item (batches count their items)
    std::uint64_t busy_ns = 0;  ///< time inside the stage's callable, all threads
};

struct pipeline_stats {
    std::vector<stage_stats> stages;
    std::uint64_t items = 0;  ///< items the first stage produced
    std::uint64_t wall_ns = 0;
};

/// A stage threw. what(): "pipeline stage 'NAME' failed on item SEQ: CAUSE".
class pipeline_error : public std::runtime_error {
public:
    pipeline_error(std::string stage, std::uint64_t sequence, std::exception_ptr cause,
                   const std::string& cause_text);
    const std::string& stage() const noexcept { return m_stage; }
    std::uint64_t sequence() const noexcept { return m_sequence; }
    std::exception_ptr cause() const noexcept { return m_cause; }

private:
    std::string m_stage;
    std::uint64_t m_sequence;
    std::exception_ptr m_cause;
};

/// Runs the chain on rt's workers and returns when every item has left the
/// last stage. max_tokens >= 1 (0 is a config_error). From a worker of rt it
/// helps instead of blocking.
template <class... Stages>
pipeline_stats run_pipeline(runtime& rt, std::size_t max_tokens, Stages&&... stages);

/// The same on the runtime of the calling worker, or on default_runtime().
template <class... Stages>
pipeline_stats run_pipeline(std::size_t max_tokens, Stages&&... stages);

}  // namespace forkline

// runtime/trace.hpp: FORKLINE_TRACE, a Chrome Trace Event file of what the
// workers, the pipelines and the I/O threads did.
//
// Each thread appends fixed-size records to its own buffer, without locks;
// the file is written once, at exit (or by flush()). When tracing is off,
// every hook below is one relaxed load of a flag and a branch, and the hooks
// sit only on out-of-line slow paths (running a stolen or injected job, a
// search, a park, a steal, a stage call, an injection, an I/O thread's
// start), never in the inline spawn/join code of include/.
// See "Tracing" in runtime/DESIGN.md.
#pragma once

#include <atomic>   // atomic, memory_order
#include <chrono>   // steady_clock
#include <cstddef>  // size_t
#include <cstdint>  // uint64_t
#include <memory>   // unique_ptr
#include <string>   // string

namespace forkline::io::detail {
class io_driver;
}

namespace forkline::trace {

/// Events the whole process may record, unless FORKLINE_TRACE_EVENTS says
/// otherwise: about 50 MB of JSON (an event takes about 120 bytes). Past
/// it, events are dropped and counted, and the file says how many.
inline constexpr std::size_t k_default_budget = 400'000;

// Event names. Records keep the pointer, so names must live for ever.
inline constexpr const char* k_task = "task";
inline constexpr const char* k_injected = "injected";
inline constexpr const char* k_search = "search";
inline constexpr const char* k_parked = "parked";
inline constexpr const char* k_submit = "submit";
/// The counter track of the stream executors' queue depth (all executors on one track).
inline constexpr const char* k_stream_depth = "stream_queue_depth";

// written by: start/stop and the exit writer; read by: every hook.
extern std::atomic<bool> g_on;

/// Tracing is on. relaxed: a thread that sees the flag late records a few
/// events more or fewer; the records themselves are published otherwise.
inline bool on() noexcept { return g_on.load(std::memory_order_relaxed); }

/// The runtime's clock (steady_clock, in nanoseconds), so that its own
/// timestamps can be handed to complete().
inline std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

/// FORKLINE_TRACE_EVENTS's value: nullptr or "" give k_default_budget,
/// digits a positive count; anything else is a config_error naming it.
std::size_t parse_budget(const char* events);

/// At each runtime's construction: the first call reads FORKLINE_TRACE (and
/// FORKLINE_TRACE_EVENTS, the budget) and, when it names a file, starts
/// tracing and registers the exit writer (so that it runs after every
/// runtime made from now on has been destroyed). Throws config_error for a
/// bad budget, system_failure (fopen) for a file that cannot be written.
void runtime_created();

/// At a worker's start, after it is named: registers its buffer when tracing
/// is on (so every worker gets its thread name), and returns its kernel tid,
/// which thieves use to draw a steal's arrow from the victim.
int thread_started() noexcept;

void record_complete(const char* name, std::uint64_t t0_ns, std::uint64_t dur_ns) noexcept;
void record_instant(const char* name) noexcept;
void record_steal(unsigned victim, int victim_tid) noexcept;
void record_counter(const char* name, std::uint64_t value) noexcept;

/// A span that ended: [t0_ns, t0_ns + dur_ns) on this thread.
inline void complete(const char* name, std::uint64_t t0_ns, std::uint64_t dur_ns) noexcept {
    if (on()) [[unlikely]] record_complete(name, t0_ns, dur_ns);
}

/// Something happened now on this thread.
inline void instant(const char* name) noexcept {
    if (on()) [[unlikely]] record_instant(name);
}

/// A counter track's value now (a Chrome "C" event; Perfetto draws it as a graph).
inline void counter(const char* name, std::uint64_t value) noexcept {
    if (on()) [[unlikely]] record_counter(name, value);
}

/// This thread took a job from worker `victim`: an instant, and an arrow
/// from the victim's track (victim_tid) to this one.
inline void steal(unsigned victim, int victim_tid) noexcept {
    if (on()) [[unlikely]] record_steal(victim, victim_tid);
}

/// A span from construction to destruction, when tracing was on at its start.
class span {
public:
    explicit span(const char* name) noexcept {
        if (on()) [[unlikely]] {
            m_name = name;
            m_t0 = now_ns();
        }
    }
    ~span() {
        if (m_name != nullptr) [[unlikely]] record_complete(m_name, m_t0, now_ns() - m_t0);
    }
    span(const span&) = delete;
    span& operator=(const span&) = delete;

private:
    const char* m_name = nullptr;
    std::uint64_t m_t0 = 0;
};

/// One call of a pipeline stage: the event is named after the stage and
/// carries the item's sequence. The pipeline owns the name and is gone at
/// exit, so the name is interned (copied once per distinct name; a call
/// finds it again in a per-thread cache without a lock).
class stage_span {
public:
    stage_span(const std::string& stage, std::uint64_t item) noexcept {
        if (on()) [[unlikely]] begin(stage, item);
    }
    /// Ends the span now (the destructor then does nothing).
    void end() noexcept {
        if (m_name != nullptr) [[unlikely]] finish();
    }
    ~stage_span() { end(); }
    stage_span(const stage_span&) = delete;
    stage_span& operator=(const stage_span&) = delete;

private:
    void begin(const std::string& stage, std::uint64_t item) noexcept;
    void finish() noexcept;
    const char* m_name = nullptr;
    std::uint64_t m_t0 = 0;
    std::uint64_t m_item = 0;
};

/// The driver itself when tracing is off; otherwise one that records each
/// submission and completion (with its tag, and bytes or result) and each
/// wait, and passes everything on.
std::unique_ptr<io::detail::io_driver> traced_io(std::unique_ptr<io::detail::io_driver> driver);

// ---- for tests ----

/// Starts a new trace, to be written to `path` by flush(), keeping at most
/// `budget` events. Events of earlier traces are left out of it. Does not
/// register the exit writer.
void start_for_test(const std::string& path, std::size_t budget = k_default_budget);

/// Writes the current trace (as at exit) and keeps tracing. Throws
/// system_failure naming the file, the call and the errno.
void flush();

/// Stops recording; a later flush() still writes what was recorded.
void stop_for_test() noexcept;

}  // namespace forkline::trace

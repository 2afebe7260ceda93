/// @file forkline/read_stage.hpp
/// The first stage of a pipeline that reads a file, a pipe or stdin through
/// an io::reader, pausing instead of blocking a worker while no chunk is
/// ready.
///
/// @code
///   forkline::io::reader in(path, {.whole_lines = true});
///   forkline::run_pipeline(rt, 16,
///       forkline::stage(forkline::serial_in_order, "read", forkline::read_stage(in)),
///       forkline::stage(forkline::parallel, "parse", [](forkline::io::chunk& c) { return parse(c); }),
///       forkline::stage(forkline::serial_in_order, "fold", [&](parsed& p) { total += p; }));
/// @endcode
#pragma once

#include <optional>  // optional
#include <utility>   // move

#include "forkline/io.hpp"        // io::reader, io::chunk
#include "forkline/pipeline.hpp"  // flow_control, resume_handle

namespace forkline {

/// A callable for a serial first stage: each call returns the reader's next
/// chunk, stops the pipeline at the end of the input, and when no chunk is
/// ready pauses the stage and has the reader resume it once one is (see
/// "Pause protocol" in runtime/DESIGN.md). It refers to the reader, which
/// must outlive the pipeline; copies share nothing, so give each pipeline
/// its own.
class read_stage {
public:
    /// Reads from `in`.
    explicit read_stage(io::reader& in) noexcept : m_in(&in) {}

    /// The next chunk; an empty one when stopping or pausing.
    io::chunk operator()(flow_control& fc) {
        io::chunk c;
        if (m_early) {
            c = std::move(*m_early);
            m_early.reset();
            return c;
        }
        if (m_ended) {
            fc.stop();
            return c;
        }
        switch (m_in->try_next(c)) {
            case io::reader::poll::ready: return c;
            case io::reader::poll::end: fc.stop(); return c;
            case io::reader::poll::pending: break;
        }
        // Nothing ready: pause, then ask again with a wake-up. The chunk (or
        // the end) may have come in between; then it is kept for the next
        // call and the stage resumes itself at once.
        const resume_handle h = fc.pause();
        switch (m_in->try_next(c, [h] { h.resume(); })) {
            case io::reader::poll::ready:
                m_early = std::move(c);
                h.resume();
                break;
            case io::reader::poll::end:
                m_ended = true;
                h.resume();
                break;
            case io::reader::poll::pending: break;
        }
        return io::chunk{};
    }

private:
    io::reader* m_in;
    std::optional<io::chunk> m_early;  ///< arrived between pause() and registering the wake-up
    bool m_ended = false;              ///< the end arrived that way
};

}  // namespace forkline

// forkline/detail/job.hpp: what a deque holds.
//
// A job is a header with one function pointer; the work it names lives in
// place, in the frame of the code that spawned it (invoke) or in a pooled
// slot (task_group). No std::function, no allocation on the spawn path.
#pragma once

#include <atomic>     // atomic
#include <cstdint>    // uint32_t
#include <exception>  // exception_ptr

namespace forkline::detail {

struct job {
    /// Runs the work, records its outcome and signals whoever waits for it.
    /// After it returns the job may no longer exist.
    void (*execute)(job* self) noexcept;
};

/// The state word of a join_job and of other one-shot completions.
enum join_state : std::uint32_t {
    k_pending = 0,  ///< not finished
    k_done = 1,     ///< finished; the result and error are visible
    k_sleeping = 2, ///< not finished and the waiter sleeps on the word (futex)
};

/// The second half of invoke(f, g): g, waiting in the spawner's frame.
struct join_job : job {
    // written by: the executing thread (exchange to k_done), the joiner (CAS to
    // k_sleeping); read by: the joiner
    std::atomic<std::uint32_t> state{k_pending};
    // written by: the thief, before running; read by: the joiner as a hint of
    // whom to steal from (leapfrogging)
    std::atomic<std::uint32_t> thief{~0u};
    // written by: the executing thread before the release in `state`
    std::exception_ptr error;
};

}  // namespace forkline::detail

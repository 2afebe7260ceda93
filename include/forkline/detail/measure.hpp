// forkline/detail/measure.hpp: the measuring mode behind
// probe::measure_work_span().
//
// The measuring thread gets a stand-in worker whose deque holds nothing, so
// every push fails and invoke / task_group take their "deque full, run it
// here" branch; only that branch, which a normal run almost never takes,
// looks at `worker::measure`. The fast paths carry no extra instruction.
// See "Work and span" in runtime/DESIGN.md.
#pragma once

#include <algorithm>  // max
#include <cstdint>    // uint64_t
#include <memory>     // unique_ptr
#include <vector>     // vector

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>  // __rdtsc
#else
#include <chrono>  // steady_clock
#endif

namespace forkline::probe {
struct work_span;
}

namespace forkline::detail {

struct worker;
struct job;

/// A cheap timestamp: the TSC where there is one (converted to seconds at
/// the end against steady_clock), else steady_clock nanoseconds.
inline std::uint64_t measure_ticks() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
}

/// Path lengths in ticks from the start of the measured call to "now" along
/// the current strand. Only the measuring thread touches it.
struct measure_context {
    std::uint64_t last = 0;     ///< ticks at the last charge
    std::uint64_t work = 0;     ///< all strands so far
    std::uint64_t path = 0;     ///< longest path ending at the current strand's last charge
    std::uint64_t burdened = 0; ///< the same with the burden added per spawn
    std::uint64_t burden = 0;   ///< ticks added per spawn on the burdened path
    std::uint64_t spawns = 0;
    /// A strand longer than this many ticks may have been preempted: the
    /// charge then asks the kernel how much of it this thread ran.
    std::uint64_t check_after = ~std::uint64_t{0};
    std::uint64_t checked_ticks = 0;  ///< ticks at the last such check
    std::uint64_t checked_cpu_ns = 0; ///< this thread's CPU time then
    double ticks_per_ns = 1;
    std::uint64_t preempted = 0;      ///< ticks taken out of strands: not running
    /// Per live task_group: the latest end of its children's paths.
    struct group_end {
        const void* group;
        std::uint64_t path;
        std::uint64_t burdened;
    };
    std::vector<group_end> groups;

    /// Ends the current strand: its time goes to work and to both paths.
    void charge() noexcept {
        const std::uint64_t now = measure_ticks();
        std::uint64_t d = now - last;
        if (d > check_after) [[unlikely]] d -= not_running(now, d);
        last = now;
        work += d;
        path += d;
        burdened += d;
    }

    /// Ticks of the last `d` in which this thread did not run (preempted):
    /// wall time since the last check less the CPU time the thread got. A
    /// preemption long enough to matter makes its own strand long, so it is
    /// found at that strand's end and taken out of that strand alone.
    std::uint64_t not_running(std::uint64_t now, std::uint64_t d) noexcept;
};

/// invoke(f, g) in measuring mode. g is the half a thief would take, so it
/// carries the burden. If f throws, g does not run (as on a worker).
template <class F, class G>
void measured_invoke(measure_context& m, F& f, G& g) {
    m.charge();
    ++m.spawns;
    const std::uint64_t p0 = m.path;
    const std::uint64_t b0 = m.burdened;
    f();
    m.charge();
    const std::uint64_t pf = m.path;
    const std::uint64_t bf = m.burdened;
    m.path = p0;
    m.burdened = b0 + m.burden;
    g();
    m.charge();
    m.path = std::max(pf, m.path);
    m.burdened = std::max(bf, m.burdened);
}

/// task_group::spawn in measuring mode: runs j now as a child of `group`.
void measured_spawn(worker& w, job* j, const void* group) noexcept;
/// task_group::wait in measuring mode: the children's paths join here.
void measured_sync(worker& w, const void* group) noexcept;

/// Installs the stand-in worker on this thread for its lifetime.
class measuring_scope {
public:
    /// Throws config_error on a worker thread or inside another scope.
    measuring_scope(unsigned nominal_workers, double burden_s);
    ~measuring_scope();
    measuring_scope(const measuring_scope&) = delete;
    measuring_scope& operator=(const measuring_scope&) = delete;
    /// The figures so far (normally called once, after the measured call).
    probe::work_span finish();

private:
    struct state;
    std::unique_ptr<state> m_state;
};

}  // namespace forkline::detail

// runtime/measure.cpp: the measuring mode behind probe::measure_work_span().
// See "Work and span" in runtime/DESIGN.md.
#include "forkline/detail/measure.hpp"

#include <algorithm>  // max, find_if
#include <time.h>  // clock_gettime, CLOCK_THREAD_CPUTIME_ID

#include <chrono>     // steady_clock
#include <cstdint>    // uint64_t
#include <limits>     // numeric_limits

#include "forkline/detail/task_pool.hpp"  // task_pool
#include "forkline/detail/worker.hpp"     // worker, t_current_worker, run_job
#include "forkline/errors.hpp"            // config_error
#include "forkline/probe.hpp"             // work_span, measure_steal_cost
#include "forkline/topology.hpp"          // topology

namespace forkline::detail {

namespace {

std::uint64_t thread_cpu_ns() noexcept {
    timespec ts{};
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

std::uint64_t measure_context::not_running(std::uint64_t now, std::uint64_t d) noexcept {
    const std::uint64_t cpu = thread_cpu_ns();
    const double wall_ns = static_cast<double>(now - checked_ticks) / ticks_per_ns;
    const double ran_ns = static_cast<double>(cpu - checked_cpu_ns);
    checked_ticks = now;
    checked_cpu_ns = cpu;
    if (cpu == 0 || ran_ns >= wall_ns) return 0;
    const auto idle = static_cast<std::uint64_t>((wall_ns - ran_ns) * ticks_per_ns);
    const std::uint64_t taken = idle < d ? idle : d;
    preempted += taken;
    return taken;
}

void measured_spawn(worker& w, job* j, const void* group) noexcept {
    measure_context& m = *w.measure;
    m.charge();
    ++m.spawns;
    const std::uint64_t p0 = m.path;
    const std::uint64_t b0 = m.burdened;
    // The spawned task is what a thief would take: it carries the burden.
    m.burdened += m.burden;
    run_job(w, j);
    m.charge();
    auto it = std::find_if(m.groups.begin(), m.groups.end(),
                           [group](const measure_context::group_end& g) { return g.group == group; });
    if (it == m.groups.end()) {
        // Reserved in the scope's constructor; groups nest shallowly, so
        // this rarely allocates, and a failed allocation only loses the
        // measurement of this group's join (the task has already run).
        try {
            m.groups.push_back({group, 0, 0});
        } catch (...) {
            m.path = p0;
            m.burdened = b0;
            return;
        }
        it = m.groups.end() - 1;
    }
    it->path = std::max(it->path, m.path);
    it->burdened = std::max(it->burdened, m.burdened);
    // The continuation goes on from the spawn point.
    m.path = p0;
    m.burdened = b0;
}

void measured_sync(worker& w, const void* group) noexcept {
    measure_context& m = *w.measure;
    auto it = std::find_if(m.groups.begin(), m.groups.end(),
                           [group](const measure_context::group_end& g) { return g.group == group; });
    if (it == m.groups.end()) return;  // nothing spawned since the last wait
    m.charge();
    m.path = std::max(m.path, it->path);
    m.burdened = std::max(m.burdened, it->burdened);
    m.groups.erase(it);
}

namespace {

/// Discovered once per process: a measurement should not pay hwloc's
/// discovery each time (the stand-in's task pool allocates through it).
const topology& host_topology() {
    static const topology t = topology::discover();
    return t;
}

/// TSC ticks per second, calibrated once against steady_clock over 2 ms.
double tick_rate() {
    static const double rate = [] {
        const auto t0 = std::chrono::steady_clock::now();
        const std::uint64_t k0 = measure_ticks();
        auto t1 = t0;
        while (t1 - t0 < std::chrono::milliseconds(2)) t1 = std::chrono::steady_clock::now();
        const std::uint64_t k1 = measure_ticks();
        return static_cast<double>(k1 - k0) / std::chrono::duration<double>(t1 - t0).count();
    }();
    return rate;
}

}  // namespace

struct measuring_scope::state {
    const topology& topo;
    task_pool pool;
    worker stand_in{nullptr, -1};  // see make_measuring_stand_in()
    measure_context context;
    unsigned nominal = 1;
    double burden_s = 0;
    std::uint64_t start_ticks = 0;
    std::chrono::steady_clock::time_point start_time;

    explicit state(const topology& t) : topo(t), pool(&topo, -1) {}
};

measuring_scope::measuring_scope(unsigned nominal_workers, double burden_s) {
    if (current_worker() != nullptr) {
        throw config_error(current_worker()->measure != nullptr
                               ? "measure_work_span: already measuring on this thread (nested measure_work_span)"
                               : "measure_work_span: called from a worker thread; call it from a thread of your own "
                                 "(it runs the computation on the calling thread)");
    }
    if (burden_s < 0) burden_s = probe::measure_steal_cost();
    m_state = std::make_unique<state>(host_topology());
    state& s = *m_state;
    s.nominal = nominal_workers != 0 ? nominal_workers : std::max(1u, s.topo.summary().cores);
    s.burden_s = burden_s;
    s.stand_in.deque.make_measuring_stand_in();
    s.stand_in.pool = &s.pool;
    s.stand_in.peers = s.nominal;
    s.stand_in.index = 0;
    s.stand_in.measure = &s.context;
    s.context.groups.reserve(64);
    // The burden is added in ticks, so the tick rate is needed up front.
    s.context.burden = static_cast<std::uint64_t>(burden_s * tick_rate());
    s.context.ticks_per_ns = tick_rate() * 1e-9;
    // 10 us: far above a fine-grained strand, far below a time slice; a
    // strand this long pays well under 10% for the kernel's answer.
    s.context.check_after = static_cast<std::uint64_t>(10e3 * s.context.ticks_per_ns);
    t_current_worker = &s.stand_in;
    s.start_time = std::chrono::steady_clock::now();
    s.start_ticks = measure_ticks();
    s.context.last = s.start_ticks;
    s.context.checked_ticks = s.start_ticks;
    s.context.checked_cpu_ns = thread_cpu_ns();
}

measuring_scope::~measuring_scope() {
    if (t_current_worker == &m_state->stand_in) t_current_worker = nullptr;
}

probe::work_span measuring_scope::finish() {
    state& s = *m_state;
    measure_context& m = s.context;
    m.charge();
    const auto elapsed = std::chrono::steady_clock::now() - s.start_time;
    const double elapsed_s = std::chrono::duration<double>(elapsed).count();
    const std::uint64_t ticks = m.last - s.start_ticks;
    // Ticks to seconds from this very run: the TSC rate needs no lookup.
    const double per_tick = ticks > 0 ? elapsed_s / static_cast<double>(ticks) : 0.0;
    probe::work_span r;
    r.preempted_s = static_cast<double>(m.preempted) * per_tick;
    r.work_s = static_cast<double>(m.work) * per_tick;
    r.span_s = static_cast<double>(m.path) * per_tick;
    r.burden_s = s.burden_s;
    r.spawns = m.spawns;
    r.nominal_workers = s.nominal;
    r.burdened_span_s = static_cast<double>(m.burdened) * per_tick;
    const double inf = std::numeric_limits<double>::infinity();
    r.parallelism = r.span_s > 0 ? r.work_s / r.span_s : inf;
    r.burdened_parallelism = r.burdened_span_s > 0 ? r.work_s / r.burdened_span_s : inf;
    return r;
}

}  // namespace forkline::detail

// tests/soak/soak.hpp: what the soak's parts share: options, the seeded
// random source, the per-kind conservation counters, the planned exception,
// and the ops each part provides. See tests/soak/soak.cpp for the driver.
#pragma once

#include <atomic>     // atomic
#include <cstdint>    // uint64_t
#include <cstddef>    // size_t
#include <cstdio>     // fprintf
#include <exception>  // exception
#include <random>     // mt19937_64
#include <string>     // string

#include "forkline/runtime.hpp"  // runtime

namespace soak {

/// What the command line chose. The two switches for known defects default on.
struct options {
    double seconds = 60;
    std::uint64_t seed = 1;
    unsigned drivers = 3;            ///< outside threads issuing ops
    unsigned shared_workers = 2;     ///< workers of the long-lived runtime
    std::size_t injection = 4;       ///< its injection_capacity: small, so that "full" is hit
    double interval = 10;            ///< seconds between summary lines
    double stall = 60;               ///< an op running this long is a hang
    double warmup = 10;              ///< seconds before the RSS level is taken
    double rss_margin_mib = 64;      ///< RSS bound: 2 x warmed-up level + this
    bool worker_submit = true;       ///< blocking submit() from inside workers
    bool throwing_copy = true;       ///< task_group::spawn of an lvalue whose copy throws
    bool read_bound = true;          ///< pipelines: no reads beyond the failed item's tokens
    bool batch_sink = true;          ///< pipelines: a batching last stage
    std::string only;                ///< run only the op of this name (empty: all)
    std::string tmp_dir;             ///< for the I/O pipelines' files
};

/// A driver's random source: the soak's seed and the driver's index.
class rng {
public:
    explicit rng(std::uint64_t seed) : m_gen(seed) {}
    std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : m_gen() % n; }
    std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
    bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(m_gen) < p; }
    std::uint64_t next() { return m_gen(); }

private:
    std::mt19937_64 m_gen;
};

/// The kinds of unit the soak hands to forkline; each is accounted for
/// exactly once: issued == finished + threw + skipped + refused.
enum kind : unsigned {
    k_invoke,      ///< callables given to invoke()
    k_group,       ///< task_group tasks (spawn, spawn_on, nested groups)
    k_loop,        ///< parallel_for / reduce / sort calls
    k_run,         ///< runtime::run calls from outside threads
    k_submit,      ///< submit / try_submit from outside threads
    k_wsubmit,     ///< submit / try_submit from inside workers
    k_stopsubmit,  ///< submissions racing a runtime's stop()
    k_item,        ///< pipeline items
    k_kinds
};

inline const char* kind_name(unsigned k) {
    static const char* const names[k_kinds] = {"invoke", "group", "loop", "run",
                                               "submit", "wsubmit", "stopsub", "item"};
    return names[k];
}

/// Global counters: ops add their (already checked) local figures.
struct counts {
    std::atomic<std::uint64_t> issued{0};
    std::atomic<std::uint64_t> finished{0};
    std::atomic<std::uint64_t> threw{0};
    std::atomic<std::uint64_t> skipped{0};
    std::atomic<std::uint64_t> refused{0};
};

/// Plain per-op counters, kept atomic because tasks on several workers bump them.
struct local_counts {
    std::atomic<std::uint64_t> issued{0};
    std::atomic<std::uint64_t> finished{0};
    std::atomic<std::uint64_t> threw{0};
    std::atomic<std::uint64_t> skipped{0};
    std::atomic<std::uint64_t> refused{0};
};

/// Shared by every part: the options, the long-lived runtime, the totals.
struct context {
    options opt;
    forkline::runtime* shared = nullptr;
    counts totals[k_kinds];
    std::atomic<std::uint64_t> bytes_expected{0};
    std::atomic<std::uint64_t> bytes_written{0};
    std::atomic<std::uint64_t> runtimes_made{0};
    std::atomic<std::uint64_t> pipelines{0};
    std::atomic<std::uint64_t> pipeline_failures{0};
};

/// The exception the soak throws on purpose; `id` says which unit threw it.
struct planned_error : std::exception {
    explicit planned_error(std::uint64_t i) noexcept : id(i) {}
    const char* what() const noexcept override { return "soak: planned failure"; }
    std::uint64_t id;
};

/// Reports a broken promise and ends the process with status 1.
[[noreturn]] void fail(const char* op, const std::string& message);

/// Checks local counts (issued == finished + threw + skipped + refused),
/// then adds them to the totals of kind k.
void settle(context& cx, const char* op, unsigned k, const local_counts& c);

/// Runs f on the shared runtime (through run()) or, now and then, right here
/// on the driver thread, where forkline's calls go to default_runtime().
template <class F>
void somewhere(context& cx, rng& r, F&& f) {
    if (r.chance(0.75)) {
        cx.shared->run(f);
    } else {
        f();
    }
}

/// splitmix64: decisions made inside tasks, from the op's seed and a unit's id
/// (the driver's rng belongs to its thread).
inline std::uint64_t mix(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/// Busy work of about n steps, so that tasks differ in length.
std::uint64_t spin(std::uint64_t n) noexcept;

/// fib with a fork at every level, and its closed form.
long fib_forked(int n);
long fib_plain(int n);

/// The ops: each runs one randomly shaped piece of work and checks it.
/// They are called from driver (outside) threads.
void op_invoke(context& cx, rng& r);
void op_group(context& cx, rng& r);
void op_throwing_copy(context& cx, rng& r);
void op_loops(context& cx, rng& r);
void op_run(context& cx, rng& r);
void op_submit(context& cx, rng& r);
void op_worker_submit(context& cx, rng& r);
void op_runtime_life(context& cx, rng& r);
void op_stop_race(context& cx, rng& r);
void op_pipeline(context& cx, rng& r);
void op_io_pipeline(context& cx, rng& r);

}  // namespace soak

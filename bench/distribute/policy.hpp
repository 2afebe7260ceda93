// bench/distribute/policy.hpp: the interface every distribution policy of
// `forkline-bench distribute` implements, and the run context they share.
//
// A policy is started with its worker count, is handed request indices by
// the generator thread (submit), runs each one through run_context::execute
// on one of its workers, and is stopped after every request completed.
#pragma once

#include <atomic>       // atomic
#include <cstdint>      // uint64_t, uint32_t
#include <memory>       // unique_ptr
#include <string>       // string
#include <string_view>  // string_view
#include <vector>       // vector

#include "distribute/schedule.hpp"  // request

namespace forkline_bench::distribute {

/// One run's shared state. Each completion slot is written once, by the
/// thread that ran the request; the main thread reads them after `done`
/// reached the total (acquire on done pairs with each execute's release).
struct run_context {
    const std::vector<request>* schedule = nullptr;
    std::vector<std::uint64_t> completion_ns;  // from start_ns
    std::uint64_t start_ns = 0;                // written before the first submit, published by it
    std::uint64_t run_id = 0;                  // distinguishes runs for the lazy worker index
    // Straggler: the worker whose index is 0 runs requests `slow_factor`
    // times longer when it starts them within [slow_from_ns, slow_until_ns).
    bool straggler = false;
    double slow_factor = 4.0;
    std::uint64_t slow_from_ns = 0;
    std::uint64_t slow_until_ns = 0;

    alignas(64) std::atomic<std::uint32_t> done{0};
    alignas(64) std::atomic<unsigned> next_index{0};
    std::atomic<std::uint32_t> rejected{0};
    std::atomic<std::uint32_t> expired{0};
    static constexpr std::uint64_t k_not_run = ~std::uint64_t{0};  // completion_ns of a request that did not run

    std::uint32_t total() const noexcept { return static_cast<std::uint32_t>(schedule->size()); }

    /// The calling thread's index among the threads that ran this run's
    /// requests, in the order they first ran one (any pool's threads get one).
    unsigned worker_index() noexcept;

    /// Runs request i: spins its service time, records its completion and
    /// counts it; the last one wakes wait_all().
    void execute(std::uint32_t i) noexcept;

    /// Ends request i without running it (refused at admission, or its
    /// deadline passed): counted, no latency. `expired` says which.
    void end_unrun(std::uint32_t i, bool expired) noexcept;

    /// Sleeps until every request of the schedule ended.
    void wait_all() noexcept;
};

class policy {
public:
    virtual ~policy() = default;
    /// Starts `workers` threads (or the pool's equivalent), idle.
    virtual void start(run_context& ctx, unsigned workers) = 0;
    /// Hands request i over; called from the generator thread only.
    virtual void submit(std::uint32_t i) = 0;
    /// Called after wait_all(): joins the threads.
    virtual void stop() = 0;
};

struct policy_entry {
    std::string_view name;
    std::string_view summary;
    bool built;
    std::string_view absent_reason;
};

/// Every policy, built or not, in table order.
std::vector<policy_entry> policy_entries();
/// nullptr when `name` is unknown or not built.
std::unique_ptr<policy> make_policy(std::string_view name);

// Defined in their own files (the peers see their libraries' flags only there).
std::unique_ptr<policy> make_push_round_robin();
std::unique_ptr<policy> make_push_two_choices();
std::unique_ptr<policy> make_pull();
std::unique_ptr<policy> make_gossip();
std::unique_ptr<policy> make_steal();
std::unique_ptr<policy> make_mutex_pool();
std::unique_ptr<policy> make_asio_pool();
std::unique_ptr<policy> make_tbb_arena();
std::unique_ptr<policy> make_stream_executor();

/// Pins the calling thread to the w-th cpu this process may use (modulo).
void pin_to_allowed_cpu(unsigned w) noexcept;

}  // namespace forkline_bench::distribute

// bench/distribute/replay.hpp: one run of one policy on one schedule (the
// generator thread, the latencies), and the simulated ideal on the same one.
#pragma once

#include <cstdint>      // uint64_t, uint32_t
#include <string_view>  // string_view
#include <vector>       // vector

#include "distribute/schedule.hpp"  // request

namespace forkline_bench::distribute {

struct replay_options {
    unsigned workers = 2;
    bool straggler = false;          ///< the first worker 4x slower for the middle third
    std::uint64_t late_ns = 50'000;  ///< a submission this far behind schedule is late
    std::uint64_t spin_ns = 10'000;  ///< the generator sleeps until this much before an arrival, then spins
    bool realtime_generator = true;  ///< try SCHED_FIFO for the generator thread
    double warmup_share = 0.05;      ///< the first requests left out of the latencies
};

struct run_figures {
    std::uint32_t requests = 0;   ///< in the schedule
    std::uint32_t completed = 0;  ///< ran to completion (every policy here runs all)
    std::uint32_t rejected = 0;   ///< refused at admission (none without an admission bound)
    std::uint32_t expired = 0;    ///< deadline passed before start (none without deadlines)
    std::uint32_t measured = 0;   ///< latencies behind the quantiles (after the warm-up)
    double throughput = 0;        ///< completed per second, first arrival to last completion
    double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
    std::uint32_t late = 0;       ///< submissions more than late_ns behind schedule
    double max_lag_us = 0;
    double generator_cpu = 0;     ///< generator thread's cpu time / its wall time
    std::uint64_t generator_cpu_ns = 0;  ///< generator thread's cpu time
    bool generator_realtime = false;  ///< it got SCHED_FIFO
    bool refused = false;         ///< more than 1% late: not a figure
};

class policy;

/// Replays `schedule` through the policy `name` (must be built).
run_figures replay(std::string_view name, const std::vector<request>& schedule, const replay_options& o);
/// As above, through a policy the caller made (saturation and batch
/// scenarios: configured executors); p is started and stopped here.
run_figures replay(policy& p, const std::vector<request>& schedule, const replay_options& o);

/// A centralized first-come-first-served queue with zero overhead on
/// `workers` servers, computed (discrete events, no threads).
run_figures simulate_ideal(const std::vector<request>& schedule, const replay_options& o);

/// The straggler window: the middle third of the schedule's arrivals.
void straggler_window(const std::vector<request>& schedule, std::uint64_t& from_ns, std::uint64_t& until_ns);

}  // namespace forkline_bench::distribute

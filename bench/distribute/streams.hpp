// bench/distribute/streams.hpp: the scenarios of `forkline-bench distribute`
// that drive the stream executor and the batcher directly (saturation.cpp,
// batch.cpp) rather than a policy table. They share the generator, the
// replay and the lateness refusal of replay.hpp; their tables are their own.
#pragma once

#include <cstdint>  // uint64_t, uint32_t
#include <string>   // string
#include <vector>   // vector

#include "distribute/schedule.hpp"  // service_shape

namespace forkline_bench::distribute {

/// The command line's options, as these scenarios read them.
struct stream_args {
    unsigned workers = 2;
    std::uint32_t requests = 4000;
    unsigned reps = 5;
    std::uint64_t seed = 1;
    double mean_us = 100;
    service_shape shape = service_shape::exponential;
    std::vector<double> loads;  // empty: the scenario's
    std::uint64_t late_ns = 50'000;
    std::uint64_t spin_ns = 10'000;
    std::size_t capacity = 256;  // saturation: the executor's bound
    double call_us = 20;         // batch: the handler's cost per call
    double item_us = 2;          // batch: and per item
    std::string json_path, markdown_path;
};

/// `distribute saturation`: 0 when every point has an accepted run.
int saturation_main(const stream_args& a);
/// `distribute batch`: 0 when every point has an accepted run.
int batch_main(const stream_args& a);

/// Median of v (0 when empty); v is reordered.
double median_of(std::vector<double> v);

}  // namespace forkline_bench::distribute

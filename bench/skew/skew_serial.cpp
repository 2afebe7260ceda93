// bench/skew/skew_serial.cpp: the tasks one after another: the time is the total work.
#include <cstdint>  // uint64_t, int64_t

#include "skew.hpp"  // run_skew_serial, skew_spin, skew_seed

namespace forkline_bench {

sample run_skew_serial(unsigned tasks, std::uint64_t iterations) {
    return warm_up_then_time([&] {
        std::uint64_t sum = 0;
        for (unsigned t = 0; t < opaque(tasks); ++t) sum += skew_spin(skew_seed(t), iterations);
        return static_cast<std::int64_t>(sum);
    });
}

}  // namespace forkline_bench

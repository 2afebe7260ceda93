// bench/reduce/reduce_serial.cpp: the sum as a plain loop on one thread.
#include <cstddef>  // size_t

#include "reduce.hpp"  // run_reduce_serial, time_reduce, reduce_value

namespace forkline_bench {

sample run_reduce_serial(std::size_t n) {
    return time_reduce(
        n,
        [](double* x, std::size_t size) {
            for (std::size_t i = 0; i < size; ++i) x[i] = reduce_value(i);
        },
        [](const double* x, std::size_t size) {
            double acc = 0.0;
            for (std::size_t i = 0; i < size; ++i) acc += x[i];
            return acc;
        });
}

}  // namespace forkline_bench

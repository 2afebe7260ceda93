// bench/fib/fib_serial.cpp: the same recursion with no spawns, the limit the others approach.
#include "fib.hpp"  // run_fib_serial

namespace forkline_bench {
namespace {

// noinline: keeps the compiler from unrolling the recursion into itself,
// which would make the baseline cheaper per call than any parallel variant
// can be for reasons that have nothing to do with scheduling.
[[gnu::noinline]] long fib(int n) {
    if (n < 2) return n;
    const long a = fib(n - 1);
    const long b = fib(n - 2);
    return a + b;
}

}  // namespace

sample run_fib_serial(int n) {
    return warm_up_then_time([&] { return fib(opaque(n)); });
}

}  // namespace forkline_bench

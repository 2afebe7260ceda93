// bench/matmul/matmul_serial.cpp: the same recursion with calls instead of forks, the limit.
#include <cstddef>  // size_t

#include "matmul.hpp"  // run_matmul_serial, multiply_recursive, time_matmul

namespace forkline_bench {
namespace {

// Both halves in order: the same recursion with calls instead of forks.
struct call_both {
    template <class F, class G>
    void operator()(F&& first, G&& second) const {
        first();
        second();
    }
};

}  // namespace

sample run_matmul_serial(std::size_t n) {
    return time_matmul(n, [](double* c, const matmul_problem& p) {
        multiply_recursive(call_both{}, p.a(), p.b(), c, p.n(), p.n(), p.n(), p.ld());
    });
}

}  // namespace forkline_bench

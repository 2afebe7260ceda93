// tests/trace_child.cpp: a program that uses forkline only through
// default_runtime() (invoke from main) and returns from main without
// stopping anything, so that a FORKLINE_TRACE file written at exit must
// come after that runtime's own shutdown. tests/trace_test.sh runs it.
//
//   trace_child [n]      prints fib(n) (default 20)
#include <cstdio>   // printf
#include <cstdlib>  // strtol

#include <forkline/forkline.hpp>  // invoke

namespace {

long fib(int n) {
    if (n < 2) return n;
    long a = 0;
    long b = 0;
    forkline::invoke([&] { a = fib(n - 1); }, [&] { b = fib(n - 2); });
    return a + b;
}

}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? static_cast<int>(std::strtol(argv[1], nullptr, 10)) : 20;
    std::printf("%ld\n", fib(n));
    return 0;
}

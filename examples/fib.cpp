// examples/fib.cpp: fork-join with forkline::invoke, checked against a loop.
//
//   ./example_fib [n]      (FORKLINE_WORKERS=N to choose the worker count)
#include <exception>  // exception
#include <cstdio>   // printf, fprintf
#include <cstdlib>  // strtol

#include <forkline/forkline.hpp>  // runtime, invoke

namespace {

long fib(int n) {
    if (n < 2) return n;
    long a = 0;
    long b = 0;
    forkline::invoke([&] { a = fib(n - 1); }, [&] { b = fib(n - 2); });
    return a + b;
}

long fib_loop(int n) {
    long a = 0;
    long b = 1;
    for (int i = 0; i < n; ++i) {
        const long next = a + b;
        a = b;
        b = next;
    }
    return a;
}

}  // namespace

namespace {
int run_example(int argc, char** argv) {
    const int n = argc > 1 ? static_cast<int>(std::strtol(argv[1], nullptr, 10)) : 27;
    forkline::runtime rt;  // one pinned worker per core, or FORKLINE_WORKERS / FORKLINE_PLACES
    const long got = rt.run([n] { return fib(n); });
    const long want = fib_loop(n);
    std::printf("fib(%d) = %ld on %u workers\n", n, got, rt.worker_count());
    if (got != want) {
        std::fprintf(stderr, "wrong: expected %ld\n", want);
        return 1;
    }
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    try {
        return run_example(argc, argv);
    } catch (const std::exception& e) {  // a bad FORKLINE_* setting, a failed system call
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 2;
    }
}

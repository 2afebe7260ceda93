// tests/consumer/main.cpp: a program that uses an installed forkline the way
// its users' programs do; tests/consumer/run.sh builds it with meson, CMake
// and plain pkg-config and checks what it prints.
#include <cstdio>     // printf, fprintf, snprintf
#include <cstring>    // strcmp
#include <exception>  // exception
#include <vector>     // vector

#include <forkline/forkline.hpp>  // runtime, invoke, parallel_for, FORKLINE_VERSION_*

namespace {
long fib(int n) {
    if (n < 2) return n;
    long a = 0;
    long b = 0;
    forkline::invoke([&] { a = fib(n - 1); }, [&] { b = fib(n - 2); });
    return a + b;
}
}  // namespace

int main() try {
    forkline::runtime_config config;
    config.placement.workers = 2;           // steals happen even on one core
    config.placement.oversubscribe = true;
    config.read_environment = false;        // the same run whatever FORKLINE_* says
    forkline::runtime rt(config);
    std::vector<long> squares(1000);
    const long f = rt.run([&] {
        forkline::parallel_for(std::size_t{0}, squares.size(),
                               [&](std::size_t i) { squares[i] = static_cast<long>(i * i); });
        return fib(20);
    });
    long sum = 0;
    for (long s : squares) sum += s;
    char parts[64];
    std::snprintf(parts, sizeof parts, "%d.%d.%d", FORKLINE_VERSION_MAJOR, FORKLINE_VERSION_MINOR,
                  FORKLINE_VERSION_PATCH);
    std::printf("forkline %s fib(20)=%ld squares=%ld\n", FORKLINE_VERSION_STRING, f, sum);
    return std::strcmp(parts, FORKLINE_VERSION_STRING) == 0 && f == 6765 && sum == 332833500 ? 0 : 1;
} catch (const std::exception& e) {  // a runtime that cannot start: the message says why
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 2;
}

// tests/exit_child.cpp: a program that calls std::exit from inside a task,
// for tests/exit_test.sh. The process must end with the status given to
// exit, whichever runtime the task ran on.
//   exit_child parallel-for   a parallel_for body on the default runtime
//   exit_child static         a task of a function-local static runtime
//   exit_child submit         a submitted job, while main waits on its future
#include <chrono>   // milliseconds
#include <cstdio>   // fprintf
#include <cstdlib>  // exit
#include <cstring>  // strcmp
#include <thread>   // sleep_for

#include "forkline/forkline.hpp"  // parallel_for, runtime, default_runtime

namespace {

void spin_a_little() {
    volatile long x = 0;
    for (long i = 0; i < 20000; ++i) x = x + i;
}

forkline::runtime& static_runtime() {
    static forkline::runtime rt([] {
        forkline::runtime_config c;
        c.placement.workers = 2;
        c.placement.oversubscribe = true;
        c.read_environment = false;
        return c;
    }());
    return rt;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: exit_child parallel-for|static|submit\n");
        return 64;
    }
    if (std::strcmp(argv[1], "parallel-for") == 0) {
        forkline::parallel_for(0, 10000, [](int i) {
            if (i == 5000) std::exit(3);
            spin_a_little();
        });
    } else if (std::strcmp(argv[1], "static") == 0) {
        static_runtime().run([] {
            forkline::parallel_for(0, 1000, [](int i) {
                if (i == 700) std::exit(3);
                spin_a_little();
            });
        });
    } else if (std::strcmp(argv[1], "submit") == 0) {
        auto f = forkline::default_runtime().submit([] {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            std::exit(3);
        });
        f.get();
    } else {
        std::fprintf(stderr, "exit_child: unknown mode %s\n", argv[1]);
        return 64;
    }
    std::fprintf(stderr, "exit_child: the task did not exit\n");
    return 1;
}

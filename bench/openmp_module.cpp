// bench/openmp_module.cpp: find and load forkline-bench-openmp.so in the omp variant's child.
#include "openmp_module.hpp"

#include <dlfcn.h>   // dlopen, dlsym, dlerror
#include <unistd.h>  // readlink

#include <cerrno>     // errno
#include <cstdlib>    // getenv, setenv
#include <cstring>    // strerror
#include <stdexcept>  // runtime_error
#include <string>     // string

#ifndef FORKLINE_BENCH_OPENMP_MODULE
#define FORKLINE_BENCH_OPENMP_MODULE "forkline-bench-openmp.so"
#endif

namespace forkline_bench {
namespace {

// The module is built into the same directory as the executable.
std::string module_path() {
    char exe[4096];
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        const int e = errno;
        throw std::runtime_error(std::string("readlink(/proc/self/exe) failed: ") + std::strerror(e) +
                                 "; cannot find " FORKLINE_BENCH_OPENMP_MODULE);
    }
    std::string path(exe, static_cast<std::size_t>(n));
    path.erase(path.find_last_of('/') + 1);
    return path + FORKLINE_BENCH_OPENMP_MODULE;
}

void set_placement_defaults() {
    // overwrite = 0: the user's own values win.
    ::setenv("OMP_PROC_BIND", "close", 0);
    if (std::getenv("GOMP_CPU_AFFINITY") == nullptr) ::setenv("OMP_PLACES", "cores", 0);
}

}  // namespace

void* openmp_entry_point(const char* symbol) {
    static void* module = nullptr;
    if (module == nullptr) {
        set_placement_defaults();
        const std::string path = module_path();
        module = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (module == nullptr) {
            const char* why = ::dlerror();
            throw std::runtime_error("cannot load the OpenMP variants: dlopen(" + path + "): " +
                                     (why ? why : "unknown error") + "; rebuild forkline-bench");
        }
    }
    ::dlerror();  // clear, so that a null result can be told from a failure
    void* entry = ::dlsym(module, symbol);
    if (entry == nullptr) {
        const char* why = ::dlerror();
        throw std::runtime_error(std::string("dlsym(") + symbol + ") in " FORKLINE_BENCH_OPENMP_MODULE ": " +
                                 (why ? why : "null"));
    }
    return entry;
}

}  // namespace forkline_bench

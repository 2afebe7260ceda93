// bench/variants.hpp: the tbb and omp rows every workload's variant table shares.
//
// A peer that meson did not find is compiled out (bench/meson.build); its row
// stays in the table, with a null run and the reason the driver prints when
// asked for it. Rows are macros, not functions: an absent omp row must not
// name its adapter, which is compiled out with it.
#pragma once

#include <string_view>  // string_view

#include "openmp_module.hpp"  // openmp_entry_point

#ifndef FORKLINE_BENCH_HAVE_TBB
#define FORKLINE_BENCH_HAVE_TBB 0
#endif
#ifndef FORKLINE_BENCH_HAVE_OPENMP
#define FORKLINE_BENCH_HAVE_OPENMP 0
#endif

namespace forkline_bench {

inline constexpr std::string_view k_tbb_absent = "libtbb-dev absent";
inline constexpr std::string_view k_omp_absent = "no OpenMP found: libgomp for g++, libomp-dev for clang++";

/// The entry point `symbol` of the OpenMP module, as a `Fn`: pass the type of
/// its extern "C" declaration, `omp_entry<decltype(forkline_bench_fib_omp)>(...)`.
template <class Fn>
Fn* omp_entry(const char* symbol) {
    return reinterpret_cast<Fn*>(openmp_entry_point(symbol));
}

}  // namespace forkline_bench

// `{{"tbb", true, ""}, run, extra...}`, or null with k_tbb_absent when TBB was
// not found; the extra fields (uts: deep_stack) are the same either way.
#if FORKLINE_BENCH_HAVE_TBB
#define FORKLINE_BENCH_TBB_VARIANT(run, ...) {{"tbb", true, ""}, run __VA_OPT__(, ) __VA_ARGS__}
#else
#define FORKLINE_BENCH_TBB_VARIANT(run, ...) \
    {{"tbb", true, ::forkline_bench::k_tbb_absent}, nullptr __VA_OPT__(, ) __VA_ARGS__}
#endif

// The same for omp, with k_omp_absent.
#if FORKLINE_BENCH_HAVE_OPENMP
#define FORKLINE_BENCH_OMP_VARIANT(run, ...) {{"omp", true, ""}, run __VA_OPT__(, ) __VA_ARGS__}
#else
#define FORKLINE_BENCH_OMP_VARIANT(run, ...) \
    {{"omp", true, ::forkline_bench::k_omp_absent}, nullptr __VA_OPT__(, ) __VA_ARGS__}
#endif

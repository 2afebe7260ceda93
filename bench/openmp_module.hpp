// bench/openmp_module.hpp: the OpenMP variants, loaded only into the child that runs one.
//
// Every OpenMP variant is built into one shared module beside the
// executable, forkline-bench-openmp.so, and only the child that runs an omp
// variant loads it. The reason is placement. BENCHMARKING.md asks for
// OMP_PROC_BIND=close and OMP_PLACES=cores, and GCC's libgomp reads its
// environment in a constructor when it is loaded: linked into the driver, it
// would read it before main(), too early for a setenv() in the child; and
// when either variable is set it binds the loading thread to the first place
// at once, which would pin the driver, and through fork every child after it
// (forkline's and TBB's too), to one core. Loaded here, it starts in the
// child, after the setenv(), like the runtime of any OpenMP program.
#pragma once

namespace forkline_bench {

/// In the child, before anything OpenMP: sets OMP_PROC_BIND=close and
/// OMP_PLACES=cores where the user has not set them (nor GOMP_CPU_AFFINITY,
/// a place list of its own), loads the module, and returns the address of
/// `symbol` in it. Throws std::runtime_error naming the file and dlerror().
void* openmp_entry_point(const char* symbol);

}  // namespace forkline_bench

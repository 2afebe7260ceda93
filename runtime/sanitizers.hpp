// runtime/sanitizers.hpp: FORKLINE_TSAN, defined when ThreadSanitizer
// instruments this build (g++ says so with __SANITIZE_THREAD__, clang with
// __has_feature), for the few places that tell it about synchronisation it
// cannot see (membarrier, a ring mapped again at a freed address).
#pragma once

#if defined(__SANITIZE_THREAD__)
#define FORKLINE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FORKLINE_TSAN 1
#endif
#endif

// AddressSanitizer (with LeakSanitizer): 1 or 0.
#if defined(__SANITIZE_ADDRESS__)
#define FORKLINE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FORKLINE_ASAN 1
#endif
#endif
#ifndef FORKLINE_ASAN
#define FORKLINE_ASAN 0
#endif

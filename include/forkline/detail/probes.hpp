// forkline/detail/probes.hpp: USDT probes (statically defined tracing points)
// for perf, bpftrace and SystemTap.
//
// Each probe is one `nop` in the code and a note in the ELF section
// .note.stapsdt that says where the nop is and where its arguments live
// (a register, a constant or a memory operand). No semaphore: nothing is
// tested when nobody traces. A tracer that attaches turns the nop into a
// breakpoint. g++ leaves the arguments where they are; clang copies each to
// a stack slot first, so the probe on the fork-join fast path (spawn) takes
// no argument.
//
// Provider "forkline"; probes and their arguments:
//
//   spawn                            a job became stealable (invoke, task_group, affinity post,
//                                    pipeline); the thread (fl-wN) says which worker
//   steal        thief, victim       a steal that took a job
//   park         worker              about to sleep (the scan found nothing)
//   unpark       worker              woken from that sleep
//   submit                           a job accepted into the injection queue (any thread)
//   io_submit    tag, bytes          an I/O thread started a read or write (bytes 0: wait for readiness)
//   io_complete  tag, result         an I/O thread saw it finish (bytes or -errno)
//   stage_enter  stage, sequence     a pipeline stage call begins (sequence: the item's; a batch's least)
//   stage_exit   stage, sequence     ... and returned or threw
//
// Probes in the compiled library live in libforkline.so; spawn is compiled
// into the program that calls invoke() or task_group::spawn(), so its note is
// in that binary. `readelf -n FILE` lists them.
//
// Recording with perf, as root (perf probe writes uprobe events to tracefs):
//
//   perf buildid-cache --add build/libforkline.so   # perf list sdt now shows them
//   perf probe -x build/libforkline.so sdt_forkline:steal
//   perf probe -x build/libforkline.so sdt_forkline:park
//   perf record -e sdt_forkline:steal -e sdt_forkline:park -- ./program
//   perf script                                     # one line per event: arg1=thief arg2=victim
//   perf probe --del 'sdt_forkline:*'
//
// spawn is in the program: `perf buildid-cache --add ./program`, `perf probe
// -x ./program sdt_forkline:spawn`, then `perf stat -e sdt_forkline:spawn
// -- ./program` counts what FORKLINE_STATS reports as "spawned" when the
// program spawns only with invoke() and task_group.
//
// With bpftrace, counting steals per thief:
//
//   bpftrace -e 'usdt:build/libforkline.so:forkline:steal { @[arg0] = count(); }' -c ./program
//
// The probes are compiled in when <sys/sdt.h> (Debian: systemtap-sdt-dev) is
// found by whoever compiles this header: the library's build and, for spawn,
// the user's. -DFORKLINE_NO_PROBES leaves them out. FORKLINE_HAVE_PROBES says
// which happened (1 or 0). See "Probes" in runtime/DESIGN.md.
#pragma once

#if !defined(FORKLINE_NO_PROBES) && defined(__has_include)
#if __has_include(<sys/sdt.h>)
#include <sys/sdt.h>  // DTRACE_PROBE, DTRACE_PROBE1..3
#define FORKLINE_HAVE_PROBES 1
#endif
#endif
#ifndef FORKLINE_HAVE_PROBES
#define FORKLINE_HAVE_PROBES 0
#endif

#if FORKLINE_HAVE_PROBES
// FORKLINE_PROBE(name) up to FORKLINE_PROBE(name, a, b, c): the argument
// count picks DTRACE_PROBE or DTRACE_PROBE1..3. The trailing `unused` keeps
// the variadic part of the selector non-empty, which -Wpedantic asks for.
#define FORKLINE_PROBE(...)                                                                     \
    FORKLINE_PROBE_SELECT_(__VA_ARGS__, FORKLINE_PROBE_3_, FORKLINE_PROBE_2_, FORKLINE_PROBE_1_, \
                           FORKLINE_PROBE_0_, unused)                                           \
    (__VA_ARGS__)
#define FORKLINE_PROBE_SELECT_(name, a1, a2, a3, chosen, ...) chosen
#define FORKLINE_PROBE_0_(name) DTRACE_PROBE(forkline, name)
#define FORKLINE_PROBE_1_(name, a) DTRACE_PROBE1(forkline, name, a)
#define FORKLINE_PROBE_2_(name, a, b) DTRACE_PROBE2(forkline, name, a, b)
#define FORKLINE_PROBE_3_(name, a, b, c) DTRACE_PROBE3(forkline, name, a, b, c)
#else
// Nothing, and the arguments are not evaluated: a probe site passes only
// values the code computes anyway.
#define FORKLINE_PROBE(...) \
    do {                    \
    } while (false)
#endif

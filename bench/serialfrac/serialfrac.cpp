// bench/serialfrac/serialfrac.cpp: forkline-serialfrac, a program whose
// Amdahl serial fraction is known because it is a flag: the yardstick for
// forkline-probe's external-command mode.
//
//   forkline-serialfrac --serial S [--units U] [--phases K] [--threads N]
//   forkline-probe --workers 1,2 --reps 7 -- forkline-serialfrac --serial 0.2
//   forkline-probe --workers 1,2 --reps 7 -- forkline-serialfrac --serial 0.2 --threads {workers}
//
// The run is U units of pure ALU work (a fixed-length dependent chain of
// xorshift and multiply-add steps in registers: no memory traffic, so no
// worker count changes a unit's cost). round(S U) of them run on one
// thread; the rest are spread over the runtime's workers (FORKLINE_WORKERS,
// read by the runtime itself) one unit per piece by parallel_for, balanced
// by stealing (static equal blocks measured 1-2% worse at 2 workers on a
// virtual machine, whose vCPUs the host slows unevenly). The work alternates: K
// phases, each a serial piece then a parallel piece, so the serial part is
// not one lump at the start that a warm CPU would treat differently.
//
// With P workers the run takes T1 (S + (1 - S) / P) plus start-up and one
// wake-up per phase, so Amdahl's fit of the times recovers S. The output is
// a checksum of every unit's value (it cannot be optimised away, and it is
// the same for every S and P at a given U), and the time the work took.
// With --threads N there is no runtime at all: N plain std::threads (not
// pinned, as a program that knows nothing of forkline would start them),
// a barrier between phases, thread 0 doing the serial piece while the
// others wait, and the parallel piece's units handed out one at a time by
// an atomic counter. The probe's serial-fraction targets are stated for
// such a program, so that they measure the probe and the host, not us.
// Exit status 0; 1 when the runtime cannot start; 2 for a bad command line.
#include <forkline/parallel_for.hpp>  // parallel_for
#include <forkline/runtime.hpp>       // runtime

#include <chrono>     // steady_clock
#include <cmath>      // llround
#include <cstddef>    // size_t
#include <cstdint>    // uint64_t
#include <cstdio>     // printf, fprintf
#include <cstdlib>    // strtod, strtoull
#include <cstring>    // strcmp
#include <atomic>     // atomic
#include <barrier>    // barrier
#include <exception>  // exception
#include <thread>     // thread
#include <utility>    // pair
#include <vector>     // vector

namespace {

/// Steps per unit: about 110 us on the 2-core test machine (a Xeon KVM
/// guest), so that a phase's wake-up (tens of microseconds) is small beside
/// any piece of work.
constexpr std::uint64_t k_steps_per_unit = 1U << 16;
/// One run at 1 worker takes about 3 s on that machine: long enough that the
/// process's start and exit (about 17 ms: loading, hwloc discovery, thread
/// start and join), which is serial too, adds under 0.006 to the fraction.
constexpr std::size_t k_default_units = 28000;
constexpr unsigned k_default_phases = 4;

/// One unit: a dependent chain in registers, seeded by the unit's index.
/// noinline so that every call site runs the same code at the same cost.
[[gnu::noinline]] std::uint64_t unit_of_work(std::uint64_t index) {
    std::uint64_t x = (index + 1) * 0x9e3779b97f4a7c15ULL;  // never 0: xorshift would stay 0
    std::uint64_t acc = index;
    for (std::uint64_t i = 0; i < k_steps_per_unit; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        acc = acc * 0x100000001b3ULL + x;
    }
    return acc;
}

void usage(std::FILE* to) {
    std::fprintf(to,
                 "usage: forkline-serialfrac --serial S [--units U] [--phases K] [--threads N]\n"
                 "  S: the share of the U units (default %zu) that runs on one thread, 0 to 1;\n"
                 "  the rest is split evenly over FORKLINE_WORKERS workers, in K (default %u)\n"
                 "  alternating serial and parallel phases. --threads N: N plain threads and\n"
                 "  no runtime instead.\n",
                 k_default_units, k_default_phases);
}

/// [lo, hi) of piece `i` of `n` pieces of [0, total).
std::pair<std::size_t, std::size_t> piece(std::size_t total, unsigned i, unsigned n) {
    return forkline::affinity_block(std::size_t{0}, total, i, n);
}

/// The same work on `threads` plain threads, no runtime: see the top.
void run_plain(std::vector<std::uint64_t>& value, std::size_t serial_units, std::size_t parallel_units,
               unsigned phases, unsigned threads) {
    std::barrier sync(static_cast<std::ptrdiff_t>(threads));
    std::vector<std::atomic<std::size_t>> next(phases);
    for (unsigned p = 0; p < phases; ++p) next[p].store(piece(parallel_units, p, phases).first);
    auto body = [&](unsigned me) {
        for (unsigned p = 0; p < phases; ++p) {
            if (me == 0) {
                const auto [s_lo, s_hi] = piece(serial_units, p, phases);
                for (std::size_t k = s_lo; k < s_hi; ++k) value[k] = unit_of_work(k);
            }
            sync.arrive_and_wait();  // the serial piece done
            const std::size_t p_hi = piece(parallel_units, p, phases).second;
            for (std::size_t k = next[p].fetch_add(1); k < p_hi; k = next[p].fetch_add(1)) {
                value[serial_units + k] = unit_of_work(serial_units + k);
            }
            sync.arrive_and_wait();  // the parallel piece done
        }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(body, t);
    body(0);
    for (std::thread& t : pool) t.join();
}

}  // namespace

int main(int argc, char** argv) {
    double serial = -1;
    std::size_t units = k_default_units;
    unsigned phases = k_default_phases;
    unsigned threads = 0;  // 0: the runtime
    for (int i = 1; i < argc; ++i) {
        const bool has_value = i + 1 < argc;
        char* end = nullptr;
        if (std::strcmp(argv[i], "--serial") == 0 && has_value) {
            serial = std::strtod(argv[++i], &end);
        } else if (std::strcmp(argv[i], "--units") == 0 && has_value) {
            units = std::strtoull(argv[++i], &end, 10);
        } else if (std::strcmp(argv[i], "--phases") == 0 && has_value) {
            phases = static_cast<unsigned>(std::strtoul(argv[++i], &end, 10));
        } else if (std::strcmp(argv[i], "--threads") == 0 && has_value) {
            threads = static_cast<unsigned>(std::strtoul(argv[++i], &end, 10));
            if (threads == 0 || threads > 4096) {
                std::fprintf(stderr, "forkline-serialfrac: --threads %s: need 1 to 4096\n", argv[i]);
                return 2;
            }
        } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
        if (end == nullptr || *end != '\0' || end == argv[i]) {
            std::fprintf(stderr, "forkline-serialfrac: %s %s is not a number\n", argv[i - 1], argv[i]);
            return 2;
        }
    }
    if (!(serial >= 0 && serial <= 1) || units == 0 || phases == 0 || phases > units) {
        std::fprintf(stderr, "forkline-serialfrac: need --serial in [0, 1], --units >= 1, 1 <= --phases <= units\n");
        usage(stderr);
        return 2;
    }

    const auto serial_units = static_cast<std::size_t>(std::llround(serial * static_cast<double>(units)));
    const std::size_t parallel_units = units - serial_units;
    // Serial units take indices [0, serial_units), parallel ones the rest,
    // so the checksum covers [0, units) whatever the split.
    std::vector<std::uint64_t> value(units);
    if (threads > 0) {
        const auto start = std::chrono::steady_clock::now();
        run_plain(value, serial_units, parallel_units, phases, threads);
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::uint64_t checksum = 0;
        for (const std::uint64_t v : value) checksum += v;
        std::printf("serial %.4f (%zu of %zu units) threads %u phases %u checksum %016llx work_s %.6f\n",
                    static_cast<double>(serial_units) / static_cast<double>(units), serial_units, units, threads,
                    phases, static_cast<unsigned long long>(checksum), elapsed);
        return 0;
    }
    try {
        forkline::runtime rt;  // FORKLINE_WORKERS and FORKLINE_PLACES apply
        const auto start = std::chrono::steady_clock::now();
        rt.run([&] {
            for (unsigned p = 0; p < phases; ++p) {
                const auto [s_lo, s_hi] = piece(serial_units, p, phases);
                for (std::size_t k = s_lo; k < s_hi; ++k) value[k] = unit_of_work(k);
                const auto [p_lo, p_hi] = piece(parallel_units, p, phases);
                // One unit per piece, balanced by stealing: a worker whose
                // core the host takes away for a while (a virtual machine's
                // vCPU) does fewer units instead of holding up the phase.
                forkline::parallel_for(serial_units + p_lo, serial_units + p_hi, std::size_t{1},
                                       [&value](std::size_t k) { value[k] = unit_of_work(k); });
            }
        });
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::uint64_t checksum = 0;
        for (const std::uint64_t v : value) checksum += v;
        std::printf("serial %.4f (%zu of %zu units) workers %u phases %u checksum %016llx work_s %.6f\n",
                    static_cast<double>(serial_units) / static_cast<double>(units), serial_units, units,
                    rt.worker_count(), phases, static_cast<unsigned long long>(checksum), elapsed);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "forkline-serialfrac: %s\n", e.what());
        return 1;
    }
}

// runtime/ceiling.cpp: the host's compute ceiling, measured and cached. See
// "Host ceilings" in runtime/DESIGN.md.
#include <sys/utsname.h>  // uname
#include <sched.h>        // sched_getaffinity, CPU_ISSET

#include <algorithm>   // sort, find_if
#include <atomic>      // atomic
#include <chrono>      // steady_clock
#include <cstdint>     // uint64_t
#include <cstdio>      // snprintf
#include <cstdlib>     // getenv
#include <filesystem>  // create_directories, rename
#include <fstream>     // ifstream, ofstream
#include <map>         // map
#include <sstream>     // istringstream
#include <string>      // string
#include <system_error>  // error_code

#include "forkline/affinity.hpp"
#include "forkline/parallel_for.hpp"
#include "forkline/probe.hpp"

namespace forkline::probe {

namespace {

using clock_type = std::chrono::steady_clock;

/// Registers only: a xorshift and a dependent multiply-add chain, so the
/// loop is bound by the core's own integer and floating-point units.
struct lane {
    std::uint64_t x = 0x9e3779b97f4a7c15ULL;
    double f = 1.0;
    void run(unsigned iterations) noexcept {
        for (unsigned i = 0; i < iterations; ++i) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f = f * 0.999999937 + static_cast<double>(x & 0xffU) * 1e-9;
        }
        asm volatile("" : "+r"(x), "+x"(f));  // keep the chain
    }
};

/// Iterations per second of one thread while `n` run (mean over threads),
/// one window of `seconds`. NaN when the threads did not all start within
/// the grace time (a worker busy elsewhere): not a measurement of n at once.
double window_rate(runtime& rt, unsigned n, double seconds) {
    std::vector<double> rates(n, 0.0);
    std::atomic<unsigned> arrived{0};
    std::atomic<bool> late{false};
    rt.run([&] {
        parallel_for(0U, n, [&](unsigned i) {
            // Start together: the ceiling is n threads running at once.
            arrived.fetch_add(1, std::memory_order_acq_rel);
            const auto grace = clock_type::now() + std::chrono::milliseconds(500);
            while (arrived.load(std::memory_order_acquire) < n) {
                if (clock_type::now() > grace) {
                    late.store(true, std::memory_order_relaxed);
                    break;
                }
            }
            lane l;
            l.x += i;
            std::uint64_t done = 0;
            const auto t0 = clock_type::now();
            const auto until = t0 + std::chrono::duration<double>(seconds);
            auto now = t0;
            do {
                l.run(4096);
                done += 4096;
                now = clock_type::now();
            } while (now < until);
            rates[i] = static_cast<double>(done) / std::chrono::duration<double>(now - t0).count();
        }, static_affinity);
    });
    if (late.load()) return std::numeric_limits<double>::quiet_NaN();
    double sum = 0;
    for (const double r : rates) sum += r;
    return sum / n;
}

/// Median of three windows' rates at n threads.
double rate_at(unsigned n, placement_policy policy, bool use_smt, double seconds) {
    const topology_summary host = topology::discover().summary();
    runtime_config c;
    c.placement.workers = n;
    c.placement.policy = policy;
    c.placement.use_smt = use_smt || n > host.cores;
    c.placement.oversubscribe = n > std::max(host.pus, 1U);
    c.read_environment = false;
    c.stats = "off";
    runtime rt(c);
    std::vector<double> v;
    for (int w = 0; w < 3; ++w) {
        const double r = window_rate(rt, n, seconds);
        if (r > 0) v.push_back(r);
    }
    if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

/// FNV-1a, 64 bits: a file name that is the same on every build.
std::uint64_t fnv1a(const std::string& s) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

std::string cache_key(placement_policy policy, bool use_smt) {
    std::string key;
    std::ifstream info("/proc/cpuinfo");
    for (std::string line; std::getline(info, line);) {
        if (line.rfind("model name", 0) == 0) {
            key += line;
            break;
        }
    }
    cpu_set_t mask;
    CPU_ZERO(&mask);
    if (sched_getaffinity(0, sizeof mask, &mask) == 0) {
        key += " cpus";
        for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &mask)) key += " " + std::to_string(c);
        }
    }
    utsname u{};
    if (uname(&u) == 0) key += std::string(" kernel ") + u.release;
    key += policy == placement_policy::scatter ? " scatter" : " compact";
    key += use_smt ? " smt" : "";
    key += " v1";  // the loop: change it and old caches stop matching
    return key;
}

std::filesystem::path cache_dir() {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x == '/') {
        return std::filesystem::path(x) / "forkline";
    }
    if (const char* h = std::getenv("HOME"); h != nullptr && *h == '/') {
        return std::filesystem::path(h) / ".cache" / "forkline";
    }
    return {};
}

}  // namespace

std::vector<compute_ceiling> measure_compute_ceiling(std::span<const unsigned> counts, placement_policy policy,
                                                     bool use_smt, double seconds) {
    std::vector<compute_ceiling> out;
    const double one = rate_at(1, policy, use_smt, seconds);
    if (!(one > 0)) return out;
    for (const unsigned n : counts) {
        if (n == 0) continue;
        const double r = n == 1 ? one : rate_at(n, policy, use_smt, seconds);
        if (r > 0) out.push_back({n, one / r});
    }
    return out;
}

std::vector<compute_ceiling> host_compute_ceiling(std::span<const unsigned> counts, placement_policy policy,
                                                  bool use_smt, bool recalibrate, double seconds) {
    const std::string key = cache_key(policy, use_smt);
    const std::filesystem::path dir = cache_dir();
    char name[48];
    std::snprintf(name, sizeof name, "ceiling-%016llx.txt", static_cast<unsigned long long>(fnv1a(key)));
    const std::filesystem::path file = dir.empty() ? std::filesystem::path() : dir / name;

    // The file: "# KEY" then "N SLOWDOWN" per line. One written for another
    // key (a hash collision) is ignored.
    std::map<unsigned, double> known;
    if (!recalibrate && !file.empty()) {
        std::ifstream in(file);
        std::string first;
        if (std::getline(in, first) && first == "# " + key) {
            unsigned n = 0;
            double slow = 0;
            while (in >> n >> slow) {
                if (n > 0 && slow > 0) known[n] = slow;
            }
        }
    }
    std::vector<unsigned> missing;
    for (const unsigned n : counts) {
        if (n > 0 && known.find(n) == known.end()) missing.push_back(n);
    }
    if (!missing.empty()) {
        for (const compute_ceiling& c : measure_compute_ceiling(missing, policy, use_smt, seconds)) {
            known[c.workers] = c.slowdown;
        }
        if (!file.empty()) {
            // Written whole to a temporary and renamed: a reader sees the old
            // file or the new one. Failure only costs the next run a calibration.
            std::error_code ec;
            std::filesystem::create_directories(dir, ec);
            const std::filesystem::path tmp = file.string() + ".tmp";
            {
                std::ofstream o(tmp);
                o << "# " << key << "\n";
                for (const auto& [n, slow] : known) o << n << " " << slow << "\n";
            }
            std::filesystem::rename(tmp, file, ec);
            if (ec) std::filesystem::remove(tmp, ec);
        }
    }
    std::vector<compute_ceiling> out;
    for (const unsigned n : counts) {
        if (const auto it = known.find(n); it != known.end()) out.push_back({n, it->second});
    }
    return out;
}

}  // namespace forkline::probe

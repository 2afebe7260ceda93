// runtime/ceiling.cpp: the host's compute ceiling, measured and cached. See
// "Host ceilings" in runtime/DESIGN.md.
#include <sys/utsname.h>  // uname
#include <sched.h>        // sched_getaffinity, CPU_ISSET
#include <sys/mman.h>     // madvise, MADV_HUGEPAGE
#include <unistd.h>       // sysconf

#include <algorithm>   // sort, find_if
#include <atomic>      // atomic
#include <chrono>      // steady_clock
#include <cmath>       // isfinite
#include <cstdint>     // uint64_t, uintptr_t
#include <cstdio>      // snprintf
#include <cstdlib>     // getenv
#include <filesystem>  // create_directories, rename
#include <fstream>     // ifstream, ofstream
#include <functional>  // function
#include <map>         // map
#include <memory>      // unique_ptr
#include <sstream>     // istringstream
#include <string>      // string
#include <system_error>  // error_code

#include "forkline/affinity.hpp"
#include "forkline/numa_memory.hpp"
#include "forkline/parallel_for.hpp"
#include "forkline/probe.hpp"

namespace forkline::probe {

namespace {

using clock_type = std::chrono::steady_clock;

/// Registers only: a xorshift feeding an integer multiply-add chain and a
/// floating-point one, so the loop is bound by the core's own integer and
/// floating-point units and a sibling or a slower clock shows in it.
struct lane {
    std::uint64_t x = 0x9e3779b97f4a7c15ULL;
    std::uint64_t acc = 1;
    double f = 1.0;
    void run(unsigned iterations) noexcept {
        for (unsigned i = 0; i < iterations; ++i) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            acc = acc * 0x100000001b3ULL + x;
            f = f * 0.999999937 + static_cast<double>(x & 0xffU) * 1e-9;
        }
        asm volatile("" : "+r"(x), "+r"(acc), "+x"(f));  // keep the chains
    }
};

/// Iterations per second of one thread while `active` of the runtime's n
/// workers run the loop (mean over those threads), one window of
/// `seconds`. NaN when they did not all start within the grace time (a
/// worker busy elsewhere): not a measurement of that many at once.
double window_rate(runtime& rt, unsigned n, unsigned active, double seconds) {
    std::vector<double> rates(active, 0.0);
    std::atomic<unsigned> arrived{0};
    std::atomic<bool> late{false};
    rt.run([&] {
        parallel_for(0U, n, [&](unsigned i) {
            if (i >= active) return;
            // Start together: the ceiling is `active` threads running at once.
            arrived.fetch_add(1, std::memory_order_acq_rel);
            const auto grace = clock_type::now() + std::chrono::milliseconds(500);
            while (arrived.load(std::memory_order_acquire) < active) {
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
    return sum / active;
}

/// A runtime of n workers placed as probe::scaling() places them.
runtime_config config_for(unsigned n, placement_policy policy, bool use_smt) {
    const topology_summary host = topology::discover().summary();
    runtime_config c;
    c.placement.workers = n;
    c.placement.policy = policy;
    c.placement.use_smt = use_smt || n > host.cores;
    c.placement.oversubscribe = n > std::max(host.pus, 1U);
    c.read_environment = false;
    c.stats = "off";
    return c;
}

/// The slowdown at n: pairs of windows, one thread alone (worker 0) then
/// all n, and the median of the pairs' ratios. A pair is measured close
/// together in time, so a host whose speed drifts (a VM's neighbours, a
/// clock settling) moves both halves alike. Nine pairs of shorter windows
/// (0.6 x `seconds`), because single windows on a 2-vCPU VM scatter by
/// +-4%: a slowdown is kept only when the middle half of the ratios lies
/// wholly above 1. When it holds 1, the host shows no slowdown this noise
/// can tell apart, and when it lies below 1 (n threads each faster than
/// one alone, which independent register-bound loops cannot be) the
/// windows were disturbed; either way 1, not the noise, which would then
/// be read into every serial fraction corrected with it.
double slowdown_at(unsigned n, placement_policy policy, bool use_smt, double seconds) {
    runtime rt(config_for(n, policy, use_smt));
    (void)window_rate(rt, n, n, seconds / 2);  // wake the workers, settle the clocks
    std::vector<double> v;
    for (int w = 0; w < 9; ++w) {
        const double alone = window_rate(rt, n, 1, 0.6 * seconds);
        const double all = n == 1 ? alone : window_rate(rt, n, n, 0.6 * seconds);
        if (alone > 0 && all > 0) v.push_back(alone / all);
    }
    if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
    return slowdown_of(v);
}

/// The last-level caches of the whole machine in bytes (each L3 domain's
/// size times their count); 0 when the system does not say.
std::size_t last_level_cache_bytes() {
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    const topology_summary host = topology::discover().summary();
    if (l3 > 0) return static_cast<std::size_t>(l3) * std::max(host.l3_groups, 1U);
    if (l2 > 0) return static_cast<std::size_t>(l2) * std::max(host.cores, 1U);
    return 0;
}

/// Bytes per second of n threads together, each sweeping its own block of
/// the arrays in pieces until the window ends; NaN when the threads did not
/// all start within the grace time.
double window_bandwidth(runtime& rt, unsigned n, double seconds, double* a, const double* b, const double* c,
                        std::size_t elements) {
    std::vector<double> rates(n, 0.0);
    std::atomic<unsigned> arrived{0};
    std::atomic<bool> late{false};
    rt.run([&] {
        parallel_for(0U, n, [&](unsigned i) {
            const std::size_t lo = elements * i / n;
            const std::size_t hi = elements * (i + 1) / n;
            arrived.fetch_add(1, std::memory_order_acq_rel);
            const auto grace = clock_type::now() + std::chrono::milliseconds(500);
            while (arrived.load(std::memory_order_acquire) < n) {
                if (clock_type::now() > grace) {
                    late.store(true, std::memory_order_relaxed);
                    break;
                }
            }
            // Pieces of 256 KiB per array: the clock is read often enough
            // to end near the window's end, seldom enough to cost nothing.
            constexpr std::size_t piece = 32768;
            const double q = 3.0 + i;
            std::uint64_t moved = 0;
            const auto t0 = clock_type::now();
            const auto until = t0 + std::chrono::duration<double>(seconds);
            auto now = t0;
            std::size_t at = lo;
            do {
                const std::size_t end = std::min(hi, at + piece);
                for (std::size_t j = at; j < end; ++j) a[j] = b[j] + q * c[j];
                moved += 24 * (end - at);
                at = end == hi ? lo : end;
                now = clock_type::now();
            } while (now < until);
            rates[i] = static_cast<double>(moved) / std::chrono::duration<double>(now - t0).count();
        }, static_affinity);
    });
    if (late.load()) return std::numeric_limits<double>::quiet_NaN();
    double sum = 0;
    for (const double r : rates) sum += r;
    return sum;
}

/// The triad's arrays for one NUMA layout. Big (two last-level caches
/// each, so the sweeps stream from memory), so made once and shared by the
/// counts whose workers sit on the same nodes: on a one-node host a single
/// set, first-touched once, serves every count.
struct triad_set {
    std::vector<int> layout;  // the nodes of the workers that touched it
    numa_array<double> a, b, c;
};

std::size_t triad_elements() {
    constexpr std::size_t min_bytes = std::size_t{64} << 20;
    std::size_t max_bytes = std::size_t{256} << 20;
    // At most an eighth of the free memory per array: a small container
    // gets a smaller (cache-helped, so higher) ceiling, not an OOM kill.
    const long pages = sysconf(_SC_AVPHYS_PAGES);
    const long page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) {
        max_bytes = std::clamp(static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) / 8,
                               std::size_t{16} << 20, max_bytes);
    }
    const std::size_t bytes = std::min(std::max(2 * last_level_cache_bytes(), min_bytes), max_bytes);
    return bytes / sizeof(double);
}

/// Huge pages where the kernel offers them on request: a few thousand
/// faults instead of a few hundred thousand for a gigabyte. Advice only.
void advise_huge(void* p, std::size_t bytes) {
    const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    const auto start = reinterpret_cast<std::uintptr_t>(p) & ~(page - 1);
    const auto end = reinterpret_cast<std::uintptr_t>(p) + bytes;
    (void)madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);
}

/// Median of three windows' bandwidths at n threads.
double bandwidth_at(unsigned n, placement_policy policy, bool use_smt, double seconds,
                    std::vector<std::unique_ptr<triad_set>>& sets, std::size_t elements) {
    runtime rt(config_for(n, policy, use_smt));
    std::vector<int> layout;
    for (const worker_place& p : rt.plan().places) layout.push_back(p.numa_os_index);
    if (std::all_of(layout.begin(), layout.end(), [&](int node) { return node == layout.front(); })) layout.resize(1);
    triad_set* set = nullptr;
    for (const auto& s : sets) {
        if (s->layout == layout) set = s.get();
    }
    if (set == nullptr) {
        sets.push_back(std::make_unique<triad_set>(
            triad_set{layout, numa_array<double>(rt, elements), numa_array<double>(rt, elements),
                      numa_array<double>(rt, elements)}));
        set = sets.back().get();
        double* const pa = set->a.data();
        double* const pb = set->b.data();
        double* const pc = set->c.data();
        for (double* p : {pa, pb, pc}) advise_huge(p, elements * sizeof(double));
        // First touch by the thread that sweeps each block: the same split.
        rt.run([&] {
            parallel_for(0U, n, [&](unsigned i) {
                for (std::size_t j = elements * i / n; j < elements * (i + 1) / n; ++j) {
                    pa[j] = 0;
                    pb[j] = static_cast<double>(j & 1023);
                    pc[j] = 1.0;
                }
            }, static_affinity);
        });
    }
    std::vector<double> v;
    for (int w = 0; w < 3; ++w) {
        const double r = window_bandwidth(rt, n, seconds, set->a.data(), set->b.data(), set->c.data(), elements);
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

/// One figure per thread count, cached in a file named by `stem` and the
/// key's hash: "# KEY" then "N VALUE" per line. A file written for another
/// key (a hash collision, a changed loop) is ignored; counts it lacks are
/// measured with `measure` and the file rewritten whole.
std::map<unsigned, double> cached_per_count(
    const char* stem, const std::string& key, std::span<const unsigned> counts, bool recalibrate,
    const std::function<std::vector<std::pair<unsigned, double>>(const std::vector<unsigned>&)>& measure) {
    const std::filesystem::path dir = cache_dir();
    char name[64];
    std::snprintf(name, sizeof name, "%s-%016llx.txt", stem, static_cast<unsigned long long>(fnv1a(key)));
    const std::filesystem::path file = dir.empty() ? std::filesystem::path() : dir / name;
    std::map<unsigned, double> known;
    if (!recalibrate && !file.empty()) {
        std::ifstream in(file);
        std::string first;
        if (std::getline(in, first) && first == "# " + key) {
            unsigned n = 0;
            double value = 0;
            while (in >> n >> value) {
                if (n > 0 && value > 0) known[n] = value;
            }
        }
    }
    std::vector<unsigned> missing;
    for (const unsigned n : counts) {
        if (n > 0 && known.find(n) == known.end()) missing.push_back(n);
    }
    if (missing.empty()) return known;
    for (const auto& [n, value] : measure(missing)) known[n] = value;
    if (!file.empty()) {
        // Written whole to a temporary and renamed: a reader sees the old
        // file or the new one. Failure only costs the next run a calibration.
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        const std::filesystem::path tmp = file.string() + ".tmp";
        {
            std::ofstream o(tmp);
            o.precision(9);
            o << "# " << key << "\n";
            for (const auto& [n, value] : known) o << n << " " << value << "\n";
        }
        std::filesystem::rename(tmp, file, ec);
        if (ec) std::filesystem::remove(tmp, ec);
    }
    return known;
}

double figure_of(const compute_ceiling& c) { return c.slowdown; }
double figure_of(const memory_ceiling& m) { return m.bytes_per_s; }

/// A ceiling (compute_ceiling or memory_ceiling: a worker count and one
/// figure) per count through the cache: `measure` runs for the counts the
/// file lacks.
template <class Ceiling, class Measure>
std::vector<Ceiling> cached_ceiling(const char* stem, const std::string& key, std::span<const unsigned> counts,
                                    bool recalibrate, const Measure& measure) {
    const std::map<unsigned, double> known =
        cached_per_count(stem, key, counts, recalibrate, [&](const std::vector<unsigned>& missing) {
            std::vector<std::pair<unsigned, double>> out;
            for (const Ceiling& c : measure(missing)) out.emplace_back(c.workers, figure_of(c));
            return out;
        });
    std::vector<Ceiling> out;
    for (const unsigned n : counts) {
        if (const auto it = known.find(n); it != known.end()) out.push_back({n, it->second});
    }
    return out;
}

}  // namespace

double slowdown_of(std::span<const double> ratios) {
    if (ratios.empty()) return std::numeric_limits<double>::quiet_NaN();
    std::vector<double> v(ratios.begin(), ratios.end());
    for (const double r : v) {
        if (!(r > 0) || !std::isfinite(r)) return std::numeric_limits<double>::quiet_NaN();
    }
    std::sort(v.begin(), v.end());
    // The first quartile by the nearest rank below; when it is above 1,
    // so is the whole middle half.
    const std::size_t n = v.size();
    const double q1 = v[(n - 1) / 4];
    const double median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return q1 > 1.0 ? median : 1.0;
}

std::vector<compute_ceiling> measure_compute_ceiling(std::span<const unsigned> counts, placement_policy policy,
                                                     bool use_smt, double seconds) {
    std::vector<compute_ceiling> out;
    for (const unsigned n : counts) {
        if (n == 0) continue;
        if (n == 1) {
            out.push_back({1, 1.0});  // by definition: one thread against itself
            continue;
        }
        const double h = slowdown_at(n, policy, use_smt, seconds);
        if (h > 0) out.push_back({n, h});
    }
    return out;
}

std::vector<compute_ceiling> host_compute_ceiling(std::span<const unsigned> counts, placement_policy policy,
                                                  bool use_smt, bool recalibrate, double seconds) {
    return cached_ceiling<compute_ceiling>("ceiling", cache_key(policy, use_smt) + " v3", counts, recalibrate,
                                           [&](const std::vector<unsigned>& missing) {
                                               return measure_compute_ceiling(missing, policy, use_smt, seconds);
                                           });
}

std::vector<memory_ceiling> measure_memory_ceiling(std::span<const unsigned> counts, placement_policy policy,
                                                   bool use_smt, double seconds) {
    std::vector<memory_ceiling> out;
    std::vector<std::unique_ptr<triad_set>> sets;
    const std::size_t elements = triad_elements();
    for (const unsigned n : counts) {
        if (n == 0) continue;
        const double r = bandwidth_at(n, policy, use_smt, seconds, sets, elements);
        if (r > 0) out.push_back({n, r});
    }
    return out;
}

std::vector<memory_ceiling> host_memory_ceiling(std::span<const unsigned> counts, placement_policy policy,
                                                bool use_smt, bool recalibrate, double seconds) {
    return cached_ceiling<memory_ceiling>("memory", cache_key(policy, use_smt) + " triad v1", counts, recalibrate,
                                          [&](const std::vector<unsigned>& missing) {
                                              return measure_memory_ceiling(missing, policy, use_smt, seconds);
                                          });
}

}  // namespace forkline::probe

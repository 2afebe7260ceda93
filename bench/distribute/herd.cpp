// bench/distribute/herd.cpp: the thundering herd, measured.
//
// N waiters (1,000) block on one "configuration changed" event. When it
// fires, each calls a simulated service of fixed capacity: C slots (8), each
// held for a fixed service time S (1 ms), so the service completes C / S
// calls per ms (8). A call that finds no free slot is refused at once; the
// caller retries after a full-jitter backoff (base S, cap W), the same in
// every mode, so that the modes differ in how the waiters are woken only.
// Three ways to wake them:
//   wake-all  one notify_all on a condition variable: every waiter calls at once;
//   jitter    the same notify_all, then each waiter first sleeps uniform(0, W);
//   wake-one  a token per slot: the event wakes C waiters, and each waiter,
//             once served, wakes the next (a semaphore per waiter).
// The service counts every call (accepted or refused) in the 1 ms window it
// arrived in, since the event. Per mode: the peak of those windows (the
// arrival rate the service must absorb), the refused calls (futile wake-ups:
// a waiter woken, or a retry made, that found no capacity), how many waiters
// were refused at least once, when the last waiter woke, and when the last
// was served.
//
// Why threads. A herd is blocked waiters that the operating system wakes: a
// thread per waiter, blocked in the kernel, is what a program's waiters are,
// and the cost of waking 1,000 of them (runnable at once, queued on 2 cores,
// each taking the condition variable's mutex in turn) is part of the herd.
// Simulated waiters as tasks on forkline workers would have to block a
// worker each (1,000 workers) or be rewritten as callbacks, and would then
// measure the runtime's queue instead of a wake-up. The waiters sleep while
// they wait and while they are served, so 1,000 threads cost little CPU.
#include "herd.hpp"

#include <algorithm>           // max, sort, max_element
#include <cerrno>              // errno
#include <atomic>              // atomic
#include <chrono>              // steady_clock, durations
#include <condition_variable>  // condition_variable
#include <cstdint>             // uint64_t, uint32_t
#include <cstdio>              // printf, fprintf, FILE
#include <cstdlib>             // strtoull
#include <cstring>             // strerror
#include <deque>               // deque (semaphores do not move)
#include <memory>              // unique_ptr
#include <mutex>               // mutex, unique_lock
#include <semaphore>           // binary_semaphore
#include <stdexcept>           // invalid_argument
#include <string>              // string
#include <string_view>         // string_view
#include <system_error>        // system_error (thread creation)
#include <thread>              // thread, sleep_for
#include <vector>              // vector

#include "../json.hpp"                     // json_string, json_number
#include "../report.hpp"                   // describe_host, host_info
#include "forkline/backoff.hpp"            // full_jitter_backoff
#include "forkline/detail/splitmix64.hpp"  // splitmix64 (per-waiter seeds)

namespace forkline_bench::distribute {
namespace {

using clock_type = std::chrono::steady_clock;

enum class wake_mode { all, jitter, one };
constexpr wake_mode k_modes[] = {wake_mode::all, wake_mode::jitter, wake_mode::one};

const char* mode_name(wake_mode m) {
    switch (m) {
        case wake_mode::all: return "wake-all";
        case wake_mode::jitter: return "jitter";
        case wake_mode::one: return "wake-one";
    }
    return "?";
}

struct herd_options {
    unsigned waiters = 1000;
    unsigned capacity = 8;
    std::chrono::microseconds service{1000};
    std::chrono::microseconds window{200'000};
    unsigned tokens = 0;  // 0: as many as the service has slots
    unsigned reps = 5;
    std::uint64_t seed = 13;
    std::string json_path;
};

struct usage_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// 1 ms windows since the event, up to this many; later arrivals count in the last.
constexpr std::size_t k_windows = 60'000;

// The simulated service: `capacity` slots, counted arrivals.
class service {
public:
    explicit service(unsigned capacity) : m_capacity(capacity), m_arrivals(k_windows), m_first_arrivals(k_windows) {}

    // Written by the main thread before the event fires; read by the waiters
    // after it, ordered by the event (the mutex or the semaphore).
    void set_origin(clock_type::time_point t0) noexcept { m_origin = t0; }

    // One call: counted in its window (and, when it is the caller's first,
    // in the first calls' window); takes a slot when one is free.
    bool try_enter(bool first) noexcept {
        const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - m_origin);
        const auto w = std::min<std::size_t>(static_cast<std::size_t>(std::max<long long>(since.count(), 0)),
                                             k_windows - 1);
        m_arrivals[w].fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally, read after the joins
        if (first) m_first_arrivals[w].fetch_add(1, std::memory_order_relaxed);  // relaxed: as above
        unsigned used = m_in_use.load(std::memory_order_relaxed);
        do {
            if (used >= m_capacity) {
                m_refused.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
                return false;
            }
            // relaxed: the slot count guards no other data
        } while (!m_in_use.compare_exchange_weak(used, used + 1, std::memory_order_relaxed));
        return true;
    }
    void leave() noexcept { m_in_use.fetch_sub(1, std::memory_order_relaxed); }

    // The most calls (or first calls) that arrived in one window.
    std::uint32_t peak_per_window(bool first_only) const noexcept {
        std::uint32_t peak = 0;
        for (const auto& a : first_only ? m_first_arrivals : m_arrivals)
            peak = std::max(peak, a.load(std::memory_order_relaxed));
        return peak;
    }
    std::uint64_t refused() const noexcept { return m_refused.load(std::memory_order_relaxed); }
    clock_type::time_point origin() const noexcept { return m_origin; }

private:
    const unsigned m_capacity;
    clock_type::time_point m_origin{};
    std::atomic<unsigned> m_in_use{0};
    std::atomic<std::uint64_t> m_refused{0};
    std::vector<std::atomic<std::uint32_t>> m_arrivals;
    std::vector<std::atomic<std::uint32_t>> m_first_arrivals;
};

// What one run of one mode measured.
struct run_figures {
    double peak_per_ms = 0;     // most calls arriving in one 1 ms window
    double peak_first_per_ms = 0;  // the same, counting first calls only (retries left out)
    double refused = 0;         // futile calls: refused, the caller retried
    double waiters_refused = 0; // waiters refused at least once
    double last_wake_ms = 0;    // event to the last waiter running
    double all_served_ms = 0;   // event to the last waiter served
};

void store_max(std::atomic<std::int64_t>& a, std::int64_t v) noexcept {
    std::int64_t cur = a.load(std::memory_order_relaxed);
    // relaxed: a maximum read after the joins
    while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
}

run_figures run_once(const herd_options& opt, wake_mode mode, unsigned rep) {
    const unsigned n = opt.waiters;
    const unsigned tokens = std::min(n, opt.tokens == 0 ? opt.capacity : opt.tokens);
    service svc(opt.capacity);

    std::mutex m;
    std::condition_variable cv;        // the event (wake-all, jitter)
    std::condition_variable ready_cv;  // the main thread waits for every waiter to block
    bool fired = false;
    unsigned ready = 0;
    std::deque<std::binary_semaphore> turn;  // wake-one: waiter i's token
    for (unsigned i = 0; i < n; ++i) turn.emplace_back(0);
    std::atomic<unsigned> next_turn{tokens};
    std::atomic<std::int64_t> last_wake_ns{0};
    std::atomic<std::int64_t> last_done_ns{0};
    std::atomic<unsigned> waiters_refused{0};

    auto waiter = [&](unsigned i) {
        const std::uint64_t seed = forkline::detail::splitmix64(opt.seed + rep * 0x10001ULL + i * 0x9e37ULL).next();
        if (mode == wake_mode::one) {
            {
                std::lock_guard<std::mutex> lock(m);
                ++ready;
            }
            ready_cv.notify_one();
            turn[i].acquire();
        } else {
            std::unique_lock<std::mutex> lock(m);
            ++ready;
            ready_cv.notify_one();
            cv.wait(lock, [&] { return fired; });
        }
        const clock_type::time_point t0 = svc.origin();
        store_max(last_wake_ns, (clock_type::now() - t0).count());
        if (mode == wake_mode::jitter) {
            forkline::full_jitter_backoff spread(opt.window, opt.window, seed ^ 1);
            std::this_thread::sleep_for(spread.next());
        }
        forkline::full_jitter_backoff retry(opt.service, std::max(opt.window, opt.service), seed);
        bool was_refused = false;
        while (!svc.try_enter(!was_refused)) {
            was_refused = true;
            std::this_thread::sleep_for(retry.next());
        }
        std::this_thread::sleep_for(opt.service);  // being served
        svc.leave();
        store_max(last_done_ns, (clock_type::now() - t0).count());
        if (was_refused) waiters_refused.fetch_add(1, std::memory_order_relaxed);  // relaxed: a tally
        if (mode == wake_mode::one) {
            // relaxed: the semaphore's release orders the hand-over itself
            const unsigned next = next_turn.fetch_add(1, std::memory_order_relaxed);
            if (next < n) turn[next].release();
        }
    };

    std::vector<std::thread> threads;
    threads.reserve(n);
    try {
        for (unsigned i = 0; i < n; ++i) threads.emplace_back(waiter, i);
    } catch (const std::system_error&) {
        // Out of threads: let the ones started run to the end, then report.
        {
            std::lock_guard<std::mutex> lock(m);
            fired = true;
        }
        cv.notify_all();
        next_turn.store(n, std::memory_order_relaxed);  // nobody hands on: each is released here
        for (std::size_t i = 0; i < threads.size(); ++i) turn[i].release();
        for (auto& t : threads) t.join();
        throw;
    }
    {
        std::unique_lock<std::mutex> lock(m);
        ready_cv.wait(lock, [&] { return ready == n; });
    }
    // Give the last ones time to block in wait()/acquire() (ready counts
    // them just before they do), so that the event wakes sleepers.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto t0 = clock_type::now();
    svc.set_origin(t0);
    if (mode == wake_mode::one) {
        for (unsigned i = 0; i < tokens; ++i) turn[i].release();
    } else {
        {
            std::lock_guard<std::mutex> lock(m);
            fired = true;
        }
        cv.notify_all();
    }
    for (auto& t : threads) t.join();

    run_figures f;
    f.peak_per_ms = svc.peak_per_window(false);
    f.peak_first_per_ms = svc.peak_per_window(true);
    f.refused = static_cast<double>(svc.refused());
    f.waiters_refused = waiters_refused.load(std::memory_order_relaxed);
    f.last_wake_ms = static_cast<double>(last_wake_ns.load(std::memory_order_relaxed)) * 1e-6;
    f.all_served_ms = static_cast<double>(last_done_ns.load(std::memory_order_relaxed)) * 1e-6;
    return f;
}

struct stat3 {
    double median = 0, min = 0, max = 0;
};

stat3 stats_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    stat3 s;
    if (v.empty()) return s;
    s.min = v.front();
    s.max = v.back();
    const std::size_t k = v.size();
    s.median = k % 2 == 1 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
    return s;
}

struct mode_result {
    wake_mode mode;
    std::vector<run_figures> runs;
    template <class Field>
    stat3 stat(Field field) const {
        std::vector<double> v;
        for (const auto& r : runs) v.push_back(r.*field);
        return stats_of(v);
    }
    template <class Field>
    std::vector<double> samples(Field field) const {
        std::vector<double> v;
        for (const auto& r : runs) v.push_back(r.*field);
        return v;
    }
};

void print_usage(std::FILE* out, const char* name) {
    std::fprintf(out,
                 "usage: %s [options]\n"
                 "  N waiters block on one event, then call a service of C slots held S each\n"
                 "  (capacity C/S calls per ms); a refused call retries after full jitter\n"
                 "  (base S, cap W). Modes: wake-all (notify_all), jitter (notify_all, then\n"
                 "  each sleeps uniform(0, W) first), wake-one (a token per slot, each waiter\n"
                 "  served wakes the next). Per mode, over the repetitions (median, min, max):\n"
                 "  peak calls per 1 ms window (all, and first calls only), refused calls,\n"
                 "  waiters refused at least once, event to last wake-up, event to all served.\n"
                 "  --waiters N       waiters (threads), default 1000\n"
                 "  --capacity C      service slots, default 8\n"
                 "  --service-us S    service time per call in microseconds, default 1000\n"
                 "  --window-ms W     jitter window and retry cap in milliseconds, default 200\n"
                 "  --tokens K        wake-one's tokens, default C\n"
                 "  --reps N          repetitions of the three modes, default 5\n"
                 "  --seed X          seed of the jitter, default 13\n"
                 "  --json FILE       also write the results to FILE as a JSON array\n"
                 "  cost: with the defaults a repetition of the three modes takes about 1.1 s\n"
                 "  of wall time and 0.8 s of CPU, mostly the kernel's (1,000 threads started\n"
                 "  and woken per mode; they sleep while they wait and while served): the\n"
                 "  default 5 repetitions take about 6 s on 2 cores (--window-ms 1000: 9 s).\n"
                 "exit status: 0 every waiter served, 1 a run or an output failed, 2 bad command line\n",
                 name);
}

unsigned long long parse_number(std::string_view key, const char* text, unsigned long long lo,
                                unsigned long long hi) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text, &end, 10);
    if (text[0] == '\0' || text[0] == '-' || *end != '\0' || errno != 0 || v < lo || v > hi)
        throw usage_error(std::string("--") + std::string(key) + " needs an integer in [" + std::to_string(lo) +
                          ", " + std::to_string(hi) + "], not '" + text + "'");
    return v;
}

herd_options parse(int argc, char** argv, bool& help) {
    herd_options opt;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            help = true;
            return opt;
        }
        if (arg.substr(0, 2) != "--") throw usage_error("unexpected argument '" + std::string(arg) + "'");
        std::string key(arg.substr(2));
        const char* value = nullptr;
        if (const auto eq = key.find('='); eq != std::string::npos) {
            value = argv[i] + 2 + eq + 1;
            key.resize(eq);
        } else {
            if (i + 1 >= argc) throw usage_error("--" + key + " needs a value");
            value = argv[++i];
        }
        if (key == "waiters") opt.waiters = static_cast<unsigned>(parse_number(key, value, 1, 100000));
        else if (key == "capacity") opt.capacity = static_cast<unsigned>(parse_number(key, value, 1, 100000));
        else if (key == "service-us") opt.service = std::chrono::microseconds(parse_number(key, value, 1, 1'000'000));
        else if (key == "window-ms")
            opt.window = std::chrono::microseconds(1000 * parse_number(key, value, 1, 60'000));
        else if (key == "tokens") opt.tokens = static_cast<unsigned>(parse_number(key, value, 1, 100000));
        else if (key == "reps") opt.reps = static_cast<unsigned>(parse_number(key, value, 1, 1000));
        else if (key == "seed") opt.seed = parse_number(key, value, 0, ~0ULL);
        else if (key == "json") {
            if (*value == '\0') throw usage_error("--json needs a file name");
            opt.json_path = value;
        } else {
            throw usage_error("unknown option --" + key);
        }
    }
    return opt;
}

void print_table(const herd_options& opt, const std::vector<mode_result>& results) {
    const double capacity_per_ms = opt.capacity * 1000.0 / static_cast<double>(opt.service.count());
    std::printf("herd: %u waiters, service %u slots x %lld us (%.3g calls/ms), window %lld ms, %u reps\n",
                opt.waiters, opt.capacity, static_cast<long long>(opt.service.count()), capacity_per_ms,
                static_cast<long long>(opt.window.count() / 1000), opt.reps);
    std::printf("%-9s %-16s %-16s %-20s %-16s %-20s %-20s %s\n", "mode", "peak calls/ms", "peak first/ms",
                "refused calls", "waiters refused", "last wake-up ms", "all served ms", "peak: wake-all/mode");
    std::printf("%-9s %-16s %-16s %-20s %-16s %-20s %-20s\n", "", "med (min-max)", "med (min-max)",
                "med (min-max)", "med (min-max)", "med (min-max)", "med (min-max)");
    const double wake_all_peak = results.front().stat(&run_figures::peak_per_ms).median;
    auto cell = [](stat3 s, int decimals) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.*f (%.*f-%.*f)", decimals, s.median, decimals, s.min, decimals, s.max);
        return std::string(buf);
    };
    for (const auto& r : results) {
        const stat3 peak = r.stat(&run_figures::peak_per_ms);
        std::printf("%-9s %-16s %-16s %-20s %-16s %-20s %-20s %.1fx\n", mode_name(r.mode), cell(peak, 0).c_str(),
                    cell(r.stat(&run_figures::peak_first_per_ms), 0).c_str(),
                    cell(r.stat(&run_figures::refused), 0).c_str(),
                    cell(r.stat(&run_figures::waiters_refused), 0).c_str(),
                    cell(r.stat(&run_figures::last_wake_ms), 1).c_str(),
                    cell(r.stat(&run_figures::all_served_ms), 1).c_str(),
                    peak.median > 0 ? wake_all_peak / peak.median : 0.0);
    }
}

bool write_json(const std::string& path, const herd_options& opt, const host_info& host,
                const std::vector<mode_result>& results) {
    std::FILE* out = std::fopen(path.c_str(), "w");
    if (out == nullptr) {
        std::fprintf(stderr, "herd: cannot write --json %s: %s\n", path.c_str(), std::strerror(errno));
        return false;
    }
    std::string o = "[\n";
    bool first = true;
    for (const auto& r : results) {
        o += first ? "  {" : ",\n  {";
        first = false;
        bool first_member = true;
        auto member = [&](std::string_view key, const std::string& json) {
            o += first_member ? "" : ", ";
            first_member = false;
            o += json_string(key) + ": " + json;
        };
        auto figure = [&](std::string_view key, double run_figures::*field) {
            const stat3 s = r.stat(field);
            std::string v = "{\"median\": " + json_number(s.median) + ", \"min\": " + json_number(s.min) +
                            ", \"max\": " + json_number(s.max) + ", \"samples\": [";
            const auto samples = r.samples(field);
            for (std::size_t k = 0; k < samples.size(); ++k) v += (k ? ", " : "") + json_number(samples[k]);
            member(key, v + "]}");
        };
        member("bench", json_string("herd"));
        member("mode", json_string(mode_name(r.mode)));
        member("waiters", json_number(opt.waiters));
        member("capacity", json_number(opt.capacity));
        member("service_us", json_number(static_cast<double>(opt.service.count())));
        member("window_ms", json_number(static_cast<double>(opt.window.count()) / 1000.0));
        member("tokens", json_number(opt.tokens == 0 ? opt.capacity : opt.tokens));
        member("reps", json_number(opt.reps));
        member("seed", json_number(static_cast<double>(opt.seed)));
        figure("peak_calls_per_ms", &run_figures::peak_per_ms);
        figure("peak_first_calls_per_ms", &run_figures::peak_first_per_ms);
        figure("refused_calls", &run_figures::refused);
        figure("waiters_refused", &run_figures::waiters_refused);
        figure("last_wake_ms", &run_figures::last_wake_ms);
        figure("all_served_ms", &run_figures::all_served_ms);
        member("cpu_model", json_string(host.cpu_model));
        member("cpus_allowed", json_number(host.cpus_allowed));
        member("kernel", json_string(host.kernel));
        member("compiler", json_string(host.compiler));
        member("date", json_string(host.date));
        member("command", json_string(host.command));
        o += "}";
    }
    o += "\n]\n";
    const bool wrote = std::fputs(o.c_str(), out) >= 0;
    if (std::fclose(out) != 0 || !wrote) {
        std::fprintf(stderr, "herd: writing --json %s failed: %s\n", path.c_str(), std::strerror(errno));
        return false;
    }
    return true;
}

}  // namespace

int herd_main(int argc, char** argv) {
    const char* name = "forkline-bench distribute herd";
    herd_options opt;
    try {
        bool help = false;
        opt = parse(argc, argv, help);
        if (help) {
            print_usage(stdout, name);
            return 0;
        }
    } catch (const usage_error& e) {
        std::fprintf(stderr, "%s: %s\n", name, e.what());
        print_usage(stderr, name);
        return 2;
    }
    const host_info host = describe_host(argc, argv);
    std::vector<mode_result> results;
    for (wake_mode m : k_modes) results.push_back({m, {}});
    try {
        // Modes interleaved within each repetition, so that a noisy moment
        // of the machine falls on all three alike.
        for (unsigned rep = 0; rep < opt.reps; ++rep)
            for (auto& r : results) r.runs.push_back(run_once(opt, r.mode, rep));
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s: starting %u waiter threads failed: %s (try fewer --waiters)\n", name,
                     opt.waiters, e.what());
        return 1;
    }
    print_table(opt, results);
    if (!opt.json_path.empty() && !write_json(opt.json_path, opt, host, results)) return 1;
    return 0;
}

}  // namespace forkline_bench::distribute

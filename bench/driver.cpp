// bench/driver.cpp: forkline-bench's command line, the repetition loop and the exit status.
//
//   forkline-bench fib --n 30 --impl forkline,serial,tbb,omp --workers 1,2 --reps 5 --json out.json
//
// Each (impl, workers) configuration is one child process per repetition, and
// the repetitions interleave the configurations (A B C A B C ...), so that a
// slow minute on a shared machine lands on every variant rather than on one.
// See bench/README.md for the variants and how to read the table.
#include <unistd.h>      // access, F_OK

#include <algorithm>     // max
#include <cerrno>        // errno
#include <charconv>      // from_chars
#include <cstdio>        // fprintf, fopen, fclose, remove
#include <cstdlib>       // getenv, unsetenv
#include <cstring>       // strerror
#include <memory>        // unique_ptr
#include <string>        // string
#include <string_view>   // string_view
#include <system_error>  // errc
#include <vector>        // vector

#include "distribute/distribute.hpp"  // run_distribute
#include "fib/fib.hpp"   // make_fib_workload
#include "matmul/matmul.hpp"    // make_matmul_workload
#include "nqueens/nqueens.hpp"  // make_nqueens_workload
#include "skew/skew.hpp"        // make_skew_workload
#include "uts/uts.hpp"          // make_uts_workload
#include "triad/triad.hpp"      // make_triad_workload
#include "reduce/reduce.hpp"    // make_reduce_workload
#include "sort/sort.hpp"        // make_sort_workload
#include "loops/loops.hpp"      // make_loops_workload
#include "measure.hpp"   // measure_in_child, config_result
#include "report.hpp"    // describe_host, count_allowed_cpus, print_table, write_json
#include "workload.hpp"  // workload, workload_entry, usage_error

namespace forkline_bench {
namespace {

// The registry. A new workload adds its line here.
const workload_entry k_workloads[] = {
    {"fib", "fork-join Fibonacci, one spawn at every call with n >= 2",
     "    --n N          compute fib(N), 2 <= N <= 92 (default 30)\n", &make_fib_workload},
    {"nqueens", "count the N-queens solutions, one task per valid placement at every row (BOTS)",
     "    --n N          board size, 4 <= N <= 15 (default 12)\n", &make_nqueens_workload},
    {"matmul", "C += A*B on N x N doubles, halving the largest dimension down to 64 x 64 blocks",
     "    --n N          matrix size, a power of two from 128 to 4096 (default 1024)\n", &make_matmul_workload},
    {"skew", "equal compute tasks all spawned by one worker; the others must steal them",
     "    --tasks T      tasks, 1 <= T <= 8192 (default 180)\n"
     "    --task-us U    microseconds of compute per task, calibrated at start (default 200)\n",
     &make_skew_workload},
    {"uts", "Unbalanced Tree Search: count a SHA-1 generated tree, one spawn per child",
     "    --tree NAME    a UTS sample tree: T1, T3, T1L, T3L (default T1)\n"
     "    --uts FLAGS    UTS parameters instead, e.g. \"-t 1 -a 3 -d 10 -b 4 -r 19\"\n"
     "                   (-t type, -b b_0, -r seed, -m, -q, -d, -a shape, -f, -g)\n",
     &make_uts_workload},
    {"triad", "STREAM triad a[i] = b[i] + 3 c[i] over three arrays, K passes; GB/s counts 24 bytes per index",
     "    --n N          doubles per array, 1 <= N <= 2^28 (default 2^25: 768 MiB in all)\n"
     "    --passes K     passes timed, 1 <= K <= 100000 (default 10)\n",
     &make_triad_workload},
    {"reduce", "sum of N doubles (small whole numbers, so the sum is exact); GB/s counts 8 bytes per index",
     "    --n N          doubles, 1 <= N <= 2^30 (default 100000000)\n", &make_reduce_workload},
    {"sort", "sort N pseudo-random 64-bit keys; checks the order and that the keys are the input's",
     "    --n N          keys, 1 <= N <= 2^28 (default 10000000)\n", &make_sort_workload},
    {"loops", "K parallel loops back to back, each L us of ideal time at the worker count: the cost of a join "
              "and the next loop's start, against OpenMP's team and a spin barrier",
     "    --loops K      loops timed, 1 <= K <= 10^6 (default 2000)\n"
     "    --us L         each loop's ideal microseconds at the run's worker count, 1 <= L <= 10^6 (default 50)\n",
     &make_loops_workload},
};

constexpr unsigned k_default_reps = 5;    // BENCHMARKING.md: at least 5
constexpr unsigned k_max_workers = 4096;  // far past any machine; catches typos
constexpr long long k_default_timeout_s = 600;

struct options {
    bool help = false;
    bool list = false;
    const workload_entry* entry = nullptr;
    std::unique_ptr<workload> work;
    std::vector<impl_info> impls;  // requested, built or not, in the order given
    std::vector<unsigned> workers;
    unsigned reps = k_default_reps;
    std::string json_path;
    long long timeout_s = k_default_timeout_s;
};

// "a, b, c" from anything with a .name.
template <class Range>
std::string join_names(const Range& items, std::string_view separator) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += separator;
        out += item.name;
    }
    return out;
}

void print_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: forkline-bench WORKLOAD [options]\n"
                 "       forkline-bench --list | --help\n"
                 "\n"
                 "Runs each implementation of WORKLOAD in a fresh child process per repetition\n"
                 "(one warm-up, then one timed run), alternating implementations, and prints the\n"
                 "median, min and max seconds, ns per task and peak RSS. Every answer is checked.\n"
                 "\n"
                 "options (also as --opt=value):\n"
                 "  --impl LIST      implementations, comma-separated (default: all of the workload's)\n"
                 "  --workers LIST   worker counts, comma-separated, each >= 1 (default: 1 and the\n"
                 "                   number of cpus this process may use)\n"
                 "  --reps R         timed repetitions per (impl, workers) (default %u)\n"
                 "  --json FILE      also write the results to FILE as a JSON array\n"
                 "  --timeout S      kill a child still running after S seconds (default %lld)\n"
                 "\n"
                 "workloads:\n",
                 k_default_reps, k_default_timeout_s);
    for (const workload_entry& e : k_workloads) {
        const std::string names = join_names(e.make()->impls(), ",");
        std::fprintf(out, "  %.*s: %.*s\n    --impl from: %s\n%.*s", static_cast<int>(e.name.size()),
                     e.name.data(), static_cast<int>(e.summary.size()), e.summary.data(), names.c_str(),
                     static_cast<int>(e.options.size()), e.options.data());
    }
    std::fprintf(out,
                 "\n"
                 "  distribute: work-distribution policies on one open-loop request stream\n"
                 "    forkline-bench distribute --help for its scenarios and options\n"
                 "\n"
                 "exit status: 0 every run answered right, 1 some run failed, 2 bad command line\n");
}

void print_list(std::FILE* out) {
    for (const workload_entry& e : k_workloads) {
        std::fprintf(out, "%.*s\n", static_cast<int>(e.name.size()), e.name.data());
        for (const impl_info& i : e.make()->impls()) {
            if (i.built()) {
                std::fprintf(out, "  %.*s\n", static_cast<int>(i.name.size()), i.name.data());
            } else {
                std::fprintf(out, "  %.*s: not built (%.*s)\n", static_cast<int>(i.name.size()), i.name.data(),
                             static_cast<int>(i.absent_reason.size()), i.absent_reason.data());
            }
        }
    }
}

std::vector<std::string_view> split_list(std::string_view text, std::string_view what) {
    std::vector<std::string_view> items;
    for (;;) {
        const std::size_t comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        if (item.empty()) throw usage_error(std::string(what) + " has an empty item; give a list like a,b,c");
        items.push_back(item);
        if (comma == std::string_view::npos) return items;
        text.remove_prefix(comma + 1);
    }
}

std::vector<impl_info> parse_impls(std::string_view text, const workload_entry& entry, const workload& w) {
    const std::vector<impl_info> known = w.impls();
    std::vector<impl_info> chosen;
    for (const std::string_view name : split_list(text, "--impl")) {
        const impl_info* found = nullptr;
        for (const impl_info& i : known) {
            if (i.name == name) found = &i;
        }
        if (found == nullptr) {
            throw usage_error("unknown implementation '" + std::string(name) + "' for " + std::string(entry.name) +
                              "; known: " + join_names(known, ", "));
        }
        for (const impl_info& c : chosen) {
            if (c.name == name) throw usage_error("--impl names '" + std::string(name) + "' twice");
        }
        chosen.push_back(*found);
    }
    return chosen;
}

std::vector<unsigned> parse_workers(std::string_view text) {
    std::vector<unsigned> out;
    for (const std::string_view item : split_list(text, "--workers")) {
        const auto w = static_cast<unsigned>(parse_integer(item, 1, k_max_workers, "--workers"));
        for (const unsigned seen : out) {
            if (seen == w) throw usage_error("--workers names " + std::to_string(w) + " twice");
        }
        out.push_back(w);
    }
    return out;
}

std::vector<unsigned> default_workers() {
    const unsigned cpus = static_cast<unsigned>(std::max(1, count_allowed_cpus()));
    return cpus > 1 ? std::vector<unsigned>{1, cpus} : std::vector<unsigned>{1};
}

options parse_command_line(int argc, char** argv) {
    options opt;
    if (argc < 2) throw usage_error("no workload given");
    const std::string_view first = argv[1];
    if (first == "--help" || first == "-h" || first == "help") {
        opt.help = true;
        return opt;
    }
    if (first == "--list" || first == "list") {
        opt.list = true;
        return opt;
    }
    for (const workload_entry& e : k_workloads) {
        if (e.name == first) opt.entry = &e;
    }
    if (opt.entry == nullptr) {
        throw usage_error("unknown workload '" + std::string(first) + "'; known: " + join_names(k_workloads, ", "));
    }
    opt.work = opt.entry->make();

    const char* impl_text = nullptr;  // null: not given
    const char* workers_text = nullptr;
    for (int i = 2; i < argc; ++i) {
        const char* const whole = argv[i];
        std::string_view arg = whole;
        if (arg == "--help" || arg == "-h") {
            opt.help = true;
            return opt;
        }
        if (arg.size() < 3 || arg.substr(0, 2) != "--") {
            throw usage_error("unexpected argument '" + std::string(arg) + "'; options start with --");
        }
        arg.remove_prefix(2);
        std::string_view key = arg;
        const char* value = nullptr;
        if (const std::size_t eq = arg.find('='); eq != std::string_view::npos) {
            key = arg.substr(0, eq);
            value = whole + 2 + eq + 1;
        } else {
            if (i + 1 >= argc) throw usage_error("--" + std::string(key) + " needs a value");
            value = argv[++i];
        }
        if (key == "impl") {
            impl_text = value;
        } else if (key == "workers") {
            workers_text = value;
        } else if (key == "reps") {
            opt.reps = static_cast<unsigned>(parse_integer(value, 1, 100000, "--reps"));
        } else if (key == "json") {
            if (*value == '\0') throw usage_error("--json needs a file name");
            opt.json_path = value;
        } else if (key == "timeout") {
            opt.timeout_s = parse_integer(value, 1, 7 * 24 * 3600, "--timeout");
        } else if (!opt.work->parse_option(key, value)) {
            throw usage_error("unknown option --" + std::string(key) + " for " + std::string(opt.entry->name));
        }
    }
    // Parsed after the loop so that the order of options does not matter.
    opt.impls = impl_text == nullptr ? opt.work->impls() : parse_impls(impl_text, *opt.entry, *opt.work);
    opt.workers = workers_text == nullptr ? default_workers() : parse_workers(workers_text);
    return opt;
}

struct config {
    impl_info impl;
    unsigned workers;
};

// Variants that ignore the worker count (serial) run once per repetition,
// labelled workers=1, in the group of the first worker count.
std::vector<config> plan_configs(const options& opt) {
    std::vector<config> out;
    for (const unsigned w : opt.workers) {
        for (const impl_info& i : opt.impls) {
            if (!i.built()) continue;
            if (i.uses_workers) {
                out.push_back({i, w});
            } else if (w == opt.workers.front()) {
                out.push_back({i, 1});
            }
        }
    }
    return out;
}

}  // namespace

long long parse_integer(std::string_view text, long long lo, long long hi, std::string_view what) {
    long long v = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    const std::string range = " (accepted: " + std::to_string(lo) + " to " + std::to_string(hi) + ")";
    if (text.empty() || ec == std::errc::invalid_argument || ptr != end) {
        throw usage_error(std::string(what) + " takes a whole number, not '" + std::string(text) + "'" + range);
    }
    if (ec == std::errc::result_out_of_range || v < lo || v > hi) {
        throw usage_error(std::string(what) + " " + std::string(text) + " is out of range" + range);
    }
    return v;
}

}  // namespace forkline_bench

int main(int argc, char** argv) {
    using namespace forkline_bench;
    // Not a workload of the registry: a stream of requests has its own
    // command line and table (bench/distribute/).
    if (argc >= 2 && std::string_view(argv[1]) == "distribute") return distribute::run_distribute(argc - 1, argv + 1);
    options opt;
    try {
        opt = parse_command_line(argc, argv);
    } catch (const usage_error& e) {
        std::fprintf(stderr, "forkline-bench: %s\n\n", e.what());
        print_usage(stderr);
        return 2;
    }
    if (opt.help) {
        print_usage(stdout);
        return 0;
    }
    if (opt.list) {
        print_list(stdout);
        return 0;
    }

    for (const impl_info& i : opt.impls) {
        if (!i.built()) {
            std::fprintf(stderr, "%.*s: not built (%.*s)\n", static_cast<int>(i.name.size()), i.name.data(),
                         static_cast<int>(i.absent_reason.size()), i.absent_reason.data());
        }
    }
    if (opt.reps < k_default_reps) {
        std::fprintf(stderr, "forkline-bench: note: %u reps; BENCHMARKING.md asks for at least %u\n", opt.reps,
                     k_default_reps);
    }

    // Opened now, so a bad path fails before the runs rather than after.
    std::FILE* json = nullptr;
    if (!opt.json_path.empty()) {
        json = std::fopen(opt.json_path.c_str(), "w");
        if (json == nullptr) {
            const int e = errno;
            std::fprintf(stderr, "forkline-bench: cannot write --json %s: %s\n", opt.json_path.c_str(),
                         std::strerror(e));
            return 2;
        }
    }

    const host_info host = describe_host(argc, argv);
    const std::vector<config> configs = plan_configs(opt);
    if (configs.empty()) std::fprintf(stderr, "forkline-bench: nothing left to run\n");
    std::vector<config_result> results(configs.size());
    for (std::size_t c = 0; c < configs.size(); ++c) {
        results[c].impl = std::string(configs[c].impl.name);
        results[c].workers = configs[c].workers;
    }

    // FORKLINE_TRACE=F: one trace per configuration, each written by the
    // children that run it (the parent runs no forkline), each rep
    // overwriting the last. Removed first, so that a file left afterwards
    // is this run's.
    std::vector<std::string> trace_paths(configs.size());
    if (const char* trace = std::getenv("FORKLINE_TRACE"); trace != nullptr && *trace != '\0') {
        const std::string base = trace;
        ::unsetenv("FORKLINE_TRACE");
        for (std::size_t c = 0; c < configs.size(); ++c) {
            trace_paths[c] = trace_file_for(base, configs[c].impl.name, configs[c].workers);
            std::remove(trace_paths[c].c_str());
        }
    }

    const std::string label = opt.work->label();
    for (unsigned rep = 1; rep <= opt.reps; ++rep) {
        for (std::size_t c = 0; c < configs.size(); ++c) {
            const config& cf = configs[c];
            std::fprintf(stderr, "%s rep %u/%u %.*s w=%u\n", label.c_str(), rep, opt.reps,
                         static_cast<int>(cf.impl.name.size()), cf.impl.name.data(), cf.workers);
            const child_outcome outcome =
                measure_in_child(*opt.work, cf.impl.name, cf.workers, static_cast<double>(opt.timeout_s),
                                 trace_paths[c]);
            if (!outcome.ok) std::fprintf(stderr, "  FAILED: %s\n", outcome.error.c_str());
            results[c].add(rep, outcome);
        }
    }

    for (std::size_t c = 0; c < configs.size(); ++c) {
        if (!trace_paths[c].empty() && ::access(trace_paths[c].c_str(), F_OK) == 0) {
            results[c].trace_file = trace_paths[c];
        }
    }

    if (!results.empty()) print_table(stdout, *opt.work, host, opt.reps, results);
    bool all_ok = true;
    for (const config_result& r : results) all_ok = all_ok && r.ok();

    if (json != nullptr) {
        write_json(json, *opt.work, opt.entry->name, host, opt.reps, results);
        if (std::fclose(json) != 0) {
            const int e = errno;
            std::fprintf(stderr, "forkline-bench: writing --json %s failed: %s\n", opt.json_path.c_str(),
                         std::strerror(e));
            return 1;
        }
    }
    return all_ok ? 0 : 1;
}

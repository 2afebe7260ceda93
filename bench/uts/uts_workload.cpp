// bench/uts/uts_workload.cpp: uts's options, variants and answer check.
//
// A child reports one integer, the node count, which the parent checks; the
// child itself checks the whole count (nodes, leaves, depth) of both its
// traversals against the expected one before it answers, and throws, which
// fails the run, on any difference. Expected: the published size of a
// sample tree, or for other parameters the serial count, taken once in the
// parent before the first child starts (see expected()).
#include <pthread.h>  // pthread_create, pthread_join, pthread_attr_setstacksize

#include <chrono>       // steady_clock
#include <cstdint>      // int64_t, uint64_t
#include <cstdio>       // fprintf
#include <cstdlib>      // setenv
#include <cstring>      // strerror
#include <exception>    // exception_ptr, current_exception, rethrow_exception
#include <memory>       // make_unique, unique_ptr
#include <optional>     // optional
#include <stdexcept>    // logic_error, runtime_error
#include <string>       // string, to_string
#include <string_view>  // string_view
#include <vector>       // vector

#include "uts.hpp"       // run_uts_*, make_uts_workload, forkline_bench_uts_omp
#include "variants.hpp"  // FORKLINE_BENCH_*_VARIANT, omp_entry

namespace forkline_bench {
namespace {

struct uts_variant {
    impl_info info;
    uts_sample (*run)(const uts::tree_params& p, unsigned workers);  // null when not built
    // Run on a thread with a k_uts_stack_bytes stack (see run_on_deep_stack).
    // Not serial: the plain recursion takes 160 bytes a level, 3 MiB on T3L,
    // and a thread of its own would add to the RSS it is the baseline of.
    bool deep_stack;
};

uts_sample run_serial_any_workers(const uts::tree_params& p, unsigned /*workers*/) { return run_uts_serial(p); }

#if FORKLINE_BENCH_HAVE_OPENMP
uts_sample run_omp_from_module(const uts::tree_params& p, unsigned workers) {
    // OpenMP's threads get the stacks that forkline's and TBB's get
    // (overwrite = 0: the user's value wins).
    ::setenv("OMP_STACKSIZE", (std::to_string(k_uts_stack_bytes >> 20) + "M").c_str(), 0);
    const auto entry = omp_entry<decltype(forkline_bench_uts_omp)>("forkline_bench_uts_omp");
    uts_sample s;
    entry(&p, workers, &s);
    return s;
}
#endif

// Runs one variant on a thread of its own whose stack is k_uts_stack_bytes,
// and waits for it. The child's main thread has the 8 MiB of `ulimit -s`,
// and every parallel variant walks the root's subtree on the calling thread.
uts_sample run_on_deep_stack(const uts_variant& v, const uts::tree_params& p, unsigned workers) {
    struct call {
        const uts_variant* v;
        const uts::tree_params* p;
        unsigned workers;
        uts_sample out;
        std::exception_ptr error;
    } c{&v, &p, workers, {}, nullptr};
    pthread_attr_t attr;
    int rc = ::pthread_attr_init(&attr);
    if (rc == 0) rc = ::pthread_attr_setstacksize(&attr, k_uts_stack_bytes);
    pthread_t thread;
    if (rc == 0) {
        rc = ::pthread_create(
            &thread, &attr,
            [](void* arg) -> void* {
                auto* c = static_cast<call*>(arg);
                try {
                    c->out = c->v->run(*c->p, c->workers);
                } catch (...) {
                    c->error = std::current_exception();
                }
                return nullptr;
            },
            &c);
        ::pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        throw std::runtime_error("cannot start a thread with a " + std::to_string(k_uts_stack_bytes >> 20) +
                                 " MiB stack to walk the tree: " + std::strerror(rc) + " (check ulimit -v)");
    }
    ::pthread_join(thread, nullptr);
    if (c.error) std::rethrow_exception(c.error);
    return c.out;
}

const uts_variant k_variants[] = {
    {{"forkline", true, ""}, &run_uts_forkline, true},
    {{"serial", false, ""}, &run_serial_any_workers, false},
    FORKLINE_BENCH_TBB_VARIANT(&run_uts_tbb, true),
    FORKLINE_BENCH_OMP_VARIANT(&run_omp_from_module, true),
};

// "" when `got` is what was expected; otherwise what differs.
std::string compare_counts(const uts::tree_counts& got, const uts::tree_counts& want) {
    std::string bad;
    auto add = [&bad](std::string_view what, auto g, auto w) {
        if (!bad.empty()) bad += ", ";
        bad += std::string(what) + " " + std::to_string(g) + " (expected " + std::to_string(w) + ")";
    };
    if (got.nodes != want.nodes) add("nodes", got.nodes, want.nodes);
    if (got.leaves != want.leaves) add("leaves", got.leaves, want.leaves);
    if (got.depth != want.depth) add("depth", got.depth, want.depth);
    return bad;
}

// JSON string for text that format_params() or the sample tree table made:
// letters, digits, '-', '.', ' ', '+'; escaped anyway should that change.
std::string json_quote(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

class uts_workload final : public workload {
public:
    bool parse_option(std::string_view key, std::string_view value) override {
        if (key != "tree" && key != "uts") return false;
        if (m_source_given) throw usage_error("give one --tree or one --uts, not both nor twice");
        m_source_given = true;
        if (key == "tree") {
            m_named = uts::find_named_tree(value);
            if (m_named == nullptr) {
                throw usage_error("unknown --tree '" + std::string(value) + "'; known: " + tree_names());
            }
            m_params = uts::parse_params(m_named->params);
            return true;
        }
        try {
            m_params = uts::parse_params(value);
        } catch (const uts::param_error& e) {
            throw usage_error(std::string("--uts: ") + e.what());
        }
        // The parameters of a sample tree, however spelt, get its published check.
        m_named = uts::find_named_tree(m_params);
        return true;
    }

    std::vector<impl_info> impls() const override {
        std::vector<impl_info> out;
        for (const uts_variant& v : k_variants) out.push_back(v.info);
        return out;
    }

    std::string label() const override {
        // The driver asks for the label in the parent before it forks the
        // first child: the serial count of a custom tree is taken here, once,
        // and every child inherits it.
        (void)expected();
        return "uts " + tree_name() + " (" + uts::format_params(m_params) + ")";
    }

    // Every variant spawns k - 1 tasks at a node with k children: leaves - 1 in all.
    std::uint64_t tasks_per_run() const override { return expected().leaves - 1; }

    std::int64_t expected_result() const override { return static_cast<std::int64_t>(expected().nodes); }

    sample run(std::string_view impl, unsigned workers) const override {
        // Inherited from the parent; counted here only if it never asked.
        const uts::tree_counts want = expected();
        for (const uts_variant& v : k_variants) {
            if (v.info.name != impl || v.run == nullptr) continue;
            const uts_sample s = v.deep_stack ? run_on_deep_stack(v, m_params, workers) : v.run(m_params, workers);
            const std::string whose = m_named != nullptr ? "published for " + tree_name() : "by the serial count";
            if (std::string bad = compare_counts(s.warmup, want); !bad.empty()) {
                throw std::runtime_error("warm-up counted " + bad + "; expected values are " + whose);
            }
            if (std::string bad = compare_counts(s.timed, want); !bad.empty()) {
                throw std::runtime_error("counted " + bad + "; expected values are " + whose);
            }
            return s.timing;
        }
        // The driver only asks for built variants it got from impls().
        throw std::logic_error("uts has no built implementation named " + std::string(impl));
    }

    std::string check(std::int64_t result) const override {
        const std::uint64_t want = expected().nodes;
        if (result >= 0 && static_cast<std::uint64_t>(result) == want) return {};
        return "uts " + tree_name() + ": " + std::to_string(result) + " nodes, expected " + std::to_string(want);
    }

    std::vector<json_member> json_members() const override {
        const uts::tree_counts want = expected();
        return {{"tree", json_quote(tree_name())},
                {"uts_params", json_quote(uts::format_params(m_params))},
                {"nodes", std::to_string(want.nodes)},
                {"leaves", std::to_string(want.leaves)},
                {"depth", std::to_string(want.depth)},
                {"expected_from", json_quote(m_named != nullptr ? "published" : "serial count")},
                {"tasks_per_run", std::to_string(tasks_per_run())}};
    }

private:
    static std::string tree_names() {
        std::string out;
        for (const uts::named_tree& t : uts::named_trees()) {
            if (!out.empty()) out += ", ";
            out += t.name;
        }
        return out;
    }

    std::string tree_name() const { return m_named != nullptr ? std::string(m_named->name) : "custom"; }

    // The published size of a sample tree; otherwise the serial count, taken
    // on first use (in the parent: see label()).
    const uts::tree_counts& expected() const {
        if (m_named != nullptr) return m_named->published;
        if (!m_serial) {
            const auto start = std::chrono::steady_clock::now();
            m_serial = uts::count_serial(uts::tree(m_params));
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::fprintf(stderr, "uts: custom tree counted serially for the answer check: %s (%.2f s)\n",
                         uts::describe(*m_serial).c_str(), s);
        }
        return *m_serial;
    }

    uts::tree_params m_params = uts::parse_params(uts::find_named_tree("T1")->params);
    const uts::named_tree* m_named = uts::find_named_tree("T1");
    bool m_source_given = false;
    mutable std::optional<uts::tree_counts> m_serial;
};

}  // namespace

std::unique_ptr<workload> make_uts_workload() { return std::make_unique<uts_workload>(); }

}  // namespace forkline_bench

// tools/probe_workloads.cpp: forkline-probe's built-in workloads. Each has a
// different limit: fib is all spawn and join, UTS is irregular, triad is
// memory bandwidth, the pipeline has serial stages. Every repetition checks
// its answer, so a fast wrong run can never pass for a result.
#include "probe_workloads.hpp"

#include <algorithm>      // max, all_of
#include <cerrno>         // errno
#include <charconv>       // from_chars
#include <cstddef>        // size_t
#include <cstdint>        // uint64_t
#include <cstdio>         // snprintf
#include <cstdlib>        // mkdtemp
#include <filesystem>     // temp_directory_path, remove_all, path
#include <memory>         // unique_ptr, make_unique
#include <optional>       // optional
#include <stdexcept>      // runtime_error
#include <string>         // string, to_string
#include <string_view>    // string_view
#include <system_error>   // error_code
#include <utility>        // move, pair
#include <vector>         // vector

#include <fcntl.h>   // open, O_*
#include <unistd.h>  // write, close

#include <forkline/affinity.hpp>      // static_affinity
#include <forkline/errors.hpp>        // system_failure
#include <forkline/invoke.hpp>        // invoke
#include <forkline/io.hpp>            // io::reader, io::chunk
#include <forkline/numa_memory.hpp>   // numa_array
#include <forkline/parallel_for.hpp>  // parallel_for
#include <forkline/pipeline.hpp>      // run_pipeline, stage, flow_control, pipeline_stats
#include <forkline/probe.hpp>         // probe::scaling, analyse, measure_work_span, bound_of
#include <forkline/read_stage.hpp>    // read_stage
#include <forkline/runtime.hpp>       // runtime
#include <forkline/topology.hpp>      // topology::discover (the default top count)

#include "uts/uts.hpp"       // count_uts_forkline
#include "uts/uts_tree.hpp"  // uts::tree, find_named_tree, parse_params, describe

namespace forkline_probe {
namespace {

namespace probe = forkline::probe;

/// A repetition computed the wrong answer: the workload fails (scaling()
/// turns it into verdict failed); any other exception from measuring work
/// and span only costs the graph.
class wrong_answer : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The largest worker count the probe will use, or 0 (the cores) when the
/// counts are left to default_worker_counts: loops measured for work and
/// span split as they would at the top of the curve.
unsigned nominal_workers(const probe::options& o) {
    unsigned top = 0;
    for (const unsigned w : o.workers) top = std::max(top, w);
    return top;
}

/// A workload that failed before its curve: the result says so and nothing
/// else.
probe::result failed(std::string name, const std::string& error) {
    probe::result r;
    r.name = std::move(name);
    r.verdict = probe::limit::failed;
    r.error = error;
    return r;
}

/// After scaling(): attach what was measured beside the curve and decide
/// again with it. A failed curve is left as scaling() made it.
template <class Attach>
probe::result finish(probe::result r, Attach&& attach, const std::string& note) {
    if (r.verdict == probe::limit::failed) return r;
    attach(r);
    probe::analyse(r);
    if (!note.empty()) r.why += (r.why.empty() ? "" : " ") + note;
    return r;
}

// ---- fib ----------------------------------------------------------------

long fib(int n) {
    if (n < 2) return n;
    long a = 0;
    long b = 0;
    forkline::invoke([&] { a = fib(n - 1); }, [&] { b = fib(n - 2); });
    return a + b;
}

long fib_by_loop(int n) {
    long prev = 0;
    long cur = 1;
    for (int i = 0; i < n; ++i) {
        const long next = prev + cur;
        prev = cur;
        cur = next;
    }
    return prev;
}

/// One repetition at one worker takes about 0.2 s (quick), 0.4 s (normal)
/// and 1 s (thorough) on the 2-core development host (about 9.5 ns a
/// spawn, and fib(n) costs 1.618 times fib(n - 1)).
int fib_n(effort e) {
    switch (e) {
        case effort::quick: return 36;
        case effort::normal: return 37;
        case effort::thorough: return 39;
    }
    return 37;
}

/// Measuring mode is slower and its graph grows with n like the run's; four
/// less keeps it a small part of the workload's time.
constexpr int k_fib_graph_less = 4;

void check_fib(int n, long got) {
    const long want = fib_by_loop(n);
    if (got != want) {
        throw wrong_answer("fib(" + std::to_string(n) + "): expected " + std::to_string(want) + ", got " +
                           std::to_string(got));
    }
}

probe::result run_fib(const probe::options& o, effort e) {
    const int n = fib_n(e);
    const int graph_n = n - k_fib_graph_less;
    std::optional<probe::work_span> graph;
    std::string note;
    try {
        long got = 0;
        graph = probe::measure_work_span([&] { got = fib(graph_n); }, {.nominal_workers = nominal_workers(o)});
        check_fib(graph_n, got);
    } catch (const wrong_answer& w) {
        return failed("fib", std::string("work/span run: ") + w.what());
    } catch (const std::exception& x) {
        note = std::string("(work/span not measured: ") + x.what() + ")";
    }
    probe::options with_bytes = o;
    with_bytes.bytes_per_repetition = 0;  // registers and the stack: no memory traffic to speak of
    probe::result r = probe::scaling(
        "fib", [&](forkline::runtime& rt) { check_fib(n, rt.run([&] { return fib(n); })); }, with_bytes);
    return finish(
        std::move(r), [&](probe::result& res) { res.graph = graph; }, note);
}

// ---- uts ----------------------------------------------------------------

probe::result run_uts(const probe::options& o, effort) {
    namespace uts = forkline_bench::uts;
    // T1 at every effort: one repetition is about 0.45 s at one worker on
    // the development host, short enough even for --quick, and its size is
    // the published one.
    const uts::named_tree* named = uts::find_named_tree("T1");
    if (named == nullptr) return failed("uts", "the UTS sample tree T1 is not known to this build");
    const uts::tree tree(uts::parse_params(named->params));
    const uts::tree_counts want = named->published;
    auto check = [&](const uts::tree_counts& got) {
        if (got != want) {
            throw wrong_answer("UTS T1: expected " + uts::describe(want) + ", got " + uts::describe(got));
        }
    };

    std::optional<probe::work_span> graph;
    std::string note;
    try {
        uts::tree_counts got;
        graph = probe::measure_work_span([&] { got = forkline_bench::count_uts_forkline(tree); },
                                         {.nominal_workers = nominal_workers(o)});
        check(got);
    } catch (const wrong_answer& w) {
        return failed("uts", std::string("work/span run: ") + w.what());
    } catch (const std::exception& x) {
        note = std::string("(work/span not measured: ") + x.what() + ")";
    }
    probe::options with_bytes = o;
    with_bytes.bytes_per_repetition = 0;  // each node's state lives in its frame: no memory traffic
    probe::result r = probe::scaling(
        "uts", [&](forkline::runtime& rt) { check(rt.run([&] { return forkline_bench::count_uts_forkline(tree); })); },
        with_bytes);
    return finish(
        std::move(r), [&](probe::result& res) { res.graph = graph; }, note);
}

// ---- triad --------------------------------------------------------------

/// b[i] and c[i]: small whole numbers, so b + q c is exact in a double and
/// a check needs no tolerance.
double triad_b(std::size_t i) noexcept { return static_cast<double>((i * 7) % 1000); }
double triad_c(std::size_t i) noexcept { return static_cast<double>(i % 13 + 1); }

/// The three arrays for one placement, first-touched with the split the
/// sweeps use.
struct triad_arrays {
    forkline::numa_array<double> a;
    forkline::numa_array<double> b;
    forkline::numa_array<double> c;
};

/// a = b + q c over [0, n), each worker on its own block on every sweep.
void triad_sweep(double* a, const double* b, const double* c, std::size_t n, double q) {
    forkline::parallel_for(
        std::size_t{0}, n, [a, b, c, q](std::size_t i) { a[i] = b[i] + q * c[i]; }, forkline::static_affinity);
}

/// Arrays per placement. scaling() keeps a runtime per worker count alive
/// and alternates between them, so the arrays must not be rebuilt per
/// repetition (that would time page faults, not bandwidth); nor can one set
/// serve every count on a NUMA host, where the count decides which nodes
/// the pages belong on. A set is made the first time a layout is seen (in
/// that count's warm-up, unless warmup is 0) and kept: one set on a
/// single-node host, one per count that spans several nodes elsewhere.
class triad_state {
public:
    explicit triad_state(std::size_t n) : m_n(n) {}

    /// Call on a worker of rt.
    triad_arrays& arrays_for(const forkline::runtime& rt) {
        std::vector<int> layout;
        for (const forkline::worker_place& p : rt.plan().places) layout.push_back(p.numa_os_index);
        // Within one node the split does not matter for placement.
        if (std::all_of(layout.begin(), layout.end(), [&](int node) { return node == layout.front(); })) {
            layout.resize(1);
        }
        for (auto& [key, set] : m_sets) {
            if (key == layout) {
                m_last = set.get();
                return *set;
            }
        }
        auto set = std::make_unique<triad_arrays>(triad_arrays{forkline::numa_array<double>(rt, m_n),
                                                               forkline::numa_array<double>(rt, m_n),
                                                               forkline::numa_array<double>(rt, m_n)});
        double* const a = set->a.data();
        double* const b = set->b.data();
        double* const c = set->c.data();
        forkline::parallel_for(
            std::size_t{0}, m_n,
            [a, b, c](std::size_t i) {
                a[i] = 0.0;
                b[i] = triad_b(i);
                c[i] = triad_c(i);
            },
            forkline::static_affinity);
        m_sets.emplace_back(std::move(layout), std::move(set));
        m_last = m_sets.back().second.get();
        return *m_last;
    }

    /// The set the last repetition used, or null.
    triad_arrays* last() noexcept { return m_last; }

private:
    std::size_t m_n;
    std::vector<std::pair<std::vector<int>, std::unique_ptr<triad_arrays>>> m_sets;
    triad_arrays* m_last = nullptr;
};

/// The piece size of the sweep whose work and span are measured: 64 pieces
/// per worker of the top count, as a lazily split loop would cut it at
/// most, and never under 1024 indices (8 KiB of each array). The span is
/// the slowest piece plus the splitting, so on a noisy host the measured
/// parallelism comes out well under the piece count, but still far above
/// the worker count.
std::size_t triad_graph_grain(std::size_t n, unsigned workers) {
    return std::max(std::size_t{1024}, n / (std::size_t{64} * std::max(1u, workers)));
}

/// a[i] == b[i] + q c[i] at 4096 indices spread over the array, both ends
/// included.
void check_triad(const triad_arrays& t, std::size_t n, double q) {
    constexpr std::size_t k_samples = 4096;
    for (std::size_t k = 0; k < k_samples; ++k) {
        const std::size_t i = k * (n - 1) / (k_samples - 1);
        const double want = triad_b(i) + q * triad_c(i);
        if (t.a[i] != want) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "triad: a[%zu] = %.17g after the sweeps, expected %.17g (b + %g c)", i,
                          t.a[i], want, q);
            throw wrong_answer(buf);
        }
    }
}

probe::result run_triad(const probe::options& o, effort e) {
    // 3 x 32 MiB (quick: 3 x 8 MiB) of doubles; a repetition at one worker
    // takes about 0.12 s (quick), 0.3 s (normal), 0.75 s (thorough) on the
    // 2-core development host (about 5 ms a sweep over 3 x 32 MiB).
    const std::size_t n = (e == effort::quick ? std::size_t{8} : std::size_t{32}) << 20 >> 3;
    const unsigned sweeps = e == effort::quick ? 100 : (e == effort::normal ? 60 : 150);
    triad_state state(n);
    // q changes with every repetition, so each one must rewrite every
    // element for the check to pass.
    unsigned repetition = 0;
    probe::options with_bytes = o;
    // STREAM's count: 24 bytes an element a sweep, and the check reads a once.
    with_bytes.bytes_per_repetition = (24.0 * sweeps + 8.0) * static_cast<double>(n);
    probe::result r = probe::scaling(
        "triad",
        [&](forkline::runtime& rt) {
            const double q = 1.0 + static_cast<double>(repetition++ % 7);
            rt.run([&] {
                triad_arrays& t = state.arrays_for(rt);
                for (unsigned s = 0; s < sweeps; ++s) triad_sweep(t.a.data(), t.b.data(), t.c.data(), n, q);
                check_triad(t, n, q);
            });
        },
        with_bytes);
    // One sweep's graph, on arrays already in place and warm. Not the timed
    // sweep's shape: static affinity gives exactly one piece per worker, so
    // its parallelism is the worker count by construction and would say
    // nothing. Smaller pieces (triad_graph_grain) show what the loop itself
    // allows; the curve then shows what bandwidth allows.
    std::optional<probe::work_span> graph;
    std::string note;
    if (triad_arrays* t = state.last(); t != nullptr && r.verdict != probe::limit::failed) {
        try {
            const double q = 2.0;
            unsigned top = nominal_workers(o);
            if (top == 0) top = forkline::topology::discover().summary().cores;
            const std::size_t grain = triad_graph_grain(n, top);
            double* const a = t->a.data();
            const double* const b = t->b.data();
            const double* const c = t->c.data();
            graph = probe::measure_work_span(
                [&] {
                    forkline::parallel_for(std::size_t{0}, n, grain,
                                           [a, b, c, q](std::size_t i) { a[i] = b[i] + q * c[i]; });
                },
                {.nominal_workers = nominal_workers(o)});
            check_triad(*t, n, q);
        } catch (const wrong_answer& w) {
            return failed("triad", std::string("work/span run: ") + w.what());
        } catch (const std::exception& x) {
            note = std::string("(work/span not measured: ") + x.what() + ")";
        }
    }
    return finish(
        std::move(r), [&](probe::result& res) { res.graph = graph; }, note);
}

// ---- pipeline -----------------------------------------------------------

/// Folds a sequence of line digests in order: value = value * k + d, so a
/// line missing, repeated or out of order changes the result. A chunk's
/// fold combines with the total as total * k^lines + value.
constexpr std::uint64_t k_fold = 0x9e3779b97f4a7c15ULL;

struct fold {
    std::uint64_t value = 0;
    std::uint64_t power = 1;  ///< k_fold ^ lines
    std::uint64_t lines = 0;

    void add(std::uint64_t digest) noexcept {
        value = value * k_fold + digest;
        power *= k_fold;
        ++lines;
    }
    void add(const fold& later) noexcept {
        value = value * later.power + later.value;
        power *= later.power;
        lines += later.lines;
    }
};

std::uint64_t mix(std::uint64_t x) noexcept {
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dULL;
    x ^= x >> 33;
    return x;
}

/// Rounds of hashing over each line's path: the pipeline's parallel work.
constexpr int k_path_rounds = 8;

/// The start of a bad line for an error message (a whole chunk, when its
/// end is not a line's, would be 256 KiB).
std::string excerpt(std::string_view text) {
    constexpr std::size_t k_max = 120;
    return "'" + std::string(text.substr(0, k_max)) + (text.size() > k_max ? "...'" : "'");
}

template <class T>
T field_number(std::string_view field, std::string_view line) {
    T v{};
    const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
    if (ec != std::errc{} || end != field.data() + field.size()) {
        throw wrong_answer("pipeline: malformed line (a chunk split a line?): " + excerpt(line));
    }
    return v;
}

/// Parses one line, "ID HOST METHOD PATH STATUS BYTES MILLIS", and hashes
/// its fields (the path k_path_rounds times over). Throws wrong_answer on a
/// line that is not of that shape.
std::uint64_t line_digest(std::string_view line) {
    std::string_view f[7];
    std::size_t at = 0;
    for (int k = 0; k < 7; ++k) {
        const std::size_t sp = k < 6 ? line.find(' ', at) : line.size();
        if (sp == std::string_view::npos) {
            throw wrong_answer("pipeline: malformed line (a chunk split a line?): " + excerpt(line));
        }
        f[k] = line.substr(at, sp - at);
        at = sp + 1;
    }
    std::uint64_t h = field_number<std::uint64_t>(f[0], line);
    h = mix(h ^ field_number<std::uint64_t>(f[4], line));
    h = mix(h ^ field_number<std::uint64_t>(f[5], line));
    const std::size_t dot = f[6].find('.');
    if (dot == std::string_view::npos) {
        throw wrong_answer("pipeline: malformed line (no decimal point in the time): " + excerpt(line));
    }
    h = mix(h ^ field_number<std::uint64_t>(f[6].substr(0, dot), line));
    h = mix(h ^ field_number<std::uint64_t>(f[6].substr(dot + 1), line));
    for (const std::string_view text : {f[1], f[2]}) {
        for (const char c : text) h = mix(h ^ static_cast<unsigned char>(c));
    }
    for (int round = 0; round < k_path_rounds; ++round) {
        for (const char c : f[3]) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
        h = mix(h + static_cast<std::uint64_t>(round));
    }
    return h;
}

/// The digests of the whole lines in [p, p + size).
fold fold_lines(const char* p, std::size_t size) {
    fold f;
    std::string_view rest(p, size);
    while (!rest.empty()) {
        const std::size_t nl = rest.find('\n');
        if (nl == std::string_view::npos) {
            throw wrong_answer("pipeline: a chunk ends inside a line: " + excerpt(rest));
        }
        f.add(line_digest(rest.substr(0, nl)));
        rest.remove_prefix(nl + 1);
    }
    return f;
}

/// A folder of its own under the system's temporary directory, removed
/// with everything in it when this goes out of scope, failure or not.
class temp_folder {
public:
    temp_folder() {
        std::error_code ec;
        const std::filesystem::path tmp = std::filesystem::temp_directory_path(ec);
        if (ec) {
            const char* env = std::getenv("TMPDIR");
            throw forkline::system_failure("temp_directory_path", ec.value(),
                                           std::string("no folder for the pipeline's input (TMPDIR=") +
                                               (env != nullptr ? env : "unset") + ")");
        }
        std::string pattern = (tmp / "forkline-probe-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw forkline::system_failure("mkdtemp", errno, "cannot make a folder like " + pattern +
                                                                 " for the pipeline's input (set TMPDIR?)");
        }
        m_path = pattern;
    }
    ~temp_folder() {
        std::error_code ec;  // nothing to do about a failure here but leave it
        std::filesystem::remove_all(m_path, ec);
    }
    temp_folder(const temp_folder&) = delete;
    temp_folder& operator=(const temp_folder&) = delete;

    const std::filesystem::path& path() const noexcept { return m_path; }

private:
    std::filesystem::path m_path;
};

/// Writes about `bytes` of log-like lines to `path` and returns the fold of
/// their digests, computed here on one thread: the answer every pipeline
/// run must reproduce.
fold generate_lines(const std::filesystem::path& path, std::size_t bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw forkline::system_failure("open", errno, "cannot create " + path.string());
    struct closer {
        int fd;
        ~closer() {
            if (fd >= 0) ::close(fd);
        }
    } guard{fd};
    static constexpr const char* k_methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};
    static constexpr unsigned k_statuses[] = {200, 200, 200, 200, 304, 404, 500};
    fold expected;
    std::string block;
    block.reserve((std::size_t{1} << 20) + 256);
    std::size_t written = 0;
    auto flush = [&] {
        std::size_t done = 0;
        while (done < block.size()) {
            const ssize_t w = ::write(fd, block.data() + done, block.size() - done);
            if (w < 0) {
                if (errno == EINTR) continue;
                throw forkline::system_failure("write", errno, "cannot write " + path.string());
            }
            done += static_cast<std::size_t>(w);
        }
        written += block.size();
        block.clear();
    };
    for (std::uint64_t id = 0; written + block.size() < bytes; ++id) {
        const std::uint64_t r = mix(id + 1);
        char line[192];
        const int len = std::snprintf(
            line, sizeof line, "%llu host%02u %s /api/v2/items/%u/part/%u?ref=%08x %u %u %u.%03u\n",
            static_cast<unsigned long long>(id), static_cast<unsigned>(r % 64), k_methods[(r >> 6) % 6],
            static_cast<unsigned>((r >> 9) % 100000), static_cast<unsigned>((r >> 26) % 1000),
            static_cast<unsigned>(r >> 36), k_statuses[(r >> 13) % 7], static_cast<unsigned>((r >> 20) % 65536),
            static_cast<unsigned>((r >> 40) % 200), static_cast<unsigned>((r >> 48) % 1000));
        const std::string_view text(line, static_cast<std::size_t>(len));
        expected.add(line_digest(text.substr(0, text.size() - 1)));
        block.append(text);
        if (block.size() >= (std::size_t{1} << 20)) flush();
    }
    flush();
    if (::close(guard.fd) != 0) {
        guard.fd = -1;
        throw forkline::system_failure("close", errno, "cannot write " + path.string());
    }
    guard.fd = -1;
    return expected;
}

/// What leaves the parse stage: the chunk (to give back) and its lines' fold.
struct parsed_chunk {
    forkline::io::chunk chunk;
    fold lines;
};

/// read (serial) -> parse and hash every line (parallel) -> fold in input
/// order (serial). Returns the run's stage statistics; throws wrong_answer
/// when the fold is not `expected`.
forkline::pipeline_stats run_lines(forkline::runtime& rt, const std::filesystem::path& input, const fold& expected) {
    // Enough chunks in flight for every worker to parse one while others are
    // read and parsed ones wait their turn in "fold".
    const std::size_t tokens = 4 * std::size_t{rt.worker_count()} + 2;
    forkline::io::reader in(input.string(), {.chunk_bytes = std::size_t{256} << 10,
                                             .depth = static_cast<unsigned>(tokens),
                                             .whole_lines = true});
    fold total;
    const forkline::pipeline_stats stats = forkline::run_pipeline(
        rt, tokens,
        forkline::stage(forkline::serial_in_order, "read", forkline::read_stage(in)),
        forkline::stage(forkline::parallel, "parse",
                        [](forkline::io::chunk& c) {
                            const fold f = fold_lines(c.data.data(), c.data.size());
                            return parsed_chunk{std::move(c), f};
                        }),
        forkline::stage(forkline::serial_in_order, "fold", [&](parsed_chunk& p) {
            total.add(p.lines);
            in.recycle(std::move(p.chunk));
        }));
    if (total.lines != expected.lines || total.value != expected.value) {
        throw wrong_answer("pipeline: expected " + std::to_string(expected.lines) + " lines folding to " +
                           std::to_string(expected.value) + ", got " + std::to_string(total.lines) +
                           " lines folding to " + std::to_string(total.value));
    }
    return stats;
}

probe::result run_lines_workload(const probe::options& o, effort e) {
    // 16 MiB (quick), 64 MiB (normal), 128 MiB (thorough) of lines of about
    // 80 bytes; a repetition at one worker takes about 0.1 s, 0.4 s and 0.8 s
    // on the 2-core development host.
    const std::size_t bytes = std::size_t{e == effort::quick ? 16u : (e == effort::normal ? 64u : 128u)} << 20;
    std::optional<temp_folder> folder;
    std::filesystem::path input;
    fold expected;
    try {
        folder.emplace();
        input = folder->path() / "lines.log";
        expected = generate_lines(input, bytes);
    } catch (const std::exception& x) {
        return failed("pipeline", std::string("cannot make the input: ") + x.what());
    }
    // The bound comes from the smallest count's run (one worker when the
    // curve has it): there the stages' busy times are not inflated by
    // waiting on each other's workers.
    std::optional<forkline::pipeline_stats> kept;
    unsigned kept_workers = 0;
    probe::result r = probe::scaling(
        "pipeline",
        [&](forkline::runtime& rt) {
            forkline::pipeline_stats s = run_lines(rt, input, expected);
            if (!kept || rt.worker_count() <= kept_workers) {
                kept = std::move(s);
                kept_workers = rt.worker_count();
            }
        },
        o);
    return finish(
        std::move(r),
        [&](probe::result& res) {
            if (kept) res.pipeline = probe::bound_of(*kept);
        },
        std::string());
}

}  // namespace

std::vector<builtin> builtin_workloads() {
    return {
        {"fib",
         "fib(36 / 37 / 39 for quick / normal / thorough), a spawn at every call with n >= 2 and no cutoff: "
         "spawn and join overhead; work and span measured on fib(n - 4)",
         run_fib},
        {"uts",
         "Unbalanced Tree Search T1 (4130071 nodes of SHA-1), a spawn per child: irregular parallelism; work "
         "and span measured on the same tree",
         run_uts},
        {"triad",
         "STREAM triad a = b + q c over 3 x 32 MiB of doubles (quick: 3 x 8 MiB), 60 sweeps (quick 100, "
         "thorough 150) with static affinity: memory bandwidth; work and span of one sweep cut in 64 pieces "
         "per worker",
         run_triad},
        {"pipeline",
         "read -> parse and hash lines (parallel) -> fold in order (serial) over a generated 64 MiB file "
         "(quick: 16 MiB, thorough: 128 MiB): the serial stages' bound",
         run_lines_workload},
    };
}

}  // namespace forkline_probe

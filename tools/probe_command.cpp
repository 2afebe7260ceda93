// tools/probe_command.cpp: forkline-probe's external-command mode: a program
// run at each worker count, timed from outside, fitted like an in-process
// workload. The contract is in probe_command.hpp.
#include "probe_command.hpp"

#include <fcntl.h>         // open, fcntl, O_CLOEXEC, O_NONBLOCK, F_DUPFD_CLOEXEC
#include <poll.h>          // poll, pollfd
#include <signal.h>        // kill, sigset_t, sigemptyset, sigprocmask
#include <string.h>        // strerrordesc_np, sigabbrev_np, strsignal
#include <sys/resource.h>  // rusage
#include <sys/syscall.h>   // SYS_pidfd_open
#include <sys/wait.h>      // wait4, waitpid, WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG
#include <unistd.h>        // fork, pipe2, execvpe, dup2, read, write, close, _exit, environ

#include <algorithm>    // sort, stable_sort, unique, max, clamp
#include <cerrno>       // errno, EINTR, EAGAIN, ENOENT
#include <chrono>       // steady_clock
#include <cmath>        // floor, llround
#include <cstddef>      // size_t
#include <exception>    // exception
#include <limits>       // numeric_limits
#include <optional>     // optional
#include <string>       // string, to_string
#include <string_view>  // string_view
#include <utility>      // exchange
#include <vector>       // vector

#include "forkline/errors.hpp"    // system_failure, config_error
#include "forkline/topology.hpp"  // topology::discover

namespace forkline_probe {
namespace {

namespace probe = forkline::probe;

constexpr std::size_t k_tail_bytes = 4096;
constexpr const char* k_workers_mark = "{workers}";
constexpr const char* k_ranks_mark = "{ranks}";

/// arg with every `mark` replaced by `by`.
std::string replace_all(const std::string& arg, const std::string& mark, const std::string& by) {
    std::string a;
    std::size_t from = 0;
    for (std::size_t at = arg.find(mark); at != std::string::npos; at = arg.find(mark, from)) {
        a.append(arg, from, at - from);
        a += by;
        from = at + mark.size();
    }
    a.append(arg, from, std::string::npos);
    return a;
}

/// A file descriptor closed when it goes out of scope.
class owned_fd {
public:
    owned_fd() noexcept = default;
    explicit owned_fd(int fd) noexcept : m_fd(fd) {}
    owned_fd(owned_fd&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
    owned_fd& operator=(owned_fd&& o) noexcept {
        if (this != &o) {
            reset();
            m_fd = std::exchange(o.m_fd, -1);
        }
        return *this;
    }
    owned_fd(const owned_fd&) = delete;
    owned_fd& operator=(const owned_fd&) = delete;
    ~owned_fd() { reset(); }

    int get() const noexcept { return m_fd; }
    bool valid() const noexcept { return m_fd >= 0; }
    void reset() noexcept {
        if (m_fd >= 0) ::close(m_fd);
        m_fd = -1;
    }

private:
    int m_fd = -1;
};

/// `fd` moved above 0, 1 and 2 when it landed on one of them (our own
/// standard streams were closed): the child's dup2 onto 0..2 must not
/// overwrite another of the descriptors it still has to place.
owned_fd above_stdio(owned_fd fd, const char* what) {
    if (fd.get() > 2) return fd;
    const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0) throw forkline::system_failure("fcntl", errno, std::string("F_DUPFD_CLOEXEC on ") + what);
    return owned_fd(moved);
}

owned_fd open_dev_null(int flags) {
    const int fd = ::open("/dev/null", flags | O_CLOEXEC);
    if (fd < 0) throw forkline::system_failure("open", errno, "/dev/null");
    return above_stdio(owned_fd(fd), "/dev/null");
}

std::string base_name(const std::string& path) {
    const std::size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// The argument as a shell would need it typed: bare when it has nothing a
/// shell treats specially ("{workers}" included), else in single quotes.
std::string shell_quoted(const std::string& arg) {
    const bool plain = !arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789_@%+=:,./{}-") == std::string::npos;
    if (plain) return arg;
    std::string q = "'";
    for (const char c : arg) {
        if (c == '\'') {
            q += "'\\''";
        } else {
            q += c;
        }
    }
    return q + "'";
}

std::string command_line(std::span<const std::string> argv) {
    std::string line;
    for (const std::string& a : argv) {
        if (!line.empty()) line += ' ';
        line += shell_quoted(a);
    }
    return line;
}

/// Our environment with FORKLINE_WORKERS=workers in place of any inherited value.
std::vector<std::string> environment_with_workers(unsigned workers) {
    static constexpr std::string_view k_name = "FORKLINE_WORKERS=";
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        if (std::string_view(*e).starts_with(k_name)) continue;
        env.emplace_back(*e);
    }
    env.push_back(std::string(k_name) + std::to_string(workers));
    return env;
}

/// Null-terminated pointers into `strings`, as exec wants them.
std::vector<char*> exec_vector(std::vector<std::string>& strings) {
    std::vector<char*> v;
    v.reserve(strings.size() + 1);
    for (std::string& s : strings) v.push_back(s.data());
    v.push_back(nullptr);
    return v;
}

const char* errno_text(int e) noexcept {
    // strerrordesc_np: a constant string, no locale lookup (which may
    // allocate): safe in a child forked from a threaded parent.
    const char* t = ::strerrordesc_np(e);
    return t != nullptr ? t : "unknown error";
}

void write_all(int fd, const char* data, std::size_t n) noexcept {
    while (n > 0) {
        const ssize_t w = ::write(fd, data, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;  // nowhere left to report it
        }
        data += w;
        n -= static_cast<std::size_t>(w);
    }
}

void write_text(int fd, const char* text) noexcept {
    std::size_t n = 0;
    while (text[n] != '\0') ++n;
    write_all(fd, text, n);
}

/// The child's side of fork(): only async-signal-safe calls, since the
/// parent may have other threads (a runtime's workers) whose locks were
/// copied mid-operation. Everything it needs was built before fork().
[[noreturn]] void become_command(char* const* argv, char* const* envp, int in_fd, int out_fd, int err_fd) noexcept {
    // A mask our threads set (they block signals the runtime handles
    // itself) must not leak into a program that expects the default.
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // The three are above 2 (above_stdio), so no dup2 clobbers another.
    if (::dup2(err_fd, 2) < 0 || ::dup2(in_fd, 0) < 0 || (out_fd >= 0 && ::dup2(out_fd, 1) < 0)) {
        const int e = errno;
        write_text(2, "forkline-probe: dup2 before running the command failed: ");
        write_text(2, errno_text(e));
        write_text(2, "\n");
        ::_exit(126);
    }
    ::execvpe(argv[0], argv, envp);
    const int e = errno;
    write_text(2, "forkline-probe: cannot execute ");
    write_text(2, argv[0]);
    write_text(2, ": execvp: ");
    write_text(2, errno_text(e));
    write_text(2, "\n");
    // The shell's convention: 127 when there is no such program, 126 when
    // there is one that cannot be run.
    ::_exit(e == ENOENT || e == ENOTDIR ? 127 : 126);
}

/// "SIGSEGV (Segmentation fault)".
std::string signal_name(int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    const char* description = ::strsignal(sig);
    std::string name = abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
    if (description != nullptr) name += std::string(" (") + description + ")";
    return name;
}

/// The q-quantile of sorted values, interpolated linearly between the two
/// nearest ranks (position q (n - 1)), as R's and NumPy's defaults do.
double quantile(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return std::numeric_limits<double>::quiet_NaN();
    const double pos = q * static_cast<double>(sorted.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    if (lo + 1 >= sorted.size()) return sorted.back();
    const double frac = pos - static_cast<double>(lo);
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

std::vector<double> sorted_copy(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v;
}

/// (q3 - q1) / median: probe::point::spread.
double spread_of(const std::vector<double>& seconds) {
    const std::vector<double> s = sorted_copy(seconds);
    const double median = quantile(s, 0.5);
    if (!(median > 0)) return std::numeric_limits<double>::infinity();
    return (quantile(s, 0.75) - quantile(s, 0.25)) / median;
}

/// What one count's timed runs saw besides their wall time.
struct rusage_record {
    std::vector<double> user_s;
    std::vector<double> sys_s;
    std::vector<double> peak_rss_kb;
};

void fill_point(probe::point& p, const rusage_record& rec) {
    const std::vector<double> s = sorted_copy(p.seconds);
    p.median_s = quantile(s, 0.5);
    p.min_s = s.front();
    p.max_s = s.back();
    p.spread = spread_of(p.seconds);
    p.shares.reset();  // no counters from outside the process
    p.work_inflation = std::numeric_limits<double>::quiet_NaN();
    p.user_s = quantile(sorted_copy(rec.user_s), 0.5);
    p.sys_s = quantile(sorted_copy(rec.sys_s), 0.5);
    p.peak_rss_kb = std::llround(quantile(sorted_copy(rec.peak_rss_kb), 0.5));
}

std::string at_workers(unsigned workers, unsigned ranks = 0) {
    if (ranks > 0) {
        const unsigned each = workers / ranks;
        return " (at " + std::to_string(ranks) + (ranks == 1 ? " rank of " : " ranks of ") + std::to_string(each) +
               (each == 1 ? " worker)" : " workers)");
    }
    return " (at " + std::to_string(workers) + (workers == 1 ? " worker)" : " workers)");
}

std::string failure_text(const std::string& command, unsigned workers, unsigned ranks, const command_run& run) {
    std::string text = command + at_workers(workers, ranks);
    if (run.signal != 0) {
        text += " was killed by signal " + signal_name(run.signal);
    } else {
        text += " exited with status " + std::to_string(run.exit_code);
    }
    std::string tail = run.stderr_tail;
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
    if (!tail.empty()) text += "; its stderr ends:\n" + tail;
    return text;
}

}  // namespace

std::vector<std::string> substitute_workers(std::span<const std::string> argv, unsigned workers, unsigned ranks) {
    std::vector<std::string> out;
    out.reserve(argv.size());
    for (const std::string& arg : argv) {
        std::string a = replace_all(arg, k_workers_mark, std::to_string(workers));
        if (ranks > 0) a = replace_all(a, k_ranks_mark, std::to_string(ranks));
        out.push_back(std::move(a));
    }
    return out;
}

command_run run_command(std::span<const std::string> argv, unsigned workers, bool show_output) {
    if (argv.empty()) throw forkline::config_error("forkline-probe: no command to run");
    const std::string& program = argv[0];

    // Built before fork(): the child may not allocate.
    std::vector<std::string> args(argv.begin(), argv.end());
    std::vector<char*> arg_ptrs = exec_vector(args);
    std::vector<std::string> env = environment_with_workers(workers);
    std::vector<char*> env_ptrs = exec_vector(env);

    owned_fd in = open_dev_null(O_RDONLY);
    owned_fd out = show_output ? owned_fd() : open_dev_null(O_WRONLY);
    int ends[2];
    // O_CLOEXEC: no other child we or our threads start may hold the write
    // end, or our read would not see EOF when this child exits.
    if (::pipe2(ends, O_CLOEXEC) != 0) {
        throw forkline::system_failure("pipe2", errno, "the pipe for the stderr of " + program);
    }
    owned_fd err_read(ends[0]);
    owned_fd err_write = above_stdio(owned_fd(ends[1]), "the stderr pipe");
    // Non-blocking on our end only (its own open file description): after the
    // child is reaped we take what is buffered without waiting on a
    // grandchild that may have kept the write end.
    if (::fcntl(err_read.get(), F_SETFL, O_NONBLOCK) != 0) {
        throw forkline::system_failure("fcntl", errno, "O_NONBLOCK on the stderr pipe of " + program);
    }

    const auto start = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) throw forkline::system_failure("fork", errno, "starting " + program);
    if (pid == 0) become_command(arg_ptrs.data(), env_ptrs.data(), in.get(), out.get(), err_write.get());
    err_write.reset();  // the child's copy is the only one now: EOF when it closes
    // Should waiting on it fail (poll, read), the child is killed and reaped
    // rather than left running unobserved.
    struct unreaped {
        pid_t pid;
        ~unreaped() {
            if (pid <= 0) return;
            ::kill(pid, SIGKILL);
            while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
            }
        }
    } guard{pid};

    command_run run;
    auto take = [&](const char* data, std::size_t n) {
        if (show_output) write_all(2, data, n);
        run.stderr_tail.append(data, n);
        if (run.stderr_tail.size() > k_tail_bytes) run.stderr_tail.erase(0, run.stderr_tail.size() - k_tail_bytes);
    };
    // Reads what the pipe holds now; false at EOF.
    auto drain = [&]() -> bool {
        char buf[4096];
        for (;;) {
            const ssize_t n = ::read(err_read.get(), buf, sizeof buf);
            if (n > 0) {
                take(buf, static_cast<std::size_t>(n));
            } else if (n == 0) {
                return false;
            } else if (errno == EAGAIN) {
                return true;
            } else if (errno != EINTR) {
                throw forkline::system_failure("read", errno, "the stderr pipe of " + program);
            }
        }
    };

    // A pidfd wakes poll() the moment the child exits, even when a process
    // it started still holds its stderr; without one (kernels before 5.3)
    // we look with wait4(WNOHANG) at every timeout instead.
    owned_fd child(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    constexpr int k_fallback_poll_ms = 10;
    bool pipe_open = true;
    bool reaped = false;
    int status = 0;
    rusage usage{};
    while (!reaped && (pipe_open || child.valid())) {
        pollfd fds[2];
        nfds_t n = 0;
        if (pipe_open) fds[n++] = pollfd{err_read.get(), POLLIN, 0};
        const nfds_t child_slot = n;
        if (child.valid()) fds[n++] = pollfd{child.get(), POLLIN, 0};
        const int ready = ::poll(fds, n, child.valid() ? -1 : k_fallback_poll_ms);
        if (ready < 0) {
            if (errno == EINTR) continue;
            throw forkline::system_failure("poll", errno, "waiting on " + program);
        }
        if (pipe_open && fds[0].revents != 0) pipe_open = drain();
        const bool exited = child.valid() ? fds[child_slot].revents != 0 : ready == 0;
        if (!exited) continue;
        // With a pidfd the child has exited and this returns at once; in the
        // fallback it returns 0 while the child still runs.
        const int flags = child.valid() ? 0 : WNOHANG;
        pid_t got;
        do {
            got = ::wait4(pid, &status, flags, &usage);
        } while (got < 0 && errno == EINTR);
        if (got < 0) throw forkline::system_failure("wait4", errno, "waiting for " + program);
        reaped = got == pid;
    }
    if (!reaped) {  // stderr closed (normally: the child exited); collect it
        pid_t got;
        do {
            got = ::wait4(pid, &status, 0, &usage);
        } while (got < 0 && errno == EINTR);
        if (got < 0) throw forkline::system_failure("wait4", errno, "waiting for " + program);
    }
    const auto end = std::chrono::steady_clock::now();
    guard.pid = 0;
    if (pipe_open) drain();  // what it wrote just before exiting

    run.wall_s = std::chrono::duration<double>(end - start).count();
    run.user_s = static_cast<double>(usage.ru_utime.tv_sec) + static_cast<double>(usage.ru_utime.tv_usec) * 1e-6;
    run.sys_s = static_cast<double>(usage.ru_stime.tv_sec) + static_cast<double>(usage.ru_stime.tv_usec) * 1e-6;
    // Counts the pages the child shared with us between fork and exec too, so
    // it is at least our own resident size (a few MiB).
    run.peak_rss_kb = usage.ru_maxrss;
    if (WIFSIGNALED(status)) {
        run.signal = WTERMSIG(status);
    } else {
        run.exit_code = WEXITSTATUS(status);
    }
    return run;
}

probe::result probe_command(std::span<const std::string> argv, const probe::options& o, bool show_output,
                            std::span<const unsigned> rank_counts) {
    if (argv.empty()) throw forkline::config_error("forkline-probe: no command to run after --");
    probe::result r;
    r.name = base_name(argv[0]);
    r.command = command_line(argv);

    std::vector<unsigned> counts =
        o.workers.empty() ? probe::default_worker_counts(forkline::topology::discover(), o.use_smt) : o.workers;
    std::sort(counts.begin(), counts.end());  // as probe::scaling: the points in order, each once
    counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
    for (const unsigned w : counts) {
        if (w == 0) throw forkline::config_error("forkline-probe: worker count 0 in the list (FORKLINE_WORKERS must be at least 1)");
    }
    // The runs: (ranks, workers per rank); ranks 0 without --ranks.
    struct shape {
        unsigned ranks = 0;
        unsigned workers = 0;  // per rank
    };
    std::vector<shape> shapes;
    if (rank_counts.empty()) {
        for (const unsigned w : counts) shapes.push_back({0, w});
    } else {
        std::vector<unsigned> ranks(rank_counts.begin(), rank_counts.end());
        std::sort(ranks.begin(), ranks.end());
        ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
        for (const unsigned n : ranks) {
            if (n == 0) throw forkline::config_error("forkline-probe: rank count 0 in --ranks (a run needs at least 1)");
            for (const unsigned w : counts) {
                if (static_cast<unsigned long long>(n) * w > 1'000'000) {
                    throw forkline::config_error("forkline-probe: " + std::to_string(n) + " ranks x " + std::to_string(w) +
                                                 " workers is past 1,000,000 workers in all");
                }
                shapes.push_back({n, w});
            }
        }
        // In order of the count the fits see, then fewer ranks first.
        std::stable_sort(shapes.begin(), shapes.end(), [](const shape& a, const shape& b) {
            return a.ranks * a.workers < b.ranks * b.workers;
        });
    }
    r.points.resize(shapes.size());
    std::vector<rusage_record> usage(shapes.size());
    for (std::size_t i = 0; i < shapes.size(); ++i) {
        r.points[i].ranks = shapes[i].ranks;
        r.points[i].workers = shapes[i].ranks > 0 ? shapes[i].ranks * shapes[i].workers : shapes[i].workers;
        for (const probe::compute_ceiling& c : o.ceiling) {
            if (c.workers == r.points[i].workers) r.points[i].host_slowdown = c.slowdown;
        }
    }

    probe::host_meter meter(false);
    std::optional<std::chrono::steady_clock::time_point> first_timed;  // started_s counts from it
    std::vector<unsigned> set_aside(shapes.size(), 0);  // disturbed runs not kept, per shape
    // One run of shape i; false when it failed, with r.error said.
    auto run_once = [&](std::size_t i, unsigned repetition) -> bool {
        const unsigned w = shapes[i].workers;
        const unsigned total = r.points[i].workers;
        command_run c;
        const auto began = std::chrono::steady_clock::now();
        if (repetition > 0 && !first_timed) first_timed = began;
        try {
            meter.start();
            c = run_command(substitute_workers(argv, w, shapes[i].ranks), w, show_output);
        } catch (const std::exception& e) {
            r.error = r.command + at_workers(total, shapes[i].ranks) + " could not be run: " + e.what();
            return false;
        }
        if (!c.ok()) {
            r.error = failure_text(r.command, total, shapes[i].ranks, c);
            return false;
        }
        if (o.on_progress) o.on_progress(probe::progress{r.name, total, repetition, c.wall_s});
        if (repetition == 0) return true;
        probe::point& p = r.points[i];
        // The command's own CPU time is its rusage (children included).
        const probe::disturbance d = meter.finish(c.wall_s, c.user_s + c.sys_s, total, o.busy);
        if (d.disturbed) {
            ++p.disturbed_reps;
            if (set_aside[i] < o.max_disturbed) {
                ++set_aside[i];  // not kept: the rounds run this shape again
                return true;
            }
            p.disturbed = true;
        }
        if (std::isfinite(d.others_cpus)) {
            p.others_cpus = std::isfinite(p.others_cpus) ? std::max(p.others_cpus, d.others_cpus) : d.others_cpus;
        }
        p.seconds.push_back(c.wall_s);
        p.started_s.push_back(std::chrono::duration<double>(began - *first_timed).count());
        usage[i].user_s.push_back(c.user_s);
        usage[i].sys_s.push_back(c.sys_s);
        usage[i].peak_rss_kb.push_back(static_cast<double>(c.peak_rss_kb));
        return true;
    };
    // The stop rule of probe::scaling; every count gets at least one timed run.
    const std::size_t min_reps = std::max(1U, o.min_reps);
    auto wants_more = [&](const probe::point& p) {
        const std::size_t n = p.seconds.size();
        if (n < min_reps) return true;
        if (n >= o.max_reps) return false;
        double spent = 0;
        for (const double s : p.seconds) spent += s;
        return spread_of(p.seconds) > o.target_spread && spent < o.max_point_seconds;
    };

    bool ok = true;
    for (std::size_t i = 0; ok && i < shapes.size(); ++i) {
        for (unsigned k = 0; ok && k < o.warmup; ++k) ok = run_once(i, 0);
    }
    // Rounds: one repetition of every count still short of its stop rule, so
    // that a slow drift of the host reaches every count alike.
    for (bool any = true; ok && any;) {
        any = false;
        for (std::size_t i = 0; ok && i < shapes.size(); ++i) {
            if (!wants_more(r.points[i])) continue;
            any = true;
            ok = run_once(i, static_cast<unsigned>(r.points[i].seconds.size() + 1));
        }
    }

    // A failed probe keeps the points measured so far, unfitted.
    std::vector<probe::point> measured;
    for (std::size_t i = 0; i < shapes.size(); ++i) {
        if (r.points[i].seconds.empty()) continue;
        fill_point(r.points[i], usage[i]);
        measured.push_back(std::move(r.points[i]));
    }
    r.points = std::move(measured);
    if (!ok) {
        r.verdict = probe::limit::failed;
        return r;
    }
    probe::analyse(r);
    return r;
}

std::vector<node_prediction> predict_nodes(const probe::result& r, std::span<const unsigned> nodes,
                                           unsigned workers_per_node) {
    constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    unsigned largest = 0;
    for (const probe::point& p : r.points) largest = std::max(largest, p.workers);
    const bool usl = r.usl.status == forkline::fit_status::ok || r.usl.status == forkline::fit_status::no_peak ||
                     r.usl.status == forkline::fit_status::linear;
    const bool amdahl = r.amdahl.status == forkline::fit_status::ok || r.amdahl.status == forkline::fit_status::linear;
    std::vector<node_prediction> out;
    for (const unsigned n_nodes : nodes) {
        node_prediction p;
        p.nodes = n_nodes;
        p.workers = workers_per_node;
        const double n = static_cast<double>(n_nodes) * workers_per_node;
        // The USL's effective workers at n, as the report's "at N:" line has
        // them; Amdahl: 1 / (s + (1 - s) / n).
        p.usl_speedup = usl ? forkline::usl_costs_at(r.usl, n).speedup : nan;
        const double s = std::clamp(r.amdahl.serial_fraction, 0.0, 1.0);
        p.amdahl_speedup = amdahl ? 1 / (s + (1 - s) / n) : nan;
        p.paths = static_cast<double>(n_nodes) * (static_cast<double>(n_nodes) - 1) / 2;
        p.beyond = largest > 0 ? n / largest : nan;
        out.push_back(p);
    }
    return out;
}

}  // namespace forkline_probe

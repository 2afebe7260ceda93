// bench/measure.cpp: fork, run one variant in the child, read its answer back through a pipe.
#include "measure.hpp"

#include <fcntl.h>         // O_CLOEXEC
#include <poll.h>          // poll
#include <signal.h>        // kill, SIGKILL
#include <sys/resource.h>  // rusage
#include <sys/wait.h>      // wait4, WIFEXITED, WTERMSIG
#include <unistd.h>        // fork, pipe2, read, write, close, _exit

#include <algorithm>    // sort, max, min
#include <cerrno>       // errno, EINTR
#include <chrono>       // steady_clock
#include <cstdio>       // fflush, snprintf
#include <cstdlib>      // setenv, exit
#include <cstring>      // strerror, strsignal, memcpy
#include <exception>    // exception
#include <string>       // string, to_string
#include <type_traits>  // is_trivially_copyable_v

namespace forkline_bench {
namespace {

// What the child writes to the pipe: fixed size, so a short read means the
// child died before answering.
struct child_report {
    sample measured;
    bool threw = false;
    char error[480] = {};
};
static_assert(std::is_trivially_copyable_v<child_report>);

void copy_message(char (&to)[480], const char* from) {
    std::size_t i = 0;
    for (; from[i] != '\0' && i + 1 < sizeof to; ++i) to[i] = from[i];
    to[i] = '\0';
}

[[noreturn]] void send_report_and_exit(int fd, const child_report& report, int status, bool traced) {
    const char* p = reinterpret_cast<const char*>(&report);
    std::size_t left = sizeof report;
    while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) ::_exit(4);
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    // Traced: exit(), whose handlers write the trace (FORKLINE_TRACE's
    // writer runs after the run's runtime has stopped; see "Tracing" in
    // runtime/DESIGN.md). The parent flushed stdio before forking, so no
    // output of its is printed twice. Otherwise _exit: no atexit handlers.
    if (traced) std::exit(status);
    ::_exit(status);
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char* name = ::strsignal(sig);
        return "killed by signal " + std::to_string(sig) + " (" + (name ? name : "?") + ")";
    }
    return "ended with wait status " + std::to_string(status);
}

std::string system_error_text(const char* call) {
    const int e = errno;
    return std::string(call) + " failed: " + std::strerror(e) + " (errno " + std::to_string(e) + ")";
}

[[noreturn]] void child_main(int fd, const workload& w, std::string_view impl, unsigned workers,
                             const std::string& trace_path) {
    const bool traced = !trace_path.empty();
    // Read by the first runtime this child makes (the parent makes none).
    if (traced && ::setenv("FORKLINE_TRACE", trace_path.c_str(), 1) != 0) ::_exit(5);
    child_report report;
    try {
        report.measured = w.run(impl, workers);
    } catch (const std::exception& e) {
        report.threw = true;
        copy_message(report.error, e.what());
    } catch (...) {
        report.threw = true;
        copy_message(report.error, "an exception not derived from std::exception");
    }
    send_report_and_exit(fd, report, report.threw ? 3 : 0, traced);
}

// Reads until EOF, which comes when the child has exited (it holds the only
// write end), or until the deadline. Returns false on timeout.
bool read_until_eof(int fd, std::string& bytes, std::chrono::steady_clock::time_point deadline) {
    char buf[512];
    for (;;) {
        const auto left = deadline - std::chrono::steady_clock::now();
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(left).count();
        if (ms <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(ms, 60'000)));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) continue;  // slice over: check the deadline again
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return true;  // EOF (or an error, which ends the stream as well)
        bytes.append(buf, static_cast<std::size_t>(n));
    }
}

}  // namespace

std::string trace_file_for(const std::string& base, std::string_view impl, unsigned workers) {
    const std::string tag = "." + std::string(impl) + ".w" + std::to_string(workers);
    const std::string ext = ".json";
    if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0) {
        return base.substr(0, base.size() - ext.size()) + tag + ext;
    }
    return base + tag + ext;
}

child_outcome measure_in_child(const workload& w, std::string_view impl, unsigned workers,
                               double timeout_s, const std::string& trace_path) {
    child_outcome out;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        out.error = system_error_text("pipe2");
        return out;
    }
    // Anything buffered now would otherwise be printed again by the child.
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        out.error = system_error_text("fork");
        ::close(fds[0]);
        ::close(fds[1]);
        return out;
    }
    if (pid == 0) {
        ::close(fds[0]);
        child_main(fds[1], w, impl, workers, trace_path);
    }
    ::close(fds[1]);

    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(timeout_s));
    std::string bytes;
    const bool finished = read_until_eof(fds[0], bytes, deadline);
    ::close(fds[0]);
    if (!finished) ::kill(pid, SIGKILL);

    int status = 0;
    rusage usage{};
    while (::wait4(pid, &status, 0, &usage) < 0) {
        if (errno != EINTR) {
            out.error = system_error_text("wait4");
            return out;
        }
    }
    out.peak_rss_kib = usage.ru_maxrss;  // Linux reports KiB

    if (!finished) {
        char limit[32];
        std::snprintf(limit, sizeof limit, "%g", timeout_s);
        out.error = std::string("no answer after ") + limit +
                    " s, killed (hung, or slower than --timeout allows)";
        return out;
    }
    if (bytes.size() != sizeof(child_report)) {
        out.error = "child " + describe_status(status) + " before answering";
        return out;
    }
    child_report report;
    std::memcpy(&report, bytes.data(), sizeof report);
    if (report.threw) {
        out.error = std::string("threw: ") + report.error;
        return out;
    }
    out.answered = true;
    out.measured = report.measured;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        out.error = "child answered, then " + describe_status(status) + " (during teardown)";
        return out;
    }
    if (std::string bad = w.check(report.measured.warmup_result); !bad.empty()) {
        out.error = "warm-up: " + bad;
        return out;
    }
    if (std::string bad = w.check(report.measured.result); !bad.empty()) {
        out.error = bad;
        return out;
    }
    out.ok = true;
    return out;
}

void config_result::add(unsigned rep, const child_outcome& outcome) {
    peak_rss_kib = std::max(peak_rss_kib, outcome.peak_rss_kib);
    if (outcome.answered) {  // a wrong answer is shown too, beside FAILED
        have_result = true;
        result = outcome.measured.result;
    }
    if (outcome.ok) {
        seconds.push_back(outcome.measured.seconds);
        return;
    }
    ++failures;
    errors.push_back("rep " + std::to_string(rep) + ": " + outcome.error);
}

spread summarise(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    spread s;
    s.min = v.front();
    s.max = v.back();
    s.median = (n % 2 == 1) ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
    return s;
}

}  // namespace forkline_bench

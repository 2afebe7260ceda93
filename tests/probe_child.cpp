// tests/probe_child.cpp: the program tests/probe_test.sh points
// forkline-probe at. Not linked with forkline: the external-command mode must
// work for any program. Each run takes a few milliseconds of sleep (no CPU,
// so a loaded test machine does not change what the test sees), shaped like
// a program with half its time serial, and can check, record or fail in the
// ways the test asks for:
//
//   probe_child [--ms T] [--workers-arg N] [--ranks-arg R] [--expect-env] [--tag TEXT]
//               [--log FILE] [--noise BYTES] [--fail-at N]
//               [--signal-at N [--signal SEGV|KILL]]
//
//   --ms T          sleep T (0.5 + 0.5 / (W R)) milliseconds, W = FORKLINE_WORKERS (default 4)
//   --workers-arg N the count forkline-probe substituted for {workers}
//   --ranks-arg R   the count it substituted for {ranks} (--ranks mode): added
//                   to the log line as " ranks=R"; R = 1 without it
//   --expect-env    exit 3 unless FORKLINE_WORKERS is set and equals --workers-arg
//   --tag TEXT      copied into the log line (checks {workers} inside an argument)
//   --log FILE      append "run workers=W env=E arg=A tag=T" to FILE
//   --noise BYTES   write that many bytes to stdout and to stderr first, more
//                   than a pipe holds, then one line to stdout
//   --fail-at N     at W = N: a line on stderr, then exit 5
//   --signal-at N   at W = N: die of the signal (SEGV unless --signal KILL)
//
// Exit status 2 for a bad command line or a FORKLINE_WORKERS that is not a number.
#include <fcntl.h>   // open
#include <signal.h>  // raise, signal, SIGSEGV, SIGKILL
#include <unistd.h>  // write, close

#include <cerrno>   // errno
#include <chrono>   // milliseconds
#include <cstdio>   // fprintf, printf, snprintf
#include <cstdlib>  // getenv, strtol
#include <cstring>  // strcmp, strerror, strlen
#include <string>   // string
#include <thread>   // sleep_for

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: probe_child [--ms T] [--workers-arg N] [--ranks-arg R] [--expect-env] [--tag TEXT] [--log FILE]\n"
                 "                   [--noise BYTES] [--fail-at N] [--signal-at N [--signal SEGV|KILL]]\n");
    return 2;
}

/// A whole decimal number, or -1.
long number(const char* text) {
    if (text == nullptr || *text == '\0') return -1;
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(text, &end, 10);
    return (errno != 0 || *end != '\0' || v < 0) ? -1 : v;
}

void write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

/// More bytes than a pipe buffer (64 KiB) on each stream, alternating, so
/// that a parent reading only one of them at a time would deadlock.
void make_noise(long bytes) {
    const std::string line = "probe_child noise: " + std::string(60, '.') + "\n";
    for (long done = 0; done < bytes; done += static_cast<long>(line.size())) {
        write_all(1, line.data(), line.size());
        write_all(2, line.data(), line.size());
    }
    const char* out = "probe_child: noise done on stdout\n";
    write_all(1, out, std::strlen(out));
}

}  // namespace

int main(int argc, char** argv) {
    double ms = 4;
    long workers_arg = -1;
    long ranks_arg = -1;
    bool expect_env = false;
    const char* tag = "";
    const char* log = nullptr;
    long noise = 0;
    long fail_at = -1;
    long signal_at = -1;
    int sig = SIGSEGV;
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
        if (std::strcmp(a, "--expect-env") == 0) {
            expect_env = true;
            continue;
        }
        if (value == nullptr) return usage();
        ++i;
        if (std::strcmp(a, "--ms") == 0) {
            ms = static_cast<double>(number(value));
            if (ms < 0) return usage();
        } else if (std::strcmp(a, "--workers-arg") == 0) {
            workers_arg = number(value);
            if (workers_arg < 0) {
                std::fprintf(stderr, "probe_child: --workers-arg '%s' is not a number (was {workers} substituted?)\n",
                             value);
                return 3;
            }
        } else if (std::strcmp(a, "--ranks-arg") == 0) {
            ranks_arg = number(value);
            if (ranks_arg < 1) {
                std::fprintf(stderr, "probe_child: --ranks-arg '%s' is not a positive number (was {ranks} substituted?)\n",
                             value);
                return 3;
            }
        } else if (std::strcmp(a, "--tag") == 0) {
            tag = value;
        } else if (std::strcmp(a, "--log") == 0) {
            log = value;
        } else if (std::strcmp(a, "--noise") == 0) {
            noise = number(value);
        } else if (std::strcmp(a, "--fail-at") == 0) {
            fail_at = number(value);
        } else if (std::strcmp(a, "--signal-at") == 0) {
            signal_at = number(value);
        } else if (std::strcmp(a, "--signal") == 0) {
            if (std::strcmp(value, "SEGV") == 0) {
                sig = SIGSEGV;
            } else if (std::strcmp(value, "KILL") == 0) {
                sig = SIGKILL;
            } else {
                return usage();
            }
        } else {
            return usage();
        }
    }

    const char* env = std::getenv("FORKLINE_WORKERS");
    const long workers = env != nullptr ? number(env) : 1;
    if (workers < 1) {
        std::fprintf(stderr, "probe_child: FORKLINE_WORKERS='%s' is not a positive number\n", env);
        return 2;
    }
    if (log != nullptr) {
        char line[512];
        char ranks_text[32] = "";
        if (ranks_arg > 0) std::snprintf(ranks_text, sizeof ranks_text, " ranks=%ld", ranks_arg);
        const int n = std::snprintf(line, sizeof line, "run workers=%ld env=%s arg=%ld tag=%s%s\n", workers,
                                    env != nullptr ? env : "unset", workers_arg, tag, ranks_text);
        // O_APPEND: one write() per line, so lines never interleave.
        const int fd = ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            std::fprintf(stderr, "probe_child: open %s: %s\n", log, std::strerror(errno));
            return 4;
        }
        write_all(fd, line, static_cast<std::size_t>(n < 0 ? 0 : n));
        ::close(fd);
    }
    if (expect_env && (env == nullptr || workers != workers_arg)) {
        std::fprintf(stderr, "probe_child: FORKLINE_WORKERS=%s but --workers-arg %ld\n", env != nullptr ? env : "unset",
                     workers_arg);
        return 3;
    }
    if (noise > 0) make_noise(noise);
    if (workers == fail_at) {
        std::fprintf(stderr, "probe_child: failing on purpose at %ld workers\n", workers);
        return 5;
    }
    if (workers == signal_at) {
        // The default action, even where a sanitizer's handler was installed
        // (it would report and exit instead of dying of the signal).
        ::signal(sig, SIG_DFL);
        ::raise(sig);
    }
    const double w = static_cast<double>(workers) * static_cast<double>(ranks_arg > 0 ? ranks_arg : 1);
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms * (0.5 + 0.5 / w)));
    return 0;
}

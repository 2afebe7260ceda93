// tests/child.hpp: run a scenario that may hang or crash in a forked child,
// so that a regression fails the test with a message instead of hanging the
// suite or killing the test program.
//
// The child starts with only the forking thread: a scenario must make its
// own runtime (never the parent's default_runtime(), whose workers do not
// exist in the child), and ends with _exit, so no parent static runs twice.
#pragma once

#include <signal.h>    // SIGALRM, SIGKILL
#include <sys/wait.h>  // waitpid, WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG
#include <unistd.h>    // fork, pipe, dup2, read, close, alarm, _exit

#include <cstdio>     // fflush
#include <exception>  // exception
#include <string>     // string

struct child_outcome {
    bool exited = false;     ///< exited normally (status below)
    int status = -1;         ///< exit status when exited
    int signal = 0;          ///< the signal that ended it, otherwise
    std::string err;         ///< what it wrote on stderr
    bool ok() const { return exited && status == 0; }
    bool timed_out() const { return signal == SIGALRM; }
    std::string describe() const {
        if (exited) return "exited with status " + std::to_string(status) + "; stderr: " + err;
        if (timed_out()) return "hung (killed after its deadline); stderr: " + err;
        return "killed by signal " + std::to_string(signal) + "; stderr: " + err;
    }
};

/// Runs fn() in a child with `seconds` to finish; a child that throws exits 70.
template <class Fn>
child_outcome run_in_child(Fn&& fn, unsigned seconds) {
    int fds[2];
    if (pipe(fds) != 0) return {};
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        alarm(seconds);
        int status = 0;
        try {
            fn();
        } catch (const std::exception& e) {
            dprintf(2, "child threw: %s\n", e.what());
            status = 70;
        } catch (...) {
            status = 70;
        }
        _exit(status);
    }
    close(fds[1]);
    child_outcome out;
    char buf[4096];
    for (;;) {
        const ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        out.err.append(buf, static_cast<std::size_t>(n));
    }
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st)) {
        out.exited = true;
        out.status = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        out.signal = WTERMSIG(st);
    }
    return out;
}

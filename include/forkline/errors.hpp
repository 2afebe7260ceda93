/// @file forkline/errors.hpp
/// The typed errors forkline throws.
///
/// Every error says what to try next: a config_error names the setting and the
/// accepted forms; a system_failure names the call, the object it was made on
/// and the errno.
#pragma once

#include <cerrno>        // errno values in system_failure
#include <stdexcept>     // invalid_argument, runtime_error
#include <string>        // string
#include <system_error>  // error_code, system_category

namespace forkline {

/// A configuration value (code or environment) that cannot be honoured.
/// Thrown by the runtime constructor and by the placement planner; nothing is
/// started when it is thrown, so the program may fix the setting and retry.
/// @code
/// try {
///     forkline::runtime rt;
/// } catch (const forkline::config_error& e) {  // e.g. FORKLINE_WORKERS=abc
///     std::fprintf(stderr, "%s\n", e.what());   // names the variable and the accepted forms
/// }
/// @endcode
class config_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// A system or library call failed. `call()` names it (e.g. "hwloc_set_cpubind"),
/// `code()` carries the errno, so a program can tell EPERM from ENOMEM.
/// @code
/// try {
///     forkline::runtime rt;
/// } catch (const forkline::system_failure& e) {
///     std::fprintf(stderr, "%s failed: %s\n", e.call().c_str(), e.what());
/// }
/// @endcode
class system_failure : public std::system_error {
public:
    /// what() reads "CALL: WHAT", then the errno's description.
    system_failure(std::string call, int errno_value, const std::string& what)
        : std::system_error(errno_value, std::system_category(),
                            call + ": " + what),
          m_call(std::move(call)) {}
    /// The call that failed, such as "mbind" or "io_uring_queue_init".
    const std::string& call() const noexcept { return m_call; }

private:
    std::string m_call;
};

/// Work was handed to a runtime that is stopping or stopped. Nothing of it ran.
/// @code
/// rt.stop();
/// try { rt.submit([] {}); } catch (const forkline::runtime_stopped&) { /* shutting down: drop it */ }
/// @endcode
class runtime_stopped : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Work handed in with a std::stop_token (runtime::run, runtime::submit)
/// whose stop was requested before the work started. Nothing of it ran.
/// Work already running when stop is requested is not interrupted: it sees
/// the cancellation through its loops and task groups, and its result (or
/// exception) is delivered as usual.
/// @code
/// std::stop_source stop;
/// auto fut = rt.submit(stop.get_token(), [] { return crunch(); });
/// stop.request_stop();
/// try { fut.get(); } catch (const forkline::cancelled&) { /* it never started */ }
/// @endcode
class cancelled : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace forkline

// forkline/errors.hpp: the typed errors forkline throws.
//
// Every error says what to try next: a config_error names the setting and the
// accepted forms; a system_failure names the call, the object it was made on
// and the errno.
#pragma once

#include <cerrno>        // errno values in system_failure
#include <stdexcept>     // invalid_argument, runtime_error
#include <string>        // string
#include <system_error>  // error_code, system_category

namespace forkline {

/// A configuration value (code or environment) that cannot be honoured.
/// Thrown by the runtime constructor and by the placement planner; nothing is
/// started when it is thrown.
class config_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// A system or library call failed. `call()` names it (e.g. "hwloc_set_cpubind"),
/// `code()` carries the errno.
class system_failure : public std::system_error {
public:
    system_failure(std::string call, int errno_value, const std::string& what)
        : std::system_error(errno_value, std::system_category(),
                            call + ": " + what),
          m_call(std::move(call)) {}
    const std::string& call() const noexcept { return m_call; }

private:
    std::string m_call;
};

/// Work was handed to a runtime that is stopping or stopped.
class runtime_stopped : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace forkline

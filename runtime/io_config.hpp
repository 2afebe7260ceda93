// runtime/io_config.hpp: choosing the I/O backend, split out of
// default_backend() so that tests can drive each step (the environment is read
// on every call, io_uring is probed once per process).
#pragma once

#include <string>  // string

#include "forkline/io.hpp"  // backend

namespace forkline::io::detail {

enum class io_setting { automatic, uring, psync };

/// FORKLINE_IO's value; nullptr (unset), "" and "auto" mean automatic.
/// Anything else but "uring" and "psync" is a config_error naming FORKLINE_IO
/// and the accepted values.
io_setting parse_io_setting(const char* value);

/// 0 when this process may set up an io_uring ring, else the errno that
/// io_uring_queue_init gave. Probed on the first call only.
int uring_probe_errno();

/// The backend for `setting` when the probe gave `probe_errno`: automatic
/// falls back to psync; uring with a failed probe is a system_failure naming
/// io_uring_queue_init and the errno.
backend resolve_backend(io_setting setting, int probe_errno);

/// The one line printed (once per process) when automatic falls back.
std::string fallback_notice(int probe_errno);

}  // namespace forkline::io::detail

// runtime/io_driver.hpp: how a reader's or writer's I/O thread reaches the
// kernel, io_uring or plain calls behind one interface, so that the ordering,
// continuation and error rules live once (runtime/io.cpp).
// See "I/O rings" in runtime/DESIGN.md.
#pragma once

#include <cstddef>  // size_t
#include <cstdint>  // uint64_t, int64_t
#include <memory>   // unique_ptr
#include <vector>   // vector

namespace forkline::io::detail {

/// One finished operation: its tag and the kernel's answer (bytes, or
/// -errno; for wait_ready, revents or -errno).
struct completion {
    std::uint64_t tag;
    int result;
};

/// Tags at or above this are the driver's own (doorbell, cancels, liburing's
/// timeouts); callers use smaller ones.
inline constexpr std::uint64_t k_first_reserved_tag = ~std::uint64_t{0} - 15;

/// Made, used and destroyed on one I/O thread: the io_uring ring is set up
/// single-issuer there. Operations start now (psync: run now) and finish
/// through wait(), in any order. A caller must not free an operation's
/// memory before its completion came out of wait().
class io_driver {
public:
    virtual ~io_driver() = default;

    /// off < 0: at the file's current position (pipes, O_APPEND files).
    virtual void read(std::uint64_t tag, int fd, char* p, std::size_t n, std::int64_t off) = 0;
    virtual void write(std::uint64_t tag, int fd, const char* p, std::size_t n,
                       std::int64_t off) = 0;
    /// Completes when fd is ready for `events` (POLLIN or POLLOUT). psync may
    /// also complete it with -ECANCELED when the doorbell rings meanwhile.
    virtual void wait_ready(std::uint64_t tag, int fd, short events) = 0;
    /// Asks an operation to finish early (with -ECANCELED); best effort.
    virtual void cancel(std::uint64_t tag) = 0;
    /// Starts what is prepared, then waits until a completion is there, the
    /// doorbell rang, or timeout_ms passed (-1: no limit). Appends the
    /// completions to `out`; true when the doorbell rang.
    virtual bool wait(std::vector<completion>& out, int timeout_ms) = 0;
};

/// Sets up and tears down a tiny ring: 0 when that works, else the errno
/// of io_uring_queue_init.
int probe_uring() noexcept;

/// `doorbell` is an eventfd that other threads write to wake the I/O thread;
/// `max_ops` bounds the operations in flight at once. Throws system_failure
/// naming io_uring_queue_init_params when no ring can be set up.
std::unique_ptr<io_driver> make_uring_driver(int doorbell, unsigned max_ops);
std::unique_ptr<io_driver> make_psync_driver(int doorbell);

}  // namespace forkline::io::detail

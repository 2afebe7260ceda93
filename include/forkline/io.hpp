// forkline/io.hpp: streaming a file through a pipeline, on io_uring.
//
//   forkline::io::reader in("access.log", {.chunk_bytes = 1 << 20, .whole_lines = true});
//   forkline::io::writer out("-");  // stdout
//   while (auto c = in.next()) out.write(std::move(*c));
//   out.finish();  // throws io_error naming the file, the call and the errno
//
// Each reader and writer owns one I/O thread, and that thread owns its ring:
// pipeline workers hand chunks over and take them back, never blocking in a
// read or write themselves (try_next / try_write with a wake-up callback).
// See "I/O rings" in runtime/DESIGN.md.
#pragma once

#include <cstddef>     // size_t
#include <cstdint>     // uint64_t
#include <functional>  // function (wake-up callbacks, off the fast path)
#include <memory>      // unique_ptr
#include <optional>    // optional
#include <span>        // span
#include <string>      // string

#include "forkline/errors.hpp"  // system_failure

namespace forkline::io {

/// How reads and writes reach the kernel.
enum class backend {
    uring,  ///< io_uring (liburing), several operations in flight
    psync,  ///< pread/pwrite (read/write on pipes) on the I/O thread
};

/// "uring" or "psync".
const char* backend_name(backend b) noexcept;

/// The backend for new readers and writers: FORKLINE_IO=uring|psync forces
/// one (uring when the kernel refuses it is a system_failure naming
/// io_uring_queue_init and the errno); unset or "auto" probes io_uring once
/// per process and falls back to psync with a one-line notice on stderr.
/// Any other value is a config_error.
backend default_backend();

/// A byte buffer with a fixed capacity and a size; move-only, not zeroed.
class buffer {
public:
    buffer() noexcept = default;
    explicit buffer(std::size_t capacity);
    buffer(buffer&&) noexcept = default;
    buffer& operator=(buffer&&) noexcept = default;

    char* data() noexcept { return m_data.get(); }
    const char* data() const noexcept { return m_data.get(); }
    std::size_t size() const noexcept { return m_size; }
    std::size_t capacity() const noexcept { return m_capacity; }
    bool empty() const noexcept { return m_size == 0; }
    /// n <= capacity(); the bytes up to n are whatever was written there.
    void resize(std::size_t n);
    std::span<const char> bytes() const noexcept { return {m_data.get(), m_size}; }

private:
    std::unique_ptr<char[]> m_data;
    std::size_t m_size = 0;
    std::size_t m_capacity = 0;
};

/// A piece of a stream: its place in the input and its bytes.
struct chunk {
    std::uint64_t sequence = 0;  ///< 0, 1, 2 ... in input order
    std::uint64_t offset = 0;    ///< byte offset of data[0] in the input
    buffer data;
};

/// A read or write failed. Carries the file, the call, the errno (code()) and
/// how many bytes were safely done before it: for a writer, the output file
/// holds exactly the first bytes_done() bytes of the stream.
class io_error : public system_failure {
public:
    io_error(std::string call, int errno_value, const std::string& file, std::uint64_t bytes_done);
    const std::string& file() const noexcept { return m_file; }
    std::uint64_t bytes_done() const noexcept { return m_bytes_done; }

private:
    std::string m_file;
    std::uint64_t m_bytes_done;
};

struct reader_options {
    /// Bytes per chunk (the last may be shorter). With whole_lines, a chunk
    /// ends after its last '\n' and the rest starts the next chunk; a line
    /// longer than chunk_bytes gets a chunk of its own, grown to fit.
    std::size_t chunk_bytes = std::size_t{1} << 20;
    /// Reads in flight (regular files) and chunks read ahead; a pipe has one
    /// read in flight at a time but still reads ahead.
    unsigned depth = 4;
    bool whole_lines = false;
    /// Defaults to default_backend().
    std::optional<backend> io;
};

/// Streams a file, a pipe or stdin into chunks, in order.
class reader {
public:
    /// path "-" is stdin. Throws io_error (open) when it cannot be opened.
    explicit reader(const std::string& path, reader_options opts = {});
    /// Reads fd (not closed at the end); name is used in errors.
    reader(int fd, std::string name, reader_options opts = {});
    ~reader();  // stops the I/O thread; unread chunks are dropped
    reader(const reader&) = delete;
    reader& operator=(const reader&) = delete;

    enum class poll { ready, pending, end };

    /// Never blocks. ready: *out is the next chunk. end: the input is
    /// exhausted (every byte delivered exactly once). pending: nothing yet;
    /// if on_ready is set, it is called once, from the I/O thread, as soon as
    /// a chunk, the end or an error is available. Throws io_error for a
    /// failed read (after the chunks before it were delivered).
    poll try_next(chunk& out, std::function<void()> on_ready = {});

    /// Blocks until the next chunk; nullopt at the end. Not for workers.
    std::optional<chunk> next();

    /// Gives a chunk's buffer back for reuse by later reads.
    void recycle(chunk&& c) noexcept;

    backend used() const noexcept;
    const std::string& name() const noexcept;
    std::uint64_t bytes_read() const noexcept;

private:
    struct state;
    std::unique_ptr<state> m;
};

struct writer_options {
    /// Chunks queued or in flight before try_write() says no.
    unsigned depth = 4;
    /// fdatasync before finish() reports success (regular files only).
    bool sync_at_end = false;
    std::optional<backend> io;
};

/// Writes chunks to a file, a pipe or stdout, in the order they are handed
/// over, each complete (short writes are continued) at its offset in the
/// stream.
class writer {
public:
    /// path "-" is stdout; a path is created or truncated (0666 & ~umask).
    explicit writer(const std::string& path, writer_options opts = {});
    writer(int fd, std::string name, writer_options opts = {});
    /// Without finish(): waits for queued writes, drops errors.
    ~writer();
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;

    /// Never blocks. true: c was taken (moved from) and will be written after
    /// everything handed over before it. false: the queue is full, c is
    /// untouched, and on_space (if set) is called once, from the I/O thread,
    /// when there is room or the writer failed. Throws io_error when an
    /// earlier write failed.
    bool try_write(chunk& c, std::function<void()> on_space = {});

    /// Blocks while the queue is full. Not for workers.
    void write(chunk&& c);

    /// Waits for every write, syncs if asked, closes a file it opened.
    /// Throws io_error (bytes_done() = bytes safely in the file) on failure.
    void finish();

    backend used() const noexcept;
    const std::string& name() const noexcept;
    std::uint64_t bytes_written() const noexcept;

private:
    struct state;
    std::unique_ptr<state> m;
};

}  // namespace forkline::io

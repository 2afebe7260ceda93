/// @file forkline/io.hpp
/// Streaming a file through a pipeline, on io_uring.
///
/// @code
/// forkline::io::reader in("access.log", {.chunk_bytes = 1 << 20, .whole_lines = true});
/// forkline::io::writer out("-");  // stdout
/// while (auto c = in.next()) out.write(std::move(*c));
/// out.finish();  // throws io_error naming the file, the call and the errno
/// @endcode
///
/// Each reader and writer owns one I/O thread, and that thread owns its ring:
/// pipeline workers hand chunks over and take them back, never blocking in a
/// read or write themselves (try_next / try_write with a wake-up callback).
/// See "I/O rings" in runtime/DESIGN.md.
#pragma once

#include <cstddef>     // size_t
#include <cstdint>     // uint64_t
#include <functional>  // function (wake-up callbacks, off the fast path)
#include <memory>      // unique_ptr
#include <optional>    // optional
#include <span>        // span
#include <string>      // string
#include <utility>     // exchange (buffer's moves)

#include "forkline/errors.hpp"  // system_failure

/// Streaming files, pipes and standard streams in chunks, on io_uring where the kernel allows.
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

namespace detail {
struct buffer_access;  // the reader's view of a buffer's front room (runtime/io.cpp)
}

/// A byte buffer with a fixed capacity and a size; move-only, not zeroed.
/// A moved-from buffer is empty with capacity 0.
/// @code
/// forkline::io::buffer b(4096);
/// std::memcpy(b.data(), "hello\n", 6);
/// b.resize(6);  // b.bytes() is now "hello\n"
/// @endcode
class buffer {
public:
    /// No storage: capacity 0.
    buffer() noexcept = default;
    /// capacity bytes of storage, uninitialised; size() is 0.
    explicit buffer(std::size_t capacity);
    /// Takes other's storage; other is left empty with capacity 0.
    buffer(buffer&& other) noexcept
        : m_data(std::move(other.m_data)),
          m_front(std::exchange(other.m_front, 0)),
          m_size(std::exchange(other.m_size, 0)),
          m_capacity(std::exchange(other.m_capacity, 0)) {}
    /// Frees this buffer's storage and takes other's; other is left as above.
    buffer& operator=(buffer&& other) noexcept {
        m_data = std::move(other.m_data);
        m_front = std::exchange(other.m_front, 0);
        m_size = std::exchange(other.m_size, 0);
        m_capacity = std::exchange(other.m_capacity, 0);
        return *this;
    }

    char* data() noexcept { return m_data.get() + m_front; }                ///< the first byte
    const char* data() const noexcept { return m_data.get() + m_front; }    ///< the first byte
    std::size_t size() const noexcept { return m_size; }                     ///< bytes in use
    std::size_t capacity() const noexcept { return m_capacity; }             ///< bytes that fit from data() on
    bool empty() const noexcept { return m_size == 0; }                      ///< size() == 0
    /// n <= capacity(); the bytes up to n are whatever was written there.
    void resize(std::size_t n);
    std::span<const char> bytes() const noexcept { return {data(), m_size}; }  ///< the bytes in use

private:
    friend struct detail::buffer_access;
    std::unique_ptr<char[]> m_data;
    // A reader with whole_lines puts the previous chunk's partial line in
    // front of the bytes it read, so data() may start this far into the
    // allocation; capacity() counts from data().
    std::size_t m_front = 0;
    std::size_t m_size = 0;
    std::size_t m_capacity = 0;
};

/// A piece of a stream: its place in the input and its bytes.
struct chunk {
    std::uint64_t sequence = 0;  ///< 0, 1, 2 ... in input order
    std::uint64_t offset = 0;    ///< byte offset of data[0] in the input
    buffer data;                 ///< the bytes; reader::recycle() takes the storage back
};

/// A read or write failed. Carries the file, the call, the errno (code()) and
/// how many bytes were safely done before it: for a writer, the output file
/// holds exactly the first bytes_done() bytes of the stream.
/// @code
/// try {
///     out.finish();
/// } catch (const forkline::io::io_error& e) {  // "pwrite: out.log (after 1048576 bytes): No space left on device"
///     resume_from = e.bytes_done();             // out.log holds exactly that many bytes
/// }
/// @endcode
class io_error : public system_failure {
public:
    /// what() reads "CALL: FILE (after N bytes)", then the errno's description.
    io_error(std::string call, int errno_value, const std::string& file, std::uint64_t bytes_done);
    /// The path, or the name given with a descriptor ("<stdin>", "<stdout>" for "-").
    const std::string& file() const noexcept { return m_file; }
    /// Bytes safely read or written before the failure.
    std::uint64_t bytes_done() const noexcept { return m_bytes_done; }

private:
    std::string m_file;
    std::uint64_t m_bytes_done;
};

/// How a reader cuts its input and how far it reads ahead. Every field has a
/// default, so designated initialisers name only what they change.
struct reader_options {
    /// Bytes per chunk (the last may be shorter); a pipe's chunks are
    /// filled too, whatever sizes its writer used. With whole_lines, a chunk
    /// ends after its last newline and the rest starts the next chunk, so a
    /// chunk may exceed chunk_bytes by that carried partial line; a line
    /// whose carried part is longer than min(chunk_bytes, 16 KiB) (every
    /// line longer than chunk_bytes) gets a chunk of its own, grown to fit.
    /// 0 is a config_error.
    std::size_t chunk_bytes = std::size_t{1} << 20;
    /// Reads in flight (regular files) and chunks read ahead; a pipe has one
    /// read in flight at a time but still reads ahead. Memory: the reader
    /// allocates a buffer only when none given back with recycle() is spare,
    /// so it holds at most depth buffers plus as many as the consumer held
    /// at once. 0 is a config_error.
    unsigned depth = 4;
    /// End each chunk at a line end, so that no line is split between chunks.
    bool whole_lines = false;
    /// Defaults to default_backend(). (Initialised so that designated
    /// initialisers may leave it out under -Wmissing-field-initializers.)
    std::optional<backend> io = std::nullopt;
    /// Regular files: try_next() and next() first read the next chunk
    /// themselves, on the calling thread, with preadv2(RWF_NOWAIT), which
    /// copies only what the page cache holds and never blocks; what it
    /// cannot complete (pages not cached, a kernel or file system without
    /// RWF_NOWAIT) goes to the I/O thread, which reads on from there. Chunks,
    /// order and errors are the same either way, with either backend (this
    /// read is a pread whatever `io` says). false: every read is the I/O
    /// thread's. See "Inline reads" in runtime/DESIGN.md.
    bool inline_cached = true;
};

/// Streams a file, a pipe or stdin into chunks, in order.
/// @code
/// forkline::io::reader in("access.log", {.whole_lines = true});
/// std::size_t lines = 0;
/// while (auto c = in.next()) {
///     lines += std::ranges::count(c->data.bytes(), '\n');
///     in.recycle(std::move(*c));  // its buffer serves a later read
/// }
/// @endcode
class reader {
public:
    /// path "-" is stdin (named "<stdin>"). Throws io_error (open) when it
    /// cannot be opened; a directory fails at the first read (EISDIR).
    explicit reader(const std::string& path, reader_options opts = {});
    /// Reads fd (not closed at the end); name is used in errors. A regular
    /// file is read from the descriptor's position, which the end of the
    /// input leaves after the last byte.
    reader(int fd, std::string name, reader_options opts = {});
    ~reader();  ///< stops the I/O thread; unread chunks are dropped
    reader(const reader&) = delete;
    reader& operator=(const reader&) = delete;

    /// What try_next() found.
    enum class poll {
        ready,    ///< the chunk was stored in its argument
        pending,  ///< nothing yet: its callback will say when to call again
        end,      ///< the input is exhausted
    };

    /// Never blocks. ready: *out is the next chunk. end: the input is
    /// exhausted (every byte delivered exactly once). pending: nothing yet;
    /// if on_ready is set, it is called once, from the I/O thread, as soon as
    /// a chunk, the end or an error is available. Throws io_error for a
    /// failed read (after the chunks before it were delivered).
    /// A later pending call's on_ready replaces an earlier one; a call that
    /// returns ready or end, or throws, drops it. A callback should only
    /// wake someone: one that throws ends the stream with its exception.
    /// Chunk offsets count from where reading began.
    poll try_next(chunk& out, std::function<void()> on_ready = {});

    /// Blocks until the next chunk; nullopt at the end. Not for workers.
    std::optional<chunk> next();

    /// Gives a chunk's buffer back for reuse by later reads.
    void recycle(chunk&& c) noexcept;

    /// The backend this reader runs on.
    backend used() const noexcept;
    /// The name errors use: the path, "<stdin>", or the name given with a descriptor.
    const std::string& name() const noexcept;
    /// Bytes handed to the consumer so far.
    std::uint64_t bytes_read() const noexcept;
    /// Pieces of the input (chunk_bytes each, the last one shorter) read
    /// whole on the consumer's thread (reader_options::inline_cached) so far;
    /// the others were read, or finished, by the I/O thread.
    std::uint64_t inline_chunks() const noexcept;

private:
    struct state;
    std::unique_ptr<state> m;
};

/// How a positional_reader cuts its file.
struct positional_options {
    /// Bytes per piece (the last may be shorter). 0 is a config_error.
    std::size_t piece_bytes = std::size_t{1} << 20;
    /// A piece's chunk holds exactly the lines that start in the piece, each
    /// whole: it skips the end of a line begun in the piece before and reads
    /// on past its own end to finish its last line.
    bool whole_lines = false;
};

/// A regular file cut into pieces that each consumer reads itself, into its
/// own buffer, on its own core: a serial stage hands out pieces (an offset
/// and a length, no I/O), a parallel stage reads and processes them, and a
/// later serial_in_order stage restores the order by the pieces' sequence
/// numbers. No buffer crosses cores, which is what limits io::reader on a
/// cached file (the page-cache copy lands in one core's cache, the parsing
/// reads it on another). Each read first asks for cached pages only
/// (preadv2 with RWF_NOWAIT) and counts how often that fell short
/// (waited_reads()); the rest is read with a plain pread on the calling
/// thread, which then waits for the disk. Regular files only: a pipe or a
/// terminal has no positions, use io::reader. See "Positional reads" in
/// runtime/DESIGN.md.
/// @code
/// forkline::io::positional_reader in("access.log", {.whole_lines = true});
/// forkline::run_pipeline(rt, 4 * rt.worker_count(),
///     forkline::stage(forkline::serial_in_order, "pieces", [&](forkline::flow_control& fc) {
///         auto p = in.next();
///         if (!p) fc.stop();
///         return p.value_or(forkline::io::positional_reader::piece{});
///     }),
///     forkline::stage(forkline::parallel, "count", [&](forkline::io::positional_reader::piece& p) {
///         forkline::io::chunk c = in.read(p);  // or in.read(p, std::move(my_buffer)) to reuse one
///         return count_lines(c.data.bytes());
///     }),
///     forkline::stage(forkline::serial_in_order, "sum", [&](long n) { total += n; }));
/// @endcode
class positional_reader {
public:
    /// Bytes [offset, offset + length) of the file, the sequence-th piece.
    struct piece {
        std::uint64_t sequence = 0;  ///< 0, 1, 2 ... in file order
        std::uint64_t offset = 0;    ///< the piece's first byte in the file
        std::uint64_t length = 0;    ///< its bytes (piece_bytes, the last one fewer)
    };

    /// Opens path and takes its size; a file that grows later is read up to
    /// that size. Throws io_error (open, fstat), and config_error for a path
    /// that is not a regular file or a piece_bytes of 0.
    explicit positional_reader(const std::string& path, positional_options opts = {});
    ~positional_reader();
    positional_reader(const positional_reader&) = delete;
    positional_reader& operator=(const positional_reader&) = delete;

    /// The next piece in file order, or nullopt after the last. One caller at
    /// a time (a serial stage).
    std::optional<piece> next() noexcept;

    /// Reads p and returns it as a chunk (sequence and offset from p; with
    /// whole_lines, offset is that of its first whole line and the chunk may
    /// be empty, when no line starts in p). Reuses `into`'s storage when it
    /// is large enough. Safe to call from several threads at once. Throws
    /// io_error (preadv2, pread) naming the file; a file that shrank since
    /// it was opened fails as pread with ENODATA.
    chunk read(const piece& p, buffer into = {}) const;

    /// The file's size when it was opened.
    std::uint64_t size() const noexcept;
    /// Reads that found a page not in the page cache and waited for the disk.
    std::uint64_t waited_reads() const noexcept;

private:
    struct state;
    std::unique_ptr<state> m;
};

/// How far a writer queues ahead of the disk, and whether it syncs at the end.
struct writer_options {
    /// Chunks queued or in flight before try_write() says no; a regular
    /// file has up to this many writes in flight, a pipe one. 0 is a
    /// config_error.
    unsigned depth = 4;
    /// fdatasync before finish() reports success (regular files only).
    bool sync_at_end = false;
    /// Defaults to default_backend().
    std::optional<backend> io = std::nullopt;
};

/// Writes chunks to a file, a pipe or stdout, in the order they are handed
/// over, each complete (short writes are continued) at its offset in the
/// stream. A chunk's sequence and offset fields are not looked at: each goes
/// right after the one handed over before it. A regular file descriptor
/// (not O_APPEND) is written from its current position, which finish()
/// leaves after the last byte. When a write fails, the writer stops, and a
/// regular file is truncated to the bytes_done() it reports.
/// @code
/// forkline::io::reader in("in.log");
/// forkline::io::writer out("copy.log", {.sync_at_end = true});
/// while (auto c = in.next()) out.write(std::move(*c));
/// out.finish();  // throws io_error with the bytes safely written
/// @endcode
class writer {
public:
    /// path "-" is stdout (named "<stdout>"); a path is created or
    /// truncated (0666 & ~umask).
    explicit writer(const std::string& path, writer_options opts = {});
    /// Writes fd, which finish() leaves open; name is used in errors.
    writer(int fd, std::string name, writer_options opts = {});
    /// Without finish(): waits for queued writes, drops errors.
    ~writer();
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;

    /// Never blocks. true: c was taken (moved from) and will be written after
    /// everything handed over before it. false: the queue is full, c is
    /// untouched, and on_space (if set) is called once, from the I/O thread,
    /// when there is room or the writer failed. Throws io_error when an
    /// earlier write failed. A later refused call's on_space replaces an
    /// earlier one; a call that takes the chunk, or throws, drops it. A
    /// callback that throws stops the writer with its exception.
    bool try_write(chunk& c, std::function<void()> on_space = {});

    /// Blocks while the queue is full. Not for workers.
    void write(chunk&& c);

    /// Waits for every write, syncs if asked, closes a file it opened.
    /// Throws io_error (bytes_done() = bytes safely in the file) on failure,
    /// and again on a later call; try_write() and write() after finish()
    /// are a logic_error.
    void finish();

    /// The backend this writer runs on.
    backend used() const noexcept;
    /// The name errors use: the path, "<stdout>", or the name given with a descriptor.
    const std::string& name() const noexcept;
    /// Bytes of the stream written so far, counted from its start without
    /// gaps (later writes may have completed first).
    std::uint64_t bytes_written() const noexcept;

private:
    struct state;
    std::unique_ptr<state> m;
};

}  // namespace forkline::io

// runtime/positional_reader.cpp: io::positional_reader, a regular file cut
// into pieces that each consumer reads itself. See "Positional reads" in
// runtime/DESIGN.md.
#include <fcntl.h>     // open, O_RDONLY, O_CLOEXEC
#include <sys/stat.h>  // fstat, S_ISREG
#include <sys/uio.h>   // preadv2, RWF_NOWAIT
#include <unistd.h>    // pread, close

#include <algorithm>  // min
#include <atomic>     // atomic
#include <cerrno>     // errno, EINTR, EAGAIN, ENODATA
#include <cstring>    // memchr, memcpy

#include "chunk_former.hpp"  // buffer_access
#include "forkline/errors.hpp"
#include "forkline/io.hpp"

namespace forkline::io {

namespace {

// One call reads at most this much (Linux caps a read at about 2 GiB).
constexpr std::size_t k_max_call = std::size_t{1} << 30;
// A whole-lines piece reads on past its end this much at a time to finish
// its last line (lines are usually far shorter).
constexpr std::size_t k_line_step = std::size_t{16} << 10;

}  // namespace

struct positional_reader::state {
    std::string path;
    positional_options opts;
    int fd = -1;
    std::uint64_t size = 0;
    std::uint64_t next_offset = 0;    // written by: next() (one caller at a time)
    std::uint64_t next_sequence = 0;  // written by: next()
    // relaxed: a count for reports; false once RWF_NOWAIT was refused.
    mutable std::atomic<std::uint64_t> waited{0};
    mutable std::atomic<bool> nowait_works{true};

    /// Reads exactly n bytes at `at` into p, cached pages first; the end of
    /// the file before n bytes is ENODATA (the file shrank).
    void read_exactly(char* p, std::size_t n, std::uint64_t at) const {
        std::size_t done = 0;
        bool waited_here = false;
        while (done < n) {
            const std::size_t want = std::min(n - done, k_max_call);
            const auto pos = static_cast<off_t>(at + done);
            ssize_t got = -1;
            if (!waited_here && nowait_works.load(std::memory_order_relaxed)) {
                iovec v{p + done, want};
                got = ::preadv2(fd, &v, 1, pos, RWF_NOWAIT);
                if (got < 0) {
                    const int e = errno;
                    if (e == EINTR) continue;
                    if (e == EOPNOTSUPP || e == EINVAL || e == ENOSYS) {
                        // No RWF_NOWAIT on this file system or kernel: plain reads from now on.
                        nowait_works.store(false, std::memory_order_relaxed);
                    } else if (e != EAGAIN) {
                        throw io_error("preadv2", e, path, at + done);
                    }
                    if (e == EAGAIN) {
                        waited_here = true;
                        waited.fetch_add(1, std::memory_order_relaxed);
                    }
                    continue;
                }
                if (got > 0 && static_cast<std::size_t>(got) < want) {
                    // Short: a page not cached, or the end; a plain read says which.
                    done += static_cast<std::size_t>(got);
                    continue;
                }
            } else {
                got = ::pread(fd, p + done, want, pos);
                if (got < 0) {
                    if (errno == EINTR) continue;
                    throw io_error("pread", errno, path, at + done);
                }
            }
            if (got == 0) throw io_error("pread", ENODATA, path, at + done);  // shrank since open
            done += static_cast<std::size_t>(got);
        }
    }
};

positional_reader::positional_reader(const std::string& path, positional_options opts)
    : m(std::make_unique<state>()) {
    if (opts.piece_bytes == 0) throw config_error("positional_reader: piece_bytes must be at least 1");
    m->path = path;
    m->opts = opts;
    m->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (m->fd < 0) throw io_error("open", errno, path, 0);
    struct stat st {};
    if (::fstat(m->fd, &st) != 0) {
        const int e = errno;
        ::close(m->fd);
        throw io_error("fstat", e, path, 0);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(m->fd);
        throw config_error("positional_reader: " + path +
                           " is not a regular file (a pipe or a device has no positions: use io::reader)");
    }
    m->size = static_cast<std::uint64_t>(st.st_size);
}

positional_reader::~positional_reader() {
    if (m && m->fd >= 0) ::close(m->fd);
}

std::optional<positional_reader::piece> positional_reader::next() noexcept {
    if (m->next_offset >= m->size) return std::nullopt;
    piece p;
    p.sequence = m->next_sequence++;
    p.offset = m->next_offset;
    p.length = std::min<std::uint64_t>(m->opts.piece_bytes, m->size - m->next_offset);
    m->next_offset += p.length;
    return p;
}

chunk positional_reader::read(const piece& p, buffer into) const {
    chunk c;
    c.sequence = p.sequence;
    c.offset = p.offset;
    const std::uint64_t end = p.offset + p.length;
    if (p.length > m->size || p.offset > m->size - p.length) {
        throw config_error("positional_reader::read: a piece past the end of " + m->path);
    }
    if (p.length == 0) {
        detail::buffer_access::place(into, 0, 0);
        c.data = std::move(into);
        return c;
    }
    if (!m->opts.whole_lines) {
        const auto n = static_cast<std::size_t>(p.length);
        if (detail::buffer_access::allocation(into) < n) into = buffer(n);
        detail::buffer_access::place(into, 0, 0);
        m->read_exactly(into.data(), n, p.offset);
        into.resize(n);
        c.data = std::move(into);
        return c;
    }
    // Whole lines: the byte before the piece says whether a line starts at
    // its first byte; the lines that start in the piece are its own, the
    // last one read on to its newline (or the end of the file).
    const std::uint64_t from = p.offset == 0 ? 0 : p.offset - 1;
    std::size_t have = static_cast<std::size_t>(end - from);
    std::size_t room = have + 256;
    if (detail::buffer_access::allocation(into) < room) into = buffer(room);
    detail::buffer_access::place(into, 0, 0);
    room = into.capacity();
    m->read_exactly(into.data(), have, from);
    std::size_t skip = 0;
    if (p.offset > 0) {
        const void* nl = std::memchr(into.data(), '\n', have);
        if (nl == nullptr) {
            // Not one line starts here: all of it belongs to a line begun earlier.
            c.offset = end;
            detail::buffer_access::place(into, 0, 0);
            c.data = std::move(into);
            return c;
        }
        skip = static_cast<std::size_t>(static_cast<const char*>(nl) - into.data()) + 1;
        if (skip == have) {
            // The piece's bytes all belong to the line begun before it.
            c.offset = end;
            detail::buffer_access::place(into, 0, 0);
            c.data = std::move(into);
            return c;
        }
    }
    // Finish the last line: read on past the piece until a newline or the end.
    std::uint64_t at = end;
    while (into.data()[have - 1] != '\n' && at < m->size) {
        const auto step = static_cast<std::size_t>(std::min<std::uint64_t>(k_line_step, m->size - at));
        if (have + step > room) {
            buffer bigger(std::max(room * 2, have + step));
            std::memcpy(bigger.data(), into.data(), have);
            into = std::move(bigger);
            room = into.capacity();
        }
        m->read_exactly(into.data() + have, step, at);
        const void* nl = std::memchr(into.data() + have, '\n', step);
        if (nl != nullptr) {
            have = static_cast<std::size_t>(static_cast<const char*>(nl) - into.data()) + 1;
            break;
        }
        have += step;
        at += step;
    }
    c.offset = from + skip;
    detail::buffer_access::place(into, skip, have - skip);
    c.data = std::move(into);
    return c;
}

std::uint64_t positional_reader::size() const noexcept { return m->size; }

std::uint64_t positional_reader::waited_reads() const noexcept {
    return m->waited.load(std::memory_order_relaxed);
}

}  // namespace forkline::io

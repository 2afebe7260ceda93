// bench/logstat/logstat_tbb.cpp: examples/logstat.cpp's peer on oneTBB, for
// benchmarks: the same parser, tables, merge and output
// (examples/logstat_core.hpp), with tbb::parallel_pipeline in place of
// forkline's pipeline and plain read() in place of forkline::io::reader.
//
//   logstat-tbb [--by ip|status|path] [--top K] [-p N] [--chunk-kib K] [FILE|-]
//
// Filters: a serial_in_order input filter that cuts the input into
// line-aligned chunks, a parallel filter that counts a chunk into the calling
// thread's table (tbb::enumerable_thread_specific), and a serial_in_order
// filter that combines the chunks' malformed-line tallies in input order and
// gives the buffer back.
#include <fcntl.h>   // open
#include <string.h>  // memrchr (a GNU extension)
#include <unistd.h>  // read, close

#include <tbb/concurrent_queue.h>               // concurrent_queue (free buffers)
#include <tbb/enumerable_thread_specific.h>     // enumerable_thread_specific
#include <tbb/global_control.h>                 // global_control (-p)
#include <tbb/parallel_pipeline.h>              // parallel_pipeline, make_filter
#include <tbb/task_arena.h>                     // task_arena (default parallelism)

#include <cerrno>     // errno, EINTR
#include <cstddef>    // size_t
#include <cstdio>     // fputs, fprintf
#include <cstring>    // memcpy
#include <exception>  // exception
#include <memory>     // unique_ptr, make_unique_for_overwrite
#include <string>     // string
#include <utility>    // move
#include <vector>     // vector

#include "logstat_core.hpp"  // options, count_chunk, count_table, rank, write_ranked

namespace {

constexpr const char* k_program = "logstat-tbb";

/// A read() or open() failed; the message is io_message()'s.
struct file_error {
    std::string file;
    const char* call;
    int err;
};

/// A chunk: whole lines, then the counting filter's tally of them.
struct piece {
    std::unique_ptr<char[]> data;
    std::size_t size = 0;
    std::size_t capacity = 0;
    logstat::chunk_tally tally;
};

/// Cuts a file descriptor into line-aligned chunks of about chunk_bytes with
/// read(): the bytes after a chunk's last '\n' start the next chunk; a line
/// longer than a chunk gets a chunk of its own, grown to fit (as
/// forkline::io::reader with whole_lines does).
class line_chunker {
public:
    line_chunker(int fd, std::string name, std::size_t chunk_bytes)
        : m_fd(fd), m_name(std::move(name)), m_chunk_bytes(chunk_bytes) {}

    /// The next chunk, or nullptr at the end. Input filter only (serial).
    piece* next() {
        if (m_done) return nullptr;
        piece* p = take_free();
        p->size = 0;
        // Start with the previous read's partial last line.
        if (p->capacity < m_carry.size() + m_chunk_bytes) grow(*p, m_carry.size() + m_chunk_bytes);
        std::memcpy(p->data.get(), m_carry.data(), m_carry.size());
        p->size = m_carry.size();
        m_carry.clear();
        for (;;) {
            const std::size_t scanned = p->size;
            while (p->size < p->capacity && !m_eof) fill(*p);
            if (m_eof) {
                m_done = true;
                if (p->size == 0) {
                    give_back(p);
                    return nullptr;
                }
                return p;
            }
            const void* nl = ::memrchr(p->data.get() + scanned, '\n', p->size - scanned);
            if (nl != nullptr) {
                const char* const cut = static_cast<const char*>(nl) + 1;
                m_carry.assign(cut, static_cast<const char*>(p->data.get()) + p->size);
                p->size = static_cast<std::size_t>(cut - p->data.get());
                return p;
            }
            grow(*p, p->capacity * 2);  // a line longer than the chunk: read on
        }
    }

    /// Output filter: the buffer goes back for later chunks.
    void give_back(piece* p) { m_free.push(p); }

    ~line_chunker() {
        piece* p = nullptr;
        while (m_free.try_pop(p)) delete p;
    }

private:
    piece* take_free() {
        piece* p = nullptr;
        if (m_free.try_pop(p)) return p;
        return new piece;
    }

    static void grow(piece& p, std::size_t capacity) {
        auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
        std::memcpy(bigger.get(), p.data.get(), p.size);
        p.data = std::move(bigger);
        p.capacity = capacity;
    }

    void fill(piece& p) {
        const ssize_t n = ::read(m_fd, p.data.get() + p.size, p.capacity - p.size);
        if (n < 0) {
            if (errno == EINTR) return;
            throw file_error{m_name, "read", errno};
        }
        if (n == 0) {
            m_eof = true;
            return;
        }
        p.size += static_cast<std::size_t>(n);
    }

    int m_fd;
    std::string m_name;
    std::size_t m_chunk_bytes;
    std::vector<char> m_carry;
    bool m_eof = false;
    bool m_done = false;
    // Filled by the output filter, drained by the input filter: two threads.
    tbb::concurrent_queue<piece*> m_free;
};

int run(const logstat::options& o) {
    const std::size_t threads = o.workers != 0 ? o.workers
                                               : static_cast<std::size_t>(tbb::this_task_arena::max_concurrency());
    tbb::global_control cap(tbb::global_control::max_allowed_parallelism, threads);

    int fd = 0;
    std::string name = "standard input";
    if (o.input != "-") {
        name = o.input;
        fd = ::open(o.input.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw file_error{name, "open", errno};
    }
    struct closer {
        int fd;
        ~closer() {
            if (fd > 0) ::close(fd);
        }
    } close_at_end{fd};

    line_chunker in(fd, name, o.chunk_bytes);
    tbb::enumerable_thread_specific<logstat::count_table> tables;
    logstat::malformed_report report;
    // As many chunks in flight as forkline's logstat allows (more did not
    // change this version's times).
    const std::size_t tokens = 4 * threads + 2;

    tbb::parallel_pipeline(
        tokens,
        tbb::make_filter<void, piece*>(tbb::filter_mode::serial_in_order,
                                       [&](tbb::flow_control& fc) -> piece* {
                                           piece* p = in.next();
                                           if (p == nullptr) fc.stop();
                                           return p;
                                       }) &
            tbb::make_filter<piece*, piece*>(tbb::filter_mode::parallel,
                                             [&](piece* p) {
                                                 p->tally = logstat::count_chunk(p->data.get(), p->size, o.by,
                                                                                 tables.local());
                                                 return p;
                                             }) &
            tbb::make_filter<piece*, void>(tbb::filter_mode::serial_in_order, [&](piece* p) {
                report.add(p->tally);
                in.give_back(p);
            }));

    std::vector<logstat::count_table*> all;
    for (logstat::count_table& t : tables) all.push_back(&t);
    return logstat::finish(std::move(all), o, report, k_program);
}

}  // namespace

int main(int argc, char** argv) {
    logstat::options o;
    if (const int status = logstat::start(argc, argv, k_program, &o); status >= 0) return status;
    try {
        return run(o);
    } catch (const file_error& e) {
        std::fputs(logstat::io_message(k_program, e.file, e.call, e.err).c_str(), stderr);
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", k_program, e.what());
        return 1;
    }
}

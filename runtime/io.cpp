// runtime/io.cpp: buffers, io_error, the backend choice, and the reader and
// writer with their I/O threads. The kernel calls themselves are behind
// io_driver (runtime/io_driver.cpp); what is here decides what to read or
// write where, puts the results in order and hands them over.
// See "I/O rings" in runtime/DESIGN.md.
#include "forkline/io.hpp"

#include <fcntl.h>        // open, fcntl, O_*
#include <poll.h>         // POLLIN, POLLOUT
#include <pthread.h>      // pthread_setname_np, pthread_sigmask
#include <signal.h>       // sigfillset
#include <string.h>       // memchr, memrchr, memcpy, strerror
#include <sys/eventfd.h>  // eventfd
#include <sys/stat.h>     // fstat, S_ISREG
#include <sys/uio.h>      // preadv2, RWF_NOWAIT (inline reads)
#include <unistd.h>       // close, lseek, ftruncate, fdatasync, write

#include <algorithm>           // min, max
#include <atomic>              // atomic, memory_order
#include <condition_variable>  // condition_variable
#include <cstdio>              // fprintf
#include <cstdlib>             // getenv
#include <cstring>             // memcpy
#include <deque>               // deque
#include <exception>           // exception_ptr
#include <memory>              // make_unique_for_overwrite
#include <mutex>               // mutex, lock_guard, unique_lock, once_flag
#include <new>                 // bad_alloc
#include <optional>            // optional (an engine made inside a try)
#include <stdexcept>           // logic_error, out_of_range
#include <string>              // string, to_string
#include <string_view>         // string_view
#include <thread>              // thread
#include <utility>             // exchange
#include <vector>              // vector

#include "chunk_former.hpp"  // chunk_former, buffer_access (whole lines)
#include "io_config.hpp"    // parse_io_setting, resolve_backend, uring_probe_errno
#include "io_driver.hpp"    // io_driver, completion, probe_uring
#include "trace.hpp"        // traced_io (FORKLINE_TRACE)

namespace forkline::io {

namespace detail {

namespace {

// One read or write call moves at most this much (Linux moves at most about
// 2 GiB per call anyway, and the count must fit an int completion).
constexpr std::size_t k_max_call_bytes = std::size_t{1} << 30;
// Operations one reader or writer keeps in flight, whatever its depth.
constexpr unsigned k_max_in_flight = 256;
// whole_lines: room for the partial line in front of each read.
constexpr std::size_t k_carry_room = 16 * 1024;
// Stopping: wait this long, in rounds, for operations to end after cancel.
constexpr int k_drain_rounds = 50;
constexpr int k_drain_round_ms = 100;
// Inline reads: the I/O thread's runs grow to at most this many times depth
// raw chunks while the consumer keeps finding pages uncached.
constexpr std::uint64_t k_max_run_factor = 64;

enum class setup_phase { pending, done, failed };

/// Tags carry the slot (or item id) and what kind of operation it was.
enum op_kind : std::uint64_t { op_transfer = 0, op_ready = 1 };
constexpr std::uint64_t tag_of(std::uint64_t id, op_kind kind) noexcept { return id * 2 + kind; }

void prepare_io_thread(const char* name) noexcept {
    // All signals go to other threads: a SIGPIPE raised by a write to a pipe
    // nobody reads stays pending here (the write returns EPIPE) instead of
    // killing the process, and no handler of the program runs on this thread.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    pthread_setname_np(pthread_self(), name);
}

void ring_doorbell(int doorbell) noexcept {
    const std::uint64_t one = 1;
    while (::write(doorbell, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

int open_doorbell(const std::string& name) {
    // Blocking on purpose: io_uring returns EAGAIN for a read of an
    // O_NONBLOCK file instead of waiting for it.
    const int fd = ::eventfd(0, EFD_CLOEXEC);
    if (fd < 0) throw io_error("eventfd", errno, name, 0);
    return fd;
}

std::unique_ptr<io_driver> make_driver(backend kind, int doorbell, unsigned max_ops) {
    return trace::traced_io(kind == backend::uring ? make_uring_driver(doorbell, max_ops)
                                                   : make_psync_driver(doorbell));
}

void report_leak(const std::string& name, unsigned ops) {
    std::fprintf(stderr,
                 "forkline: %s: %u I/O operations did not end at shutdown; their buffers are "
                 "left allocated\n",
                 name.c_str(), ops);
}

}  // namespace

// ---------------------------------------------------------------------------
// Reader

/// Who reads the next raw chunk. See "Inline reads" in runtime/DESIGN.md.
enum class reading_by { consumer, io_thread };

/// A raw chunk the consumer could not complete inline, for the I/O thread.
struct handover {
    buffer buf;              // room + chunk_bytes, placed at the room
    std::size_t filled = 0;  // bytes already read into it
    std::uint64_t raw = 0;   // its number: it starts at start_offset + raw * chunk_bytes
    bool after_inline = false;  // some chunk was read inline since the consumer took over
};

/// What the consumer and the reader's I/O thread share.
struct read_shared {
    read_shared(std::string n, reader_options o) : name(std::move(n)), opts(o) {}
    ~read_shared();
    read_shared(const read_shared&) = delete;
    read_shared& operator=(const read_shared&) = delete;

    void start();
    reader::poll take(chunk& out, bool& ring);
    reader::poll next_chunk(chunk& out, std::function<void()>& callback);
    bool read_inline(buffer buf, std::uint64_t raw, std::function<void()>& callback);
    void leave_input_at_end() const noexcept;

    // Set by the constructor before the I/O thread starts; read-only after.
    std::string name;
    reader_options opts;
    backend kind = backend::psync;
    int fd = -1;
    bool owns_fd = false;
    bool positional = false;  // a regular file: reads at offsets, several in flight
    std::int64_t start_offset = 0;
    std::size_t room = 0;  // whole_lines: front room for the carried partial line
    unsigned slots = 1;    // reads in flight at most
    int doorbell = -1;
    std::thread io;

    // Guarded by mu; a cache line apart from the read-only fields above,
    // which both threads read all the time.
    alignas(64) std::mutex mu;
    std::condition_variable cv;  // next() and the constructor wait on it
    std::deque<chunk> ready;     // written by: the I/O thread (push), the consumer (pop)
    std::vector<buffer> spare;   // recycled buffers, taken before allocating
    std::exception_ptr error;    // set once by the I/O thread; delivered after `ready`
    bool ended = false;
    bool stopping = false;       // written by: the destructor
    bool io_wants_room = false;  // the I/O thread waits for the consumer to take a chunk
    unsigned waiters = 0;        // threads in next()
    std::function<void()> on_ready;
    setup_phase setup = setup_phase::pending;
    std::exception_ptr setup_error;
    // Inline reads; see "Inline reads" in runtime/DESIGN.md. Ownership of
    // reading (the next raw chunk's number and `former`) changes hands only
    // under mu: handed over by the consumer (owner = io_thread, `passed`),
    // given back by the I/O thread (owner = consumer, next_raw).
    reading_by owner = reading_by::io_thread;
    bool inline_busy = false;    // a consumer reads inline, outside mu
    bool inline_works = true;    // false once preadv2 refused RWF_NOWAIT
    bool read_inline_since_given = false;  // written by: the owning consumer; reset by the I/O thread
    std::uint64_t next_raw = 0;  // while the consumer owns reading
    std::optional<handover> passed;  // written by: the consumer; taken by: the I/O thread

    // The owner's (see above), not guarded by mu itself.
    chunk_former former;

    // written by: the consumer; read by: anyone. Relaxed: statistics that
    // publish nothing.
    std::atomic<std::uint64_t> handed{0};
    std::atomic<std::uint64_t> inline_raw{0};
};

namespace {

/// The reader's I/O thread: issues reads into slots, continues short ones,
/// turns the slots into chunks in order and publishes them.
/// See "Reading in order" in runtime/DESIGN.md.
class read_engine {
public:
    read_engine(read_shared& s, io_driver& d) : m_s(s), m_d(d), m_slots(s.slots), m_run(s.opts.depth) {
        std::lock_guard lock(m_s.mu);
        m_owns = m_s.owner == reading_by::io_thread;
    }

    void run() {
        for (;;) {
            if (issue()) break;
            m_d.wait(m_done, -1);
            complete_all();
            if (deliver()) break;
        }
        drain();
    }

    /// run() threw (the ring failed, a callback threw, memory ran out).
    void fail(std::exception_ptr e) noexcept {
        try {
            publish(true, std::move(e), false);  // the chunks formed before it first
        } catch (...) {
            // The consumer already has an error or the end; nothing to add.
        }
        try {
            drain();
        } catch (...) {
            abandon_busy();
        }
    }

private:
    struct slot {
        buffer buf;              // room + chunk_bytes; the read goes after the room
        std::size_t filled = 0;  // bytes read into it so far
        std::int64_t file_offset = -1;  // of its first byte; -1: a stream
        // retry: to be read again once issue() has checked for a stop.
        enum class phase { idle, reading, waiting_ready, retry, done } at = phase::idle;
        bool eof = false;
        int err = 0;
    };

    slot& slot_of(std::uint64_t raw) noexcept { return m_slots[raw % m_slots.size()]; }

    std::int64_t offset_of(std::uint64_t raw) const noexcept {
        return m_s.start_offset + static_cast<std::int64_t>(raw * m_s.opts.chunk_bytes);
    }

    // Called with mu held, when the consumer handed a raw chunk over: reading
    // is ours from that chunk on, for a run (see "Inline reads").
    std::size_t take_over(handover& h) {
        m_owns = true;
        m_bounded = m_s.inline_works;
        // A consumer that read nothing inline since the last run found the
        // pages missing at once: read further ahead before it tries again.
        m_run = h.after_inline ? m_s.opts.depth : std::min(2 * m_run, k_max_run_factor * m_s.opts.depth);
        m_run_left = m_run - 1;  // this chunk is the first of the run
        m_next_deliver = h.raw;
        m_next_raw = h.raw + 1;
        const std::size_t index = h.raw % m_slots.size();
        slot& sl = m_slots[index];
        sl.buf = std::move(h.buf);
        sl.filled = h.filled;
        sl.eof = false;
        sl.err = 0;
        sl.file_offset = offset_of(h.raw);
        return index;
    }

    // Starts reads while there is room; true when told to stop.
    bool issue() {
        unsigned count = 0;
        std::optional<std::size_t> continued;
        {
            std::lock_guard lock(m_s.mu);
            if (m_s.stopping) return true;
            if (m_s.passed) {
                continued = take_over(*m_s.passed);
                m_s.passed.reset();
            }
            if (!m_owns) return false;
            const std::uint64_t outstanding = m_next_raw - m_next_deliver;
            const std::size_t held = m_s.ready.size() + outstanding;
            const std::uint64_t run_left = m_bounded ? m_run_left : ~std::uint64_t{0};
            while (!m_no_more && count < run_left && outstanding + count < m_slots.size() &&
                   held + count < m_s.opts.depth) {
                slot& sl = slot_of(m_next_raw + count);
                if (sl.buf.capacity() == 0 && !m_s.spare.empty()) {
                    sl.buf = std::move(m_s.spare.back());
                    m_s.spare.pop_back();
                }
                ++count;
            }
            // Room is what the consumer gives back: ask for a doorbell then.
            m_s.io_wants_room = !m_no_more && count < run_left && outstanding + count < m_slots.size() &&
                                held + count >= m_s.opts.depth;
        }
        if (continued) start_read(*continued);
        for (std::size_t i = 0; i < m_slots.size(); ++i) {
            if (m_slots[i].at == slot::phase::retry) start_read(i);
        }
        if (m_bounded) m_run_left -= count;
        const std::size_t chunk_bytes = m_s.opts.chunk_bytes;
        for (unsigned i = 0; i < count; ++i) {
            const std::uint64_t raw = m_next_raw++;
            slot& sl = slot_of(raw);
            if (sl.buf.capacity() == 0) sl.buf = buffer(m_s.room + chunk_bytes);
            buffer_access::place(sl.buf, m_s.room, 0);
            sl.filled = 0;
            sl.eof = false;
            sl.err = 0;
            sl.file_offset = m_s.positional ? offset_of(raw) : -1;
            start_read(raw % m_slots.size());
        }
        return false;
    }

    // Handles the completions wait() gave, resuming after the last one
    // handled if an earlier call threw half way (see fail()).
    void complete_all() {
        while (m_handled < m_done.size()) complete(m_done[m_handled++]);
        m_done.clear();
        m_handled = 0;
    }

    void start_read(std::size_t index) {
        slot& sl = m_slots[index];
        const std::size_t want = std::min(m_s.opts.chunk_bytes - sl.filled, k_max_call_bytes);
        const std::int64_t at =
            sl.file_offset < 0 ? -1 : sl.file_offset + static_cast<std::int64_t>(sl.filled);
        m_d.read(tag_of(index, op_transfer), m_s.fd, sl.buf.data() + sl.filled, want, at);
        sl.at = slot::phase::reading;
        ++m_busy;
    }

    void complete(completion c) {
        const std::size_t index = c.tag / 2;
        slot& sl = m_slots[index];
        --m_busy;
        if (m_draining) {
            sl.at = slot::phase::done;
            return;
        }
        if (c.tag % 2 == op_ready) {
            // Readable: read again. -ECANCELED: the psync doorbell rang
            // meanwhile, perhaps to stop us.
            if (c.result == -ECANCELED) {
                sl.at = slot::phase::retry;
            } else {
                start_read(index);
            }
            return;
        }
        const int res = c.result;
        if (res > 0) {
            sl.filled += static_cast<std::size_t>(res);
            // A short read is continued: a pipe gives what it has, a file
            // may end (the next read says 0) or be interrupted.
            if (sl.filled < m_s.opts.chunk_bytes) {
                start_read(index);
            } else {
                sl.at = slot::phase::done;
            }
            return;
        }
        if (res == 0) {
            sl.eof = true;
            sl.at = slot::phase::done;
            m_no_more = true;
            return;
        }
        switch (-res) {
        case EINTR:
            start_read(index);
            return;
        case ECANCELED:
            // The psync doorbell rang during a pipe read (or the kernel
            // cancelled it): read again unless that was a stop, which the
            // next issue() sees. Reading again right here could wait for
            // ever on a pipe, the doorbell already taken.
            sl.at = slot::phase::retry;
            return;
        case EAGAIN:
            if (m_s.positional) {
                start_read(index);
            } else {
                // An O_NONBLOCK descriptor: io_uring hands its EAGAIN back
                // instead of waiting, so wait for data, then read again.
                m_d.wait_ready(tag_of(index, op_ready), m_s.fd, POLLIN);
                sl.at = slot::phase::waiting_ready;
                ++m_busy;
            }
            return;
        default:
            sl.err = -res;
            sl.at = slot::phase::done;
            m_no_more = true;
            return;
        }
    }

    // Turns finished slots, in order, into chunks and publishes them; true
    // when the end or an error was published.
    bool deliver() {
        if (!m_owns) return false;
        chunk_former& former = m_s.former;
        bool finished = false;
        std::exception_ptr failure;
        while (m_next_deliver < m_next_raw) {
            slot& sl = slot_of(m_next_deliver);
            if (sl.at != slot::phase::done) break;
            sl.at = slot::phase::idle;
            ++m_next_deliver;
            if (sl.err != 0) {
                const char* call = m_s.kind == backend::psync && m_s.positional ? "pread" : "read";
                failure = std::make_exception_ptr(io_error(call, sl.err, m_s.name, former.emitted()));
                finished = true;
                break;
            }
            if (sl.filled > 0) former.form(sl.buf, sl.filled);
            if (sl.eof) {
                former.end_of_input();
                m_s.leave_input_at_end();
                finished = true;
                break;
            }
        }
        // The run is over and all of it delivered: reading is the
        // consumer's again.
        const bool give_back = !finished && m_bounded && m_run_left == 0 && m_next_deliver == m_next_raw;
        if (former.formed().empty() && !finished && !give_back) return false;
        publish(finished, std::move(failure), give_back);
        return finished;
    }

    void publish(bool finished, std::exception_ptr failure, bool give_back) {
        std::function<void()> wake;
        {
            std::lock_guard lock(m_s.mu);
            if (m_owns) {
                for (chunk& c : m_s.former.formed()) {
                    // Never empty when formed; empty here only if an earlier
                    // publish threw after moving it.
                    if (!c.data.empty()) m_s.ready.push_back(std::move(c));
                }
                m_s.former.formed().clear();
            }
            if (failure) {
                if (!m_s.error && !m_s.ended) m_s.error = std::move(failure);
            } else if (finished && !m_s.error) {
                m_s.ended = true;
            }
            if (give_back) {
                // A buffer left in a slot (whole_lines: a raw chunk that all
                // went into the carry) would otherwise sit idle.
                for (slot& sl : m_slots) {
                    if (sl.buf.capacity() > 0) m_s.spare.push_back(std::move(sl.buf));
                }
                m_s.owner = reading_by::consumer;
                m_s.next_raw = m_next_raw;
                m_s.read_inline_since_given = false;
                m_s.io_wants_room = false;
                m_owns = false;
            }
            wake = std::exchange(m_s.on_ready, nullptr);
            if (m_s.waiters > 0) m_s.cv.notify_all();
        }
        if (wake) wake();
    }

    // Waits for every operation still in the kernel, so that no buffer is
    // freed under it; cancels reads that may never end (an idle pipe).
    void drain() {
        m_draining = true;
        m_no_more = true;
        for (int round = 0; m_busy > 0; ++round) {
            if (round == k_drain_rounds) {
                abandon_busy();
                return;
            }
            if (round % 10 == 0) {
                for (std::size_t i = 0; i < m_slots.size(); ++i) {
                    if (m_slots[i].at == slot::phase::reading) m_d.cancel(tag_of(i, op_transfer));
                    if (m_slots[i].at == slot::phase::waiting_ready) m_d.cancel(tag_of(i, op_ready));
                }
            }
            m_d.wait(m_done, k_drain_round_ms);
            complete_all();
        }
    }

    void abandon_busy() noexcept {
        unsigned left = 0;
        for (slot& sl : m_slots) {
            if (sl.at == slot::phase::reading || sl.at == slot::phase::waiting_ready) {
                buffer_access::abandon(sl.buf);
                ++left;
            }
        }
        if (left > 0) report_leak(m_s.name, left);
        m_busy = 0;
    }

    read_shared& m_s;
    io_driver& m_d;
    // Everything below is the I/O thread's own.
    std::vector<slot> m_slots;          // raw chunk r lives in m_slots[r % size]
    std::uint64_t m_next_raw = 0;       // the next raw chunk to read
    std::uint64_t m_next_deliver = 0;   // the next raw chunk to turn into chunks
    unsigned m_busy = 0;                // operations the driver has not completed
    bool m_no_more = false;             // the end or an error was seen: no new reads
    bool m_draining = false;            // stopping: completions only end their slots
    // Reading belongs to this thread (see read_shared::owner); when bounded,
    // only for a run of m_run raw chunks, m_run_left of them not started.
    bool m_owns = false;
    bool m_bounded = false;
    std::uint64_t m_run;
    std::uint64_t m_run_left = 0;
    std::vector<completion> m_done;     // from the last wait()
    std::size_t m_handled = 0;          // of m_done
};

template <class Shared>
void report_setup(Shared& s, std::exception_ptr error) {
    std::lock_guard lock(s.mu);
    s.setup = error ? setup_phase::failed : setup_phase::done;
    s.setup_error = std::move(error);
    s.cv.notify_all();
}

// A ring that cannot be set up is the stream's error: name the stream.
std::exception_ptr setup_failure(const std::string& name) {
    try {
        throw;
    } catch (const system_failure& e) {
        return std::make_exception_ptr(io_error(e.call(), e.code().value(), name, 0));
    } catch (...) {
        return std::current_exception();
    }
}

/// An I/O thread's life: its own driver (and ring), set-up reported to the
/// constructor waiting for it, then the engine until the stream ends or
/// fails. The engine (its buffers) goes before the driver (its ring).
template <class Engine, class Shared>
void run_io_thread(Shared& s, const char* thread_name) noexcept {
    prepare_io_thread(thread_name);
    std::unique_ptr<io_driver> driver;
    try {
        driver = make_driver(s.kind, s.doorbell, s.slots);
    } catch (...) {
        report_setup(s, setup_failure(s.name));
        return;
    }
    report_setup(s, nullptr);
    std::optional<Engine> engine;
    try {
        engine.emplace(s, *driver);
        engine->run();
    } catch (...) {
        if (engine) {
            engine->fail(std::current_exception());
        } else {
            std::lock_guard lock(s.mu);
            s.error = std::current_exception();
            s.cv.notify_all();
        }
    }
}

void read_thread(read_shared& s) noexcept { run_io_thread<read_engine>(s, "fl-read"); }

void validate(const reader_options& o) {
    if (o.chunk_bytes == 0) throw config_error("forkline::io::reader: chunk_bytes must be at least 1");
    if (o.depth == 0) throw config_error("forkline::io::reader: depth must be at least 1");
}

void validate(const writer_options& o) {
    if (o.depth == 0) throw config_error("forkline::io::writer: depth must be at least 1");
}

}  // namespace

read_shared::~read_shared() {
    if (io.joinable()) {
        {
            std::lock_guard lock(mu);
            stopping = true;
        }
        ring_doorbell(doorbell);
        io.join();
    }
    if (doorbell >= 0) ::close(doorbell);
    if (owns_fd && fd >= 0) ::close(fd);
}

void read_shared::start() {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw io_error("fstat", errno, name, 0);
    positional = S_ISREG(st.st_mode);
    if (positional) {
        const off_t at = ::lseek(fd, 0, SEEK_CUR);
        start_offset = at < 0 ? 0 : at;
    }
    room = opts.whole_lines ? std::min(opts.chunk_bytes, k_carry_room) : 0;
    former.configure(opts.whole_lines, room);
    owner = positional && opts.inline_cached ? reading_by::consumer : reading_by::io_thread;
    slots = positional ? std::min(opts.depth, k_max_in_flight) : 1;
    kind = opts.io ? *opts.io : default_backend();
    doorbell = open_doorbell(name);
    io = std::thread([this] { read_thread(*this); });
    std::unique_lock lock(mu);
    cv.wait(lock, [this] { return setup != setup_phase::pending; });
    if (setup == setup_phase::failed) std::rethrow_exception(setup_error);
}

reader::poll read_shared::take(chunk& out, bool& ring) {
    if (!ready.empty()) {
        out = std::move(ready.front());
        ready.pop_front();
        on_ready = nullptr;
        ring = std::exchange(io_wants_room, false);
        handed.store(handed.load(std::memory_order_relaxed) + out.data.size(), std::memory_order_relaxed);
        return reader::poll::ready;
    }
    if (error) {
        on_ready = nullptr;
        std::rethrow_exception(error);
    }
    if (ended) {
        on_ready = nullptr;
        return reader::poll::end;
    }
    return reader::poll::pending;
}

void read_shared::leave_input_at_end() const noexcept {
    // Leave a shared descriptor where a read() loop would.
    if (positional && !owns_fd) ::lseek(fd, start_offset + static_cast<std::int64_t>(former.emitted()), SEEK_SET);
}

namespace {

enum class cached_read { full, end, incomplete, unsupported };

// Reads raw chunk `raw` into buf on the calling thread, as far as the page
// cache holds it: RWF_NOWAIT copies cached pages and says EAGAIN (or stops
// short) where one is missing, instead of waiting for the disk.
cached_read read_cached(const read_shared& s, buffer& buf, std::uint64_t raw, std::size_t& filled) {
    const std::size_t chunk_bytes = s.opts.chunk_bytes;
    const std::int64_t at = s.start_offset + static_cast<std::int64_t>(raw * chunk_bytes);
    while (filled < chunk_bytes) {
        iovec piece{buf.data() + filled, std::min(chunk_bytes - filled, k_max_call_bytes)};
        const ssize_t n = ::preadv2(s.fd, &piece, 1, at + static_cast<std::int64_t>(filled), RWF_NOWAIT);
        if (n > 0) {
            // A short count is a missing page or the end: the next call says which.
            filled += static_cast<std::size_t>(n);
            continue;
        }
        if (n == 0) return cached_read::end;
        switch (errno) {
        case EINTR:
            continue;
        case EOPNOTSUPP:  // a file system without RWF_NOWAIT
        case EINVAL:      // a kernel that does not know the flag
        case ENOSYS:      // no preadv2 at all
            return cached_read::unsupported;
        default:
            // EAGAIN; or a real error, which the I/O thread meets again and
            // reports the way it reports its own (R3, R4).
            return cached_read::incomplete;
        }
    }
    return cached_read::full;
}

}  // namespace

// try_next and next(): a published chunk, else, while reading is the
// consumer's, the next raw chunk read here. See "Inline reads" in
// runtime/DESIGN.md.
reader::poll read_shared::next_chunk(chunk& out, std::function<void()>& callback) {
    for (;;) {
        bool ring = false;
        bool read_here = false;
        buffer buf;
        std::uint64_t raw = 0;
        reader::poll result;
        {
            std::lock_guard lock(mu);
            result = take(out, ring);
            if (result == reader::poll::pending && owner == reading_by::consumer && !inline_busy) {
                inline_busy = true;
                read_here = true;
                raw = next_raw;
                if (!spare.empty()) {
                    buf = std::move(spare.back());
                    spare.pop_back();
                }
            } else if (result == reader::poll::pending && callback) {
                // Registered under the lock the I/O thread publishes under: it
                // either saw nothing to take here, or will find the callback.
                on_ready = std::move(callback);
            }
        }
        if (ring) ring_doorbell(doorbell);
        if (!read_here) return result;
        if (!read_inline(std::move(buf), raw, callback)) return reader::poll::pending;
        // Read: take what it formed (with whole_lines perhaps nothing yet,
        // all of it a line that goes on; then read the next one).
    }
}

// Called with inline_busy set by this thread: reading (the former) is ours
// until mu is taken again. false: the chunk went to the I/O thread, and
// `callback` is registered.
bool read_shared::read_inline(buffer buf, std::uint64_t raw, std::function<void()>& callback) {
    std::size_t filled = 0;
    cached_read got = cached_read::incomplete;
    try {
        if (buf.capacity() == 0) buf = buffer(room + opts.chunk_bytes);
        buffer_access::place(buf, room, 0);
        got = read_cached(*this, buf, raw, filled);
        if (got == cached_read::full || got == cached_read::end) {
            if (filled > 0) former.form(buf, filled);
            if (got == cached_read::end) {
                former.end_of_input();
                leave_input_at_end();
            }
        }
    } catch (...) {
        // Memory ran out: the stream ends with that, as on the I/O thread.
        std::lock_guard lock(mu);
        inline_busy = false;
        if (!error && !ended) error = std::current_exception();
        if (waiters > 0) cv.notify_all();
        return true;
    }
    const bool done = got == cached_read::full || got == cached_read::end;
    if (done && filled > 0) {
        inline_raw.store(inline_raw.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    {
        std::lock_guard lock(mu);
        inline_busy = false;
        if (done) {
            for (chunk& c : former.formed()) ready.push_back(std::move(c));
            former.formed().clear();
            // Not made a chunk: empty at the end, or a line that goes on.
            if (buf.capacity() > 0) spare.push_back(std::move(buf));
            next_raw = raw + 1;
            read_inline_since_given = read_inline_since_given || filled > 0;
            if (got == cached_read::end && !error) ended = true;
        } else {
            if (got == cached_read::unsupported) inline_works = false;
            owner = reading_by::io_thread;
            passed = handover{std::move(buf), filled, raw, read_inline_since_given};
            if (callback) on_ready = std::move(callback);
        }
        if (waiters > 0) cv.notify_all();
    }
    if (!done) ring_doorbell(doorbell);
    return done;
}

}  // namespace detail

struct reader::state : detail::read_shared {
    using read_shared::read_shared;
};

using detail::buffer_access;

// ---------------------------------------------------------------------------
// buffer, io_error, backends

buffer::buffer(std::size_t capacity)
    : m_data(std::make_unique_for_overwrite<char[]>(capacity)), m_capacity(capacity) {}

void buffer::resize(std::size_t n) {
    if (n > m_capacity) {
        throw std::out_of_range("forkline::io::buffer::resize: " + std::to_string(n) +
                                " bytes exceed the capacity of " + std::to_string(m_capacity));
    }
    m_size = n;
}

namespace {
// Always with the count, 0 included: io.hpp promises the form, and for a
// write "after 0 bytes" is the news that nothing got through.
std::string describe(const std::string& file, std::uint64_t bytes_done) {
    return file + " (after " + std::to_string(bytes_done) + " bytes)";
}
}  // namespace

io_error::io_error(std::string call, int errno_value, const std::string& file, std::uint64_t bytes_done)
    : system_failure(std::move(call), errno_value, describe(file, bytes_done)),
      m_file(file),
      m_bytes_done(bytes_done) {}

const char* backend_name(backend b) noexcept { return b == backend::uring ? "uring" : "psync"; }

namespace detail {

io_setting parse_io_setting(const char* value) {
    if (value == nullptr || *value == '\0' || std::string_view(value) == "auto") return io_setting::automatic;
    if (std::string_view(value) == "uring") return io_setting::uring;
    if (std::string_view(value) == "psync") return io_setting::psync;
    throw config_error("FORKLINE_IO='" + std::string(value) +
                       "' is not understood; accepted values: uring, psync, auto");
}

int uring_probe_errno() {
    static const int probed = probe_uring();
    return probed;
}

backend resolve_backend(io_setting setting, int probe_errno) {
    switch (setting) {
    case io_setting::psync:
        return backend::psync;
    case io_setting::uring:
        if (probe_errno != 0) {
            throw system_failure("io_uring_queue_init", probe_errno,
                                 "FORKLINE_IO=uring, but this process may not use io_uring "
                                 "(set FORKLINE_IO=psync or auto)");
        }
        return backend::uring;
    case io_setting::automatic:
        break;
    }
    return probe_errno == 0 ? backend::uring : backend::psync;
}

std::string fallback_notice(int probe_errno) {
    return std::string("forkline: io_uring unavailable (io_uring_queue_init: ") + ::strerror(probe_errno) +
           "); using pread/pwrite";
}

}  // namespace detail

backend default_backend() {
    const detail::io_setting setting = detail::parse_io_setting(std::getenv("FORKLINE_IO"));
    if (setting == detail::io_setting::psync) return backend::psync;
    const int probe = detail::uring_probe_errno();
    const backend chosen = detail::resolve_backend(setting, probe);
    if (probe != 0) {
        static std::once_flag notice;
        std::call_once(notice, [probe] { std::fprintf(stderr, "%s\n", detail::fallback_notice(probe).c_str()); });
    }
    return chosen;
}

// ---------------------------------------------------------------------------
// reader

reader::reader(const std::string& path, reader_options opts)
    : m(std::make_unique<state>(path == "-" ? std::string("<stdin>") : path, opts)) {
    detail::validate(opts);
    if (path == "-") {
        m->fd = STDIN_FILENO;
    } else {
        m->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (m->fd < 0) throw io_error("open", errno, path, 0);
        m->owns_fd = true;
    }
    m->start();
}

reader::reader(int fd, std::string name, reader_options opts)
    : m(std::make_unique<state>(std::move(name), opts)) {
    detail::validate(opts);
    m->fd = fd;
    m->start();
}

reader::~reader() = default;

reader::poll reader::try_next(chunk& out, std::function<void()> on_ready) {
    return m->next_chunk(out, on_ready);
}

std::optional<chunk> reader::next() {
    chunk out;
    std::function<void()> none;
    for (;;) {
        const poll result = m->next_chunk(out, none);
        if (result == poll::ready) return out;
        if (result == poll::end) return std::nullopt;
        std::unique_lock lock(m->mu);
        ++m->waiters;
        m->cv.wait(lock, [this] {
            return !m->ready.empty() || m->error || m->ended ||
                   (m->owner == detail::reading_by::consumer && !m->inline_busy);
        });
        --m->waiters;
    }
}

void reader::recycle(chunk&& c) noexcept {
    buffer b = std::move(c.data);  // freed after the lock if not kept
    if (buffer_access::allocation(b) != m->room + m->opts.chunk_bytes) return;
    // Every buffer given back is kept: the I/O thread allocates only when
    // none is spare, so the reader never has more than depth of its own
    // plus the most the consumer held at once, and a steady consumer causes
    // no allocation at all. (A cap would free and allocate again each time
    // the I/O thread lags behind the consumer.)
    std::lock_guard lock(m->mu);
    try {
        m->spare.push_back(std::move(b));
    } catch (const std::bad_alloc&) {
        // The buffer is freed instead; it was only a cache.
    }
}

backend reader::used() const noexcept { return m->kind; }
const std::string& reader::name() const noexcept { return m->name; }
std::uint64_t reader::bytes_read() const noexcept { return m->handed.load(std::memory_order_relaxed); }
std::uint64_t reader::inline_chunks() const noexcept { return m->inline_raw.load(std::memory_order_relaxed); }

// ---------------------------------------------------------------------------
// Writer

namespace detail {

/// What the producer and the writer's I/O thread share.
struct write_shared {
    write_shared(std::string n, writer_options o) : name(std::move(n)), opts(o) {}
    ~write_shared();
    write_shared(const write_shared&) = delete;
    write_shared& operator=(const write_shared&) = delete;

    void start();
    bool offer(chunk& c, std::function<void()>& on_space, bool& ring);
    void stop_io();

    // Set by the constructor before the I/O thread starts; read-only after.
    std::string name;
    writer_options opts;
    backend kind = backend::psync;
    int fd = -1;
    bool owns_fd = false;
    bool regular = false;
    bool positional = false;  // regular, not O_APPEND: writes at offsets, several in flight
    std::int64_t start_offset = 0;
    unsigned slots = 1;
    int doorbell = -1;
    std::thread io;

    // Guarded by mu; a cache line apart from the read-only fields above,
    // which both threads read all the time.
    alignas(64) std::mutex mu;
    std::condition_variable cv;  // write(), finish() and the constructor wait on it
    std::deque<buffer> queue;    // handed over, not yet taken by the I/O thread
    unsigned count = 0;          // handed over and not yet written (queued or in flight)
    std::exception_ptr error;    // set once by the I/O thread
    bool closing = false;        // written by: finish(), the destructor
    bool io_idle = false;        // the I/O thread would take a new chunk at once: ring it
    unsigned waiters = 0;        // threads in write()
    std::function<void()> on_space;
    setup_phase setup = setup_phase::pending;
    std::exception_ptr setup_error;

    // written by: the I/O thread; read by: anyone. Relaxed: a statistic; the
    // final value is read after join().
    std::atomic<std::uint64_t> written{0};

    // The producer's own, after finish().
    bool finished = false;
    std::exception_ptr final_error;
};

}  // namespace detail

struct writer::state : detail::write_shared {
    using write_shared::write_shared;
};

namespace detail {
namespace {

/// The writer's I/O thread: takes chunks in order, writes each at its
/// stream offset, continues short writes, and counts the bytes written
/// without gaps. See "Writing in order" in runtime/DESIGN.md.
class write_engine {
public:
    write_engine(write_shared& s, io_driver& d) : m_s(s), m_d(d) {}

    void run() {
        for (;;) {
            const std::size_t first_new = m_flight.size();
            bool exit = false;
            {
                std::lock_guard lock(m_s.mu);
                while (!m_failed && !m_s.queue.empty() && m_pending < m_s.slots) {
                    item it;
                    it.buf = std::move(m_s.queue.front());
                    m_s.queue.pop_front();
                    it.at = m_taken_bytes;
                    m_taken_bytes += it.buf.size();
                    m_flight.push_back(std::move(it));
                    ++m_pending;
                }
                exit = m_pending == 0 && m_s.queue.empty() && m_s.closing;
                m_s.io_idle = !exit && !m_failed && m_pending < m_s.slots;
            }
            if (exit) return;
            for (std::size_t i = first_new; i < m_flight.size(); ++i) start_write(i);
            m_d.wait(m_done, -1);
            complete_all();
            retire();
            if (m_failed && m_busy == 0) {
                stop_failed();
                return;
            }
        }
    }

    /// run() threw (the ring failed, a callback threw, memory ran out): wait
    /// for the writes in flight, cut a file after the gapless bytes, and
    /// hand the error to the producer.
    void fail(std::exception_ptr e) noexcept {
        m_failed = true;
        try {
            drain();
        } catch (...) {
            abandon_busy();
        }
        if (m_s.positional) {
            (void)::ftruncate(m_s.fd, m_s.start_offset + static_cast<std::int64_t>(m_contiguous));
        }
        m_s.written.store(m_contiguous, std::memory_order_relaxed);
        try {
            std::rethrow_exception(e);
        } catch (const system_failure& f) {
            // The ring failed: say which stream and how far it got.
            try {
                e = std::make_exception_ptr(io_error(f.call(), f.code().value(), m_s.name, m_contiguous));
            } catch (...) {
                e = std::current_exception();
            }
        } catch (...) {
        }
        publish_error(std::move(e));
    }

private:
    struct item {
        buffer buf;
        std::uint64_t at = 0;  // offset in the stream
        std::size_t done = 0;  // bytes written from its start
        bool complete = false;
        bool in_kernel = false;
        op_kind op = op_transfer;
    };

    const char* write_call() const noexcept {
        return m_s.kind == backend::psync && m_s.positional ? "pwrite" : "write";
    }

    // As in read_engine.
    void complete_all() {
        while (m_handled < m_done.size()) complete(m_done[m_handled++]);
        m_done.clear();
        m_handled = 0;
    }

    void start_write(std::size_t index) {
        item& it = m_flight[index];
        const std::size_t want = std::min(it.buf.size() - it.done, k_max_call_bytes);
        const std::int64_t at =
            m_s.positional ? m_s.start_offset + static_cast<std::int64_t>(it.at + it.done) : -1;
        m_d.write(tag_of(m_first_id + index, op_transfer), m_s.fd, it.buf.data() + it.done, want, at);
        it.in_kernel = true;
        it.op = op_transfer;
        ++m_busy;
    }

    void complete(completion c) {
        const std::size_t index = static_cast<std::size_t>(c.tag / 2 - m_first_id);
        item& it = m_flight[index];
        it.in_kernel = false;
        --m_busy;
        if (c.tag % 2 == op_ready) {
            if (m_failed) {
                end_item(it);
            } else {
                start_write(index);
            }
            return;
        }
        const int res = c.result;
        if (res > 0) {
            it.done += static_cast<std::size_t>(res);
            if (it.done < it.buf.size() && !m_failed) {
                start_write(index);  // short write: the rest, right after
            } else {
                end_item(it);
            }
            return;
        }
        // A write of at least one byte that writes nothing would repeat for
        // ever: an error.
        const int err = res == 0 ? EIO : -res;
        if ((err == EINTR || err == ECANCELED) && !m_failed) {
            start_write(index);
            return;
        }
        if (err == EAGAIN && !m_failed) {
            if (m_s.positional) {
                start_write(index);
            } else {
                // O_NONBLOCK: wait until the pipe has room, then write again.
                m_d.wait_ready(tag_of(m_first_id + index, op_ready), m_s.fd, POLLOUT);
                it.in_kernel = true;
                it.op = op_ready;
                ++m_busy;
            }
            return;
        }
        if (!m_failed) {
            m_failed = true;
            m_errno = err;
        }
        end_item(it);
    }

    void end_item(item& it) {
        it.complete = true;
        --m_pending;
    }

    // Drops written chunks from the front; tells the producer about room.
    void retire() {
        unsigned freed = 0;
        while (!m_flight.empty() && m_flight.front().complete &&
               m_flight.front().done == m_flight.front().buf.size()) {
            m_contiguous += m_flight.front().buf.size();
            m_flight.pop_front();
            ++m_first_id;
            ++freed;
        }
        if (freed == 0) return;
        m_s.written.store(m_contiguous, std::memory_order_relaxed);
        std::function<void()> wake;
        {
            std::lock_guard lock(m_s.mu);
            m_s.count -= freed;
            wake = std::exchange(m_s.on_space, nullptr);
            if (m_s.waiters > 0) m_s.cv.notify_all();
        }
        if (wake) wake();
    }

    // Every write has ended and one failed: the stream holds the bytes up to
    // the first gap; cut a file there so nothing follows them.
    void stop_failed() {
        std::uint64_t done = m_contiguous;
        if (!m_flight.empty()) done += m_flight.front().done;
        if (m_s.positional) {
            // Best effort: if the file cannot be cut, later bytes stay.
            (void)::ftruncate(m_s.fd, m_s.start_offset + static_cast<std::int64_t>(done));
        }
        m_s.written.store(done, std::memory_order_relaxed);
        publish_error(std::make_exception_ptr(io_error(write_call(), m_errno, m_s.name, done)));
    }

    void publish_error(std::exception_ptr e) noexcept {
        std::function<void()> wake;
        {
            std::lock_guard lock(m_s.mu);
            if (!m_s.error) m_s.error = std::move(e);
            m_s.queue.clear();
            m_s.count = 0;
            m_s.io_idle = false;
            wake = std::exchange(m_s.on_space, nullptr);
            m_s.cv.notify_all();
        }
        try {
            if (wake) wake();
        } catch (...) {
            // The writer has failed already; the callback's error adds nothing.
        }
    }

    void drain() {
        for (int round = 0; m_busy > 0; ++round) {
            if (round == k_drain_rounds) {
                abandon_busy();
                return;
            }
            if (round % 10 == 0) {
                for (std::size_t i = 0; i < m_flight.size(); ++i) {
                    if (m_flight[i].in_kernel) m_d.cancel(tag_of(m_first_id + i, m_flight[i].op));
                }
            }
            m_d.wait(m_done, k_drain_round_ms);
            complete_all();
        }
    }

    void abandon_busy() noexcept {
        unsigned left = 0;
        for (item& it : m_flight) {
            if (it.in_kernel) {
                buffer_access::abandon(it.buf);
                ++left;
            }
        }
        if (left > 0) report_leak(m_s.name, left);
        m_busy = 0;
    }

    write_shared& m_s;
    io_driver& m_d;
    // Everything below is the I/O thread's own.
    std::deque<item> m_flight;        // taken, in stream order, until written
    std::uint64_t m_first_id = 0;     // id (tag) of m_flight.front()
    std::uint64_t m_taken_bytes = 0;  // stream offset of the next chunk taken
    std::uint64_t m_contiguous = 0;   // bytes written from the start without a gap
    unsigned m_pending = 0;           // taken and not ended
    unsigned m_busy = 0;              // operations the driver has not completed
    bool m_failed = false;
    int m_errno = 0;
    std::vector<completion> m_done;  // from the last wait()
    std::size_t m_handled = 0;       // of m_done
};

void write_thread(write_shared& s) noexcept { run_io_thread<write_engine>(s, "fl-write"); }

}  // namespace

void write_shared::stop_io() {
    if (!io.joinable()) return;
    {
        std::lock_guard lock(mu);
        closing = true;
    }
    ring_doorbell(doorbell);
    io.join();
}

write_shared::~write_shared() {
    stop_io();
    if (doorbell >= 0) ::close(doorbell);
    if (owns_fd && fd >= 0) ::close(fd);
}

void write_shared::start() {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw io_error("fstat", errno, name, 0);
    regular = S_ISREG(st.st_mode);
    const int flags = ::fcntl(fd, F_GETFL);
    // pwrite on an O_APPEND file appends whatever the offset: such a file
    // is written like a pipe, in order, one write at a time.
    positional = regular && flags >= 0 && (flags & O_APPEND) == 0;
    if (positional) {
        const off_t at = ::lseek(fd, 0, SEEK_CUR);
        start_offset = at < 0 ? 0 : at;
    }
    slots = positional ? std::min(opts.depth, k_max_in_flight) : 1;
    kind = opts.io ? *opts.io : default_backend();
    doorbell = open_doorbell(name);
    io = std::thread([this] { write_thread(*this); });
    std::unique_lock lock(mu);
    cv.wait(lock, [this] { return setup != setup_phase::pending; });
    if (setup == setup_phase::failed) std::rethrow_exception(setup_error);
}

// Called with mu held.
bool write_shared::offer(chunk& c, std::function<void()>& space_callback, bool& ring) {
    if (closing) throw std::logic_error("forkline::io::writer: a chunk handed over after finish() (" + name + ")");
    if (error) {
        on_space = nullptr;
        std::rethrow_exception(error);
    }
    if (count >= opts.depth) {
        if (space_callback) on_space = std::move(space_callback);
        return false;
    }
    on_space = nullptr;
    if (!c.data.empty()) {
        queue.push_back(std::move(c.data));
        ++count;
        ring = std::exchange(io_idle, false);
    }
    c.data = buffer{};
    return true;
}

}  // namespace detail

writer::writer(const std::string& path, writer_options opts)
    : m(std::make_unique<state>(path == "-" ? std::string("<stdout>") : path, opts)) {
    detail::validate(opts);
    if (path == "-") {
        m->fd = STDOUT_FILENO;
    } else {
        m->fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (m->fd < 0) throw io_error("open", errno, path, 0);
        m->owns_fd = true;
    }
    m->start();
}

writer::writer(int fd, std::string name, writer_options opts)
    : m(std::make_unique<state>(std::move(name), opts)) {
    detail::validate(opts);
    m->fd = fd;
    m->start();
}

writer::~writer() = default;

bool writer::try_write(chunk& c, std::function<void()> on_space) {
    bool ring = false;
    bool taken = false;
    {
        std::lock_guard lock(m->mu);
        taken = m->offer(c, on_space, ring);
    }
    if (ring) detail::ring_doorbell(m->doorbell);
    return taken;
}

void writer::write(chunk&& c) {
    bool ring = false;
    {
        std::unique_lock lock(m->mu);
        ++m->waiters;
        m->cv.wait(lock, [this] { return m->error || m->closing || m->count < m->opts.depth; });
        --m->waiters;
        std::function<void()> none;
        m->offer(c, none, ring);
    }
    if (ring) detail::ring_doorbell(m->doorbell);
}

void writer::finish() {
    state& s = *m;
    if (s.finished) {
        if (s.final_error) std::rethrow_exception(s.final_error);
        return;
    }
    s.stop_io();
    s.finished = true;
    std::exception_ptr failure = s.error;  // the I/O thread is joined: no lock needed
    const std::uint64_t done = s.written.load(std::memory_order_relaxed);
    if (!failure && s.opts.sync_at_end && s.regular && ::fdatasync(s.fd) != 0) {
        failure = std::make_exception_ptr(io_error("fdatasync", errno, s.name, done));
    }
    if (!failure && s.positional && !s.owns_fd &&
        ::lseek(s.fd, s.start_offset + static_cast<std::int64_t>(done), SEEK_SET) < 0) {
        failure = std::make_exception_ptr(io_error("lseek", errno, s.name, done));
    }
    if (s.owns_fd) {
        const int rc = ::close(s.fd);
        s.fd = -1;
        // Linux frees the descriptor even when close reports EINTR.
        if (rc != 0 && errno != EINTR && !failure) {
            failure = std::make_exception_ptr(io_error("close", errno, s.name, done));
        }
    }
    s.final_error = failure;
    if (failure) std::rethrow_exception(failure);
}

backend writer::used() const noexcept { return m->kind; }
const std::string& writer::name() const noexcept { return m->name; }
std::uint64_t writer::bytes_written() const noexcept { return m->written.load(std::memory_order_relaxed); }

}  // namespace forkline::io

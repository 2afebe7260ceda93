// runtime/io_driver.cpp: the two ways an I/O thread reaches the kernel: an
// io_uring ring it owns, or pread/pwrite (read/write) made on the spot.
// See "I/O rings" in runtime/DESIGN.md.
#include "io_driver.hpp"

#include <errno.h>        // EINTR, ECANCELED, ETIME, EINVAL
#include <liburing.h>     // io_uring_*
#include <poll.h>         // poll, pollfd
#include <unistd.h>       // read, write, pread, pwrite

#include <bit>      // bit_ceil
#include <string>   // to_string
#include <utility>  // exchange

#include "forkline/detail/probes.hpp"  // FORKLINE_PROBE (see "Probes" in DESIGN.md)
#include "forkline/errors.hpp"          // system_failure

#include "sanitizers.hpp"  // FORKLINE_TSAN
#if defined(FORKLINE_TSAN)
#include <sanitizer/tsan_interface.h>  // __tsan_acquire, __tsan_release
#endif

namespace forkline::io::detail {
namespace {

// A new ring's shared memory may be mapped where an old ring's was. The
// kernel orders the unmap before the map, but ThreadSanitizer does not see
// it and would take the old thread's writes to the submission entries for a
// race with the new thread's: tell it that each ring's teardown happens
// before any later ring's setup.
#if defined(FORKLINE_TSAN)
char g_ring_handoff;
void ring_setup_begins() noexcept { __tsan_acquire(&g_ring_handoff); }
void ring_teardown_begins() noexcept { __tsan_release(&g_ring_handoff); }
#else
void ring_setup_begins() noexcept {}
void ring_teardown_begins() noexcept {}
#endif

constexpr std::uint64_t k_doorbell_tag = k_first_reserved_tag;
constexpr std::uint64_t k_cancel_tag = k_first_reserved_tag + 1;
// A destructor waits this long, in rounds, for its doorbell read to end.
constexpr int k_close_rounds = 50;
constexpr int k_close_round_ms = 100;

// Setup flags, most capable first. SINGLE_ISSUER lets the kernel skip
// locking for a ring only one thread submits to; DEFER_TASKRUN runs
// completion work only when that thread waits, so the kernel never interrupts
// it; COOP_TASKRUN avoids an inter-processor interrupt per completion. Each
// may be missing from the kernel (EINVAL) or from older headers (0 here).
#ifdef IORING_SETUP_SINGLE_ISSUER
constexpr unsigned k_single_issuer = IORING_SETUP_SINGLE_ISSUER;
#else
constexpr unsigned k_single_issuer = 0;
#endif
#ifdef IORING_SETUP_COOP_TASKRUN
constexpr unsigned k_coop_taskrun = IORING_SETUP_COOP_TASKRUN;
#else
constexpr unsigned k_coop_taskrun = 0;
#endif
#ifdef IORING_SETUP_DEFER_TASKRUN
constexpr unsigned k_defer_taskrun = IORING_SETUP_DEFER_TASKRUN;
#else
constexpr unsigned k_defer_taskrun = 0;
#endif

constexpr unsigned k_setup_flags[] = {
    k_single_issuer | k_coop_taskrun | k_defer_taskrun,
    k_single_issuer | k_coop_taskrun,
    k_coop_taskrun,
    0,
};

// The errors of io_uring_enter that only mean "not now": a signal, a full
// completion queue the next wait drains, or the timeout we asked for.
bool transient(int rc) noexcept {
    return rc == -EINTR || rc == -EAGAIN || rc == -EBUSY || rc == -ETIME;
}

class uring_driver final : public io_driver {
public:
    uring_driver(int doorbell, unsigned max_ops)
        : m_doorbell(doorbell), m_bell(std::make_unique<std::uint64_t>(0)) {
        // Each operation may need its own SQE and a cancel's, plus the
        // doorbell's; the completion queue is twice the submission queue.
        const unsigned entries = std::bit_ceil(2 * max_ops + 4);
        ring_setup_begins();
        int rc = -EINVAL;
        for (const unsigned flags : k_setup_flags) {
            io_uring_params params{};
            params.flags = flags;
            rc = io_uring_queue_init_params(entries, &m_ring, &params);
            if (rc != -EINVAL) break;
        }
        if (rc < 0) {
            throw system_failure("io_uring_queue_init_params", -rc,
                                 "cannot set up an io_uring ring of " + std::to_string(entries) +
                                     " entries (FORKLINE_IO=psync avoids io_uring)");
        }
        arm_doorbell();
    }

    ~uring_driver() override {
        // The kernel writes the doorbell's counter into m_bell: wait for that
        // read to end before the memory goes.
        m_closing = true;
        try {
            for (int round = 0; m_armed && round < k_close_rounds; ++round) {
                if (round % 10 == 0) cancel(k_doorbell_tag);
                std::vector<completion> ignored;
                wait(ignored, k_close_round_ms);
            }
        } catch (...) {
            // A ring that fails here can do nothing more; fall through.
        }
        // Never seen to happen: leak 8 bytes rather than let the kernel
        // write freed memory.
        if (m_armed) (void)m_bell.release();
        ring_teardown_begins();
        io_uring_queue_exit(&m_ring);
    }

    void read(std::uint64_t tag, int fd, char* p, std::size_t n, std::int64_t off) override {
        io_uring_sqe* s = next_sqe();
        io_uring_prep_read(s, fd, p, static_cast<unsigned>(n), static_cast<__u64>(off));
        io_uring_sqe_set_data64(s, tag);
        FORKLINE_PROBE(io_submit, tag, n);
    }

    void write(std::uint64_t tag, int fd, const char* p, std::size_t n, std::int64_t off) override {
        io_uring_sqe* s = next_sqe();
        io_uring_prep_write(s, fd, p, static_cast<unsigned>(n), static_cast<__u64>(off));
        io_uring_sqe_set_data64(s, tag);
        FORKLINE_PROBE(io_submit, tag, n);
    }

    void wait_ready(std::uint64_t tag, int fd, short events) override {
        io_uring_sqe* s = next_sqe();
        io_uring_prep_poll_add(s, fd, static_cast<unsigned>(events));
        io_uring_sqe_set_data64(s, tag);
        FORKLINE_PROBE(io_submit, tag, 0);
    }

    void cancel(std::uint64_t tag) override {
        io_uring_sqe* s = next_sqe();
        io_uring_prep_cancel64(s, tag, 0);
        io_uring_sqe_set_data64(s, k_cancel_tag);
    }

    bool wait(std::vector<completion>& out, int timeout_ms) override {
        int rc = 0;
        if (timeout_ms < 0) {
            rc = io_uring_submit_and_wait(&m_ring, 1);
        } else {
            rc = io_uring_submit(&m_ring);
            if (rc >= 0 || transient(rc)) {
                __kernel_timespec ts{};
                ts.tv_sec = timeout_ms / 1000;
                ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1'000'000;
                io_uring_cqe* first = nullptr;
                rc = io_uring_wait_cqe_timeout(&m_ring, &first, &ts);
            }
        }
        if (rc < 0 && !transient(rc)) {
            throw system_failure("io_uring_enter", -rc, "waiting for I/O completions");
        }
        bool rang = false;
        int bell_error = 0;
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&m_ring, head, cqe) {
            ++seen;
            const std::uint64_t tag = cqe->user_data;
            if (tag == k_doorbell_tag) {
                m_armed = false;
                rang = true;
                if (cqe->res < 0 && cqe->res != -ECANCELED && cqe->res != -EINTR &&
                    cqe->res != -EAGAIN) {
                    bell_error = -cqe->res;
                }
            } else if (tag < k_first_reserved_tag) {
                FORKLINE_PROBE(io_complete, tag, cqe->res);
                out.push_back({tag, cqe->res});
            }
            // Cancels' own completions, and liburing's timeouts, say nothing
            // the operations' completions do not.
        }
        io_uring_cq_advance(&m_ring, seen);
        if (bell_error != 0) {
            // Re-arming a broken eventfd would spin.
            throw system_failure("read", bell_error, "the I/O thread's doorbell (an eventfd)");
        }
        if (!m_armed && !m_closing) arm_doorbell();
        return rang;
    }

private:
    void arm_doorbell() {
        io_uring_sqe* s = next_sqe();
        io_uring_prep_read(s, m_doorbell, m_bell.get(), sizeof(std::uint64_t), static_cast<__u64>(-1));
        io_uring_sqe_set_data64(s, k_doorbell_tag);
        m_armed = true;
    }

    io_uring_sqe* next_sqe() {
        io_uring_sqe* s = io_uring_get_sqe(&m_ring);
        if (s == nullptr) {
            // Full: hand what is prepared to the kernel to make room.
            const int rc = io_uring_submit(&m_ring);
            if (rc < 0 && !transient(rc)) {
                throw system_failure("io_uring_submit", -rc, "submitting I/O");
            }
            s = io_uring_get_sqe(&m_ring);
        }
        if (s == nullptr) throw system_failure("io_uring_get_sqe", EBUSY, "the submission queue is full");
        return s;
    }

    io_uring m_ring{};
    int m_doorbell;
    std::unique_ptr<std::uint64_t> m_bell;  // the doorbell read's target
    bool m_armed = false;                   // a doorbell read is in flight
    bool m_closing = false;
};

// -errno for a failed call, else the byte count (callers ask for at most
// 1 GiB, so it fits).
int result_of(ssize_t rc) noexcept { return rc < 0 ? -errno : static_cast<int>(rc); }

class psync_driver final : public io_driver {
public:
    explicit psync_driver(int doorbell) : m_doorbell(doorbell) {}

    void read(std::uint64_t tag, int fd, char* p, std::size_t n, std::int64_t off) override {
        FORKLINE_PROBE(io_submit, tag, n);
        if (off >= 0) {
            m_done.push_back({tag, result_of(::pread(fd, p, n, off))});
            return;
        }
        // A pipe may stay empty for ever: wait for data or the doorbell, so
        // that a stopping reader is never stuck in read().
        const int ready = wait_for(fd, POLLIN);
        m_done.push_back({tag, ready < 0 ? ready : result_of(::read(fd, p, n))});
    }

    void write(std::uint64_t tag, int fd, const char* p, std::size_t n, std::int64_t off) override {
        FORKLINE_PROBE(io_submit, tag, n);
        // No poll first: a writer waits for its writes whatever happens.
        m_done.push_back({tag, result_of(off >= 0 ? ::pwrite(fd, p, n, off) : ::write(fd, p, n))});
    }

    void wait_ready(std::uint64_t tag, int fd, short events) override {
        FORKLINE_PROBE(io_submit, tag, 0);
        m_done.push_back({tag, wait_for(fd, events)});
    }

    void cancel(std::uint64_t) override {
        // Every operation has finished by the time its call returned.
    }

    bool wait(std::vector<completion>& out, int timeout_ms) override {
        if (m_done.empty() && !m_rang) {
            pollfd bell{m_doorbell, POLLIN, 0};
            const int rc = ::poll(&bell, 1, timeout_ms);
            if (rc < 0 && errno != EINTR) {
                throw system_failure("poll", errno, "waiting on the I/O thread's doorbell");
            }
            if (rc > 0) take_doorbell();
        }
        for (const completion& c : m_done) {
            FORKLINE_PROBE(io_complete, c.tag, c.result);
            out.push_back(c);
        }
        m_done.clear();
        return std::exchange(m_rang, false);
    }

private:
    // revents when fd is ready; -ECANCELED when the doorbell rang first;
    // -errno when poll failed.
    int wait_for(int fd, short events) {
        pollfd fds[2] = {{fd, events, 0}, {m_doorbell, POLLIN, 0}};
        for (;;) {
            if (::poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                return -errno;
            }
            if (fds[0].revents != 0) return fds[0].revents;
            if (fds[1].revents != 0) {
                take_doorbell();
                return -ECANCELED;
            }
        }
    }

    void take_doorbell() {
        // Only this thread reads the eventfd and poll said it is readable,
        // so the read does not block.
        std::uint64_t count = 0;
        while (::read(m_doorbell, &count, sizeof count) < 0 && errno == EINTR) {
        }
        m_rang = true;
    }

    int m_doorbell;
    std::vector<completion> m_done;
    bool m_rang = false;
};

}  // namespace

int probe_uring() noexcept {
    ring_setup_begins();
    io_uring ring{};
    const int rc = io_uring_queue_init(2, &ring, 0);
    if (rc < 0) return -rc;
    ring_teardown_begins();
    io_uring_queue_exit(&ring);
    return 0;
}

std::unique_ptr<io_driver> make_uring_driver(int doorbell, unsigned max_ops) {
    return std::make_unique<uring_driver>(doorbell, max_ops);
}

std::unique_ptr<io_driver> make_psync_driver(int doorbell) {
    return std::make_unique<psync_driver>(doorbell);
}

}  // namespace forkline::io::detail

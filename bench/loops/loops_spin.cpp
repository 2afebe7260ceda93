// bench/loops/loops_spin.cpp: the floor for back-to-back loops. A team of
// plain threads (the caller and workers - 1), each with its fixed slice of
// every loop, and a sense-reversing spin barrier between loops: no tasks,
// no stealing, no sleeping, so what is left is the work and one barrier.
#include <immintrin.h>  // _mm_pause

#include <atomic>   // atomic
#include <cstddef>  // size_t
#include <cstdint>  // uint64_t
#include <thread>   // thread
#include <vector>   // vector

#include "loops.hpp"  // run_loops_spin, time_loops, loops_step

namespace forkline_bench {
namespace {

/// All `n` threads wait until the last arrives; spins only.
class spin_barrier {
public:
    explicit spin_barrier(unsigned n) : m_n(n), m_left(n) {}

    void arrive_and_wait() noexcept {
        const bool sense = !m_sense.load(std::memory_order_relaxed);
        if (m_left.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            m_left.store(m_n, std::memory_order_relaxed);
            m_sense.store(sense, std::memory_order_release);
            return;
        }
        while (m_sense.load(std::memory_order_acquire) != sense) _mm_pause();
    }

private:
    const unsigned m_n;
    alignas(64) std::atomic<unsigned> m_left;
    alignas(64) std::atomic<bool> m_sense{false};
};

/// Threads kept for both calls of time_loops; each call is one "run".
class team {
public:
    explicit team(unsigned n) : m_n(n), m_barrier(n) {
        for (unsigned t = 1; t < n; ++t) m_threads.emplace_back([this, t] { member(t); });
    }
    ~team() {
        m_stop.store(true, std::memory_order_release);
        m_generation.fetch_add(1, std::memory_order_acq_rel);
        for (std::thread& t : m_threads) t.join();
    }
    team(const team&) = delete;
    team& operator=(const team&) = delete;

    void run(std::uint64_t* x, const loops_shape& s) {
        m_x = x;
        m_shape = s;
        m_generation.fetch_add(1, std::memory_order_acq_rel);  // the members start
        work(0);
    }

private:
    void member(unsigned t) {
        unsigned seen = 0;
        for (;;) {
            unsigned g;
            while ((g = m_generation.load(std::memory_order_acquire)) == seen) _mm_pause();
            seen = g;
            if (m_stop.load(std::memory_order_acquire)) return;
            work(t);
        }
    }
    // Every loop then the barrier; the last barrier also ends the run, so the
    // caller returns only when every slice of the last loop is written.
    // Reads the run's shape before its first barrier, so the caller may set
    // the next one as soon as it is past the last.
    void work(unsigned t) {
        const loops_shape s = m_shape;
        const std::size_t lo = s.elements * t / m_n;
        const std::size_t hi = s.elements * (t + 1) / m_n;
        std::uint64_t* const x = m_x;
        for (unsigned k = 0; k < s.loops; ++k) {
            for (std::size_t i = lo; i < hi; ++i) x[i] = loops_step(x[i]);
            m_barrier.arrive_and_wait();
        }
    }

    const unsigned m_n;
    spin_barrier m_barrier;
    std::uint64_t* m_x = nullptr;
    loops_shape m_shape;
    alignas(64) std::atomic<unsigned> m_generation{0};
    std::atomic<bool> m_stop{false};
    std::vector<std::thread> m_threads;
};

}  // namespace

sample run_loops_spin(const loops_shape& shape, unsigned workers) {
    team t(workers);
    return time_loops(shape, [&](std::uint64_t* x, const loops_shape& s) { t.run(x, s); });
}

}  // namespace forkline_bench

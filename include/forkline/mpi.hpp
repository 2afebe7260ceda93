/// @file forkline/mpi.hpp
/// forkline across machines on MPI (the optional `forkline_mpi` library,
/// built when meson finds MPI): one forkline runtime per rank, one rank per
/// node or NUMA node, every MPI call on one thread of the rank.
///
/// @code
/// int main(int argc, char** argv) {
///     forkline::mpi::session mpi(argc, argv);          // MPI_Init_thread(FUNNELED), or adopt
///     forkline::runtime rt;                            // workers inside the cpus MPI bound this rank to
///     const forkline::mpi::cpu_report where = mpi.check_placement();
///     if (where.shared_cpus && mpi.rank() == 0) std::fputs(where.message.c_str(), stderr);
///     std::vector<std::vector<char>> out(mpi.size());  // bytes for each rank
///     forkline::mpi::exchange(mpi, out, [&](int round, std::vector<std::vector<char>>& in) {
///         rt.submit([pieces = std::move(in)] { /* workers merge while the next round is in flight */ });
///     });
/// }
/// @endcode
///
/// Threads: the session asks for MPI_THREAD_FUNNELED: MPI is called only
/// from the thread that created the session (the rank's main thread), never
/// from the runtime's workers, which compute while it communicates. A
/// program that initialised MPI itself keeps its level, and a level below
/// FUNNELED (MPI_THREAD_SINGLE: no other thread may even exist) is refused.
/// See "MPI" in runtime/DESIGN.md.
#pragma once

#ifndef OMPI_SKIP_MPICXX
/// Open MPI: the C API only. MPI's deprecated C++ bindings are not used (and
/// do not build warning-free).
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
/// MPICH: the C API only, as OMPI_SKIP_MPICXX.
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <cstddef>     // size_t
#include <cstdint>     // uint64_t
#include <functional>  // function
#include <stdexcept>   // runtime_error
#include <string>      // string
#include <thread>      // thread::id
#include <vector>      // vector

namespace forkline::mpi {

/// An MPI call failed. what(): "CALL: MPI's error string (error N)".
class mpi_error : public std::runtime_error {
public:
    /// `call`: the MPI function; `code`: the error code it returned.
    mpi_error(std::string call, int code);
    /// The MPI function that failed, such as "MPI_Alltoallv".
    const std::string& call() const noexcept { return m_call; }
    /// Its error code.
    int code() const noexcept { return m_code; }

private:
    std::string m_call;
    int m_code;
};

/// Throws mpi_error when `code` is not MPI_SUCCESS.
void check(int code, const char* call);

/// "MPI_THREAD_SINGLE", "MPI_THREAD_FUNNELED", ... for a level.
const char* thread_level_name(int level) noexcept;

/// What check_placement() found on this rank's node.
struct cpu_report {
    int node_ranks = 0;        ///< ranks on this rank's node (MPI_COMM_TYPE_SHARED)
    int node_rank = 0;         ///< this rank's index among them
    unsigned cpus = 0;         ///< cpus in this rank's affinity mask
    bool shared_cpus = false;  ///< a cpu of this rank's mask is in another local rank's mask too
    /// Empty, or one line naming the ranks that share cpus and what to do.
    std::string message;
};

/// MPI for the life of this object, one per process.
class session {
public:
    /// MPI_Init_thread asking for MPI_THREAD_FUNNELED, or, when the program
    /// initialised MPI already, adopts it with its level (MPI_Query_thread).
    /// Throws mpi_error for a failed call and std::runtime_error for a level
    /// below FUNNELED, naming the level granted.
    session(int& argc, char**& argv);
    /// MPI_Finalize when this session initialised MPI.
    ~session();
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    int rank() const noexcept { return m_rank; }                      ///< in MPI_COMM_WORLD
    int size() const noexcept { return m_size; }                      ///< ranks in MPI_COMM_WORLD
    int thread_level() const noexcept { return m_level; }             ///< the level granted
    bool initialised_here() const noexcept { return m_initialised; }  ///< false: adopted
    MPI_Comm comm() const noexcept { return MPI_COMM_WORLD; }         ///< the communicator used

    /// Throws std::logic_error naming `what` when called from a thread other
    /// than the one that made the session (FUNNELED allows only that one).
    void require_mpi_thread(const char* what) const;

    /// Collective over every rank. Compares the affinity masks of the ranks
    /// on each node: ranks whose masks overlap share cpus (oversubscribed, or
    /// mpirun gave no binding), and each rank's runtime then competes with
    /// the others' for the same cores.
    cpu_report check_placement() const;

private:
    int m_rank = 0;
    int m_size = 1;
    int m_level = 0;
    bool m_initialised = false;
    std::thread::id m_thread;
};

/// Called after each round of exchange() with what each rank sent in it:
/// in[s] holds rank s's piece (possibly empty). It may move the pieces away.
using round_handler = std::function<void(int round, std::vector<std::vector<char>>& in)>;

/// Totals of one exchange(), this rank's side.
struct exchange_totals {
    std::uint64_t bytes_sent = 0;      ///< to other ranks (not counting its own part)
    std::uint64_t bytes_received = 0;  ///< from other ranks
    int rounds = 0;                    ///< the same on every rank
};

/// Collective: out[d] (any size, 64-bit) goes to rank d. The sizes go first
/// (MPI_Alltoall of 64-bit counts), then the data with MPI_Alltoallv in
/// rounds of at most `round_bytes` per rank (MPI's counts are int: a round
/// keeps every count and displacement below 2^31), each round's pieces handed
/// to on_round on the calling thread as soon as they arrived, so that the
/// runtime's workers can work on round k while round k + 1 is in flight.
/// Every rank takes part in the same number of rounds. Throws mpi_error.
exchange_totals exchange(const session& s, const std::vector<std::vector<char>>& out, const round_handler& on_round,
                         std::size_t round_bytes = std::size_t{64} << 20);

/// Collective: true on every rank when `ok` is true on every rank. The way
/// ranks agree to go on, or all stop, after a step that may fail on one.
bool all_ok(const session& s, bool ok);

}  // namespace forkline::mpi

// runtime/mpi.cpp: the forkline_mpi library. See "MPI" in runtime/DESIGN.md.
#include "forkline/mpi.hpp"

#include <sched.h>  // sched_getaffinity, cpu_set_t, CPU_*

#include <algorithm>  // min, max
#include <climits>    // INT_MAX
#include <cstring>    // memcpy
#include <stdexcept>  // logic_error, runtime_error
#include <string>     // string, to_string
#include <utility>    // move
#include <vector>     // vector

namespace forkline::mpi {

namespace {

std::string error_text(int code) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "unknown MPI error";
    return std::string(text, static_cast<std::size_t>(len));
}

}  // namespace

mpi_error::mpi_error(std::string call, int code)
    : std::runtime_error(call + ": " + error_text(code) + " (error " + std::to_string(code) + ")"),
      m_call(std::move(call)),
      m_code(code) {}

void check(int code, const char* call) {
    if (code != MPI_SUCCESS) throw mpi_error(call, code);
}

const char* thread_level_name(int level) noexcept {
    switch (level) {
        case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
        case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
        case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
        case MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
        default: return "an unknown MPI thread level";
    }
}

session::session(int& argc, char**& argv) : m_thread(std::this_thread::get_id()) {
    int already = 0;
    check(MPI_Initialized(&already), "MPI_Initialized");
    if (already != 0) {
        check(MPI_Query_thread(&m_level), "MPI_Query_thread");
    } else {
        check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &m_level), "MPI_Init_thread");
        m_initialised = true;
    }
    if (m_level < MPI_THREAD_FUNNELED) {
        const std::string msg = std::string("forkline::mpi::session: MPI granted ") + thread_level_name(m_level) +
                                "; forkline needs at least MPI_THREAD_FUNNELED (worker threads exist beside the "
                                "one thread that calls MPI)";
        if (m_initialised) MPI_Finalize();
        throw std::runtime_error(msg);
    }
    // Errors come back as codes (mpi_error), not as an abort inside MPI.
    check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(MPI_COMM_WORLD, &m_rank), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &m_size), "MPI_Comm_size");
}

session::~session() {
    if (!m_initialised) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized == 0) MPI_Finalize();
}

void session::require_mpi_thread(const char* what) const {
    if (std::this_thread::get_id() != m_thread) {
        throw std::logic_error(std::string(what) +
                               ": MPI is funneled through the thread that made the forkline::mpi::session; "
                               "called from another thread");
    }
}

cpu_report session::check_placement() const {
    require_mpi_thread("forkline::mpi::session::check_placement");
    cpu_report r;
    cpu_set_t mine;
    CPU_ZERO(&mine);
    if (sched_getaffinity(0, sizeof mine, &mine) != 0) CPU_ZERO(&mine);  // unknown: shares nothing
    r.cpus = static_cast<unsigned>(CPU_COUNT(&mine));

    MPI_Comm node = MPI_COMM_NULL;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, m_rank, MPI_INFO_NULL, &node),
          "MPI_Comm_split_type");
    struct comm_guard {
        MPI_Comm& c;
        ~comm_guard() {
            if (c != MPI_COMM_NULL) MPI_Comm_free(&c);
        }
    } guard{node};
    check(MPI_Comm_size(node, &r.node_ranks), "MPI_Comm_size");
    check(MPI_Comm_rank(node, &r.node_rank), "MPI_Comm_rank");

    std::vector<unsigned char> masks(sizeof(cpu_set_t) * static_cast<std::size_t>(r.node_ranks));
    check(MPI_Allgather(&mine, static_cast<int>(sizeof mine), MPI_BYTE, masks.data(), static_cast<int>(sizeof mine),
                        MPI_BYTE, node),
          "MPI_Allgather");
    std::vector<int> world(static_cast<std::size_t>(r.node_ranks));
    check(MPI_Allgather(&m_rank, 1, MPI_INT, world.data(), 1, MPI_INT, node), "MPI_Allgather");

    std::string sharing;
    for (int other = 0; other < r.node_ranks; ++other) {
        if (other == r.node_rank) continue;
        cpu_set_t theirs;
        std::memcpy(&theirs, masks.data() + sizeof(cpu_set_t) * static_cast<std::size_t>(other), sizeof theirs);
        cpu_set_t both;
        CPU_AND(&both, &mine, &theirs);
        if (CPU_COUNT(&both) > 0) {
            r.shared_cpus = true;
            sharing += (sharing.empty() ? "" : ", ") + std::to_string(world[static_cast<std::size_t>(other)]);
        }
    }
    if (r.shared_cpus) {
        r.message = "forkline-mpi: rank " + std::to_string(m_rank) + " shares cpus with rank(s) " + sharing +
                    " on its node (" + std::to_string(r.node_ranks) + " ranks there, " + std::to_string(r.cpus) +
                    " cpus in its mask): the ranks' workers compete for the same cores; bind each rank to its "
                    "own cores (mpirun --map-by ppr:1:numa:PE=N --bind-to core) or give fewer ranks per node\n";
    }
    return r;
}

exchange_totals exchange(const session& s, const std::vector<std::vector<char>>& out, const round_handler& on_round,
                         std::size_t round_bytes) {
    s.require_mpi_thread("forkline::mpi::exchange");
    const int p = s.size();
    if (out.size() != static_cast<std::size_t>(p)) {
        throw std::invalid_argument("forkline::mpi::exchange: " + std::to_string(out.size()) + " buffers for " +
                                    std::to_string(p) + " ranks");
    }
    const auto n = static_cast<std::size_t>(p);
    // Per pair and round: the share of round_bytes, so that a round's total
    // stays within round_bytes and every int count and displacement below 2^31.
    const std::size_t cap = std::max<std::size_t>(1, std::min(round_bytes, std::size_t{INT_MAX} / 2) / n);

    std::vector<std::uint64_t> send_sizes(n), recv_sizes(n);
    for (std::size_t d = 0; d < n; ++d) send_sizes[d] = out[d].size();
    check(MPI_Alltoall(send_sizes.data(), 1, MPI_UINT64_T, recv_sizes.data(), 1, MPI_UINT64_T, s.comm()),
          "MPI_Alltoall");

    std::uint64_t most = 0;
    for (std::size_t d = 0; d < n; ++d) most = std::max({most, send_sizes[d], recv_sizes[d]});
    std::uint64_t local_rounds = (most + cap - 1) / cap;
    std::uint64_t rounds = 0;
    check(MPI_Allreduce(&local_rounds, &rounds, 1, MPI_UINT64_T, MPI_MAX, s.comm()), "MPI_Allreduce");

    exchange_totals t;
    t.rounds = static_cast<int>(rounds);
    const auto me = static_cast<std::size_t>(s.rank());
    for (std::size_t d = 0; d < n; ++d) {
        if (d != me) {
            t.bytes_sent += send_sizes[d];
            t.bytes_received += recv_sizes[d];
        }
    }
    std::vector<int> scount(n), sdispl(n), rcount(n), rdispl(n);
    std::vector<char> sendbuf, recvbuf;
    for (std::uint64_t k = 0; k < rounds; ++k) {
        const std::uint64_t from = k * cap;
        int stotal = 0, rtotal = 0;
        for (std::size_t d = 0; d < n; ++d) {
            const std::uint64_t sn = send_sizes[d] > from ? std::min<std::uint64_t>(cap, send_sizes[d] - from) : 0;
            const std::uint64_t rn = recv_sizes[d] > from ? std::min<std::uint64_t>(cap, recv_sizes[d] - from) : 0;
            scount[d] = static_cast<int>(sn);
            sdispl[d] = stotal;
            stotal += scount[d];
            rcount[d] = static_cast<int>(rn);
            rdispl[d] = rtotal;
            rtotal += rcount[d];
        }
        sendbuf.resize(static_cast<std::size_t>(stotal));
        for (std::size_t d = 0; d < n; ++d) {
            if (scount[d] > 0) {
                std::memcpy(sendbuf.data() + sdispl[d], out[d].data() + from, static_cast<std::size_t>(scount[d]));
            }
        }
        recvbuf.resize(static_cast<std::size_t>(rtotal));
        check(MPI_Alltoallv(sendbuf.data(), scount.data(), sdispl.data(), MPI_BYTE, recvbuf.data(), rcount.data(),
                            rdispl.data(), MPI_BYTE, s.comm()),
              "MPI_Alltoallv");
        std::vector<std::vector<char>> in(n);
        for (std::size_t src = 0; src < n; ++src) {
            in[src].assign(recvbuf.data() + rdispl[src], recvbuf.data() + rdispl[src] + rcount[src]);
        }
        if (on_round) on_round(static_cast<int>(k), in);
    }
    return t;
}

bool all_ok(const session& s, bool ok) {
    s.require_mpi_thread("forkline::mpi::all_ok");
    int mine = ok ? 1 : 0;
    int all = 0;
    check(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, s.comm()), "MPI_Allreduce");
    return all == 1;
}

}  // namespace forkline::mpi

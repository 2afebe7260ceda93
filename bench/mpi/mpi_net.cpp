// bench/mpi/mpi_net.cpp: what the network between ranks costs, measured the
// way logstat-mpi uses it, for scripts/mpi-model. Under mpirun -np P (P >= 2):
//
//   latency    a 1-byte ping-pong between ranks 0 and 1, half the round trip
//   exchange   forkline::mpi::exchange of B bytes from every rank to every
//              other, timed on rank 0 (the slowest rank's view, after a barrier)
//
// Prints one JSON object on rank 0:
//   {"ranks": P, "latency_us": ..., "exchange_bytes_per_rank": ...,
//    "exchange_s": ..., "bytes_per_s_per_rank": ...}
//
//   mpirun -np 2 mpi-net [--bytes B] [--reps R]
#include <algorithm>  // min, sort
#include <cstdio>     // printf, fprintf
#include <cstdlib>    // strtoull
#include <cstring>    // strcmp
#include <vector>     // vector

#include <forkline/mpi.hpp>  // session, exchange

int main(int argc, char** argv) {
    try {
        forkline::mpi::session mpi(argc, argv);
        std::size_t bytes = std::size_t{8} << 20;
        int reps = 20;
        for (int i = 1; i + 1 < argc; i += 2) {
            if (std::strcmp(argv[i], "--bytes") == 0) bytes = std::strtoull(argv[i + 1], nullptr, 10);
            if (std::strcmp(argv[i], "--reps") == 0) reps = static_cast<int>(std::strtoull(argv[i + 1], nullptr, 10));
        }
        if (mpi.size() < 2) {
            std::fprintf(stderr, "mpi-net: run it under mpirun -np 2 or more\n");
            return 2;
        }
        // Latency: ping-pong between ranks 0 and 1, the median of many.
        char b = 0;
        std::vector<double> rtt;
        for (int k = 0; k < 1000; ++k) {
            MPI_Barrier(mpi.comm());
            const double t0 = MPI_Wtime();
            if (mpi.rank() == 0) {
                forkline::mpi::check(MPI_Send(&b, 1, MPI_CHAR, 1, 0, mpi.comm()), "MPI_Send");
                forkline::mpi::check(MPI_Recv(&b, 1, MPI_CHAR, 1, 0, mpi.comm(), MPI_STATUS_IGNORE), "MPI_Recv");
                rtt.push_back(MPI_Wtime() - t0);
            } else if (mpi.rank() == 1) {
                forkline::mpi::check(MPI_Recv(&b, 1, MPI_CHAR, 0, 0, mpi.comm(), MPI_STATUS_IGNORE), "MPI_Recv");
                forkline::mpi::check(MPI_Send(&b, 1, MPI_CHAR, 0, 0, mpi.comm()), "MPI_Send");
            }
        }
        // Exchange: `bytes` per rank, spread over the other ranks.
        const auto p = static_cast<std::size_t>(mpi.size());
        std::vector<std::vector<char>> out(p);
        for (std::size_t d = 0; d < p; ++d) {
            if (d != static_cast<std::size_t>(mpi.rank())) out[d].assign(bytes / (p - 1), 'x');
        }
        std::vector<double> ex;
        for (int k = 0; k < reps; ++k) {
            MPI_Barrier(mpi.comm());
            const double t0 = MPI_Wtime();
            forkline::mpi::exchange(mpi, out, [](int, std::vector<std::vector<char>>&) {});
            MPI_Barrier(mpi.comm());
            ex.push_back(MPI_Wtime() - t0);
        }
        if (mpi.rank() == 0) {
            std::sort(rtt.begin(), rtt.end());
            std::sort(ex.begin(), ex.end());
            const double lat = rtt[rtt.size() / 2] / 2;
            const double t = ex[ex.size() / 2];
            std::printf("{\"ranks\": %zu, \"latency_us\": %.3f, \"exchange_bytes_per_rank\": %zu, \"exchange_s\": %.6f, "
                        "\"bytes_per_s_per_rank\": %.1f}\n",
                        p, lat * 1e6, bytes, t, static_cast<double>(bytes) / t);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mpi-net: %s\n", e.what());
        return 1;
    }
    return 0;
}

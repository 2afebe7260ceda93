// tests/consumer/mpi/main.cpp: a program that uses the installed forkline_mpi.
// Under mpirun -np 2: each rank sends its rank to every rank with
// forkline::mpi::exchange and counts on a forkline runtime; rank 0 prints
// "forkline-mpi consumer: ranks=2 sum=1 level=MPI_THREAD_..." .
#include <cstdio>
#include <vector>

#include <forkline/forkline.hpp>
#include <forkline/mpi.hpp>

int main(int argc, char** argv) {
    forkline::mpi::session mpi(argc, argv);
    forkline::runtime_config c;
    c.placement.workers = 1;
    c.placement.oversubscribe = true;
    forkline::runtime rt(c);
    std::vector<std::vector<char>> out(static_cast<std::size_t>(mpi.size()),
                                       std::vector<char>(1, static_cast<char>(mpi.rank())));
    int sum = 0;
    forkline::mpi::exchange(mpi, out, [&](int, std::vector<std::vector<char>>& in) {
        for (const std::vector<char>& piece : in) sum += rt.run([&piece] { return static_cast<int>(piece.at(0)); });
    });
    if (mpi.rank() == 0) {
        std::printf("forkline-mpi consumer: ranks=%d sum=%d level=%s\n", mpi.size(), sum,
                    forkline::mpi::thread_level_name(mpi.thread_level()));
    }
    return 0;
}

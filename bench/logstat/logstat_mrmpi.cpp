// bench/logstat/logstat_mrmpi.cpp: logstat-mpi's peer on MR-MPI (Sandia's
// MapReduce-MPI library, libmrmpi-dev), for benchmarks: the same line parser
// (examples/logstat_core.hpp) and the same output, with MR-MPI's own
// map / compress / collate / reduce in place of forkline's pipeline and
// shuffle. One rank is one process with one thread: MR-MPI has no threads
// inside a rank.
//
//   mpirun -np P logstat-mrmpi [--by ip|status|path] [--top K] FILE
//
//   map       MR-MPI splits FILE into chunks of at most 128 MiB (at least P)
//             at newlines and calls fileread on each: every well-formed line
//             adds (key, 1);
//   compress  sums each key's values on its own rank (MR-MPI's combiner);
//   collate   the shuffle: every key to one rank, grouped;
//   reduce    sums again; gather(1) brings the pairs to rank 0, which sorts
//             and prints COUNT<TAB>KEY as logstat does.
//
// Prints "logstat-mrmpi: kv_after_map=N kv_after_compress=M seconds=S" on
// stderr with --report (first argument).
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#include <mpi.h>
#include <mrmpi/keyvalue.h>   // KeyValue
#include <mrmpi/mapreduce.h>  // MapReduce

#include <sys/stat.h>  // stat

#include <algorithm>  // sort, max
#include <cstdint>    // uint64_t
#include <cstdio>     // fprintf
#include <cstring>    // memcpy, memchr, strcmp
#include <string>     // string
#include <vector>     // vector

#include "logstat_core.hpp"  // options, parse_line, key_count, write_ranked

namespace {

constexpr const char* k_program = "logstat-mrmpi";

struct map_context {
    logstat::key_kind by;
    std::uint64_t lines = 0, malformed = 0;
};

// MR-MPI's map over text chunks: each chunk holds whole lines.
void fileread(int, char* text, int size, MAPREDUCE_NS::KeyValue* kv, void* ptr) {
    auto* cx = static_cast<map_context*>(ptr);
    const char* p = text;
    const char* end = text + size;
    while (end > p && end[-1] == '\0') --end;  // MR-MPI ends a chunk's text with a NUL
    const std::uint64_t one = 1;
    while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        const char* line_end = nl != nullptr ? nl : end;
        if (line_end > p || nl != nullptr) {
            ++cx->lines;
            const std::string_view key = logstat::parse_line(p, line_end, cx->by);
            if (key.empty()) {
                ++cx->malformed;
            } else {
                kv->add(const_cast<char*>(key.data()), static_cast<int>(key.size()),
                        reinterpret_cast<char*>(const_cast<std::uint64_t*>(&one)), static_cast<int>(sizeof one));
            }
        }
        if (nl == nullptr) break;
        p = nl + 1;
    }
}

std::uint64_t sum_values(const char* multivalue, int nvalues) {
    std::uint64_t total = 0;
    for (int i = 0; i < nvalues; ++i) {
        std::uint64_t v = 0;
        std::memcpy(&v, multivalue + static_cast<std::size_t>(i) * sizeof v, sizeof v);
        total += v;
    }
    return total;
}

// compress and reduce: a key's values summed (a key whose values span
// several pages comes with nvalues == 0 and is read block by block).
void sum(char* key, int keybytes, char* multivalue, int nvalues, int*, MAPREDUCE_NS::KeyValue* kv, void* ptr) {
    std::uint64_t total = 0;
    if (nvalues > 0) {
        total = sum_values(multivalue, nvalues);
    } else {
        auto* mr = static_cast<MAPREDUCE_NS::MapReduce*>(ptr);
        int blocks = 0;
        mr->multivalue_blocks(blocks);
        for (int b = 0; b < blocks; ++b) {
            char* mv = nullptr;
            int* vb = nullptr;
            const int n = mr->multivalue_block(b, &mv, &vb);
            total += sum_values(mv, n);
        }
    }
    kv->add(key, keybytes, reinterpret_cast<char*>(&total), static_cast<int>(sizeof total));
}

struct collected {
    std::vector<std::string> keys;
    std::vector<std::uint64_t> counts;
};

void collect(char* key, int keybytes, char* value, int, void* ptr) {
    auto* c = static_cast<collected*>(ptr);
    std::uint64_t v = 0;
    std::memcpy(&v, value, sizeof v);
    c->keys.emplace_back(key, static_cast<std::size_t>(keybytes));
    c->counts.push_back(v);
}

}  // namespace

int main(int argc, char** argv) {
    bool want_report = false;
    std::vector<char*> args(argv, argv + argc);
    if (args.size() > 1 && std::strcmp(args[1], "--report") == 0) {
        want_report = true;
        args.erase(args.begin() + 1);
    }
    args.push_back(nullptr);
    MPI_Init(&argc, &argv);
    int me = 0, ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    logstat::options o;
    const int n = static_cast<int>(args.size()) - 1;
    if (const int status = logstat::start(n, args.data(), k_program, &o); status >= 0) {
        MPI_Finalize();
        return status;
    }
    if (o.input == "-") {
        if (me == 0) std::fprintf(stderr, "%s: give a file (MR-MPI reads it by name)\n", k_program);
        MPI_Finalize();
        return 2;
    }
    const double t0 = MPI_Wtime();
    auto* mr = new MAPREDUCE_NS::MapReduce(MPI_COMM_WORLD);
    mr->verbosity = 0;
    mr->timer = 0;
    mr->memsize = 256;  // MiB per page: the whole count fits in memory, as logstat-mpi's does
    map_context cx{o.by};
    char* files[1] = {o.input.data()};
    // Map tasks of at most 128 MiB: MR-MPI's chunk sizes are int.
    struct stat st {};
    const std::uint64_t bytes = ::stat(files[0], &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    const int tasks = std::max(ranks, static_cast<int>((bytes + (std::uint64_t{128} << 20) - 1) >> 27));
    const std::uint64_t after_map = mr->map(tasks, 1, files, 0, 0, '\n', 16384, fileread, &cx);
    const std::uint64_t after_compress = mr->compress(sum, mr);
    mr->collate(nullptr);
    mr->reduce(sum, mr);
    mr->gather(1);
    collected all;
    mr->scan(collect, &all);
    std::uint64_t malformed = 0;
    MPI_Reduce(&cx.malformed, &malformed, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    int status = 0;
    if (me == 0) {
        std::vector<logstat::key_count> ranked;
        ranked.reserve(all.keys.size());
        for (std::size_t i = 0; i < all.keys.size(); ++i) ranked.push_back({all.counts[i], all.keys[i]});
        std::sort(ranked.begin(), ranked.end(), [](const logstat::key_count& a, const logstat::key_count& b) {
            return a.count != b.count ? a.count > b.count : a.key < b.key;
        });
        if (o.top > 0 && ranked.size() > o.top) ranked.resize(o.top);
        if (logstat::write_ranked(1, ranked) != 0) status = 1;
        if (malformed > 0) {
            std::fprintf(stderr, "%s: %llu malformed lines\n", k_program, static_cast<unsigned long long>(malformed));
        }
        if (want_report) {
            std::fprintf(stderr, "%s: kv_after_map=%llu kv_after_compress=%llu seconds=%.3f\n", k_program,
                         static_cast<unsigned long long>(after_map), static_cast<unsigned long long>(after_compress),
                         MPI_Wtime() - t0);
        }
    }
    delete mr;
    MPI_Finalize();
    return status;
}

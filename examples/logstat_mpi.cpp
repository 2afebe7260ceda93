// examples/logstat_mpi.cpp: logstat across MPI ranks, a map-reduce with a
// shuffle. Under `mpirun -np P logstat-mpi [logstat's options] FILE`:
//
//   split    each rank takes a line-aligned byte range of FILE (a shared file
//            system is assumed: every rank opens the same path): rank r from
//            the first line starting at or after r * size / P to the first
//            line starting at or after (r + 1) * size / P;
//   map      it counts its range with logstat's pipeline and per-worker
//            tables (the combiners), then merges them;
//   shuffle  each key goes to rank key_router(P).home(hash(key)); sizes with
//            MPI_Alltoall, data with MPI_Alltoallv in bounded rounds
//            (forkline::mpi::exchange); the workers merge round k while the
//            rank's main thread exchanges round k + 1;
//   reduce   each rank holds every count of its own keys; rank 0 gathers
//            them (every rank's top K only, with --top K: the keys are
//            disjoint, so the global top K is among them) and prints the
//            same COUNT<TAB>KEY lines as logstat, byte for byte.
//
// Malformed lines are reported as logstat does, with the global line number
// of the first (an exclusive scan of the ranks' line counts). `--report`
// prints one line per rank on stderr: bytes read, records,
// bytes shuffled without and with the combiner, and time in each phase.
#include <fcntl.h>     // open
#include <sys/stat.h>  // fstat
#include <unistd.h>    // pread, close, lseek

#include <algorithm>  // min, inplace_merge
#include <cerrno>     // errno
#include <chrono>     // steady_clock
#include <cstdint>    // uint64_t
#include <cstdio>     // fprintf, fputs
#include <cstring>    // memcpy, strcmp
#include <exception>  // exception, rethrow_exception
#include <future>     // future
#include <string>     // string
#include <utility>    // move
#include <vector>     // vector

#include <forkline/io.hpp>          // io::reader, io::chunk, io::io_error
#include <forkline/mpi.hpp>         // mpi::session, mpi::exchange, mpi::all_ok
#include <forkline/pipeline.hpp>    // run_pipeline, stage, pipeline_error
#include <forkline/read_stage.hpp>  // read_stage
#include <forkline/route.hpp>       // key_router
#include <forkline/runtime.hpp>     // runtime, runtime_config

#include "logstat_core.hpp"  // options, count_chunk, worker_table, merge_tables, rank, write_ranked

namespace {

constexpr const char* k_program = "logstat-mpi";

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ------------------------------------------------------------ the split

/// The first line start at or after `at` (0 stays 0; size when none).
/// Returns -1 with errno set when a read fails.
std::int64_t line_start_at_or_after(int fd, std::uint64_t at, std::uint64_t size) {
    if (at == 0) return 0;
    if (at >= size) return static_cast<std::int64_t>(size);
    char buf[64 << 10];
    std::uint64_t pos = at - 1;  // a line starts at `at` when the byte before it is '\n'
    while (pos < size) {
        const ssize_t n = ::pread(fd, buf, static_cast<std::size_t>(std::min<std::uint64_t>(sizeof buf, size - pos)),
                                  static_cast<off_t>(pos));
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) break;
        for (ssize_t i = 0; i < n; ++i) {
            if (buf[i] == '\n') return static_cast<std::int64_t>(pos + static_cast<std::uint64_t>(i) + 1);
        }
        pos += static_cast<std::uint64_t>(n);
    }
    return static_cast<std::int64_t>(size);
}

// ------------------------------------------------------------ records

/// Shuffle records: [u32 key length][u64 count][key bytes].
void put_record(std::vector<char>& out, std::string_view key, std::uint64_t count) {
    const auto len = static_cast<std::uint32_t>(key.size());
    const std::size_t at = out.size();
    out.resize(at + 12 + key.size());
    std::memcpy(out.data() + at, &len, 4);
    std::memcpy(out.data() + at + 4, &count, 8);
    std::memcpy(out.data() + at + 12, key.data(), key.size());
}

/// Calls f(key, count) for each record in [p, end).
template <class F>
void for_each_record(const char* p, const char* end, F&& f) {
    while (end - p >= 12) {
        std::uint32_t len = 0;
        std::uint64_t count = 0;
        std::memcpy(&len, p, 4);
        std::memcpy(&count, p + 4, 8);
        if (static_cast<std::size_t>(end - p - 12) < len) break;  // cannot happen: records are never split
        f(std::string_view(p + 12, len), count);
        p += 12 + len;
    }
}

/// What one rank did, for --report.
struct rank_report {
    std::uint64_t bytes_read = 0, records = 0, malformed = 0;
    std::uint64_t shuffle_naive_bytes = 0;  // every record sent as (key, 1)
    std::uint64_t shuffle_bytes = 0;        // after the combiner: one (key, count) per distinct key
    std::uint64_t keys_owned = 0;           // distinct keys this rank reduced
    double read_map_s = 0, shuffle_s = 0, reduce_s = 0, output_s = 0;
};

struct failure {
    std::string message;  // said by the rank that failed
};

/// Collective: rank 0 says what logstat says of malformed lines, with the
/// global number of the first (an exclusive scan of the ranks' line counts).
void report_malformed(const forkline::mpi::session& mpi, const logstat::malformed_report& report) {
    std::uint64_t lines = report.lines(), before = 0;
    forkline::mpi::check(MPI_Exscan(&lines, &before, 1, MPI_UINT64_T, MPI_SUM, mpi.comm()), "MPI_Exscan");
    if (mpi.rank() == 0) before = 0;  // MPI_Exscan leaves rank 0's result undefined
    std::uint64_t malformed = report.malformed(), first = ~std::uint64_t{0};
    if (malformed > 0) first = before + report.first_line();
    std::uint64_t malformed_all = 0, first_all = 0;
    forkline::mpi::check(MPI_Reduce(&malformed, &malformed_all, 1, MPI_UINT64_T, MPI_SUM, 0, mpi.comm()),
                         "MPI_Reduce");
    forkline::mpi::check(MPI_Reduce(&first, &first_all, 1, MPI_UINT64_T, MPI_MIN, 0, mpi.comm()), "MPI_Reduce");
    if (mpi.rank() == 0 && malformed_all > 0) {
        std::fprintf(stderr, "%s: %llu malformed line%s (first: line %llu)\n", k_program,
                     static_cast<unsigned long long>(malformed_all), malformed_all == 1 ? "" : "s",
                     static_cast<unsigned long long>(first_all));
    }
}

// ------------------------------------------------------------ map

/// Counts the lines of [begin, end) of the input into the workers' tables.
/// Throws io_error / pipeline_error.
void map_range(forkline::runtime& rt, int fd, const std::string& name, std::uint64_t begin, std::uint64_t end,
               const logstat::options& o, std::vector<logstat::worker_table>& tables,
               logstat::malformed_report& report) {
    if (begin >= end) return;
    if (::lseek(fd, static_cast<off_t>(begin), SEEK_SET) < 0) throw forkline::io::io_error("lseek", errno, name, 0);
    const std::size_t tokens = 4 * std::size_t{rt.worker_count()} + 2;
    forkline::io::reader in(fd, name,
                            {.chunk_bytes = o.chunk_bytes, .depth = static_cast<unsigned>(tokens), .whole_lines = true});
    const std::uint64_t length = end - begin;
    struct counted {
        forkline::io::chunk chunk;
        logstat::chunk_tally tally;
    };
    bool done = false;
    forkline::run_pipeline(
        rt, tokens,
        forkline::stage(forkline::serial_in_order, "read",
                        [&, next = forkline::read_stage(in)](forkline::flow_control& fc) mutable {
                            if (done) {
                                fc.stop();
                                return forkline::io::chunk{};
                            }
                            forkline::io::chunk c = next(fc);
                            // Offsets count from `begin`; the range ends at a line start.
                            if (c.offset + c.data.size() >= length) {
                                if (c.offset < length) c.data.resize(static_cast<std::size_t>(length - c.offset));
                                done = true;
                            }
                            return c;
                        }),
        forkline::stage(forkline::parallel, "count",
                        [&](forkline::io::chunk& c) {
                            const int w = rt.current_worker_index();
                            const logstat::chunk_tally t = logstat::count_chunk(
                                c.data.data(), c.data.size(), o.by, tables[static_cast<unsigned>(w)].table);
                            return counted{std::move(c), t};
                        }),
        forkline::stage(forkline::serial_in_order, "tally", [&](counted& cc) {
            report.add(cc.tally);
            in.recycle(std::move(cc.chunk));
        }));
}

int run(forkline::mpi::session& mpi, const logstat::options& o, bool want_report) {
    const int me = mpi.rank();
    const int ranks = mpi.size();
    forkline::runtime_config config;
    if (o.workers != 0) {
        config.placement.workers = o.workers;
        config.placement.oversubscribe = true;
        config.read_environment = false;
    }
    forkline::runtime rt(config);
    const unsigned workers = rt.worker_count();
    rank_report rr;

    // Placement: ranks sharing cpus are said once, by the rank that sees it first on its node.
    const forkline::mpi::cpu_report where = mpi.check_placement();
    if (where.shared_cpus && where.node_rank == 0 && want_report) std::fputs(where.message.c_str(), stderr);

    // ---- open and split (every rank decides alone; then all agree to go on)
    std::string error;
    int fd = -1;
    std::uint64_t size = 0, begin = 0, end = 0;
    if (o.input == "-") {
        error = std::string(k_program) + ": standard input cannot be split across ranks: give a file\n";
    } else {
        fd = ::open(o.input.c_str(), O_RDONLY | O_CLOEXEC);
        struct stat st {};
        if (fd < 0) {
            error = logstat::io_message(k_program, o.input, "open", errno);
        } else if (::fstat(fd, &st) != 0) {
            error = logstat::io_message(k_program, o.input, "fstat", errno);
        } else if (!S_ISREG(st.st_mode)) {
            error = std::string(k_program) + ": " + o.input + ": not a regular file: ranks split it by offset\n";
        } else {
            size = static_cast<std::uint64_t>(st.st_size);
            const std::int64_t b = line_start_at_or_after(fd, size * static_cast<std::uint64_t>(me) /
                                                                  static_cast<std::uint64_t>(ranks), size);
            const std::int64_t e = line_start_at_or_after(fd, size * static_cast<std::uint64_t>(me + 1) /
                                                                  static_cast<std::uint64_t>(ranks), size);
            if (b < 0 || e < 0) {
                error = logstat::io_message(k_program, o.input, "pread", errno);
            } else {
                begin = static_cast<std::uint64_t>(b);
                end = static_cast<std::uint64_t>(e);
            }
        }
    }
    struct fd_guard {
        int fd;
        ~fd_guard() {
            if (fd >= 0) ::close(fd);
        }
    } closer{fd};

    // ---- map
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<logstat::worker_table> tables(workers);
    logstat::malformed_report report;
    if (error.empty()) {
        try {
            map_range(rt, fd, o.input, begin, end, o, tables, report);
        } catch (const forkline::io::io_error& e) {
            error = logstat::io_message(k_program, e.file(), e.call(), e.code().value());
        } catch (const forkline::pipeline_error& e) {
            try {
                std::rethrow_exception(e.cause());
            } catch (const forkline::io::io_error& cause) {
                error = logstat::io_message(k_program, cause.file(), cause.call(), cause.code().value());
            } catch (...) {
                error = std::string(k_program) + ": " + e.what() + "\n";
            }
        }
    }
    if (!error.empty()) std::fputs(error.c_str(), stderr);  // said by the rank that saw it
    if (!forkline::mpi::all_ok(mpi, error.empty())) return 1;
    rr.bytes_read = end - begin;
    rr.records = report.lines() - report.malformed();
    rr.malformed = report.malformed();
    std::vector<logstat::count_table*> all;
    for (logstat::worker_table& t : tables) all.push_back(&t.table);
    logstat::count_table& combined = logstat::merge_tables(all);
    rr.read_map_s = seconds_since(t0);

    // ---- shuffle: partition by the key's home rank, exchange in rounds,
    // each round merged by a worker while the next is in flight.
    const auto t1 = std::chrono::steady_clock::now();
    const forkline::key_router router(static_cast<unsigned>(ranks));
    std::vector<std::vector<char>> out(static_cast<std::size_t>(ranks));
    combined.for_each([&](std::string_view key, std::uint64_t count) {
        const unsigned home = router.home(logstat::hash_key(key));
        put_record(out[home], key, count);
        rr.shuffle_naive_bytes += count * (12 + key.size());
    });
    for (const std::vector<char>& b : out) rr.shuffle_bytes += b.size();
    std::vector<logstat::worker_table> reduced(workers);
    std::vector<std::future<void>> merges;
    forkline::mpi::exchange(mpi, out, [&](int, std::vector<std::vector<char>>& in) {
        for (std::vector<char>& piece : in) {
            if (piece.empty()) continue;
            merges.push_back(rt.submit([&reduced, &rt, data = std::move(piece)] {
                logstat::count_table& t = reduced[static_cast<unsigned>(rt.current_worker_index())].table;
                for_each_record(data.data(), data.data() + data.size(),
                                [&t](std::string_view k, std::uint64_t c) { t.add(k, c); });
            }));
        }
    });
    out.clear();
    out.shrink_to_fit();
    rr.shuffle_s = seconds_since(t1);

    // ---- reduce
    const auto t2 = std::chrono::steady_clock::now();
    for (std::future<void>& f : merges) f.get();
    std::vector<logstat::count_table*> mine;
    for (logstat::worker_table& t : reduced) mine.push_back(&t.table);
    logstat::count_table& owned = logstat::merge_tables(mine);
    rr.keys_owned = owned.size();
    rr.reduce_s = seconds_since(t2);

    if (o.distinct) {
        // Exact: the ranks' keys are disjoint after the shuffle, so their
        // counts add up. Estimate: each rank sketches its keys, the sketches
        // merge by a register-wise max (MPI_MAX), the same as one sketch of all.
        logstat::hyperloglog h;
        owned.for_each([&h](std::string_view k, std::uint64_t) { h.add(k); });
        forkline::mpi::check(MPI_Allreduce(MPI_IN_PLACE, h.registers(), static_cast<int>(logstat::hyperloglog::k_registers),
                                           MPI_UNSIGNED_CHAR, MPI_MAX, mpi.comm()),
                             "MPI_Allreduce");
        std::uint64_t keys = rr.keys_owned, all_keys = 0;
        forkline::mpi::check(MPI_Reduce(&keys, &all_keys, 1, MPI_UINT64_T, MPI_SUM, 0, mpi.comm()), "MPI_Reduce");
        int status = 0;
        if (me == 0) {
            const std::string text = logstat::distinct_lines(all_keys, h);
            if (const int err = logstat::write_all(1, text.data(), text.size()); err != 0) {
                std::fputs(logstat::io_message(k_program, "standard output", "write", err).c_str(), stderr);
                status = 1;
            }
        }
        report_malformed(mpi, report);
        int all_status = 0;
        forkline::mpi::check(MPI_Allreduce(&status, &all_status, 1, MPI_INT, MPI_MAX, mpi.comm()), "MPI_Allreduce");
        return all_status;
    }
    // ---- output: each rank ranks its own keys; rank 0 gathers them (64-bit
    // sizes, bounded pieces) and merges the sorted runs.
    const auto t3 = std::chrono::steady_clock::now();
    const std::vector<logstat::key_count> ranked = logstat::rank(owned, o.top);
    std::vector<char> mine_bytes;
    for (const logstat::key_count& kc : ranked) put_record(mine_bytes, kc.key, kc.count);
    std::vector<std::vector<char>> to_root(static_cast<std::size_t>(ranks));
    to_root[0] = std::move(mine_bytes);
    std::vector<char> gathered;
    std::vector<std::vector<char>> pieces(static_cast<std::size_t>(ranks));
    forkline::mpi::exchange(mpi, to_root, [&](int, std::vector<std::vector<char>>& in) {
        for (std::size_t s = 0; s < in.size(); ++s) pieces[s].insert(pieces[s].end(), in[s].begin(), in[s].end());
    });

    int status = 0;
    if (me == 0) {
        // Each rank's piece is already in output order (logstat::rank): a
        // merge of sorted runs, pairwise, log2(ranks) passes, not a sort.
        std::vector<logstat::key_count> merged;
        std::vector<std::size_t> run_starts;
        for (const std::vector<char>& p : pieces) {
            run_starts.push_back(merged.size());
            for_each_record(p.data(), p.data() + p.size(),
                            [&](std::string_view k, std::uint64_t c) { merged.push_back({c, k}); });
        }
        const auto order = [](const logstat::key_count& a, const logstat::key_count& b) {
            return a.count != b.count ? a.count > b.count : a.key < b.key;
        };
        for (std::size_t width = 1; width < run_starts.size(); width *= 2) {
            for (std::size_t i = 0; i + width < run_starts.size(); i += 2 * width) {
                const auto first = merged.begin() + static_cast<std::ptrdiff_t>(run_starts[i]);
                const auto middle = merged.begin() + static_cast<std::ptrdiff_t>(run_starts[i + width]);
                const auto last = i + 2 * width < run_starts.size()
                                      ? merged.begin() + static_cast<std::ptrdiff_t>(run_starts[i + 2 * width])
                                      : merged.end();
                std::inplace_merge(first, middle, last, order);
            }
        }
        if (o.top > 0 && merged.size() > o.top) merged.resize(o.top);
        if (const int err = logstat::write_ranked(1, merged); err != 0) {
            std::fputs(logstat::io_message(k_program, "standard output", "write", err).c_str(), stderr);
            status = 1;
        }
    }
    report_malformed(mpi, report);
    rr.output_s = seconds_since(t3);

    if (want_report) {
        // One line per rank, printed by rank 0 in rank order.
        double mine_figs[11] = {static_cast<double>(rr.bytes_read), static_cast<double>(rr.records),
                                static_cast<double>(rr.malformed), static_cast<double>(rr.shuffle_naive_bytes),
                                static_cast<double>(rr.shuffle_bytes), static_cast<double>(rr.keys_owned),
                                rr.read_map_s, rr.shuffle_s, rr.reduce_s, rr.output_s, static_cast<double>(workers)};
        std::vector<double> figs(11 * static_cast<std::size_t>(ranks));
        forkline::mpi::check(MPI_Gather(mine_figs, 11, MPI_DOUBLE, figs.data(), 11, MPI_DOUBLE, 0, mpi.comm()),
                             "MPI_Gather");
        if (me == 0) {
            for (int r = 0; r < ranks; ++r) {
                const double* f = figs.data() + 11 * r;
                std::fprintf(stderr,
                             "%s: rank=%d workers=%.0f bytes_read=%.0f records=%.0f malformed=%.0f "
                             "shuffle_naive_bytes=%.0f shuffle_bytes=%.0f combiner_reduction=%.1f keys_owned=%.0f "
                             "read_map_s=%.3f shuffle_s=%.3f reduce_s=%.3f output_s=%.3f\n",
                             k_program, r, f[10], f[0], f[1], f[2], f[3], f[4], f[4] > 0 ? f[3] / f[4] : 0.0, f[5],
                             f[6], f[7], f[8], f[9]);
            }
        }
    }
    int all_status = 0;
    forkline::mpi::check(MPI_Allreduce(&status, &all_status, 1, MPI_INT, MPI_MAX, mpi.comm()), "MPI_Allreduce");
    return all_status;
}

}  // namespace

int main(int argc, char** argv) {
    // --report (anywhere before a lone "--") is ours; the rest is logstat's command line.
    bool want_report = false;
    std::vector<char*> args;
    bool options_end = false;
    for (int i = 0; i < argc; ++i) {
        if (std::strcmp(argv[i], "--") == 0) options_end = true;
        if (!options_end && i > 0 && std::strcmp(argv[i], "--report") == 0) {
            want_report = true;
            continue;
        }
        args.push_back(argv[i]);
    }
    args.push_back(nullptr);
    int n = static_cast<int>(args.size()) - 1;
    char** v = args.data();
    try {
        forkline::mpi::session mpi(argc, argv);
        logstat::options o;
        if (const int status = logstat::start(n, v, k_program, &o); status >= 0) return status;
        return run(mpi, o, want_report);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", k_program, e.what());
        // A failure after the ranks parted ways: end the whole job rather than leave the others waiting.
        int up = 0;
        if (MPI_Initialized(&up) == MPI_SUCCESS && up != 0) {
            int down = 0;
            MPI_Finalized(&down);
            if (down == 0) MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    return 1;
}

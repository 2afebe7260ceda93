// examples/logstat.cpp: requests per client, status or path in an access log,
// as a map-reduce with combiners on a forkline pipeline.
//
//   logstat [--by ip|status|path] [--top K] [-p N] [--chunk-kib K] [--stream] [FILE|-]
//
// Prints COUNT<TAB>KEY, the largest count first (ties by key, bytewise).
// Malformed lines are counted and reported on stderr, never counted as
// requests (the accepted shape: usage() in logstat_core.hpp).
//
// A regular file (unless --stream) is read by the workers themselves:
//   pieces     (serial_in_order): the next piece of the file, an offset and
//              a length (io::positional_reader, no I/O);
//   read+count (parallel): read the lines that start in the piece into this
//              worker's own buffer, and count them into its own table;
//   tally      (serial_in_order): combine the malformed-line counts in order.
// Anything else (a pipe, standard input) goes through one reader:
//   read   (serial_in_order): the next whole-line chunk from io::reader; when
//          none is ready yet, pause, and let the reader's wake-up resume it;
//   count  (parallel): parse the chunk into the calling worker's own table
//          (no lock, no atomic per line);
//   tally  (serial_in_order): combine the chunks' malformed-line counts in
//          input order and give the buffer back to the reader.
// Then the per-worker tables are merged, ranked and written.
#include <cstddef>    // size_t
#include <cstdio>     // fputs, fprintf
#include <exception>  // exception, rethrow_exception
#include <stdexcept>  // logic_error
#include <string>     // string
#include <utility>    // move
#include <vector>     // vector

#include <sys/stat.h>  // stat, S_ISREG

#include <forkline/io.hpp>        // io::reader, io::positional_reader, io::chunk, io::io_error
#include <forkline/pipeline.hpp>  // run_pipeline, stage, flow_control, pipeline_error
#include <forkline/read_stage.hpp>  // read_stage
#include <forkline/runtime.hpp>   // runtime, runtime_config

#include "logstat_core.hpp"  // options, count_chunk, worker_table, merge_tables, rank, write_ranked

namespace {

constexpr const char* k_program = "logstat";

/// What leaves the count stage: the chunk (to recycle) and what it held.
struct counted_chunk {
    forkline::io::chunk chunk;
    logstat::chunk_tally tally;
};

/// Writes an I/O error as "logstat: FILE: CALL: strerror".
void report_io_error(const forkline::io::io_error& e) {
    std::fputs(logstat::io_message(k_program, e.file(), e.call(), e.code().value()).c_str(), stderr);
}

int run(const logstat::options& o) {
    forkline::runtime_config config;
    if (o.workers != 0) {
        // An explicit -p wins over the environment (FORKLINE_WORKERS and
        // FORKLINE_PLACES are then not read), and may exceed the cores.
        config.placement.workers = o.workers;
        config.placement.oversubscribe = true;
        config.read_environment = false;
    }
    forkline::runtime rt(config);
    const unsigned workers = rt.worker_count();

    std::vector<logstat::worker_table> tables(workers);
    logstat::malformed_report report;

    struct stat st {};
    if (!o.stream && o.input != "-" && ::stat(o.input.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        // A regular file: each worker reads its own pieces where it counts
        // them, into its own buffer; only the counts travel (see
        // "Positional reads" in runtime/DESIGN.md).
        forkline::io::positional_reader in(o.input, {.piece_bytes = o.chunk_bytes, .whole_lines = true});
        struct alignas(64) worker_buffer {
            forkline::io::buffer b;
        };
        std::vector<worker_buffer> buffers(workers);
        forkline::run_pipeline(
            rt, 4 * std::size_t{workers} + 2,
            forkline::stage(forkline::serial_in_order, "pieces",
                            [&](forkline::flow_control& fc) {
                                const auto p = in.next();
                                if (!p) fc.stop();
                                return p.value_or(forkline::io::positional_reader::piece{});
                            }),
            forkline::stage(forkline::parallel, "read+count",
                            [&](forkline::io::positional_reader::piece& p) {
                                const int w = rt.current_worker_index();
                                if (w < 0) throw std::logic_error("count stage ran outside the runtime's workers");
                                forkline::io::buffer& mine = buffers[static_cast<unsigned>(w)].b;
                                forkline::io::chunk c = in.read(p, std::move(mine));
                                const logstat::chunk_tally t = logstat::count_chunk(
                                    c.data.data(), c.data.size(), o.by, tables[static_cast<unsigned>(w)].table);
                                mine = std::move(c.data);
                                return t;
                            }),
            forkline::stage(forkline::serial_in_order, "tally",
                            [&](logstat::chunk_tally& t) { report.add(t); }));
        std::vector<logstat::count_table*> all;
        for (logstat::worker_table& t : tables) all.push_back(&t.table);
        return logstat::finish(std::move(all), o, report, k_program);
    }

    // Enough chunks in flight for every worker to count one while the next
    // ones are read and the finished ones wait for their turn in "tally";
    // the reader reads as far ahead. On 2 cores, 4 per worker was a little
    // faster than 2 (fewer waits for a read); more gained nothing.
    const std::size_t tokens = 4 * std::size_t{workers} + 2;
    forkline::io::reader in(o.input, {.chunk_bytes = o.chunk_bytes,
                                      .depth = static_cast<unsigned>(tokens),
                                      .whole_lines = true});

    forkline::run_pipeline(
        rt, tokens,
        forkline::stage(forkline::serial_in_order, "read", forkline::read_stage(in)),
        forkline::stage(forkline::parallel, "count",
                        [&](forkline::io::chunk& c) {
                            const int w = rt.current_worker_index();
                            if (w < 0) throw std::logic_error("count stage ran outside the runtime's workers");
                            const logstat::chunk_tally t = logstat::count_chunk(
                                c.data.data(), c.data.size(), o.by, tables[static_cast<unsigned>(w)].table);
                            return counted_chunk{std::move(c), t};
                        }),
        forkline::stage(forkline::serial_in_order, "tally", [&](counted_chunk& cc) {
            report.add(cc.tally);
            in.recycle(std::move(cc.chunk));
        }));

    std::vector<logstat::count_table*> all;
    for (logstat::worker_table& t : tables) all.push_back(&t.table);
    return logstat::finish(std::move(all), o, report, k_program);
}

}  // namespace

int main(int argc, char** argv) {
    logstat::options o;
    if (const int status = logstat::start(argc, argv, k_program, &o); status >= 0) return status;
    try {
        return run(o);
    } catch (const forkline::io::io_error& e) {  // the input cannot be opened
        report_io_error(e);
    } catch (const forkline::pipeline_error& e) {
        // A read failed in the read stage: say which file and why, as for open.
        try {
            std::rethrow_exception(e.cause());
        } catch (const forkline::io::io_error& cause) {
            report_io_error(cause);
        } catch (...) {
            std::fprintf(stderr, "%s: %s\n", k_program, e.what());
        }
    } catch (const std::exception& e) {  // a bad FORKLINE_* setting, a failed system call
        std::fprintf(stderr, "%s: %s\n", k_program, e.what());
    }
    return 1;
}

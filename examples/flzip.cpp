// examples/flzip.cpp: parallel gzip on a forkline pipeline.
//
//   flzip [-1..-9] [-p N] [-b KIB] [--engine zlib|isal|libdeflate] [-c] [-k] [-f] [FILE]
//
//   read (serial, in order) -> deflate (parallel) -> write (serial, in order)
//
// With zlib or ISA-L the output is one gzip member laid out as pigz lays it
// out. The input is cut into blocks; each block is deflated by its own
// stream, primed with the 32 KiB of input just before it so that matches
// reach back across the cut as they would in one sequential deflate. Every
// block but the last ends with a sync flush, which ends its deflate blocks at
// a byte boundary, so the blocks' outputs concatenate into one valid deflate
// stream; the last ends the stream. Each block's CRC-32 is computed beside its
// compression and the writer combines them in order (crc32_combine) for the
// trailer. libdeflate compresses whole buffers only, so with it each block is
// a gzip member of its own and the file their concatenation (RFC 1952 2.2).
// Which engine serves which level by default: flzip_core.hpp, default_engine.
#include <fcntl.h>   // open, O_* flags
#include <unistd.h>  // close, unlink, isatty
#include <zlib.h>    // deflate*, crc32_z, crc32_combine

#include <algorithm>  // min
#include <cerrno>     // errno
#include <cstdint>    // uint32_t, uint64_t
#include <cstdio>     // fprintf, fputs
#include <cstdlib>    // strtoul, getenv
#include <cstring>    // memcpy, memmove, strcmp
#include <exception>  // exception, rethrow_exception
#include <memory>     // unique_ptr, make_unique
#include <optional>   // optional
#include <span>       // span
#include <stdexcept>  // runtime_error
#include <string>     // string
#include <utility>    // move
#include <vector>     // vector

#include <forkline/io.hpp>        // io::reader, io::writer, io::chunk, io::buffer, io::io_error
#include <forkline/pipeline.hpp>  // run_pipeline, stage, flow_control, resume_handle, pipeline_error
#include <forkline/runtime.hpp>   // runtime, runtime_config
#include <forkline/topology.hpp>  // with_environment

#include "flzip_core.hpp"  // block_deflater, next_window, gzip_header, gzip_trailer

namespace io = forkline::io;

namespace {

using namespace flzip;

constexpr const char* k_usage =
    "usage: flzip [-1..-9] [-p N] [-b KIB] [--engine NAME] [-c] [-k] [-f] [FILE]\n"
    "\n"
    "Compresses FILE into FILE.gz, or standard input to standard output, in\n"
    "gzip's format: blocks of the input are deflated in parallel on forkline's\n"
    "workers and written in order. gzip -d and pigz -d read the result.\n"
    "\n"
    "  -1 .. -9    compression level (default 6)\n"
    "  -p N        use N workers (default: one per allowed core, or FORKLINE_WORKERS)\n"
    "  -b KIB      block size in KiB, 32 to 1048576 (default 128 for zlib,\n"
    "              512 for isal, 1024 for libdeflate)\n"
    "  --engine NAME  deflate engine: zlib, isal (levels 1-3 of its own; -4 and up\n"
    "              use its best, 3) or libdeflate. Default: the fastest measured\n"
    "              whose output is within 1% of zlib's size at the level: isal at\n"
    "              -1, libdeflate at -2 to -7, zlib at -8 and -9. zlib and isal\n"
    "              write one gzip member; libdeflate one member per block, which\n"
    "              every gzip reader takes as one file (gzip -l shows the last\n"
    "              member's size only).\n"
    "  -c          write to standard output, even with FILE\n"
    "  -k          keep FILE; accepted for gzip's sake: flzip never deletes its input\n"
    "  -f          overwrite an existing FILE.gz; write to a terminal\n"
    "  -h, --help  print this help and exit\n"
    "\n"
    "Without FILE, or with FILE '-', reads standard input and writes standard output.\n"
    "FILE is always kept, also after success. On failure a partial FILE.gz is removed.\n"
    "Exit status: 0 done; 1 failed (the reason is on standard error); 2 bad usage.\n";

constexpr std::size_t k_min_block_kib = 32;
// Keeps a block's length within zlib's 32-bit uInt counters.
constexpr std::size_t k_max_block_kib = 1024 * 1024;

struct options {
    int level = 6;
    unsigned workers = 0;  // 0: forkline's default (all allowed cores, FORKLINE_WORKERS)
    std::size_t block_kib = 0;  // 0: the engine's default (default_block_kib)
    std::optional<engine> chosen;  // --engine; none: default_engine(level)
    bool to_stdout = false;
    bool force = false;
    std::string input;  // empty or "-": standard input
};

/// A bad command line: the caller prints the message and the usage, exits 2.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A failure that is neither an I/O error nor a zlib error (an existing
/// output file, a terminal as output); the message is complete.
class flzip_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

unsigned long parse_count(const std::string& text, const char* what, unsigned long lo,
                          unsigned long hi) {
    char* end = nullptr;
    errno = 0;
    const unsigned long v = std::strtoul(text.c_str(), &end, 10);
    if (text.empty() || text[0] == '-' || *end != '\0' || errno != 0 || v < lo || v > hi) {
        throw usage_error(std::string(what) + " must be a number from " + std::to_string(lo) +
                          " to " + std::to_string(hi) + ", not '" + text + "'");
    }
    return v;
}

/// Parses the command line; nullopt means --help was asked for.
std::optional<options> parse_options(int argc, char** argv) {
    options o;
    bool have_file = false;
    bool only_files = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (only_files || arg == "-" || arg.size() < 2 || arg[0] != '-') {
            if (have_file) throw usage_error("only one FILE, got '" + o.input + "' and '" + arg + "'");
            o.input = arg;
            have_file = true;
            continue;
        }
        if (arg == "--") {
            only_files = true;
            continue;
        }
        if (arg == "--help") return std::nullopt;
        if (arg == "--engine" || arg.rfind("--engine=", 0) == 0) {
            std::string name;
            if (arg.size() > 8) {
                name = arg.substr(9);
            } else {
                if (i + 1 >= argc) throw usage_error("--engine needs a value: zlib, isal or libdeflate");
                name = argv[++i];
            }
            o.chosen = parse_engine(name);
            if (!o.chosen) {
                throw usage_error("--engine takes zlib, isal or libdeflate, not '" + name + "'");
            }
            if (!engine_built(*o.chosen)) {
                throw usage_error("--engine " + name + ": this flzip was built without it");
            }
            continue;
        }
        if (arg[1] == '-') throw usage_error("unknown option '" + arg + "'");
        // A cluster of one-letter options, as in "-9cf" or "-p2".
        for (std::size_t k = 1; k < arg.size(); ++k) {
            const char letter = arg[k];
            if (letter >= '1' && letter <= '9') {
                o.level = letter - '0';
            } else if (letter == 'c') {
                o.to_stdout = true;
            } else if (letter == 'f') {
                o.force = true;
            } else if (letter == 'k') {
                // Always so; see the help.
            } else if (letter == 'h') {
                return std::nullopt;
            } else if (letter == 'p' || letter == 'b') {
                std::string value = arg.substr(k + 1);
                if (value.empty()) {
                    if (i + 1 >= argc) throw usage_error(std::string("-") + letter + " needs a value");
                    value = argv[++i];
                }
                if (letter == 'p') {
                    o.workers = static_cast<unsigned>(parse_count(value, "-p", 1, 4096));
                } else {
                    o.block_kib = parse_count(value, "-b", k_min_block_kib, k_max_block_kib);
                }
                break;
            } else {
                throw usage_error(std::string("unknown option '-") + letter + "'");
            }
        }
    }
    if (o.input == "-") o.input.clear();
    return o;
}

/// One compressor per worker, made by that worker on its first block.
class deflater_pool {
public:
    deflater_pool(forkline::runtime& rt, engine e, int level)
        : m_rt(rt), m_engine(e), m_level(level), m_slots(rt.worker_count()) {}

    packed_block deflate_block(raw_block& b) {
        const int w = m_rt.current_worker_index();
        if (w < 0 || static_cast<std::size_t>(w) >= m_slots.size()) {
            // Not one of rt's workers (the pipeline runs stages on workers,
            // so this is a fallback): a stream of its own for this block.
            return make_compressor(m_engine, m_level)->deflate_block(b);
        }
        std::unique_ptr<block_compressor>& mine = m_slots[static_cast<std::size_t>(w)].deflater;
        if (!mine) mine = make_compressor(m_engine, m_level);
        return mine->deflate_block(b);
    }

private:
    // written by: worker w only (and destroyed after run_pipeline returned);
    // padded so that two workers' slots never share a cache line.
    struct alignas(64) slot {
        std::unique_ptr<block_compressor> deflater;
    };
    forkline::runtime& m_rt;
    engine m_engine;
    int m_level;
    std::vector<slot> m_slots;
};

/// The read stage: takes chunks from the reader without blocking and keeps one
/// back, because whether a block is the last (Z_FINISH rather than a sync
/// flush) is known only when the next chunk or the end arrives.
class block_source {
public:
    explicit block_source(io::reader& in) : m_in(in) {}

    raw_block next(forkline::flow_control& fc) {
        for (;;) {
            if (m_ready) {
                raw_block b = std::move(*m_ready);
                m_ready.reset();
                return b;
            }
            if (m_last_made) {
                fc.stop();
                return {};
            }
            if (m_input_ended) {
                // With no input at all, an empty last block still closes the
                // deflate stream (Z_FINISH alone gives the two bytes 03 00).
                raw_block last = m_held ? std::move(*m_held) : raw_block{};
                m_held.reset();
                last.last = true;
                m_ready = std::move(last);
                m_last_made = true;
                continue;
            }
            io::chunk c;
            io::reader::poll p = m_in.try_next(c);
            if (p == io::reader::poll::pending) {
                // The wake-up needs the handle, and the handle needs pause():
                // pause first, then ask again with the wake-up attached.
                const forkline::resume_handle h = fc.pause();
                p = m_in.try_next(c, [h] { h.resume(); });
                if (p == io::reader::poll::pending) return {};
                take(p, c);
                h.resume();  // it came after all: be called again at once
                return {};
            }
            take(p, c);
        }
    }

private:
    void take(io::reader::poll p, io::chunk& c) {
        if (p == io::reader::poll::end) {
            m_input_ended = true;
            return;
        }
        if (c.data.empty()) {
            m_in.recycle(std::move(c));
            return;
        }
        raw_block b;
        // The block takes the window as it stands (no copy); a new one is
        // made from its tail and this chunk, so each block costs one copy of
        // at most 32 KiB.
        b.window = std::move(m_window);
        m_window = next_window(b.window, c.data.bytes());
        b.input = std::move(c);
        if (m_held) m_ready = std::move(*m_held);
        m_held = std::move(b);
    }

    io::reader& m_in;
    io::buffer m_window;
    std::optional<raw_block> m_held;   // the newest block; whether it is the last is not known yet
    std::optional<raw_block> m_ready;  // the next block to hand on
    bool m_input_ended = false;
    bool m_last_made = false;
};

/// The write stage: hands blocks to the writer without blocking, in order,
/// and folds their CRCs and lengths into the trailer's.
class block_sink {
public:
    block_sink(io::writer& out, std::uint64_t offset, std::uint64_t sequence)
        : m_out(out), m_offset(offset), m_sequence(sequence) {}

    void put(packed_block& p, forkline::flow_control& fc) {
        if (p.handed_over) return;  // taken on the call that paused
        p.output.sequence = m_sequence;
        p.output.offset = m_offset;
        const std::size_t n = p.output.data.size();
        if (!m_out.try_write(p.output)) {
            const forkline::resume_handle h = fc.pause();
            if (!m_out.try_write(p.output, [h] { h.resume(); })) return;
            h.resume();  // room after all; the repeated call sees handed_over
        }
        p.handed_over = true;
        m_crc = static_cast<std::uint32_t>(
            crc32_combine(m_crc, p.crc, static_cast<z_off_t>(p.length)));
        m_length += p.length;
        m_offset += n;
        ++m_sequence;
    }

    std::uint32_t crc() const noexcept { return m_crc; }
    std::uint64_t length() const noexcept { return m_length; }
    std::uint64_t offset() const noexcept { return m_offset; }
    std::uint64_t sequence() const noexcept { return m_sequence; }

private:
    io::writer& m_out;
    std::uint64_t m_offset;
    std::uint64_t m_sequence;
    std::uint32_t m_crc = 0;  // crc32 of nothing
    std::uint64_t m_length = 0;
};

/// The output file FILE.gz: created by flzip, closed by it, and removed again
/// unless the run succeeded, since a partial .gz looks like a good one.
class output_file {
public:
    output_file(std::string path, bool force) : m_path(std::move(path)) {
        // O_EXCL makes "does it exist" and "create it" one step.
        const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
        m_fd = ::open(m_path.c_str(), flags, 0666);
        if (m_fd < 0) {
            const int e = errno;
            if (e == EEXIST) {
                throw flzip_error(m_path + " already exists; not overwritten (-f overwrites it)");
            }
            throw io::io_error("open", e, m_path, 0);
        }
    }
    ~output_file() {
        if (m_fd >= 0) ::close(m_fd);
        if (!m_kept) ::unlink(m_path.c_str());
    }
    output_file(const output_file&) = delete;
    output_file& operator=(const output_file&) = delete;

    int fd() const noexcept { return m_fd; }
    const std::string& path() const noexcept { return m_path; }

    /// Closes the file (reporting a failed close) and keeps it.
    void keep(std::uint64_t bytes) {
        const int fd = m_fd;
        m_fd = -1;
        if (::close(fd) != 0) throw io::io_error("close", errno, m_path, bytes);
        m_kept = true;
    }

private:
    std::string m_path;
    int m_fd = -1;
    bool m_kept = false;
};

forkline::runtime_config runtime_config_for(const options& o) {
    forkline::runtime_config c;
    if (o.workers != 0) {
        // -p replaces FORKLINE_WORKERS, as a command line beats the
        // environment (so that variable is not even parsed); FORKLINE_PLACES
        // still applies.
        c.placement = forkline::with_environment(c.placement, [](const char* name) -> const char* {
            return std::strcmp(name, "FORKLINE_WORKERS") == 0 ? nullptr : std::getenv(name);
        });
        c.placement.workers = o.workers;
        c.placement.oversubscribe = true;  // pigz too runs any number of threads
        c.read_environment = false;
    }
    return c;
}

/// Compresses as `o` says; throws on any failure.
void compress(const options& o) {
    forkline::runtime rt(runtime_config_for(o));

    const engine e = o.chosen ? *o.chosen : default_engine(o.level);
    const bool members = writes_members(e);
    const std::size_t block_bytes = (o.block_kib != 0 ? o.block_kib : default_block_kib(e)) * 1024;
    io::reader_options ro;
    ro.chunk_bytes = block_bytes;
    ro.depth = 4;
    // The input first: a missing FILE must not leave an empty FILE.gz behind.
    std::unique_ptr<io::reader> in =
        o.input.empty() ? std::make_unique<io::reader>(STDIN_FILENO, "(stdin)", ro)
                        : std::make_unique<io::reader>(o.input, ro);

    const bool to_stdout = o.to_stdout || o.input.empty();
    if (to_stdout && !o.force && ::isatty(STDOUT_FILENO) == 1) {
        throw flzip_error("compressed data not written to a terminal (-f writes it anyway)");
    }
    std::optional<output_file> file;
    if (!to_stdout) file.emplace(o.input + ".gz", o.force);

    io::writer_options wo;
    wo.depth = 8;
    // Declared after `file`, so destroyed (its queued writes waited for) before
    // the file is closed and, on failure, removed.
    io::writer out(file ? file->fd() : STDOUT_FILENO, file ? file->path() : "(stdout)", wo);

    // One member: its header first, its trailer last. A member per block:
    // each block brings its own.
    std::uint64_t header_bytes = 0;
    if (!members) {
        io::chunk header = gzip_header(o.level);
        header_bytes = header.data.size();
        out.write(std::move(header));
    }

    deflater_pool deflaters(rt, e, o.level);
    block_source source(*in);
    block_sink sink(out, header_bytes, members ? 0 : 1);
    // Enough items in flight that every worker has a block to deflate while
    // others wait to be read or written, and few enough to bound memory.
    const std::size_t tokens = std::size_t{4} * rt.worker_count();
    forkline::run_pipeline(
        rt, tokens,
        forkline::stage(forkline::serial_in_order, "read",
                        [&](forkline::flow_control& fc) { return source.next(fc); }),
        forkline::stage(forkline::parallel, "deflate",
                        [&](raw_block& b) {
                            packed_block p = deflaters.deflate_block(b);
                            // Its buffer is reused for a later read: fresh
                            // buffers would cost a page fault per 4 KiB.
                            in->recycle(std::move(b.input));
                            return p;
                        }),
        forkline::stage(forkline::serial_in_order, "write",
                        [&](packed_block& p, forkline::flow_control& fc) { sink.put(p, fc); }));

    if (!members) out.write(gzip_trailer(sink.crc(), sink.length(), sink.sequence(), sink.offset()));
    out.finish();
    if (file) file->keep(out.bytes_written());
}

void print_io_error(const io::io_error& e) {
    // A writer's bytes_done() is what safely reached the output; say it, so
    // that a user knows how much of a pipe's consumer got.
    const bool is_output = e.call().find("write") != std::string::npos ||
                           e.call() == "fdatasync" || e.call() == "close";
    if (is_output) {
        std::fprintf(stderr, "flzip: %s: %s: %s (%llu bytes written)\n", e.file().c_str(),
                     e.call().c_str(), e.code().message().c_str(),
                     static_cast<unsigned long long>(e.bytes_done()));
    } else {
        std::fprintf(stderr, "flzip: %s: %s: %s\n", e.file().c_str(), e.call().c_str(),
                     e.code().message().c_str());
    }
}

/// Prints the reason for a failure; the pipeline's wrapper is unwrapped, since
/// a user wants "FILE: write: No space left on device", not the stage's name.
void print_failure(std::exception_ptr failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const forkline::pipeline_error& e) {
        if (e.cause()) {
            print_failure(e.cause());
        } else {
            std::fprintf(stderr, "flzip: %s\n", e.what());
        }
    } catch (const io::io_error& e) {
        print_io_error(e);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "flzip: %s\n", e.what());
    } catch (...) {
        std::fputs("flzip: failed for an unknown reason\n", stderr);
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::optional<options> o;
    try {
        o = parse_options(argc, argv);
    } catch (const usage_error& e) {
        std::fprintf(stderr, "flzip: %s\n\n%s", e.what(), k_usage);
        return 2;
    }
    if (!o) {
        std::fputs(k_usage, stdout);
        return 0;
    }
    try {
        compress(*o);
    } catch (...) {
        print_failure(std::current_exception());
        return 1;
    }
    return 0;
}

// tests/test_io.cpp: io::reader and io::writer on both backends: round trips
// of awkward sizes, whole lines, pipes and stdin, the wake-up callbacks, the
// errors (missing file, directory, full device, broken pipe), shutdown of a
// blocked reader, buffer reuse, and the FORKLINE_IO setting.
// Tests that need io_uring skip it (with a message) where the kernel refuses.
#include <doctest/doctest.h>

#include <dirent.h>    // opendir (thread names under /proc)
#include <fcntl.h>     // open, O_*
#include <signal.h>    // signal, SIGPIPE
#include <stdlib.h>    // setenv, unsetenv
#include <sys/mman.h>  // mmap, mincore (which pages are cached)
#include <sys/resource.h>  // setrlimit (RLIMIT_FSIZE)
#include <sys/stat.h>  // mkdir
#include <unistd.h>    // pipe, write, read, close, dup, dup2

#include <algorithm>   // count, max
#include <atomic>      // atomic
#include <cerrno>      // ENOENT, EISDIR, ENOSPC, EPIPE
#include <chrono>      // steady_clock, milliseconds
#include <cstdio>      // FILE, fopen
#include <cstring>     // memcpy
#include <filesystem>  // temp_directory_path, remove_all
#include <fstream>     // ifstream
#include <functional>  // function
#include <random>      // mt19937_64
#include <semaphore>   // counting_semaphore
#include <set>         // set
#include <stdexcept>   // runtime_error, out_of_range, logic_error
#include <span>        // span
#include <string>      // string
#include <thread>      // thread
#include <vector>      // vector

#include "forkline/io.hpp"          // reader, writer, io_error
#include "forkline/read_stage.hpp"  // read_stage
#include "io_config.hpp"    // parse_io_setting, resolve_backend, uring_probe_errno
#include "support.hpp"      // scaled

namespace io = forkline::io;

namespace {

constexpr std::size_t k_chunk = 4096;

/// The backends this machine can run; io_uring is left out, with a
/// message, where the kernel refuses it.
std::vector<io::backend> backends() {
    std::vector<io::backend> all{io::backend::psync};
    if (io::detail::uring_probe_errno() == 0) {
        all.push_back(io::backend::uring);
    } else {
        MESSAGE("io_uring unavailable here (" << io::detail::fallback_notice(io::detail::uring_probe_errno())
                                              << "): its cases are skipped");
    }
    return all;
}

/// A directory of its own, removed at the end.
struct scratch_dir {
    scratch_dir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "forkline-io-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~scratch_dir() { std::filesystem::remove_all(path); }
    std::string file(const std::string& name) const { return path + "/" + name; }
    std::string path;
};

std::string random_bytes(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    return s;
}

void put_file(const std::string& path, const std::string& bytes) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
    REQUIRE(std::fclose(f) == 0);
}

std::string get_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string text_of(const std::vector<io::chunk>& chunks) {
    std::string s;
    for (const io::chunk& c : chunks) s.append(c.data.data(), c.data.size());
    return s;
}

/// Every chunk through next(), checking sequence numbers and offsets.
std::vector<io::chunk> read_all(io::reader& in) {
    std::vector<io::chunk> out;
    std::uint64_t offset = 0;
    while (auto c = in.next()) {
        CHECK(c->sequence == out.size());
        CHECK(c->offset == offset);
        CHECK(c->data.size() > 0);
        offset += c->data.size();
        out.push_back(std::move(*c));
    }
    CHECK(in.bytes_read() == offset);
    io::chunk after;
    CHECK(in.try_next(after) == io::reader::poll::end);  // and stays ended
    return out;
}

io::chunk chunk_of(const std::string& bytes) {
    io::chunk c;
    c.data = io::buffer(bytes.size());
    std::memcpy(c.data.data(), bytes.data(), bytes.size());
    c.data.resize(bytes.size());
    return c;
}

/// Writes `data` into fd in pieces of random size, pausing now and then so
/// that the reader finds the pipe empty; closes fd at the end.
std::thread feed_pipe(int fd, std::string data, std::uint64_t seed) {
    return std::thread([fd, data = std::move(data), seed] {
        std::mt19937_64 rng(seed);
        std::size_t at = 0;
        while (at < data.size()) {
            const std::size_t piece = std::min<std::size_t>(data.size() - at, 1 + rng() % 9000);
            const ssize_t n = ::write(fd, data.data() + at, piece);
            if (n < 0) break;
            at += static_cast<std::size_t>(n);
            if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
        }
        ::close(fd);
    });
}

/// Polls pred for up to a minute: a guard against hanging, not a timing.
template <class Pred>
bool eventually(Pred pred) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > give_up) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

std::set<std::string> thread_names() {
    std::set<std::string> names;
    DIR* d = ::opendir("/proc/self/task");
    if (d == nullptr) return names;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
        std::string name;
        std::getline(comm, name);
        names.insert(name);
    }
    ::closedir(d);
    return names;
}

struct pipe_fds {
    pipe_fds() { REQUIRE(::pipe2(fd, O_CLOEXEC) == 0); }
    ~pipe_fds() {
        close_read();
        close_write();
    }
    void close_read() {
        if (fd[0] >= 0) ::close(fd[0]);
        fd[0] = -1;
    }
    void close_write() {
        if (fd[1] >= 0) ::close(fd[1]);
        fd[1] = -1;
    }
    int fd[2] = {-1, -1};
};

}  // namespace

// ---------------------------------------------------------------------------
// smoke

TEST_CASE("buffers move out empty and refuse to grow past capacity") {
    io::buffer a(16);
    a.resize(5);
    io::buffer b = std::move(a);
    CHECK(b.size() == 5);
    CHECK(b.capacity() == 16);
    CHECK(a.size() == 0);  // NOLINT(bugprone-use-after-move): the documented state
    CHECK(a.capacity() == 0);
    CHECK(a.bytes().empty());
    CHECK_THROWS_AS(b.resize(17), std::out_of_range);
}

TEST_CASE("io_error names the call, the file, the errno and the bytes done") {
    const io::io_error e("read", EIO, "in.log", 4096);
    CHECK(std::string(e.what()) == "read: in.log (after 4096 bytes): Input/output error");
    CHECK(e.call() == "read");
    CHECK(e.code().value() == EIO);
    CHECK(e.file() == "in.log");
    CHECK(e.bytes_done() == 4096);
    // io.hpp's form holds for 0 bytes too: a failed write says that nothing got through.
    const io::io_error opening("open", ENOENT, "x", 0);
    CHECK(std::string(opening.what()) == "open: x (after 0 bytes): No such file or directory");
    const io::io_error writing("pwrite", ENOSPC, "out.log", 0);
    CHECK(std::string(writing.what()) == "pwrite: out.log (after 0 bytes): No space left on device");
    CHECK(writing.bytes_done() == 0);
}

TEST_CASE("bad options are config errors") {
    scratch_dir dir;
    put_file(dir.file("in"), "abc");
    CHECK_THROWS_AS(io::reader(dir.file("in"), {.chunk_bytes = 0}), forkline::config_error);
    CHECK_THROWS_AS(io::reader(dir.file("in"), {.depth = 0}), forkline::config_error);
    CHECK_THROWS_AS(io::writer(dir.file("out"), {.depth = 0}), forkline::config_error);
}

TEST_CASE("files of awkward sizes round trip through reader and writer") {
    scratch_dir dir;
    const std::size_t sizes[] = {0, 1, k_chunk - 1, k_chunk, k_chunk + 1, scaled(3 << 20, 64 << 10) + 123};
    for (const io::backend b : backends()) {
        for (const unsigned depth : {1u, 4u}) {
            for (const std::size_t size : sizes) {
                for (const bool inline_cached : {true, false}) {
                    const std::string backend = io::backend_name(b);
                    CAPTURE(backend);
                    CAPTURE(depth);
                    CAPTURE(size);
                    CAPTURE(inline_cached);
                    const std::string data = random_bytes(size, size * 31 + depth);
                    put_file(dir.file("in"), data);
                    std::vector<io::chunk> chunks;
                    {
                        io::reader in(dir.file("in"), {.chunk_bytes = k_chunk,
                                                       .depth = depth,
                                                       .io = b,
                                                       .inline_cached = inline_cached});
                        CHECK(in.used() == b);
                        CHECK(in.name() == dir.file("in"));
                        chunks = read_all(in);
                        if (!inline_cached) CHECK(in.inline_chunks() == 0);
                    }
                    CHECK(chunks.size() == (size + k_chunk - 1) / k_chunk);
                    for (std::size_t i = 0; i + 1 < chunks.size(); ++i) CHECK(chunks[i].data.size() == k_chunk);
                    CHECK(text_of(chunks) == data);

                    io::writer out(dir.file("out"), {.depth = depth, .io = b});
                    CHECK(out.used() == b);
                    for (io::chunk& c : chunks) out.write(std::move(c));
                    out.finish();
                    CHECK(out.bytes_written() == size);
                    CHECK(get_file(dir.file("out")) == data);
                }
            }
        }
    }
}

TEST_CASE("a regular file descriptor is read and written from its position") {
    scratch_dir dir;
    const std::string data = random_bytes(3 * k_chunk + 7, 5);
    put_file(dir.file("in"), "skipped!" + data);
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        const int fd = ::open(dir.file("in").c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        REQUIRE(::lseek(fd, 8, SEEK_SET) == 8);
        for (const bool inline_cached : {true, false}) {
            CAPTURE(inline_cached);
            REQUIRE(::lseek(fd, 8, SEEK_SET) == 8);
            {
                io::reader in(fd, "in", {.chunk_bytes = k_chunk, .io = b, .inline_cached = inline_cached});
                CHECK(text_of(read_all(in)) == data);  // offsets count from byte 8
            }
            CHECK(::lseek(fd, 0, SEEK_CUR) == static_cast<off_t>(8 + data.size()));
        }
        ::close(fd);

        const int out_fd = ::open(dir.file("out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        REQUIRE(out_fd >= 0);
        REQUIRE(::write(out_fd, "head", 4) == 4);
        {
            io::writer out(out_fd, "out", {.depth = 3, .io = b});
            out.write(chunk_of(data.substr(0, 5000)));
            out.write(chunk_of(data.substr(5000)));
            out.finish();
        }
        REQUIRE(::write(out_fd, "tail", 4) == 4);  // lands after the writer's bytes
        ::close(out_fd);
        CHECK(get_file(dir.file("out")) == "head" + data + "tail");
    }
}

TEST_CASE("an O_APPEND file is written in order") {
    scratch_dir dir;
    const std::string data = random_bytes(200'000, 6);
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        put_file(dir.file("log"), "first line\n");
        const int fd = ::open(dir.file("log").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        REQUIRE(fd >= 0);
        {
            io::writer out(fd, "log", {.depth = 8, .io = b});
            for (std::size_t at = 0; at < data.size(); at += 9000) out.write(chunk_of(data.substr(at, 9000)));
            out.finish();
        }
        ::close(fd);
        CHECK(get_file(dir.file("log")) == "first line\n" + data);
    }
}

TEST_CASE("chunks of random sizes are written in the order handed over") {
    scratch_dir dir;
    for (const io::backend b : backends()) {
        for (const unsigned depth : {1u, 8u}) {
            const std::string backend = io::backend_name(b);
            CAPTURE(backend);
            CAPTURE(depth);
            std::mt19937_64 rng(depth);
            std::string expected;
            io::writer out(dir.file("out"), {.depth = depth, .sync_at_end = depth == 8, .io = b});
            std::uint64_t sequence = 0;
            while (expected.size() < scaled(4 << 20, 256 << 10)) {
                const std::string piece = random_bytes(1 + rng() % 20'000, rng());
                io::chunk c = chunk_of(piece);
                c.sequence = 1000 - sequence++;  // ignored: order is the order of hand-over
                c.offset = 0;
                expected += piece;
                out.write(std::move(c));
            }
            out.write(io::chunk{});  // empty chunks are fine
            out.finish();
            out.finish();  // a second call has nothing to add
            CHECK(out.bytes_written() == expected.size());
            CHECK(get_file(dir.file("out")) == expected);
            CHECK_THROWS_AS(out.write(chunk_of("late")), std::logic_error);
        }
    }
}

TEST_CASE("a writer destroyed without finish still writes what was handed over") {
    scratch_dir dir;
    const std::string data = random_bytes(100'000, 8);
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        {
            io::writer out(dir.file("out"), {.depth = 2, .io = b});
            for (std::size_t at = 0; at < data.size(); at += 7000) out.write(chunk_of(data.substr(at, 7000)));
        }
        CHECK(get_file(dir.file("out")) == data);
    }
}

// ---------------------------------------------------------------------------
// whole lines

namespace {

std::string random_lines(std::size_t bytes, std::size_t max_line, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::string s;
    while (s.size() < bytes) {
        const std::size_t len = rng() % 7 == 0 ? 0 : rng() % (max_line + 1);
        for (std::size_t i = 0; i < len; ++i) s += static_cast<char>('a' + rng() % 26);
        s += '\n';
    }
    return s;
}

void check_whole_lines(const std::vector<io::chunk>& chunks, const std::string& text, std::size_t chunk_bytes) {
    CHECK(text_of(chunks) == text);
    const std::size_t room = std::min<std::size_t>(chunk_bytes, 16 * 1024);
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        const std::span<const char> bytes = chunks[i].data.bytes();
        REQUIRE(!bytes.empty());
        const bool last = i + 1 == chunks.size();
        // Every chunk ends a line; only the input's last may lack its '\n'.
        if (!last || text.back() == '\n') CHECK(bytes.back() == '\n');
        // A chunk larger than a chunk plus the carry room holds one line.
        if (bytes.size() > chunk_bytes + room) {
            CHECK(std::count(bytes.begin(), bytes.end(), '\n') <= 1);
        }
    }
}

struct line_case {
    const char* what;
    std::string text;
};

std::vector<line_case> line_cases() {
    std::vector<line_case> cases;
    cases.push_back({"short lines, empty ones", random_lines(scaled(300'000, 30'000), 200, 1)});
    std::string no_end = random_lines(50'000, 300, 2);
    no_end += "the last line has no newline";
    cases.push_back({"no final newline", no_end});
    std::string long_lines = random_lines(20'000, 100, 3);
    long_lines += std::string(3 * k_chunk + 17, 'L') + "\n";
    long_lines += random_lines(10'000, 100, 4);
    long_lines += std::string(k_chunk, 'M') + "\n" + std::string(k_chunk - 1, 'N') + "\n";
    long_lines += std::string(5 * k_chunk, 'O');  // a long last line without '\n'
    cases.push_back({"lines longer than a chunk", long_lines});
    std::string boundary = std::string(k_chunk - 1, 'b') + "\n" + std::string(k_chunk - 1, 'c') + "\n";
    boundary += random_lines(3 * k_chunk, 50, 5);
    cases.push_back({"a chunk boundary right after a newline", boundary});
    cases.push_back({"lines about as long as a chunk", random_lines(200'000, 6000, 6)});
    cases.push_back({"only newlines", std::string(3 * k_chunk + 5, '\n')});
    cases.push_back({"one short line without newline", "lonely"});
    cases.push_back({"one long line without newline", std::string(2 * k_chunk + 3, 'z')});
    return cases;
}

}  // namespace

TEST_CASE("whole_lines: every line whole, exactly once, from files and pipes") {
    scratch_dir dir;
    const std::vector<line_case> cases = line_cases();
    for (const io::backend b : backends()) {
        for (const unsigned depth : {1u, 4u}) {
            for (const line_case& lc : cases) {
                const std::string backend = io::backend_name(b);
                CAPTURE(backend);
                CAPTURE(depth);
                CAPTURE(lc.what);
                const io::reader_options opts{.chunk_bytes = k_chunk, .depth = depth, .whole_lines = true, .io = b};
                put_file(dir.file("lines"), lc.text);
                for (const bool inline_cached : {true, false}) {
                    CAPTURE(inline_cached);
                    io::reader_options file_opts = opts;
                    file_opts.inline_cached = inline_cached;
                    io::reader in(dir.file("lines"), file_opts);
                    check_whole_lines(read_all(in), lc.text, k_chunk);
                }
                pipe_fds p;
                std::thread feeder = feed_pipe(p.fd[1], lc.text, depth);
                p.fd[1] = -1;  // the feeder closes it
                {
                    io::reader in(p.fd[0], "pipe", opts);
                    check_whole_lines(read_all(in), lc.text, k_chunk);
                }
                feeder.join();
            }
        }
    }
}

TEST_CASE("whole_lines with large chunks cut only at newlines") {
    // The carry room is 16 KiB here, smaller than a chunk: lines of 10 to
    // 40 KiB take both the in-front path and the copy path.
    scratch_dir dir;
    const std::size_t chunk_bytes = 64 * 1024;
    const std::string text = random_lines(scaled(2 << 20, 256 << 10), 40'000, 9);
    put_file(dir.file("lines"), text);
    for (const io::backend b : backends()) {
        for (const bool inline_cached : {true, false}) {
            const std::string backend = io::backend_name(b);
            CAPTURE(backend);
            CAPTURE(inline_cached);
            io::reader in(dir.file("lines"), {.chunk_bytes = chunk_bytes,
                                              .depth = 3,
                                              .whole_lines = true,
                                              .io = b,
                                              .inline_cached = inline_cached});
            std::vector<io::chunk> chunks = read_all(in);
            check_whole_lines(chunks, text, chunk_bytes);
        }
    }
}

// ---------------------------------------------------------------------------
// inline reads of cached files

namespace {

/// Every chunk through try_next() and on_ready, the way a pipeline's read
/// stage takes them, checking sequence numbers and offsets.
std::vector<io::chunk> read_all_polling(io::reader& in) {
    std::vector<io::chunk> out;
    std::counting_semaphore<1024> woken(0);
    std::uint64_t offset = 0;
    for (;;) {
        io::chunk c;
        const io::reader::poll r = in.try_next(c, [&woken] { woken.release(); });
        if (r == io::reader::poll::end) break;
        if (r == io::reader::poll::pending) {
            woken.acquire();
            continue;
        }
        CHECK(c.sequence == out.size());
        CHECK(c.offset == offset);
        offset += c.data.size();
        out.push_back(std::move(c));
    }
    CHECK(in.bytes_read() == offset);
    return out;
}

/// Pages holding bytes of [from, to) of the file that are in the page cache.
std::size_t cached_pages(const std::string& path, std::size_t from, std::size_t to) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const std::size_t size = static_cast<std::size_t>(::lseek(fd, 0, SEEK_END));
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    REQUIRE(map != MAP_FAILED);
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::vector<unsigned char> in_core((size + page - 1) / page);
    REQUIRE(::mincore(map, size, in_core.data()) == 0);
    ::munmap(map, size);
    std::size_t n = 0;
    for (std::size_t i = from / page; i < (to + page - 1) / page; ++i) n += in_core[i] & 1;
    return n;
}

/// Leaves only [from, to) of the file in the page cache: writes it to disk,
/// drops all of it (a part of a large folio cannot be dropped alone), and
/// reads the range back without read-ahead. false when the cache does not
/// obey (tmpfs, say).
bool cache_only(const std::string& path, std::size_t from, std::size_t to) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const std::size_t size = static_cast<std::size_t>(::lseek(fd, 0, SEEK_END));
    bool ok = ::fdatasync(fd) == 0 && ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0 &&
              ::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM) == 0;
    std::string bytes(to - from, '\0');
    ok = ok && ::pread(fd, bytes.data(), bytes.size(), static_cast<off_t>(from)) ==
                   static_cast<ssize_t>(bytes.size());
    ::close(fd);
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t wanted = (to + page - 1) / page - from / page;
    return ok && cached_pages(path, from, to) == wanted && cached_pages(path, 0, size) == wanted;
}

/// Whether this file system lets preadv2(RWF_NOWAIT) read a cached file.
bool nowait_reads_work(const scratch_dir& dir) {
    put_file(dir.file("probe"), "cached");
    io::reader in(dir.file("probe"), {.io = io::backend::psync});
    (void)read_all(in);
    if (in.inline_chunks() == 1) return true;
    MESSAGE("preadv2(RWF_NOWAIT) does not read here: the inline cases are skipped");
    return false;
}

constexpr std::size_t k_pieces = 128;  // chunks per file in the eviction cases

}  // namespace

TEST_CASE("a cached file is read entirely on the consumer's thread") {
    scratch_dir dir;
    if (!nowait_reads_work(dir)) return;
    const std::string data = random_bytes(40 * k_chunk + 5, 40);
    const std::string lines = random_lines(40 * k_chunk, 300, 41);
    put_file(dir.file("in"), data);
    put_file(dir.file("lines"), lines);
    for (const io::backend b : backends()) {
        for (const bool polling : {false, true}) {
            const std::string backend = io::backend_name(b);
            CAPTURE(backend);
            CAPTURE(polling);
            {
                io::reader in(dir.file("in"), {.chunk_bytes = k_chunk, .depth = 2, .io = b});
                const std::vector<io::chunk> chunks = polling ? read_all_polling(in) : read_all(in);
                CHECK(text_of(chunks) == data);
                CHECK(chunks.size() == 41);
                CHECK(in.inline_chunks() == 41);
            }
            {
                io::reader in(dir.file("lines"), {.chunk_bytes = k_chunk, .depth = 2, .whole_lines = true, .io = b});
                const std::vector<io::chunk> chunks = polling ? read_all_polling(in) : read_all(in);
                check_whole_lines(chunks, lines, k_chunk);
                CHECK(in.inline_chunks() == (lines.size() + k_chunk - 1) / k_chunk);
            }
            {
                io::reader in(dir.file("in"), {.chunk_bytes = k_chunk, .io = b, .inline_cached = false});
                CHECK(text_of(polling ? read_all_polling(in) : read_all(in)) == data);
                CHECK(in.inline_chunks() == 0);
            }
        }
    }
}

TEST_CASE("pages not cached are read by the I/O thread, and the chunks are the same") {
    // Eviction needs a disk under the temporary directory; on tmpfs the
    // pages stay and the case says so and passes.
    scratch_dir dir;
    if (!nowait_reads_work(dir)) return;
    const std::string data = random_bytes(k_pieces * k_chunk + 77, 42);
    const std::string lines = random_lines(k_pieces * k_chunk, 200, 43);
    for (const io::backend b : backends()) {
        for (const bool whole_lines : {false, true}) {
            for (const bool polling : {false, true}) {
                const std::string backend = io::backend_name(b);
                CAPTURE(backend);
                CAPTURE(whole_lines);
                CAPTURE(polling);
                const std::string& text = whole_lines ? lines : data;
                const std::size_t pieces = (text.size() + k_chunk - 1) / k_chunk;
                put_file(dir.file("in"), text);
                if (!cache_only(dir.file("in"), 0, 0)) {
                    MESSAGE("cannot drop pages from the cache here: skipped");
                    return;
                }
                io::reader in(dir.file("in"),
                              {.chunk_bytes = k_chunk, .depth = 4, .whole_lines = whole_lines, .io = b});
                const std::vector<io::chunk> chunks = polling ? read_all_polling(in) : read_all(in);
                if (whole_lines) {
                    check_whole_lines(chunks, text, k_chunk);
                } else {
                    CHECK(text_of(chunks) == text);
                    CHECK(chunks.size() == pieces);
                    for (std::size_t i = 0; i + 1 < chunks.size(); ++i) CHECK(chunks[i].data.size() == k_chunk);
                }
                CHECK(in.inline_chunks() < pieces);  // the first chunk at least
            }
        }
    }
}

TEST_CASE("a file cached only in part switches between inline and I/O-thread reads") {
    scratch_dir dir;
    if (!nowait_reads_work(dir)) return;
    const std::string data = random_bytes(k_pieces * k_chunk, 44);
    const std::string lines = random_lines(k_pieces * k_chunk, 500, 45);
    const std::size_t half = k_pieces / 2 * k_chunk;
    put_file(dir.file("in"), data);
    if (!cache_only(dir.file("in"), 0, 0)) {
        MESSAGE("cannot drop pages from the cache here: skipped");
        return;
    }
    for (const io::backend b : backends()) {
        for (const bool whole_lines : {false, true}) {
            const std::string backend = io::backend_name(b);
            CAPTURE(backend);
            CAPTURE(whole_lines);
            const std::string& text = whole_lines ? lines : data;
            const std::size_t pieces = (text.size() + k_chunk - 1) / k_chunk;
            const io::reader_options opts{.chunk_bytes = k_chunk, .depth = 4, .whole_lines = whole_lines, .io = b};
            // A NOWAIT read of a missing page starts the kernel's readahead
            // itself, and on a device that completes reads at once (a VM's
            // disk backed by the host's cache) the page can be there by the
            // read's second look: that chunk is then rightly read inline. So
            // each case must show the switch in one of k_tries evictions;
            // every try must read the right bytes.
            constexpr int k_tries = 3;
            {
                // The first half cached: inline, then the I/O thread.
                bool switched = false;
                for (int t = 0; t < k_tries && !switched; ++t) {
                    put_file(dir.file("in"), text);
                    REQUIRE(cache_only(dir.file("in"), 0, half));
                    io::reader in(dir.file("in"), opts);
                    const std::vector<io::chunk> chunks = read_all_polling(in);
                    if (whole_lines) {
                        check_whole_lines(chunks, text, k_chunk);
                    } else {
                        CHECK(text_of(chunks) == text);
                        CHECK(chunks.size() == pieces);
                    }
                    CHECK(in.inline_chunks() >= half / k_chunk);
                    switched = in.inline_chunks() < pieces;
                }
                CHECK(switched);
            }
            {
                // The second half cached: the I/O thread, then inline again.
                // Its runs (2, 4, 8 ... times depth chunks) end before the
                // end of the file, so the cached half is found.
                bool switched = false;
                for (int t = 0; t < k_tries && !switched; ++t) {
                    put_file(dir.file("in"), text);
                    REQUIRE(cache_only(dir.file("in"), half, text.size()));
                    const int fd = ::open(dir.file("in").c_str(), O_RDONLY | O_CLOEXEC);
                    REQUIRE(fd >= 0);
                    {
                        io::reader in(fd, "half cached", opts);
                        const std::vector<io::chunk> chunks = read_all(in);
                        if (whole_lines) {
                            check_whole_lines(chunks, text, k_chunk);
                        } else {
                            CHECK(text_of(chunks) == text);
                        }
                        CHECK(in.inline_chunks() > 0);
                        switched = in.inline_chunks() < pieces;
                    }
                    CHECK(::lseek(fd, 0, SEEK_CUR) == static_cast<off_t>(text.size()));
                    ::close(fd);
                }
                CHECK(switched);
            }
        }
    }
}

TEST_CASE("a read error met inline is the I/O thread's error, after the same chunks") {
    // A descriptor opened for writing only: every read of it fails with
    // EBADF, inline or not.
    scratch_dir dir;
    put_file(dir.file("in"), random_bytes(3 * k_chunk, 46));
    for (const io::backend b : backends()) {
        std::string messages[2];
        for (const bool inline_cached : {true, false}) {
            const std::string backend = io::backend_name(b);
            CAPTURE(backend);
            CAPTURE(inline_cached);
            const int fd = ::open(dir.file("in").c_str(), O_WRONLY | O_CLOEXEC);
            REQUIRE(fd >= 0);
            {
                io::reader in(fd, "write-only", {.chunk_bytes = k_chunk, .io = b, .inline_cached = inline_cached});
                try {
                    (void)in.next();
                    FAIL("read a write-only descriptor");
                } catch (const io::io_error& e) {
                    CHECK(e.code().value() == EBADF);
                    CHECK(e.file() == "write-only");
                    CHECK(e.bytes_done() == 0);
                    messages[inline_cached ? 0 : 1] = e.what();
                }
                io::chunk c;
                CHECK_THROWS_AS(in.try_next(c), io::io_error);  // and keeps failing
                CHECK(in.inline_chunks() == 0);
            }
            ::close(fd);
        }
        CHECK(messages[0] == messages[1]);
    }
}

// ---------------------------------------------------------------------------
// pipes and stdin

TEST_CASE("a pipe fed in random pieces reassembles into full chunks") {
    const std::string data = random_bytes(scaled(1 << 20, 128 << 10) + 99, 11);
    for (const io::backend b : backends()) {
        for (const unsigned depth : {1u, 4u}) {
            const std::string backend = io::backend_name(b);
            CAPTURE(backend);
            CAPTURE(depth);
            pipe_fds p;
            std::thread feeder = feed_pipe(p.fd[1], data, depth + 100);
            p.fd[1] = -1;
            std::vector<io::chunk> chunks;
            {
                io::reader in(p.fd[0], "pipe", {.chunk_bytes = k_chunk, .depth = depth, .io = b});
                CHECK(thread_names().count("fl-read") == 1);
                chunks = read_all(in);
            }
            feeder.join();
            CHECK(text_of(chunks) == data);
            // The pipe's write sizes do not show: full chunks but the last.
            for (std::size_t i = 0; i + 1 < chunks.size(); ++i) CHECK(chunks[i].data.size() == k_chunk);
        }
    }
}

TEST_CASE("O_NONBLOCK pipes are waited on, not spun on") {
    // io_uring hands EAGAIN back for an O_NONBLOCK file instead of waiting;
    // the reader and writer then wait for readiness and try again.
    const std::string data = random_bytes(scaled(600'000, 100'000), 14);
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        pipe_fds in_pipe;
        pipe_fds out_pipe;
        REQUIRE(::fcntl(in_pipe.fd[0], F_SETFL, O_NONBLOCK) == 0);
        REQUIRE(::fcntl(out_pipe.fd[1], F_SETFL, O_NONBLOCK) == 0);
        std::thread feeder = feed_pipe(in_pipe.fd[1], data, 15);
        in_pipe.fd[1] = -1;
        std::string got;
        std::thread drain([&got, fd = out_pipe.fd[0]] {
            std::mt19937_64 rng(16);
            char buf[8192];
            ssize_t n;
            while ((n = ::read(fd, buf, 1 + rng() % sizeof buf)) > 0) {
                got.append(buf, static_cast<std::size_t>(n));
                if (rng() % 16 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
        });
        {
            io::reader in(in_pipe.fd[0], "nonblocking in", {.chunk_bytes = k_chunk, .depth = 2, .io = b});
            io::writer out(out_pipe.fd[1], "nonblocking out", {.depth = 2, .io = b});
            while (auto c = in.next()) out.write(std::move(*c));
            out.finish();
        }
        out_pipe.close_write();
        feeder.join();
        drain.join();
        CHECK(got == data);
    }
}

TEST_CASE("\"-\" reads standard input and writes standard output") {
    if (::fcntl(STDIN_FILENO, F_GETFD) < 0 || ::fcntl(STDOUT_FILENO, F_GETFD) < 0) {
        // A pipe made below would take the free number and be closed twice.
        MESSAGE("standard input or output is closed here: skipped");
        return;
    }
    const std::string data = random_bytes(50'000, 12);
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        const int saved_in = ::dup(STDIN_FILENO);
        REQUIRE(saved_in >= 0);
        {
            pipe_fds p;
            REQUIRE(::dup2(p.fd[0], STDIN_FILENO) == STDIN_FILENO);
            p.close_read();
            std::thread feeder = feed_pipe(p.fd[1], data, 13);
            p.fd[1] = -1;
            {
                io::reader in("-", {.chunk_bytes = k_chunk, .io = b});
                CHECK(in.name() == "<stdin>");
                CHECK(text_of(read_all(in)) == data);
            }
            feeder.join();
        }
        REQUIRE(::dup2(saved_in, STDIN_FILENO) == STDIN_FILENO);
        ::close(saved_in);

        const int saved_out = ::dup(STDOUT_FILENO);
        REQUIRE(saved_out >= 0);
        std::string got;
        {
            pipe_fds p;
            std::thread drain([&got, fd = p.fd[0]] {
                char buf[4096];
                ssize_t n;
                while ((n = ::read(fd, buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
            });
            REQUIRE(::dup2(p.fd[1], STDOUT_FILENO) == STDOUT_FILENO);
            p.close_write();
            {
                io::writer out("-", {.io = b});
                CHECK(out.name() == "<stdout>");
                CHECK(thread_names().count("fl-write") == 1);
                out.write(chunk_of(data));
                out.finish();
            }
            REQUIRE(::dup2(saved_out, STDOUT_FILENO) == STDOUT_FILENO);  // closes the pipe's last write end
            drain.join();
        }
        ::close(saved_out);
        CHECK(got == data);
    }
}

// ---------------------------------------------------------------------------
// callbacks

TEST_CASE("try_next says pending, then on_ready fires once when data or the end comes") {
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        pipe_fds p;
        io::reader in(p.fd[0], "pipe", {.chunk_bytes = 16, .depth = 2, .io = b});
        std::atomic<int> fired{0};
        io::chunk c;
        REQUIRE(in.try_next(c, [&] { fired.fetch_add(1); }) == io::reader::poll::pending);
        CHECK(in.try_next(c) == io::reader::poll::pending);  // keeps the callback
        REQUIRE(::write(p.fd[1], "0123456789abcdef", 16) == 16);
        REQUIRE(eventually([&] { return fired.load() == 1; }));
        REQUIRE(in.try_next(c) == io::reader::poll::ready);
        CHECK(std::string(c.data.data(), c.data.size()) == "0123456789abcdef");
        in.recycle(std::move(c));

        std::atomic<int> fired_end{0};
        REQUIRE(in.try_next(c, [&] { fired_end.fetch_add(1); }) == io::reader::poll::pending);
        p.close_write();
        REQUIRE(eventually([&] { return fired_end.load() == 1; }));
        CHECK(in.try_next(c) == io::reader::poll::end);
        CHECK(fired.load() == 1);
        CHECK(fired_end.load() == 1);
    }
}

TEST_CASE("try_write says no at depth, and on_space fires once when room returns") {
    const std::size_t piece = 256 * 1024;  // larger than a pipe's buffer
    const unsigned depth = 3;
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        pipe_fds p;
        std::string expected;
        io::writer out(p.fd[1], "pipe", {.depth = depth, .io = b});
        for (unsigned i = 0; i < depth; ++i) {
            const std::string bytes = random_bytes(piece, i);
            io::chunk c = chunk_of(bytes);
            REQUIRE(out.try_write(c));
            CHECK(c.data.empty());
            expected += bytes;
        }
        // Nobody reads: the first write is stuck and the queue is full.
        std::atomic<int> fired{0};
        const std::string more = random_bytes(piece, 99);
        io::chunk extra = chunk_of(more);
        REQUIRE_FALSE(out.try_write(extra, [&] { fired.fetch_add(1); }));
        CHECK(extra.data.size() == piece);  // untouched
        std::string got;
        std::thread drain([&got, fd = p.fd[0]] {
            char buf[65536];
            ssize_t n;
            while ((n = ::read(fd, buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
        });
        REQUIRE(eventually([&] { return fired.load() >= 1; }));
        REQUIRE(out.try_write(extra));
        expected += more;
        out.finish();
        p.close_write();
        drain.join();
        CHECK(fired.load() == 1);
        CHECK(got == expected);
    }
}

TEST_CASE("a callback that throws ends the stream with its exception") {
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        {
            pipe_fds p;
            io::reader in(p.fd[0], "pipe", {.chunk_bytes = 4, .io = b});
            io::chunk c;
            REQUIRE(in.try_next(c, [] { throw std::runtime_error("on_ready failed"); }) ==
                    io::reader::poll::pending);
            REQUIRE(::write(p.fd[1], "abcd", 4) == 4);
            auto first = in.next();  // published before the callback ran
            REQUIRE(first);
            CHECK(std::string(first->data.data(), first->data.size()) == "abcd");
            CHECK_THROWS_WITH_AS(in.next(), "on_ready failed", std::runtime_error);
        }
        {
            pipe_fds p;
            io::writer out(p.fd[1], "pipe", {.depth = 1, .io = b});
            io::chunk big = chunk_of(random_bytes(200'000, 1));  // more than the pipe holds
            REQUIRE(out.try_write(big));
            io::chunk next = chunk_of("next");
            REQUIRE_FALSE(out.try_write(next, [] { throw std::runtime_error("on_space failed"); }));
            std::thread drain([fd = p.fd[0]] {
                char buf[65536];
                while (::read(fd, buf, sizeof buf) > 0) {
                }
            });
            CHECK_THROWS_WITH_AS(out.finish(), "on_space failed", std::runtime_error);
            p.close_write();
            drain.join();
        }
    }
}

TEST_CASE("a consumer woken only by on_ready and on_space copies a file exactly") {
    // Several reader/writer pairs at once, each driven by callbacks the way
    // a pipeline stage is: never next() or write(), which block.
    scratch_dir dir;
    const std::size_t size = scaled(4 << 20, 256 << 10) + 5;
    const int pairs = 3;
    for (int i = 0; i < pairs; ++i) put_file(dir.file("in" + std::to_string(i)), random_bytes(size, 20 + i));
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        std::vector<std::thread> copiers;
        for (int i = 0; i < pairs; ++i) {
            copiers.emplace_back([&dir, b, i] {
                io::reader in(dir.file("in" + std::to_string(i)),
                              {.chunk_bytes = 8192 + 512 * static_cast<std::size_t>(i), .depth = 3, .io = b});
                io::writer out(dir.file("out" + std::to_string(i)), {.depth = 2, .io = b});
                std::counting_semaphore<1024> woken(0);
                io::chunk c;
                for (;;) {
                    const io::reader::poll r = in.try_next(c, [&woken] { woken.release(); });
                    if (r == io::reader::poll::end) break;
                    if (r == io::reader::poll::pending) {
                        woken.acquire();
                        continue;
                    }
                    while (!out.try_write(c, [&woken] { woken.release(); })) woken.acquire();
                }
                out.finish();
            });
        }
        for (std::thread& t : copiers) t.join();
        for (int i = 0; i < pairs; ++i) {
            CHECK(get_file(dir.file("out" + std::to_string(i))) == get_file(dir.file("in" + std::to_string(i))));
        }
    }
}

// ---------------------------------------------------------------------------
// lifetime

TEST_CASE("recycled buffers are reused: the reader holds at most depth of them") {
    scratch_dir dir;
    put_file(dir.file("in"), random_bytes(64 * k_chunk, 30));
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        const unsigned depth = 2;
        io::reader in(dir.file("in"), {.chunk_bytes = k_chunk, .depth = depth, .io = b});
        std::set<const char*> seen;
        std::size_t chunks = 0;
        while (auto c = in.next()) {
            seen.insert(c->data.data());
            ++chunks;
            in.recycle(std::move(*c));
        }
        CHECK(chunks == 64);
        // depth in the reader plus the one the consumer holds.
        CHECK(seen.size() <= depth + 1);
    }
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        // A consumer that holds three chunks at a time (a pipeline would).
        const unsigned depth = 3;
        const std::size_t held = 3;
        io::reader in(dir.file("in"), {.chunk_bytes = k_chunk, .depth = depth, .io = b});
        std::set<const char*> seen;
        std::vector<io::chunk> window;
        std::string text;
        while (auto c = in.next()) {
            seen.insert(c->data.data());
            text.append(c->data.data(), c->data.size());
            window.push_back(std::move(*c));
            if (window.size() == held) {
                for (io::chunk& w : window) in.recycle(std::move(w));
                window.clear();
            }
        }
        CHECK(text == get_file(dir.file("in")));
        CHECK(seen.size() <= depth + held);
    }
}

TEST_CASE("destroying a reader blocked on an idle pipe returns, dropping its callback") {
    for (const io::backend b : backends()) {
        for (const bool whole_lines : {false, true}) {
            const std::string backend = io::backend_name(b);
            CAPTURE(backend);
            CAPTURE(whole_lines);
            pipe_fds p;
            REQUIRE(::write(p.fd[1], "partial", 7) == 7);  // less than a chunk: the read waits for more
            std::atomic<int> fired{0};
            const auto began = std::chrono::steady_clock::now();
            {
                io::reader in(p.fd[0], "idle pipe", {.chunk_bytes = k_chunk, .whole_lines = whole_lines, .io = b});
                io::chunk c;
                CHECK(in.try_next(c, [&] { fired.fetch_add(1); }) == io::reader::poll::pending);
            }
            const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
            MESSAGE(std::string(io::backend_name(b)) << ": reader on an idle pipe destroyed in " << took << " s");
            CHECK(fired.load() == 0);
        }
    }
}

TEST_CASE("destroying a reader blocked on an idle terminal returns") {
    // A terminal cannot be read without blocking the way a pipe can: io_uring
    // hands such a read to a kernel worker, which the cancel must interrupt.
    const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) {
        MESSAGE("no pseudo-terminal here: skipped");
        if (master >= 0) ::close(master);
        return;
    }
    const int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(slave >= 0);
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        io::reader in(slave, "terminal", {.chunk_bytes = k_chunk, .io = b});
        io::chunk c;
        CHECK(in.try_next(c) == io::reader::poll::pending);
    }
    ::close(slave);
    ::close(master);
}

TEST_CASE("destroying a reader in the middle of a file stops its reads") {
    scratch_dir dir;
    put_file(dir.file("in"), random_bytes(2 << 20, 31));
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        for (int round = 0; round < static_cast<int>(scaled(20, 2)); ++round) {
            io::reader in(dir.file("in"), {.chunk_bytes = k_chunk, .depth = 8, .io = b});
            for (int i = 0; i < round; ++i) {
                auto c = in.next();
                REQUIRE(c);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// failure

TEST_CASE("a missing input is an io_error naming open and the path") {
    scratch_dir dir;
    const std::string path = dir.file("does-not-exist");
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        try {
            io::reader in(path, {.io = b});
            FAIL("opened a missing file");
        } catch (const io::io_error& e) {
            CHECK(e.code().value() == ENOENT);
            CHECK(e.call() == "open");
            CHECK(e.file() == path);
            CHECK(e.bytes_done() == 0);
            const std::string what = e.what();
            CHECK(what.find("open") != std::string::npos);
            CHECK(what.find(path) != std::string::npos);
        }
        CHECK_THROWS_AS(io::writer(dir.file("no-such-dir/out"), {.io = b}), io::io_error);
    }
}

TEST_CASE("a directory as input fails at the read with EISDIR") {
    scratch_dir dir;
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        io::reader in(dir.path, {.io = b});
        for (int twice = 0; twice < 2; ++twice) {  // and keeps failing
            try {
                (void)in.next();
                FAIL("read a directory");
            } catch (const io::io_error& e) {
                CHECK(e.code().value() == EISDIR);
                CHECK(e.file() == dir.path);
                CHECK(e.bytes_done() == 0);
                const std::string what = e.what();
                CHECK(what.find("read") != std::string::npos);
                CHECK(what.find(dir.path) != std::string::npos);
            }
        }
        io::chunk c;
        CHECK_THROWS_AS(in.try_next(c), io::io_error);
    }
}

TEST_CASE("a writer to a full device fails with ENOSPC and nothing done") {
    if (::access("/dev/full", W_OK) != 0) {
        MESSAGE("no writable /dev/full here: skipped");
        return;
    }
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        io::writer out("/dev/full", {.depth = 2, .io = b});
        int failures = 0;
        try {
            for (int i = 0; i < 16; ++i) out.write(chunk_of(random_bytes(8192, i)));
            out.finish();
        } catch (const io::io_error& e) {
            ++failures;
            CHECK(e.code().value() == ENOSPC);
            CHECK(e.bytes_done() == 0);
            CHECK(e.file() == "/dev/full");
        }
        CHECK(failures == 1);
        // finish() never reports success after a failed write.
        CHECK_THROWS_AS(out.finish(), io::io_error);
        CHECK(out.bytes_written() == 0);
    }
}

TEST_CASE("a writer to a pipe nobody reads fails with EPIPE, and the process lives") {
    // SIGPIPE's default action kills the process: the I/O thread must not
    // let it be delivered.
    const auto previous = ::signal(SIGPIPE, SIG_DFL);
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        pipe_fds p;
        p.close_read();
        io::writer out(p.fd[1], "broken pipe", {.io = b});
        std::string caught;
        try {
            out.write(chunk_of(random_bytes(70'000, 40)));
            out.write(chunk_of("more"));
            out.finish();
        } catch (const io::io_error& e) {
            caught = e.what();
            CHECK(e.code().value() == EPIPE);
            CHECK(e.bytes_done() == 0);
        }
        CHECK(caught.find("broken pipe") != std::string::npos);
        CHECK_THROWS_AS(out.finish(), io::io_error);
    }
    ::signal(SIGPIPE, previous);
}

TEST_CASE("a failed write leaves a file holding exactly bytes_done bytes") {
    // A regular file opened read-only: every write fails with EBADF, and the
    // file keeps what was in it.
    scratch_dir dir;
    put_file(dir.file("ro"), "");
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        const int fd = ::open(dir.file("ro").c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        {
            io::writer out(fd, "read-only", {.depth = 4, .io = b});
            try {
                for (int i = 0; i < 8; ++i) out.write(chunk_of(random_bytes(5000, i)));
                out.finish();
                FAIL("wrote to a read-only descriptor");
            } catch (const io::io_error& e) {
                CHECK(e.code().value() == EBADF);
                CHECK(e.bytes_done() == 0);
            }
        }
        ::close(fd);
        CHECK(get_file(dir.file("ro")).empty());
    }
}

TEST_CASE("a write cut short by the file size limit keeps exactly bytes_done bytes") {
    // RLIMIT_FSIZE makes writes past the limit fail with EFBIG (the SIGXFSZ
    // that goes with it stays pending on the I/O thread, like SIGPIPE). With
    // several writes in flight, the chunk across the limit is written in
    // part and those after it fail.
    scratch_dir dir;
    const std::string data = random_bytes(12 * k_chunk, 41);
    const rlim_t limit = 2 * k_chunk + 1000;
    rlimit before{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &before) == 0);
    if (before.rlim_max != RLIM_INFINITY && before.rlim_max < limit) {
        MESSAGE("file size limit already below the test's: skipped");
        return;
    }
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        std::uint64_t done = 0;
        int failures = 0;
        {
            io::writer out(dir.file("out"), {.depth = 4, .io = b});
            rlimit low = before;
            low.rlim_cur = limit;
            REQUIRE(::setrlimit(RLIMIT_FSIZE, &low) == 0);
            try {
                for (std::size_t at = 0; at < data.size(); at += k_chunk) out.write(chunk_of(data.substr(at, k_chunk)));
                out.finish();
            } catch (const io::io_error& e) {
                ++failures;
                CHECK(e.code().value() == EFBIG);
                done = e.bytes_done();
            }
            REQUIRE(::setrlimit(RLIMIT_FSIZE, &before) == 0);
        }
        CHECK(failures == 1);
        CHECK(done == limit);
        CHECK(get_file(dir.file("out")) == data.substr(0, done));
    }
}

// ---------------------------------------------------------------------------
// configuration

TEST_CASE("FORKLINE_IO is parsed strictly") {
    using io::detail::io_setting;
    using io::detail::parse_io_setting;
    CHECK(parse_io_setting(nullptr) == io_setting::automatic);
    CHECK(parse_io_setting("") == io_setting::automatic);
    CHECK(parse_io_setting("auto") == io_setting::automatic);
    CHECK(parse_io_setting("uring") == io_setting::uring);
    CHECK(parse_io_setting("psync") == io_setting::psync);
    try {
        parse_io_setting("io_uring");
        FAIL("accepted io_uring");
    } catch (const forkline::config_error& e) {
        const std::string what = e.what();
        CHECK(what.find("FORKLINE_IO") != std::string::npos);
        CHECK(what.find("uring, psync, auto") != std::string::npos);
    }
}

TEST_CASE("the backend follows the setting and the probe") {
    using io::detail::io_setting;
    using io::detail::resolve_backend;
    CHECK(resolve_backend(io_setting::automatic, 0) == io::backend::uring);
    CHECK(resolve_backend(io_setting::automatic, EPERM) == io::backend::psync);
    CHECK(resolve_backend(io_setting::psync, 0) == io::backend::psync);
    CHECK(resolve_backend(io_setting::uring, 0) == io::backend::uring);
    try {
        resolve_backend(io_setting::uring, EPERM);
        FAIL("uring without io_uring");
    } catch (const forkline::system_failure& e) {
        CHECK(e.call() == "io_uring_queue_init");
        CHECK(e.code().value() == EPERM);
    }
    CHECK(io::detail::fallback_notice(EPERM) ==
          "forkline: io_uring unavailable (io_uring_queue_init: Operation not permitted); using pread/pwrite");
}

TEST_CASE("FORKLINE_IO=psync forces psync; a bad value is a config_error") {
    scratch_dir dir;
    put_file(dir.file("in"), "x\n");
    const char* before = std::getenv("FORKLINE_IO");
    const std::string saved = before ? before : "";
    ::setenv("FORKLINE_IO", "psync", 1);
    CHECK(io::default_backend() == io::backend::psync);
    {
        io::reader in(dir.file("in"));
        CHECK(in.used() == io::backend::psync);
        CHECK(text_of(read_all(in)) == "x\n");
    }
    ::setenv("FORKLINE_IO", "fast", 1);
    CHECK_THROWS_AS(io::default_backend(), forkline::config_error);
    CHECK_THROWS_AS(io::reader(dir.file("in")), forkline::config_error);
    if (io::detail::uring_probe_errno() == 0) {
        ::setenv("FORKLINE_IO", "uring", 1);
        CHECK(io::default_backend() == io::backend::uring);
    }
    if (before) {
        ::setenv("FORKLINE_IO", saved.c_str(), 1);
    } else {
        ::unsetenv("FORKLINE_IO");
    }
}

TEST_CASE("read_stage feeds a pipeline every byte in order, from a slow pipe and from a file") {
    const std::string data = random_bytes(scaled(1 << 20, 128 << 10) + 77, 23);
    for (const io::backend b : backends()) {
        const std::string backend = io::backend_name(b);
        CAPTURE(backend);
        forkline::runtime rt(config_for(2));
        pipe_fds p;
        // Small writes with pauses between them: the stage finds nothing
        // ready often and must pause and be resumed, not block.
        std::thread feeder = feed_pipe(p.fd[1], data, 7);
        p.fd[1] = -1;
        io::reader in(p.fd[0], "pipe", {.chunk_bytes = k_chunk, .depth = 2, .io = b});
        std::string seen;
        std::uint64_t expected_sequence = 0;
        bool in_order = true;
        const forkline::pipeline_stats st = forkline::run_pipeline(rt, 4,
            forkline::stage(forkline::serial_in_order, "read", forkline::read_stage(in)),
            forkline::stage(forkline::parallel, "pass", [](io::chunk& c) { return std::move(c); }),
            forkline::stage(forkline::serial_in_order, "join", [&](io::chunk& c, forkline::flow_control& fc) {
                in_order = in_order && fc.sequence() == expected_sequence++;
                seen.append(c.data.data(), c.data.size());
            }));
        feeder.join();
        CHECK(in_order);
        CHECK(seen == data);
        CHECK(st.items == expected_sequence);
        scratch_dir dir;
        const std::string path = dir.path + "/f";
        put_file(path, data);
        io::reader file(path, {.chunk_bytes = k_chunk, .io = b});
        std::string again;
        forkline::run_pipeline(rt, 4,
            forkline::stage(forkline::serial_in_order, "read", forkline::read_stage(file)),
            forkline::stage(forkline::serial_in_order, "join", [&](io::chunk& c) { again.append(c.data.data(), c.data.size()); }));
        CHECK(again == data);
    }
}

namespace {

// Text of lines of random lengths (some empty, some far longer than a
// piece), with or without a newline at the very end.
std::string lines_text(std::size_t approx, std::uint64_t seed, bool final_newline) {
    std::mt19937_64 rng(seed);
    std::string s;
    while (s.size() < approx) {
        const std::size_t kind = rng() % 20;
        const std::size_t len = kind == 0 ? 0 : kind == 1 ? 3000 + rng() % 9000 : rng() % 120;
        for (std::size_t i = 0; i < len; ++i) s.push_back(static_cast<char>('a' + rng() % 26));
        s.push_back('\n');
    }
    if (!final_newline && !s.empty()) s.back() = 'z';
    return s;
}

// Every piece read, in sequence order, on up to `threads` threads at once.
std::vector<io::chunk> read_pieces(const io::positional_reader& in, std::vector<io::positional_reader::piece> pieces,
                                   unsigned threads) {
    std::vector<io::chunk> out(pieces.size());
    std::atomic<std::size_t> next{0};
    auto work = [&] {
        io::buffer reused;  // each thread reuses its own buffer, as a worker would
        for (std::size_t i; (i = next.fetch_add(1)) < pieces.size();) {
            io::chunk c = in.read(pieces[i], std::move(reused));
            io::chunk copy = chunk_of(std::string(c.data.data(), c.data.size()));
            copy.sequence = c.sequence;
            copy.offset = c.offset;
            out[i] = std::move(copy);
            reused = std::move(c.data);
        }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
    return out;
}

}  // namespace

TEST_CASE("positional_reader: pieces cover the file in order, read back exactly, on several threads") {
    scratch_dir dir;
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{4095}, std::size_t{65536}, std::size_t{200'001}}) {
        for (std::size_t piece : {std::size_t{1}, std::size_t{4096}, std::size_t{65536}}) {
            if (piece == 1 && size > 5000) continue;
            CAPTURE(size);
            CAPTURE(piece);
            const std::string data = random_bytes(size, size + piece);
            put_file(dir.file("f"), data);
            io::positional_reader in(dir.file("f"), {.piece_bytes = piece});
            CHECK(in.size() == size);
            std::vector<io::positional_reader::piece> pieces;
            std::uint64_t expect_offset = 0;
            while (auto p = in.next()) {
                CHECK(p->sequence == pieces.size());
                CHECK(p->offset == expect_offset);
                CHECK(p->length >= 1);
                CHECK(p->length <= piece);
                expect_offset += p->length;
                pieces.push_back(*p);
            }
            CHECK(expect_offset == size);
            CHECK(!in.next());  // and stays at the end
            const std::vector<io::chunk> chunks = read_pieces(in, pieces, 3);
            for (std::size_t i = 0; i < chunks.size(); ++i) {
                CHECK(chunks[i].sequence == i);
                CHECK(chunks[i].offset == pieces[i].offset);
            }
            CHECK(text_of(chunks) == data);
        }
    }
}

TEST_CASE("positional_reader whole_lines: each line once, whole, in the piece where it starts") {
    scratch_dir dir;
    for (bool final_newline : {true, false}) {
        for (std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{100}, std::size_t{4096}, std::size_t{65536}}) {
            CAPTURE(final_newline);
            CAPTURE(piece);
            const std::string data = lines_text(piece == 1 ? 3000 : 300'000, piece, final_newline);
            put_file(dir.file("log"), data);
            io::positional_reader in(dir.file("log"), {.piece_bytes = piece, .whole_lines = true});
            std::vector<io::positional_reader::piece> pieces;
            while (auto p = in.next()) pieces.push_back(*p);
            const std::vector<io::chunk> chunks = read_pieces(in, pieces, 4);
            CHECK(text_of(chunks) == data);
            for (std::size_t i = 0; i < chunks.size(); ++i) {
                const io::chunk& c = chunks[i];
                if (c.data.empty()) continue;
                // The chunk starts a line, at its stated offset, inside its piece...
                CHECK(data.compare(c.offset, c.data.size(), c.data.data(), c.data.size()) == 0);
                CHECK((c.offset == 0 || data[c.offset - 1] == '\n'));
                CHECK(c.offset >= pieces[i].offset);
                CHECK(c.offset < pieces[i].offset + pieces[i].length);
                // ...and ends one, unless the file ends without a newline.
                const bool at_end = c.offset + c.data.size() == data.size();
                CHECK((c.data.data()[c.data.size() - 1] == '\n' || (at_end && !final_newline)));
            }
        }
    }
}

TEST_CASE("positional_reader: what it refuses, with the file and the call") {
    scratch_dir dir;
    try {
        io::positional_reader in(dir.file("missing"));
        FAIL("a missing file was opened");
    } catch (const io::io_error& e) {
        CHECK(e.call() == "open");
        CHECK(e.code().value() == ENOENT);
        CHECK(e.file() == dir.file("missing"));
    }
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const std::string pipe_path = "/proc/self/fd/" + std::to_string(fds[0]);
    CHECK_THROWS_AS(io::positional_reader{pipe_path}, forkline::config_error);
    ::close(fds[0]);
    ::close(fds[1]);
    put_file(dir.file("f"), "abc\n");
    CHECK_THROWS_AS(io::positional_reader(dir.file("f"), io::positional_options{.piece_bytes = 0}), forkline::config_error);
    // A file that shrinks after it was opened: the read says so, naming the file.
    put_file(dir.file("shrinks"), random_bytes(100'000, 1));
    io::positional_reader in(dir.file("shrinks"), {.piece_bytes = 60'000});
    const auto first = in.next();
    const auto second = in.next();
    REQUIRE(second);
    REQUIRE(::truncate(dir.file("shrinks").c_str(), 70'000) == 0);
    CHECK(in.read(*first).data.size() == 60'000);
    try {
        (void)in.read(*second);
        FAIL("a read past the shrunk end succeeded");
    } catch (const io::io_error& e) {
        CHECK(e.call() == "pread");
        CHECK(e.code().value() == ENODATA);
        CHECK(e.file() == dir.file("shrinks"));
    }
}

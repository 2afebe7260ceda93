// bench/read/read_forkline.cpp: forkline-read, a sequential read plus checksum
// of one file through forkline's reader, the figure scripts/bench-io sets
// beside `cat FILE > /dev/null` and fio's io_uring and psync engines.
//
//   forkline-read [--chunk-kib K] [--depth D] [-p N] [--positional] FILE
//
// --positional: each worker reads its own pieces (io::positional_reader)
// instead of taking chunks from the reader's thread.
//
// Prints "BYTES CHECKSUM" (the checksum: a sum of 64-bit little-endian words,
// each chunk's sum placed by its offset, so any chunk size gives the same
// answer) and exits 0; on failure prints the error and exits 1.
#include <forkline/io.hpp>        // reader, positional_reader
#include <forkline/pipeline.hpp>  // run_pipeline, stage
#include <forkline/runtime.hpp>   // runtime

#include <cstdint>    // uint64_t
#include <cstdio>     // printf, fprintf
#include <cstdlib>    // strtoul
#include <cstring>    // memcpy, strcmp
#include <exception>  // exception
#include <string>     // string
#include <utility>    // pair, move
#include <vector>     // vector

namespace {

// Sum of the 64-bit words of the stream, where a word is the 8 bytes at a
// stream offset that is a multiple of 8 (the tail zero-padded). Chunks start
// at multiples of their size; a chunk that does not start on a multiple of 8
// is rotated into place, so the result never depends on the chunk size.
std::uint64_t word_sum(const char* p, std::size_t n, std::uint64_t offset) {
    std::uint64_t sum = 0;
    std::size_t i = 0;
    const unsigned lead = static_cast<unsigned>(offset % 8);
    if (lead != 0) {  // bytes up to the next multiple of 8
        std::uint64_t w = 0;
        for (; i < n && (lead + i) % 8 != 0; ++i) {
            w |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * ((lead + i) % 8));
        }
        sum += w;
    }
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        sum += w;
    }
    std::uint64_t w = 0;
    for (unsigned k = 0; i < n; ++i, ++k) {
        w |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * k);
    }
    return sum + w;
}

void usage(std::FILE* to) {
    std::fprintf(to, "usage: forkline-read [--chunk-kib K] [--depth D] [-p N] [--positional] FILE\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t chunk_kib = 1024;
    unsigned depth = 4;
    unsigned workers = 0;
    bool positional = false;
    const char* path = nullptr;
    for (int i = 1; i < argc; ++i) {
        const bool has_value = i + 1 < argc;
        if (std::strcmp(argv[i], "--chunk-kib") == 0 && has_value) {
            chunk_kib = std::strtoul(argv[++i], nullptr, 10);
        } else if (std::strcmp(argv[i], "--depth") == 0 && has_value) {
            depth = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
        } else if (std::strcmp(argv[i], "-p") == 0 && has_value) {
            workers = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
        } else if (std::strcmp(argv[i], "--positional") == 0) {
            positional = true;
        } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (path == nullptr && argv[i][0] != '-') {
            path = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (path == nullptr || chunk_kib == 0 || depth == 0) {
        usage(stderr);
        return 2;
    }
    try {
        forkline::runtime_config cfg;
        if (workers > 0) cfg.placement.workers = workers;
        forkline::runtime rt(cfg);
        std::uint64_t total = 0;
        std::uint64_t bytes = 0;
        if (positional) {
            // Each worker reads its own pieces into its own buffer and sums them there.
            forkline::io::positional_reader in(path, {.piece_bytes = chunk_kib << 10});
            struct alignas(64) worker_buffer {
                forkline::io::buffer b;
            };
            std::vector<worker_buffer> buffers(rt.worker_count());
            forkline::run_pipeline(
                rt, 2 * rt.worker_count() + depth,
                forkline::stage(forkline::serial_in_order, "pieces",
                                [&](forkline::flow_control& fc) {
                                    const auto p = in.next();
                                    if (!p) fc.stop();
                                    return p.value_or(forkline::io::positional_reader::piece{});
                                }),
                forkline::stage(forkline::parallel, "read+checksum",
                                [&](forkline::io::positional_reader::piece& p) {
                                    forkline::io::buffer& mine =
                                        buffers[static_cast<unsigned>(rt.current_worker_index())].b;
                                    forkline::io::chunk c = in.read(p, std::move(mine));
                                    const std::pair<std::uint64_t, std::uint64_t> r{
                                        c.data.size(), word_sum(c.data.data(), c.data.size(), c.offset)};
                                    mine = std::move(c.data);
                                    return r;
                                }),
                forkline::stage(forkline::serial_out_of_order, "sum",
                                [&](std::pair<std::uint64_t, std::uint64_t>& r) {
                                    bytes += r.first;
                                    total += r.second;
                                }));
            std::printf("%llu %016llx\n", static_cast<unsigned long long>(bytes),
                        static_cast<unsigned long long>(total));
            return 0;
        }
        forkline::io::reader in(path, {.chunk_bytes = chunk_kib << 10, .depth = depth});
        forkline::run_pipeline(
            rt, 2 * rt.worker_count() + depth,
            forkline::stage(forkline::serial_in_order, "read",
                            [&](forkline::flow_control& fc) -> forkline::io::chunk {
                                forkline::io::chunk c;
                                forkline::resume_handle h = fc.pause();
                                switch (in.try_next(c, [h] { h.resume(); })) {
                                    case forkline::io::reader::poll::ready: fc.unpause(); break;
                                    case forkline::io::reader::poll::pending: break;
                                    case forkline::io::reader::poll::end:
                                        fc.unpause();
                                        fc.stop();
                                        break;
                                }
                                return c;
                            }),
            forkline::stage(forkline::parallel, "checksum",
                            [](forkline::io::chunk& c) {
                                const std::uint64_t s = word_sum(c.data.data(), c.data.size(), c.offset);
                                return std::pair{std::move(c), s};
                            }),
            forkline::stage(forkline::serial_out_of_order, "sum",
                            [&](std::pair<forkline::io::chunk, std::uint64_t>& r) {
                                total += r.second;
                                bytes += r.first.data.size();
                                in.recycle(std::move(r.first));
                            }));
        std::printf("%llu %016llx\n", static_cast<unsigned long long>(bytes),
                    static_cast<unsigned long long>(total));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "forkline-read: %s\n", e.what());
        return 1;
    }
}

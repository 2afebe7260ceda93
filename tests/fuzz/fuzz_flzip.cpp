// tests/fuzz/fuzz_flzip.cpp: flzip's engines (examples/flzip_core.hpp) on
// arbitrary input, cut into blocks of a random size and compressed at a
// random level with a random engine the way flzip's pipeline does it (zlib
// and ISA-L: each block primed with the 32 KiB before it, a sync flush after
// every block but the last, the CRCs combined in order; libdeflate: a gzip
// member per block), then read back with zlib's own inflate: valid gzip
// holding exactly the input.
#include "flzip_core.hpp"  // block_deflater, next_window, gzip_header, gzip_trailer

#include "fuzz_support.hpp"  // FORKLINE_FUZZ_CHECK, sizes

#include <zlib.h>  // inflate*, crc32_combine

#include <algorithm>  // min, max
#include <cstddef>    // size_t
#include <cstdint>    // uint8_t, uint32_t, uint64_t
#include <cstring>    // memcpy
#include <memory>     // unique_ptr, make_unique
#include <string>     // string
#include <vector>     // vector

namespace {

namespace io = forkline::io;

io::buffer copy_of(const char* p, std::size_t n) {
    io::buffer b(n);
    if (n > 0) std::memcpy(b.data(), p, n);
    b.resize(n);
    return b;
}

void append(std::string& out, const io::chunk& c) { out.append(c.data.data(), c.data.size()); }

// zlib's inflate of whole gzip members, one after another as gzip -d reads
// them; false when zlib refuses one, one ends early, or none is there.
bool gunzip(const std::string& members, std::string& out) {
    z_stream z{};
    if (inflateInit2(&z, 16 + 15) != Z_OK) return false;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(members.data()));
    z.avail_in = static_cast<uInt>(members.size());
    char buf[16384];
    int rc = Z_OK;
    for (;;) {
        z.next_out = reinterpret_cast<Bytef*>(buf);
        z.avail_out = sizeof buf;
        rc = inflate(&z, Z_NO_FLUSH);
        out.append(buf, sizeof buf - z.avail_out);
        if (rc == Z_STREAM_END) {
            if (z.avail_in == 0) break;
            if (inflateReset(&z) != Z_OK) break;  // the next member
            rc = Z_OK;
            continue;
        }
        if (rc != Z_OK) break;  // refused, or (Z_BUF_ERROR) a member ended early
    }
    const bool whole = rc == Z_STREAM_END && z.avail_in == 0;
    inflateEnd(&z);
    return whole;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 10) return 0;
    std::uint64_t seed = 0;
    std::memcpy(&seed, data, 8);
    forkline_fuzz::sizes draw(seed);
    const int level = 1 + data[8] % 9;
    // The engine, among those built; the rest of data[8] picks it.
    flzip::engine e = static_cast<flzip::engine>((data[8] / 9) % 3);
    if (!flzip::engine_built(e)) e = flzip::engine::zlib;
    const bool members = flzip::writes_members(e);
    // Blocks from 1 byte (flzip's smallest is 32 KiB; the engine takes any)
    // up to past the window, and inputs repeated to reach beyond it too.
    const std::size_t block = (data[9] & 3) == 3 ? draw.in(1, 70000) : draw.in(1, 512);
    const std::size_t repeat = (data[9] & 0x1c) == 0x1c ? draw.in(2, 200) : 1;
    constexpr std::size_t k_max_input = std::size_t{128} << 10;  // past the window four times
    // Mostly one z_stream for every block, kept from input to input, as a
    // worker keeps its own; now and then a fresh one per block (flzip's
    // fallback off the workers).
    const bool shared_stream = (data[9] & 0xe0) != 0xe0;
    std::string input;
    for (std::size_t r = 0; r < repeat; ++r) input.append(reinterpret_cast<const char*>(data + 10), size - 10);
    if (input.size() > k_max_input) input.resize(k_max_input);
    // At most 64 blocks: each primes its stream with up to 32 KiB, so tiny
    // blocks over a long input would spend the run hashing windows.
    const std::size_t block_bytes = std::max(block, input.size() / 64 + 1);

    std::string member;
    if (!members) append(member, flzip::gzip_header(level));
    static std::unique_ptr<flzip::block_compressor> workers[3][10];
    std::unique_ptr<flzip::block_compressor>& kept = workers[static_cast<int>(e)][level];
    if (!kept) kept = flzip::make_compressor(e, level);
    flzip::block_compressor& worker = *kept;
    io::buffer window;
    std::uint32_t crc = 0;
    std::uint64_t length = 0;
    std::size_t at = 0;
    do {
        const std::size_t n = std::min(block_bytes, input.size() - at);
        flzip::raw_block b;
        b.input.data = copy_of(input.data() + at, n);
        b.window = std::move(window);
        window = flzip::next_window(b.window, b.input.data.bytes());
        at += n;
        b.last = at == input.size();
        // The window is the input just before the block, at most 32 KiB of it.
        const std::size_t before = at - n;
        FORKLINE_FUZZ_CHECK(b.window.size() == std::min(before, flzip::k_window_bytes));
        FORKLINE_FUZZ_CHECK(std::string_view(b.window.data(), b.window.size()) ==
                            std::string_view(input).substr(before - b.window.size(), b.window.size()));

        flzip::packed_block p;
        if (shared_stream) {
            p = worker.deflate_block(b);
        } else {
            p = flzip::make_compressor(e, level)->deflate_block(b);
        }
        FORKLINE_FUZZ_CHECK(p.length == n);
        append(member, p.output);
        crc = static_cast<std::uint32_t>(crc32_combine(crc, p.crc, static_cast<z_off_t>(p.length)));
        length += p.length;
    } while (at < input.size());
    if (!members) append(member, flzip::gzip_trailer(crc, length, 0, 0));

    std::string back;
    FORKLINE_FUZZ_CHECK(gunzip(member, back));
    FORKLINE_FUZZ_CHECK(back == input);
    return 0;
}

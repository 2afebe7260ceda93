// examples/flzip_core.hpp: flzip's engine without its pipeline: a block's
// deflate, primed with the input before it, the window carried from block to
// block, and the gzip member's header and trailer. examples/flzip.cpp runs
// it on forkline's workers; tests/fuzz/ checks it against zlib's inflate.
#pragma once

#include <zlib.h>  // deflate*, crc32_z

#include <algorithm>  // min
#include <cstddef>    // size_t
#include <cstdint>    // uint32_t, uint64_t
#include <cstring>    // memcpy
#include <span>       // span
#include <stdexcept>  // runtime_error
#include <string>     // string, to_string

#include <forkline/io.hpp>  // io::buffer, io::chunk

namespace flzip {

namespace io = forkline::io;

// deflate's window: the most a match can reach back, hence the dictionary each
// block is primed with.
inline constexpr std::size_t k_window_bytes = 32 * 1024;

/// zlib refused: names the call, zlib's return code and its message.
class zlib_error : public std::runtime_error {
public:
    zlib_error(const char* call, int code, const char* msg)
        : std::runtime_error(std::string("zlib ") + call + ": " +
                             (msg != nullptr ? msg : zError(code)) + " (code " +
                             std::to_string(code) + ")") {}
};

/// What the read stage hands on: a block of input, the input just before it
/// (deflate's dictionary) and whether it is the last.
struct raw_block {
    io::chunk input;
    io::buffer window;  // up to k_window_bytes of the input that precedes `input`
    bool last = false;
};

/// What the deflate stage hands on.
struct packed_block {
    io::chunk output;        // raw deflate bytes; offset and sequence set by the writer
    std::uint32_t crc = 0;   // CRC-32 of the block's input alone
    std::uint64_t length = 0;
    bool handed_over = false;  // the writer took `output` (a paused call is repeated)
};

/// One z_stream, reset for every block rather than set up anew, because
/// deflateInit2 allocates and clears about 270 KiB at memLevel 8.
class block_deflater {
public:
    explicit block_deflater(int level) {
        // windowBits -15: raw deflate (the gzip framing is ours); memLevel 8
        // and the default strategy are what gzip and pigz use.
        const int rc = deflateInit2(&m_z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
        if (rc != Z_OK) throw zlib_error("deflateInit2", rc, m_z.msg);
    }
    ~block_deflater() { deflateEnd(&m_z); }
    block_deflater(const block_deflater&) = delete;
    block_deflater& operator=(const block_deflater&) = delete;

    packed_block deflate_block(raw_block& b) {
        const std::span<const char> in = b.input.data.bytes();
        packed_block p;
        p.length = in.size();
        p.crc = static_cast<std::uint32_t>(crc32_z(0, bytes_of(in.data()), in.size()));

        check(deflateReset(&m_z), "deflateReset");
        if (!b.window.empty()) {
            check(deflateSetDictionary(&m_z, bytes_of(b.window.data()),
                                       static_cast<uInt>(b.window.size())),
                  "deflateSetDictionary");
        }
        // deflateBound covers Z_FINISH; a sync flush adds one empty stored
        // block (at most 6 bytes with the bits before it). Growing below is
        // for safety only.
        std::size_t capacity = deflateBound(&m_z, static_cast<uLong>(in.size())) + 16;
        io::buffer out(capacity);
        std::size_t produced = 0;
        m_z.next_in = const_cast<Bytef*>(bytes_of(in.data()));  // zlib's API is not const
        m_z.avail_in = static_cast<uInt>(in.size());
        const int flush = b.last ? Z_FINISH : Z_SYNC_FLUSH;
        for (;;) {
            if (produced == capacity) {
                io::buffer bigger(capacity * 2);
                std::memcpy(bigger.data(), out.data(), produced);
                out = std::move(bigger);
                capacity *= 2;
            }
            m_z.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
            m_z.avail_out = static_cast<uInt>(capacity - produced);
            const int rc = ::deflate(&m_z, flush);
            produced = capacity - m_z.avail_out;
            if (rc == Z_STREAM_END) break;
            if (rc != Z_OK && rc != Z_BUF_ERROR) throw zlib_error("deflate", rc, m_z.msg);
            // A sync flush is complete once all input is taken and deflate
            // left output space unused (zlib's rule for "no more pending").
            if (flush == Z_SYNC_FLUSH && m_z.avail_in == 0 && m_z.avail_out != 0) break;
            if (m_z.avail_out != 0 && rc == Z_BUF_ERROR) throw zlib_error("deflate", rc, m_z.msg);
        }
        out.resize(produced);
        p.output.data = std::move(out);
        // The window is done with; free it now rather than when the item is.
        // (The input goes back to the reader: see the deflate stage.)
        b.window = io::buffer{};
        return p;
    }

private:
    static const Bytef* bytes_of(const char* p) noexcept { return reinterpret_cast<const Bytef*>(p); }
    void check(int rc, const char* call) {
        if (rc != Z_OK) throw zlib_error(call, rc, m_z.msg);
    }

    z_stream m_z{};
};

// The last k_window_bytes of all input so far, from the window before
// this chunk and the chunk, whatever the chunks' sizes (a pipe's may be
// short).
inline io::buffer next_window(const io::buffer& before, std::span<const char> in) {
    io::buffer w(k_window_bytes);
    if (in.size() >= k_window_bytes) {
        std::memcpy(w.data(), in.data() + in.size() - k_window_bytes, k_window_bytes);
        w.resize(k_window_bytes);
        return w;
    }
    const std::size_t keep = std::min(before.size(), k_window_bytes - in.size());
    if (keep > 0) std::memcpy(w.data(), before.data() + before.size() - keep, keep);
    if (!in.empty()) std::memcpy(w.data() + keep, in.data(), in.size());
    w.resize(keep + in.size());
    return w;
}

inline io::chunk small_chunk(std::span<const unsigned char> bytes, std::uint64_t sequence,
                      std::uint64_t offset) {
    io::chunk c;
    c.sequence = sequence;
    c.offset = offset;
    c.data = io::buffer(bytes.size());
    std::memcpy(c.data.data(), bytes.data(), bytes.size());
    c.data.resize(bytes.size());
    return c;
}

/// RFC 1952 member header: no name, no time stamp (mtime 0), OS 3 (Unix).
inline io::chunk gzip_header(int level) {
    // XFL: 2 = slowest, best compression; 4 = fastest.
    const unsigned char xfl = level == 9 ? 2 : level == 1 ? 4 : 0;
    const unsigned char h[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3};
    return small_chunk(h, 0, 0);
}

/// RFC 1952 member trailer: CRC-32 and the length mod 2^32, little-endian.
inline io::chunk gzip_trailer(std::uint32_t crc, std::uint64_t length, std::uint64_t sequence,
                       std::uint64_t offset) {
    unsigned char t[8];
    const auto isize = static_cast<std::uint32_t>(length);
    for (int i = 0; i < 4; ++i) {
        t[i] = static_cast<unsigned char>(crc >> (8 * i));
        t[4 + i] = static_cast<unsigned char>(isize >> (8 * i));
    }
    return small_chunk(t, sequence, offset);
}

}  // namespace flzip

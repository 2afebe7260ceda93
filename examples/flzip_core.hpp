// examples/flzip_core.hpp: flzip's engines without its pipeline: a block's
// deflate, primed with the input before it (zlib, ISA-L's igzip) or whole
// (libdeflate, one gzip member per block), the window carried from block to
// block, the gzip member's header and trailer, and which engine serves which
// level. examples/flzip.cpp runs them on forkline's workers; tests/fuzz/
// checks them against zlib's inflate.
#pragma once

#include <zlib.h>  // deflate*, crc32_z

// The build says which optional engines it has (examples/meson.build).
#ifndef FLZIP_HAVE_ISAL
#define FLZIP_HAVE_ISAL 0
#endif
#ifndef FLZIP_HAVE_LIBDEFLATE
#define FLZIP_HAVE_LIBDEFLATE 0
#endif

#if FLZIP_HAVE_ISAL
#include <isa-l/crc.h>        // crc32_gzip_refl
#include <isa-l/igzip_lib.h>  // isal_deflate*
#endif
#if FLZIP_HAVE_LIBDEFLATE
#include <libdeflate.h>  // libdeflate_*compress*, libdeflate_crc32
#endif

#include <algorithm>  // min
#include <cstddef>    // size_t
#include <cstdint>    // uint32_t, uint64_t
#include <cstring>    // memcpy
#include <memory>     // unique_ptr, make_unique
#include <optional>   // optional
#include <span>       // span
#include <stdexcept>  // runtime_error
#include <string>     // string, to_string
#include <string_view>  // string_view
#include <vector>     // vector

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

/// ISA-L or libdeflate refused: names the library, the call and its code.
class engine_error : public std::runtime_error {
public:
    engine_error(const char* library, const char* call, long code)
        : std::runtime_error(std::string(library) + " " + call + " failed (code " +
                             std::to_string(code) + ")") {}
};

/// The deflate engines flzip can run. Which serves a level by default was
/// measured (bench/RESULTS.md "flzip's deflate engines"): the fastest whose
/// output is at most 1% larger than zlib's at the same level.
enum class engine { zlib, isal, libdeflate };

inline const char* engine_name(engine e) noexcept {
    switch (e) {
        case engine::isal: return "isal";
        case engine::libdeflate: return "libdeflate";
        case engine::zlib: break;
    }
    return "zlib";
}

inline std::optional<engine> parse_engine(std::string_view name) noexcept {
    if (name == "zlib") return engine::zlib;
    if (name == "isal") return engine::isal;
    if (name == "libdeflate") return engine::libdeflate;
    return std::nullopt;
}

/// Whether this build has the engine (ISA-L and libdeflate are optional).
inline bool engine_built(engine e) noexcept {
    switch (e) {
        case engine::isal: return FLZIP_HAVE_ISAL != 0;
        case engine::libdeflate: return FLZIP_HAVE_LIBDEFLATE != 0;
        case engine::zlib: break;
    }
    return true;
}

/// The engine for a level when none is named: ISA-L at 1 (3.7x zlib's speed,
/// 2% smaller output), libdeflate at 2-7 (1.0-1.7x, 3-5% smaller), zlib at 8
/// and 9 (where libdeflate was 10-30% slower). Falls back to zlib where the
/// build lacks the measured choice.
inline engine default_engine(int level) noexcept {
    engine e = level <= 1 ? engine::isal : level <= 7 ? engine::libdeflate : engine::zlib;
    return engine_built(e) ? e : engine::zlib;
}

/// Block size when none is given. zlib's 128 KiB is pigz's. ISA-L was 10-15%
/// faster at 512 KiB than at 128 (less per-block set-up and flushing);
/// libdeflate has no dictionary, so each block starts with no history, which
/// cost 5% in size at 128 KiB and under 1% at 1 MiB.
inline std::size_t default_block_kib(engine e) noexcept {
    switch (e) {
        case engine::isal: return 512;
        case engine::libdeflate: return 1024;
        case engine::zlib: break;
    }
    return 128;
}

/// Whether the engine writes each block as a gzip member of its own (header,
/// deflate data, trailer) rather than a piece of one member's deflate stream.
inline bool writes_members(engine e) noexcept { return e == engine::libdeflate; }

/// The engine's level for a gzip level 1-9: ISA-L has levels 0-3 only.
inline int engine_level(engine e, int level) noexcept {
    return e == engine::isal ? std::min(level, 3) : level;
}

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

/// Compresses one block at a time; one per worker, kept from block to block.
class block_compressor {
public:
    virtual ~block_compressor() = default;
    virtual packed_block deflate_block(raw_block& b) = 0;
};

/// One z_stream, reset for every block rather than set up anew, because
/// deflateInit2 allocates and clears about 270 KiB at memLevel 8.
class block_deflater final : public block_compressor {
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

    packed_block deflate_block(raw_block& b) override {
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

namespace flzip {

#if FLZIP_HAVE_ISAL
/// ISA-L's igzip: one isal_zstream per worker, reset for every block, primed
/// with the window like zlib's and ended with a sync flush (or the end of
/// the stream), so that its blocks join zlib's layout: one gzip member.
class isal_deflater final : public block_compressor {
public:
    explicit isal_deflater(int level) : m_level_buf(level_buf_bytes(level)) {
        isal_deflate_init(&m_s);
        m_s.level = static_cast<std::uint32_t>(level);
        m_s.level_buf = m_level_buf.empty() ? nullptr : m_level_buf.data();
        m_s.level_buf_size = static_cast<std::uint32_t>(m_level_buf.size());
        m_s.gzip_flag = IGZIP_DEFLATE;  // raw deflate: the gzip framing is ours
    }

    packed_block deflate_block(raw_block& b) override {
        const std::span<const char> in = b.input.data.bytes();
        packed_block p;
        p.length = in.size();
        p.crc = crc32_gzip_refl(0, bytes_of(in.data()), in.size());

        isal_deflate_reset(&m_s);  // keeps level, buffers, framing
        m_s.flush = SYNC_FLUSH;
        m_s.end_of_stream = b.last ? 1 : 0;
        if (!b.window.empty()) {
            const int rc = isal_deflate_set_dict(&m_s, bytes_of(b.window.data()),
                                                 static_cast<std::uint32_t>(b.window.size()));
            if (rc != COMP_OK) throw engine_error("ISA-L", "isal_deflate_set_dict", rc);
        }
        // Stored blocks bound what incompressible input costs: 5 bytes per
        // 64 KiB, plus a block header and the flush. Growing is for safety.
        std::size_t capacity = in.size() + in.size() / 1024 + ISAL_DEF_MAX_HDR_SIZE + 64;
        io::buffer out(capacity);
        std::size_t produced = 0;
        m_s.next_in = const_cast<std::uint8_t*>(bytes_of(in.data()));  // the API is not const
        m_s.avail_in = static_cast<std::uint32_t>(in.size());
        // Done when all input is taken and the flush (or the final block)
        // is written; ISA-L resumes where it stopped when output ran out.
        int idle_calls = 0;
        for (;;) {
            if (produced == capacity) {
                // Deflate never needs four times its input (stored blocks
                // cost 5 bytes per 64 KiB): past that ISA-L is looping.
                if (capacity > 4 * in.size() + (std::size_t{1} << 20)) {
                    throw engine_error("ISA-L", "isal_deflate (output without end)", m_s.internal_state.state);
                }
                io::buffer bigger(capacity * 2);
                std::memcpy(bigger.data(), out.data(), produced);
                out = std::move(bigger);
                capacity *= 2;
            }
            const std::uint32_t in_before = m_s.avail_in;
            m_s.next_out = reinterpret_cast<std::uint8_t*>(out.data() + produced);
            m_s.avail_out = static_cast<std::uint32_t>(capacity - produced);
            const std::size_t out_before = produced;
            const int rc = isal_deflate(&m_s);
            produced = capacity - m_s.avail_out;
            if (rc != COMP_OK) throw engine_error("ISA-L", "isal_deflate", rc);
            const auto state = m_s.internal_state.state;
            if (m_s.avail_in == 0 && (b.last ? state == ZSTATE_END : state == ZSTATE_NEW_HDR)) break;
            // Two calls in a row that neither took input nor wrote output,
            // with room to write, would loop for ever: ISA-L's fault, said.
            const bool idle = m_s.avail_in == in_before && produced == out_before && produced != capacity;
            idle_calls = idle ? idle_calls + 1 : 0;
            if (idle_calls == 2) throw engine_error("ISA-L", "isal_deflate (no progress)", state);
        }
        out.resize(produced);
        p.output.data = std::move(out);
        b.window = io::buffer{};
        return p;
    }

private:
    static std::size_t level_buf_bytes(int level) {
        switch (level) {
            case 0: return 0;
            case 1: return ISAL_DEF_LVL1_DEFAULT;
            case 2: return ISAL_DEF_LVL2_DEFAULT;
            case 3: return ISAL_DEF_LVL3_DEFAULT;
            default: throw engine_error("ISA-L", "level (0-3 only)", level);
        }
    }
    static std::uint8_t* bytes_of(char* p) noexcept { return reinterpret_cast<std::uint8_t*>(p); }
    static const std::uint8_t* bytes_of(const char* p) noexcept {
        return reinterpret_cast<const std::uint8_t*>(p);
    }

    std::vector<std::uint8_t> m_level_buf;  // the level's hash tables; isal_zstream points here
    isal_zstream m_s{};
};
#endif

#if FLZIP_HAVE_LIBDEFLATE
/// libdeflate: a whole buffer at a time, with no dictionary and no way to
/// leave a stream open, so every block becomes a gzip member of its own
/// (RFC 1952 allows a file of several; gzip -d, pigz -d and zlib's
/// gunzip read them as one). The input's first 32 KiB has no history to
/// refer back to, which large blocks make rare.
class libdeflate_member_compressor final : public block_compressor {
public:
    explicit libdeflate_member_compressor(int level)
        : m_c(libdeflate_alloc_compressor(level)), m_level(level) {
        if (m_c == nullptr) throw engine_error("libdeflate", "libdeflate_alloc_compressor", level);
    }
    ~libdeflate_member_compressor() override { libdeflate_free_compressor(m_c); }
    libdeflate_member_compressor(const libdeflate_member_compressor&) = delete;
    libdeflate_member_compressor& operator=(const libdeflate_member_compressor&) = delete;

    packed_block deflate_block(raw_block& b) override {
        const std::span<const char> in = b.input.data.bytes();
        packed_block p;
        p.length = in.size();
        p.crc = static_cast<std::uint32_t>(libdeflate_crc32(0, in.data(), in.size()));

        const io::chunk header = gzip_header(m_level);
        const std::size_t h = header.data.size();
        const std::size_t bound = libdeflate_deflate_compress_bound(m_c, in.size());
        io::buffer out(h + bound + 8);
        std::memcpy(out.data(), header.data.data(), h);
        const std::size_t n =
            libdeflate_deflate_compress(m_c, in.data(), in.size(), out.data() + h, bound);
        // The bound is libdeflate's promise; 0 means it was broken.
        if (n == 0) throw engine_error("libdeflate", "libdeflate_deflate_compress", 0);
        const io::chunk trailer = gzip_trailer(p.crc, p.length, 0, 0);
        std::memcpy(out.data() + h + n, trailer.data.data(), trailer.data.size());
        out.resize(h + n + trailer.data.size());
        p.output.data = std::move(out);
        b.window = io::buffer{};
        return p;
    }

private:
    libdeflate_compressor* m_c;
    int m_level;
};
#endif

/// A compressor of engine `e` for gzip level `level` (1-9); throws
/// engine_error when this build lacks the engine.
inline std::unique_ptr<block_compressor> make_compressor(engine e, int level) {
    switch (e) {
        case engine::isal:
#if FLZIP_HAVE_ISAL
            return std::make_unique<isal_deflater>(engine_level(e, level));
#else
            throw engine_error("ISA-L", "(not in this build)", 0);
#endif
        case engine::libdeflate:
#if FLZIP_HAVE_LIBDEFLATE
            return std::make_unique<libdeflate_member_compressor>(level);
#else
            throw engine_error("libdeflate", "(not in this build)", 0);
#endif
        case engine::zlib: break;
    }
    return std::make_unique<block_deflater>(level);
}

}  // namespace flzip

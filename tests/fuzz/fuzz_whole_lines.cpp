// tests/fuzz/fuzz_whole_lines.cpp: io::reader's whole-line chunking (the
// chunk_former of runtime/chunk_former.hpp, as the reader drives it) on
// arbitrary bytes cut into raw reads of random sizes, with the chunks handed
// back for reuse as the reader's recycle() takes them. Against a plain split
// of the same bytes into lines: the chunks hold the same lines in the same
// order, none lost or repeated, every chunk but the input's last ends at a
// line end, and a chunk is at most room + chunk_bytes unless it is one line.
#include <forkline/io.hpp>  // buffer, chunk

#include "chunk_former.hpp"  // chunk_former, buffer_access
#include "fuzz_support.hpp"  // FORKLINE_FUZZ_CHECK, sizes

#include <algorithm>    // min, count
#include <cstddef>      // size_t
#include <cstdint>      // uint8_t, uint64_t
#include <cstring>      // memcpy
#include <string>       // string
#include <string_view>  // string_view
#include <utility>      // move
#include <vector>       // vector

namespace {

using forkline::io::buffer;
using forkline::io::chunk;
using forkline::io::detail::buffer_access;
using forkline::io::detail::chunk_former;

// The reader's front room for the carried partial line: min(chunk_bytes,
// 16 KiB), as read_shared::start() sets it.
constexpr std::size_t k_carry_room = 16 * 1024;

std::vector<std::string_view> lines_of(std::string_view s) {
    std::vector<std::string_view> out;
    while (!s.empty()) {
        const std::size_t nl = s.find('\n');
        const std::size_t n = nl == std::string_view::npos ? s.size() : nl + 1;
        out.push_back(s.substr(0, n));
        s.remove_prefix(n);
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 9) return 0;
    std::uint64_t seed = 0;
    std::memcpy(&seed, data, 8);
    forkline_fuzz::sizes draw(seed);
    const bool whole_lines = (data[8] & 7) != 0;
    // Mostly small chunks, so that short inputs still cross many of them and
    // lines longer than the room are common; now and then a large one.
    const std::size_t chunk_bytes = (data[8] & 0xf8) == 0xf8 ? draw.in(1, 40000) : draw.in(1, 64);
    const std::size_t room = whole_lines ? std::min(chunk_bytes, k_carry_room) : 0;
    const std::string_view input(reinterpret_cast<const char*>(data + 9), size - 9);

    chunk_former former;
    former.configure(whole_lines, room);
    std::vector<buffer> spare;  // handed back, of the reader's size
    std::vector<chunk> chunks;
    std::string out;
    buffer raw;
    const auto collect = [&] {
        for (chunk& c : former.formed()) {
            FORKLINE_FUZZ_CHECK(c.sequence == chunks.size());
            FORKLINE_FUZZ_CHECK(c.offset == out.size());
            out.append(c.data.data(), c.data.size());
            chunk kept;
            kept.sequence = c.sequence;
            kept.offset = c.offset;
            kept.data = buffer(c.data.size());
            if (c.data.size() > 0) std::memcpy(kept.data.data(), c.data.data(), c.data.size());
            kept.data.resize(c.data.size());
            chunks.push_back(std::move(kept));
            // recycle(): only buffers of the reader's own size are kept.
            if (buffer_access::allocation(c.data) == room + chunk_bytes) spare.push_back(std::move(c.data));
        }
        former.formed().clear();
    };

    for (std::size_t at = 0; at < input.size();) {
        // A read fills at most chunk_bytes; a pipe may give less.
        const std::size_t n = std::min<std::size_t>(draw.in(1, chunk_bytes), input.size() - at);
        if (raw.capacity() == 0) {
            if (!spare.empty() && draw.in(0, 1) == 1) {
                raw = std::move(spare.back());
                spare.pop_back();
            } else {
                raw = buffer(room + chunk_bytes);
            }
        }
        buffer_access::place(raw, room, 0);
        FORKLINE_FUZZ_CHECK(raw.capacity() == chunk_bytes);
        std::memcpy(raw.data(), input.data() + at, n);
        former.form(raw, n);
        at += n;
        collect();
    }
    former.end_of_input();
    collect();

    FORKLINE_FUZZ_CHECK(out == input);
    FORKLINE_FUZZ_CHECK(former.emitted() == input.size());
    if (!whole_lines) return 0;

    std::vector<std::string_view> got;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        const std::string_view c(chunks[i].data.data(), chunks[i].data.size());
        FORKLINE_FUZZ_CHECK(!c.empty());
        const bool last = i + 1 == chunks.size();
        if (!last) FORKLINE_FUZZ_CHECK(c.back() == '\n');
        const std::vector<std::string_view> lines = lines_of(c);
        if (c.size() > room + chunk_bytes) FORKLINE_FUZZ_CHECK(lines.size() == 1);
        got.insert(got.end(), lines.begin(), lines.end());
    }
    FORKLINE_FUZZ_CHECK(got == lines_of(input));
    return 0;
}

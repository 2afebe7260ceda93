// tests/fuzz/fuzz_positional_lines.cpp: io::positional_reader with
// whole_lines on arbitrary bytes (written to a file) cut into pieces of a
// random size and read in a random order, each read reusing a buffer left
// by another. Against a plain split of the same bytes into lines: the
// chunks, put back in sequence order, are the input; each chunk is whole
// lines (ends after a newline, or at the end of the input) starting where it
// says, inside its piece.
#include <forkline/io.hpp>  // positional_reader, buffer, chunk

#include "fuzz_support.hpp"  // FORKLINE_FUZZ_CHECK, sizes

#include <unistd.h>  // write, close, unlink, getpid

#include <algorithm>  // swap
#include <cstddef>    // size_t
#include <cstdint>    // uint8_t, uint64_t
#include <cstdlib>    // mkstemp
#include <cstring>    // memcpy
#include <string>     // string, to_string
#include <utility>    // move
#include <vector>     // vector

namespace {

namespace io = forkline::io;

// One scratch file for the whole run, rewritten for every input.
const std::string& scratch() {
    static const std::string path = [] {
        std::string p = "/tmp/fuzz-positional-" + std::to_string(::getpid()) + "-XXXXXX";
        const int fd = ::mkstemp(p.data());
        if (fd >= 0) ::close(fd);
        return p;
    }();
    return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 9) return 0;
    std::uint64_t seed = 0;
    std::memcpy(&seed, data, 8);
    forkline_fuzz::sizes draw(seed);
    const std::string text(reinterpret_cast<const char*>(data + 8), size - 8);
    {
        FILE* f = std::fopen(scratch().c_str(), "wb");
        FORKLINE_FUZZ_CHECK(f != nullptr);
        if (!text.empty()) FORKLINE_FUZZ_CHECK(std::fwrite(text.data(), 1, text.size(), f) == text.size());
        std::fclose(f);
    }
    const std::size_t piece = draw.in(1, (seed & 1) != 0 ? 16 : 70000);
    io::positional_reader in(scratch(), {.piece_bytes = piece, .whole_lines = true});
    FORKLINE_FUZZ_CHECK(in.size() == text.size());
    std::vector<io::positional_reader::piece> pieces;
    while (auto p = in.next()) pieces.push_back(*p);
    // A random order, as workers would take them.
    std::vector<std::size_t> order(pieces.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[draw.in(0, i - 1)]);
    std::vector<std::string> got(pieces.size());
    std::vector<std::uint64_t> where(pieces.size());
    io::buffer reused;
    for (const std::size_t i : order) {
        io::chunk c = in.read(pieces[i], std::move(reused));
        FORKLINE_FUZZ_CHECK(c.sequence == pieces[i].sequence);
        got[i].assign(c.data.data(), c.data.size());
        where[i] = c.offset;
        reused = std::move(c.data);
    }
    std::string all;
    for (std::size_t i = 0; i < got.size(); ++i) {
        const std::string& g = got[i];
        if (g.empty()) continue;
        // Starts a line, where it says, inside its piece.
        FORKLINE_FUZZ_CHECK(where[i] == all.size());
        FORKLINE_FUZZ_CHECK(where[i] == 0 || text[where[i] - 1] == '\n');
        FORKLINE_FUZZ_CHECK(where[i] >= pieces[i].offset && where[i] < pieces[i].offset + pieces[i].length);
        // Ends one, unless it ends the input.
        FORKLINE_FUZZ_CHECK(g.back() == '\n' || where[i] + g.size() == text.size());
        all += g;
    }
    FORKLINE_FUZZ_CHECK(all == text);
    return 0;
}

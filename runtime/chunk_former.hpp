// runtime/chunk_former.hpp: the reader's last step, raw chunks in input
// order made into the chunks it hands out (numbered, placed, and with
// whole_lines ended at a line end). Apart from runtime/io.cpp so that the
// splitting can be driven without files or threads (tests/fuzz/).
// See "Whole lines" in runtime/DESIGN.md.
#pragma once

#include <string.h>  // memchr, memrchr (GNU)

#include <algorithm>  // max
#include <cstddef>    // size_t
#include <cstdint>    // uint64_t
#include <cstring>    // memcpy
#include <utility>    // exchange, move
#include <vector>     // vector

#include "forkline/io.hpp"  // buffer, chunk

namespace forkline::io::detail {

/// The reader's hold on a buffer's front room (see buffer::m_front).
struct buffer_access {
    static std::size_t allocation(const buffer& b) noexcept { return b.m_front + b.m_capacity; }
    /// data() moves to `front` bytes into the allocation and holds `size` bytes.
    static void place(buffer& b, std::size_t front, std::size_t size) noexcept {
        const std::size_t total = b.m_front + b.m_capacity;
        b.m_front = front;
        b.m_capacity = total - front;
        b.m_size = size;
    }
    /// For memory the kernel may still write: never freed.
    static void abandon(buffer& b) noexcept {
        (void)b.m_data.release();
        b = buffer{};
    }
};

/// Turns raw chunks, in input order, into the chunks handed out: numbers
/// them, places them in the stream and, with whole_lines, ends each after its
/// last '\n', carrying the partial line into the next. Belongs to whoever
/// owns reading (read_shared::owner), so that it moves between the consumer
/// and the I/O thread with the raw chunks. See "Whole lines" in
/// runtime/DESIGN.md.
class chunk_former {
public:
    void configure(bool whole_lines, std::size_t room) noexcept {
        m_whole_lines = whole_lines;
        m_room = room;
    }

    /// raw holds `filled` (> 0) bytes after `room` bytes of front room; it is
    /// moved into a chunk when it becomes one, else left as it was.
    void form(buffer& raw, std::size_t filled) {
        raw.resize(filled);
        if (!m_whole_lines) {
            emit(std::move(raw));
            return;
        }
        const std::size_t n = raw.size();
        std::size_t skip = 0;  // bytes of raw that went out with a long line
        if (m_carry.size() > m_room) {
            // Too long to go in front: the line is finished in the carry and
            // becomes a chunk of its own.
            const void* nl = ::memchr(raw.data(), '\n', n);
            if (nl == nullptr) {
                append_carry(raw.data(), n);
                return;
            }
            skip = static_cast<std::size_t>(static_cast<const char*>(nl) - raw.data()) + 1;
            append_carry(raw.data(), skip);
            emit(std::exchange(m_carry, buffer{}));
            if (skip == n) return;
        }
        const std::size_t carried = m_carry.size();  // <= room
        buffer_access::place(raw, m_room + skip - carried, carried + n - skip);
        if (carried > 0) {
            std::memcpy(raw.data(), m_carry.data(), carried);
            m_carry.resize(0);
        }
        // Only the new bytes can hold a '\n': the carry never does.
        const void* last = ::memrchr(raw.data() + carried, '\n', n - skip);
        if (last == nullptr) {
            append_carry(raw.data(), raw.size());
            return;
        }
        const std::size_t keep = static_cast<std::size_t>(static_cast<const char*>(last) - raw.data()) + 1;
        if (keep < raw.size()) append_carry(raw.data() + keep, raw.size() - keep);
        raw.resize(keep);
        emit(std::move(raw));
    }

    /// The input ended: a partial line left is the last chunk.
    void end_of_input() {
        if (m_carry.size() > 0) emit(std::exchange(m_carry, buffer{}));
    }

    /// Bytes in the chunks formed so far.
    std::uint64_t emitted() const noexcept { return m_emitted; }
    /// Formed and not yet published; the owner empties it.
    std::vector<chunk>& formed() noexcept { return m_out; }

private:
    void append_carry(const char* p, std::size_t n) {
        const std::size_t need = m_carry.size() + n;
        if (need > m_carry.capacity()) {
            // Doubling keeps a very long line's copying linear in its length.
            buffer bigger(std::max({need, 2 * m_carry.capacity(), m_room}));
            if (m_carry.size() > 0) std::memcpy(bigger.data(), m_carry.data(), m_carry.size());
            bigger.resize(m_carry.size());
            m_carry = std::move(bigger);
        }
        std::memcpy(m_carry.data() + m_carry.size(), p, n);
        m_carry.resize(need);
    }

    void emit(buffer b) {
        chunk c;
        c.sequence = m_sequence++;
        c.offset = m_emitted;
        m_emitted += b.size();
        c.data = std::move(b);
        m_out.push_back(std::move(c));
    }

    bool m_whole_lines = false;
    std::size_t m_room = 0;
    buffer m_carry;  // whole_lines: the partial line so far
    std::uint64_t m_sequence = 0;
    std::uint64_t m_emitted = 0;
    std::vector<chunk> m_out;
};

}  // namespace forkline::io::detail

// tests/soak/ops_pipeline.cpp: pipelines of random shape, in memory and
// over files (io::reader -> parallel transform -> io::writer), with a stage
// that throws on a chosen item, pauses, and a batching last stage; each run
// is checked against what pipeline.hpp promises about order, failures and
// tokens, and the output file against the bytes expected.
#include <algorithm>  // min
#include <atomic>     // atomic
#include <cstdint>    // uint64_t
#include <cstdio>     // FILE, fopen, fwrite, remove
#include <fstream>    // ifstream
#include <iterator>   // istreambuf_iterator
#include <optional>   // optional
#include <span>       // span
#include <string>     // string, to_string
#include <vector>     // vector

#include "forkline/io.hpp"          // reader, writer, chunk
#include "forkline/pipeline.hpp"    // run_pipeline, stage, flow_control, pipeline_error
#include "forkline/read_stage.hpp"  // read_stage
#include "soak.hpp"

namespace soak {

namespace {

namespace io = forkline::io;

/// Which stage throws: none, the first, a middle one, or the last.
enum class failing { none, source, mid1, mid2, sink };

const char* stage_name(failing f) {
    switch (f) {
        case failing::source: return "source";
        case failing::mid1: return "mid1";
        case failing::mid2: return "mid2";
        case failing::sink: return "sink";
        default: return "none";
    }
}

forkline::stage_mode any_mode(rng& r) {
    switch (r.below(3)) {
        case 0: return forkline::serial_in_order;
        case 1: return forkline::serial_out_of_order;
        default: return forkline::parallel;
    }
}

/// Runs the chain from a driver thread on the shared runtime, from one of
/// its workers (which helps), or on default_runtime().
template <class... Stages>
forkline::pipeline_stats run_somewhere(context& cx, unsigned where, std::size_t tokens, Stages&... stages) {
    switch (where) {
        case 0: return forkline::run_pipeline(*cx.shared, tokens, std::move(stages)...);
        case 1:
            return cx.shared->run([&] { return forkline::run_pipeline(*cx.shared, tokens, std::move(stages)...); });
        default: return forkline::run_pipeline(tokens, std::move(stages)...);
    }
}

/// What a run of either kind of pipeline did, and what it was planned to do.
struct plan {
    failing fail = failing::none;
    std::uint64_t fail_at = 0;
    std::size_t tokens = 1;
    std::atomic<bool> fired{false};                   ///< the planned throw happened
    std::atomic<std::uint64_t> reported{~std::uint64_t{0}};  ///< the sequence the error must name
    std::atomic<std::uint64_t> produced{0};
    std::atomic<std::uint64_t> sunk{0};
    std::atomic<bool> in_flight_broken{false};
    bool sink_in_order = true;
    std::string shape;  ///< the chain, for failure messages
    std::vector<std::atomic<std::uint8_t>> hits[3];  ///< mid1, mid2, sink: calls per item
    std::vector<std::atomic<std::uint8_t>> sunk_flags;

    explicit plan(std::size_t capacity) : sunk_flags(capacity) {
        for (auto& h : hits) h = std::vector<std::atomic<std::uint8_t>>(capacity);
    }
    void hit(const char* op, unsigned stage, std::uint64_t seq) {
        if (seq >= sunk_flags.size()) soak::fail(op, "an item's sequence is beyond the input");
        if (hits[stage][seq].fetch_add(1, std::memory_order_relaxed) != 0) {
            soak::fail(op, "a stage processed item " + std::to_string(seq) + " twice");
        }
    }
    /// Throws the planned failure if this is its stage and item.
    void maybe_throw(failing here, std::uint64_t seq) {
        if (fail == here && seq == fail_at && !fired.exchange(true)) {
            std::uint64_t none = ~std::uint64_t{0};
            reported.compare_exchange_strong(none, seq);
            throw planned_error(seq);
        }
    }
    /// Before any failure, at most `tokens` items are between the first
    /// stage's call and the last stage's return.
    void produced_one() {
        const std::uint64_t p = produced.fetch_add(1, std::memory_order_seq_cst) + 1;
        if (fail == failing::none && p - sunk.load(std::memory_order_seq_cst) > tokens) {
            in_flight_broken.store(true);
        }
    }
};

/// Checks the outcome against pipeline.hpp's "Errors" paragraph and settles
/// the item counts.
void judge(context& cx, const char* op, plan& p, const forkline::pipeline_error* err, std::uint64_t items_total) {
    auto fail = [&](const char* o, const std::string& m) { soak::fail(o, m + " [" + p.shape + "]"); };
    const bool fired = p.fired.load();
    if (p.in_flight_broken.load()) fail(op, "more items in flight than max_tokens = " + std::to_string(p.tokens));
    if (!fired) {
        if (err != nullptr) fail(op, std::string("pipeline_error without a failure: ") + err->what());
        if (p.sunk.load() != items_total) {
            fail(op, std::to_string(p.sunk.load()) + " of " + std::to_string(items_total) + " items reached the end");
        }
    } else {
        if (err == nullptr) fail(op, "a stage threw but run_pipeline returned normally");
        const std::uint64_t cut = p.reported.load();
        if (err->stage() != stage_name(p.fail) || err->sequence() != cut) {
            fail(op, std::string("pipeline_error names '") + err->stage() + "' item " + std::to_string(err->sequence()) +
                         ", expected '" + stage_name(p.fail) + "' item " + std::to_string(cut));
        }
        try {
            std::rethrow_exception(err->cause());
        } catch (const planned_error& e) {
            if (e.id != p.fail_at) fail(op, "pipeline_error's cause is another item's exception");
        } catch (...) {
            fail(op, "pipeline_error's cause is not the stage's exception");
        }
        for (std::uint64_t s = 0; s < cut; ++s) {
            if (p.sunk_flags[s].load() != 1) {
                fail(op, "item " + std::to_string(s) + ", before the failed item " + std::to_string(cut) +
                             ", did not reach the end");
            }
        }
        if (p.sunk_flags[p.fail_at].load() != 0) fail(op, "the failed item reached the end");
        if (p.sink_in_order) {
            for (std::uint64_t s = cut; s < p.sunk_flags.size(); ++s) {
                if (p.sunk_flags[s].load() != 0) {
                    fail(op, "an in-order last stage received item " + std::to_string(s) + " after the failed item " +
                                 std::to_string(cut) + " (stage " + stage_name(p.fail) + ")");
                }
            }
        }
        // In-order last stage: item s can start only after item s - tokens
        // left, and the failed one never leaves, so without reads after the
        // failure at most cut + tokens items are read (one more may slip in
        // before the source sees the failure). Out of order, later items may
        // leave before the failed one fails, so no such bound holds.
        if (cx.opt.read_bound && p.sink_in_order && p.produced.load() > cut + p.tokens + 1) {
            fail(op, std::to_string(p.produced.load()) + " items read though item " + std::to_string(cut) +
                         " failed with max_tokens = " + std::to_string(p.tokens));
        }
        cx.pipeline_failures.fetch_add(1, std::memory_order_relaxed);
    }
    cx.pipelines.fetch_add(1, std::memory_order_relaxed);
    local_counts c;
    c.issued.store(p.produced.load());
    c.finished.store(p.sunk.load());
    c.threw.store(fired ? 1 : 0);
    if (p.produced.load() < p.sunk.load() + (fired ? 1 : 0)) fail(op, "more items ended than were produced");
    c.skipped.store(p.produced.load() - p.sunk.load() - (fired ? 1 : 0));
    settle(cx, op, k_item, c);
}

struct item {
    std::uint64_t seq = 0;
    std::uint64_t value = 0;
};

std::uint64_t item_value(std::uint64_t seq) { return seq * 3 + 1; }

// ---- transform of the I/O pipeline: each byte XORed with a key of its position ----

unsigned char key_at(std::uint64_t pos) { return static_cast<unsigned char>((pos * 131) >> 3); }

std::string make_input(rng& r, std::size_t most) {
    const std::size_t size = r.chance(0.1) ? r.below(100) : r.between(1, most);
    std::string s;
    s.reserve(size);
    while (s.size() < size) {
        const std::size_t line = r.chance(0.01) ? r.between(1000, 100000) : r.below(200);
        for (std::size_t i = 0; i < line && s.size() < size; ++i) s.push_back(static_cast<char>(' ' + r.below(95)));
        if (s.size() < size) s.push_back('\n');
    }
    return s;
}

void write_file(const std::string& path, const std::string& data) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) fail("io_pipeline", "cannot create " + path);
    if (!data.empty() && std::fwrite(data.data(), 1, data.size(), f) != data.size()) fail("io_pipeline", "short write");
    std::fclose(f);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct out_item {
    io::chunk c;
    bool handed = false;  ///< taken by the writer on a call that paused
};

}  // namespace

void op_pipeline(context& cx, rng& r) {
    const std::uint64_t n = r.chance(0.1) ? r.below(5) : r.between(5, 1500);
    plan p(n + 1);
    p.tokens = r.between(1, 16);
    const unsigned shape = static_cast<unsigned>(r.below(cx.opt.batch_sink ? 4 : 2));  // 0/1: 3 or 4 stages; 2/3: batched
    const bool four = shape % 2 == 1;
    if (n > 0 && r.chance(0.4)) {
        const failing choices[] = {failing::source, failing::mid1, failing::mid2, failing::sink};
        p.fail = choices[r.below(4)];
        if (p.fail == failing::mid2 && !four) p.fail = failing::mid1;
        p.fail_at = r.below(n);
    }
    const forkline::stage_mode m1 = any_mode(r);
    const forkline::stage_mode m2 = any_mode(r);
    p.sink_in_order = r.chance(0.6);
    const forkline::stage_mode ms = p.sink_in_order ? forkline::serial_in_order : forkline::serial_out_of_order;
    const std::uint64_t seed = r.next();
    const unsigned where = static_cast<unsigned>(r.below(3));
    const std::uint64_t mids = four ? 2 : 1;
    auto mode_name = [](forkline::stage_mode m) {
        return m == forkline::serial_in_order ? "in_order" : m == forkline::serial_out_of_order ? "out_of_order" : "parallel";
    };
    p.shape = std::to_string(n) + " items, max_tokens " + std::to_string(p.tokens) + ": source, mid1 " + mode_name(m1) +
              (four ? std::string(", mid2 ") + mode_name(m2) : std::string()) + ", sink " + mode_name(ms) +
              (shape >= 2 ? " batched" : "") + "; fails: " + stage_name(p.fail) + " at " + std::to_string(p.fail_at) +
              "; run " + (where == 0 ? "from outside" : where == 1 ? "from a worker" : "on the default runtime");

    std::uint64_t next = 0;          // the source's (serial)
    bool source_paused = false;      // the source's (serial)
    std::uint64_t sink_next = 0;     // the last stage's (serial)
    std::uint64_t sink_paused = ~std::uint64_t{0};
    auto source = forkline::stage(forkline::serial_in_order, "source", [&](forkline::flow_control& fc) -> item {
        if (next == n) {
            fc.stop();
            return {};
        }
        if (!source_paused && mix(seed ^ next) % 13 == 0) {  // pause, and resume at once
            source_paused = true;
            fc.pause().resume();
            return {};
        }
        source_paused = false;
        if (fc.sequence() != next) fail("pipeline", "the first stage's sequence skipped or repeated");
        p.produced_one();
        p.maybe_throw(failing::source, next);
        const std::uint64_t s = next++;
        return {s, item_value(s)};
    });
    auto middle = [&](unsigned idx, failing which) {
        return [&p, idx, which, seed](item& x) -> item {
            p.hit("pipeline", idx, x.seq);
            spin(mix(seed ^ x.seq ^ idx) % 1500);
            p.maybe_throw(which, x.seq);
            return {x.seq, x.value + 1};
        };
    };
    auto take = [&](item& x) {
        p.hit("pipeline", 2, x.seq);
        if (p.sink_in_order && x.seq != sink_next) {
            fail("pipeline", "an in-order last stage got item " + std::to_string(x.seq) + " before item " +
                                 std::to_string(sink_next));
        }
        sink_next = x.seq + 1;
        if (x.value != item_value(x.seq) + mids) fail("pipeline", "an item's value was lost between stages");
        p.sunk_flags[x.seq].store(1, std::memory_order_relaxed);
        p.sunk.fetch_add(1, std::memory_order_seq_cst);
    };
    auto sink = [&](item& x, forkline::flow_control& fc) {
        if (sink_paused != x.seq && mix(seed ^ ~x.seq) % 17 == 0) {  // pause once on this item
            sink_paused = x.seq;
            fc.pause().resume();
            return;
        }
        p.maybe_throw(failing::sink, x.seq);
        take(x);
    };
    auto batch_sink = [&](std::span<item> xs) {
        for (const item& x : xs) {
            if (p.fail == failing::sink && x.seq == p.fail_at && !p.fired.exchange(true)) {
                // A failed batch reports its least sequence; an out-of-order
                // sink's batch comes in completion order, so not always the first.
                std::uint64_t least = xs.front().seq;
                for (const item& y : xs) least = y.seq < least ? y.seq : least;
                p.reported.store(least);
                throw planned_error(x.seq);
            }
        }
        for (item& x : xs) take(x);
    };

    std::optional<forkline::pipeline_error> err;
    try {
        auto s1 = forkline::stage(m1, "mid1", middle(0, failing::mid1));
        auto s2 = forkline::stage(m2, "mid2", middle(1, failing::mid2));
        auto sk = forkline::stage(ms, "sink", sink);
        forkline::pipeline_stats st;
        switch (shape) {
            case 0: st = run_somewhere(cx, where, p.tokens, source, s1, sk); break;
            case 1: st = run_somewhere(cx, where, p.tokens, source, s1, s2, sk); break;
            case 2: {
                auto bk = forkline::stage(ms, "sink", batch_sink).batch(r.between(1, 32));
                st = run_somewhere(cx, where, p.tokens, source, s1, bk);
                break;
            }
            default: {
                auto bk = forkline::stage(ms, "sink", batch_sink).batch(r.between(1, 32));
                st = run_somewhere(cx, where, p.tokens, source, s1, s2, bk);
                break;
            }
        }
        if (st.items != n) fail("pipeline", "pipeline_stats.items differs from the items produced");
    } catch (const forkline::pipeline_error& e) {
        err = e;
    }
    judge(cx, "pipeline", p, err ? &*err : nullptr, n);
}

void op_io_pipeline(context& cx, rng& r) {
    static std::atomic<std::uint64_t> files{0};
    const std::uint64_t k = files.fetch_add(1);
    const std::string in_path = cx.opt.tmp_dir + "/in-" + std::to_string(k);
    const std::string out_path = cx.opt.tmp_dir + "/out-" + std::to_string(k);
    io::reader_options ro;
    ro.chunk_bytes = r.chance(0.2) ? r.between(1, 256) : r.between(256, 64 * 1024);
    const std::string input = make_input(r, ro.chunk_bytes < 256 ? 16 * 1024 : 512 * 1024);
    write_file(in_path, input);

    ro.depth = static_cast<unsigned>(r.between(1, 8));
    ro.whole_lines = r.chance(0.5);
    ro.inline_cached = r.chance(0.5);
    io::writer_options wo;
    wo.depth = static_cast<unsigned>(r.between(1, 8));
    const std::uint64_t chunks_guess = input.size() / ro.chunk_bytes + 1;
    plan p(input.size() + 2);
    p.tokens = r.between(1, 16);
    if (r.chance(0.4)) {
        const failing choices[] = {failing::source, failing::mid1, failing::sink};
        p.fail = choices[r.below(3)];
        p.fail_at = r.below(chunks_guess);
    }
    p.sink_in_order = true;
    const unsigned where = static_cast<unsigned>(r.below(3));
    p.shape = std::to_string(input.size()) + " bytes, chunk_bytes " + std::to_string(ro.chunk_bytes) + ", max_tokens " +
              std::to_string(p.tokens) + ": read_stage, mid1 parallel, sink in_order (writer); fails: " +
              stage_name(p.fail) + " at " + std::to_string(p.fail_at);
    std::atomic<std::uint64_t> fail_offset{input.size()};

    std::optional<forkline::pipeline_error> err;
    {
        io::reader in(in_path, ro);
        io::writer out(out_path, wo);
        forkline::read_stage rs(in);
        std::uint64_t sink_next = 0;
        std::uint64_t written = 0;
        auto source = forkline::stage(forkline::serial_in_order, "source", [&](forkline::flow_control& fc) {
            io::chunk c = rs(fc);
            if (c.data.size() > 0) {
                if (c.sequence != fc.sequence()) fail("io_pipeline", "chunk and item sequences differ");
                p.produced_one();
                if (p.fail == failing::source && c.sequence == p.fail_at) fail_offset.store(c.offset);
                p.maybe_throw(failing::source, c.sequence);
            }
            return c;
        });
        auto transform = forkline::stage(forkline::parallel, "mid1", [&](io::chunk& c) {
            p.hit("io_pipeline", 0, c.sequence);
            if (p.fail == failing::mid1 && c.sequence == p.fail_at) fail_offset.store(c.offset);
            p.maybe_throw(failing::mid1, c.sequence);
            out_item o;
            o.c.sequence = c.sequence;
            o.c.offset = c.offset;
            o.c.data = io::buffer(c.data.size());
            const char* src = c.data.data();
            char* dst = o.c.data.data();
            for (std::size_t i = 0; i < c.data.size(); ++i) {
                dst[i] = static_cast<char>(static_cast<unsigned char>(src[i]) ^ key_at(c.offset + i));
            }
            o.c.data.resize(c.data.size());
            return o;
        });
        auto sink = forkline::stage(forkline::serial_in_order, "sink", [&](out_item& o, forkline::flow_control& fc) {
            if (o.handed) return;  // taken on the call that paused
            if (o.c.sequence != sink_next) fail("io_pipeline", "the writer stage got chunks out of order");
            if (o.c.offset != written) fail("io_pipeline", "a chunk's offset does not follow the one before");
            if (p.fail == failing::sink && o.c.sequence == p.fail_at) fail_offset.store(o.c.offset);
            p.maybe_throw(failing::sink, o.c.sequence);
            const std::uint64_t seq = o.c.sequence;
            const std::size_t size = o.c.data.size();
            if (!out.try_write(o.c)) {
                const forkline::resume_handle h = fc.pause();
                if (!out.try_write(o.c, [h] { h.resume(); })) return;
                h.resume();  // room after all; the repeated call sees `handed`
            }
            o.handed = true;
            p.hit("io_pipeline", 2, seq);
            written += size;
            sink_next = seq + 1;
            p.sunk_flags[seq].store(1, std::memory_order_relaxed);
            p.sunk.fetch_add(1, std::memory_order_seq_cst);
        });
        try {
            run_somewhere(cx, where, p.tokens, source, transform, sink);
        } catch (const forkline::pipeline_error& e) {
            err = e;
        }
        try {
            out.finish();
        } catch (const std::exception& e) {
            fail("io_pipeline", std::string("writer.finish(): ") + e.what());
        }
        if (out.bytes_written() != written) fail("io_pipeline", "writer.bytes_written() differs from bytes handed over");
    }
    judge(cx, "io_pipeline", p, err ? &*err : nullptr, p.produced.load());
    const std::uint64_t expect_bytes = p.fired.load() ? fail_offset.load() : input.size();
    const std::string got = read_file(out_path);
    if (got.size() != expect_bytes) {
        fail("io_pipeline", "output holds " + std::to_string(got.size()) + " bytes, expected " +
                                std::to_string(expect_bytes) + " of " + std::to_string(input.size()));
    }
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (static_cast<unsigned char>(got[i]) != (static_cast<unsigned char>(input[i]) ^ key_at(i))) {
            fail("io_pipeline", "output byte " + std::to_string(i) + " differs from the transformed input");
        }
    }
    cx.bytes_expected.fetch_add(expect_bytes, std::memory_order_relaxed);
    cx.bytes_written.fetch_add(got.size(), std::memory_order_relaxed);
    std::remove(in_path.c_str());
    std::remove(out_path.c_str());
}

}  // namespace soak

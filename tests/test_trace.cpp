// tests/test_trace.cpp: FORKLINE_TRACE's file. With tracing forced on
// through the internal API, fork-join, a task group, a pipeline and a reader
// leave a trace that parses, whose spans nest on every thread, with one name
// per thread, steal arrows whose ends match, an event per stage call, I/O
// submissions and completions; a tiny budget drops events and says so.
#include <doctest/doctest.h>

#include <stdlib.h>  // mkdtemp

#include <algorithm>   // sort
#include <atomic>      // atomic
#include <cerrno>      // ENOENT
#include <cstdint>     // int64_t, uint64_t
#include <cstdio>      // FILE, fopen, fwrite
#include <filesystem>  // temp_directory_path, remove_all
#include <fstream>     // ifstream
#include <iterator>    // istreambuf_iterator
#include <map>         // map
#include <set>         // set
#include <stdexcept>   // runtime_error
#include <string>      // string
#include <string_view> // string_view
#include <thread>      // this_thread::yield
#include <utility>     // pair, move
#include <vector>      // vector

#include "forkline/errors.hpp"  // system_failure
#include "forkline/forkline.hpp"  // runtime, task_group, run_pipeline
#include "forkline/io.hpp"        // reader
#include "io_config.hpp"          // uring_probe_errno
#include "json_read.hpp"          // json, json_reader
#include "support.hpp"            // config_for, fib, fib_loop, scaled
#include "trace.hpp"              // start_for_test, flush, stop_for_test

namespace {

using forkline_test::json;  // the shared strict reader (json_read.hpp)
using forkline_test::json_reader;

/// A timestamp or duration in microseconds with decimals, as integer ns
/// (exact for the three decimals forkline writes). -1 when negative.
std::int64_t micros_to_ns(const std::string& text) {
    if (text.empty() || text[0] == '-') return -1;
    const std::size_t dot = text.find('.');
    std::int64_t ns = std::stoll(text.substr(0, dot)) * 1000;
    if (dot != std::string::npos) {
        std::string frac = text.substr(dot + 1);
        frac.resize(3, '0');
        ns += std::stoll(frac);
    }
    return ns;
}

// ---- a trace, read back ----

struct event {
    std::string name;
    std::string ph;
    std::string cat;
    std::int64_t tid = 0;
    std::int64_t ts = 0;   // ns
    std::int64_t dur = 0;  // ns
    const json* raw = nullptr;
};

struct trace_file {
    json doc;
    std::vector<event> events;
    std::uint64_t dropped = 0;
    std::uint64_t recorded = 0;
};

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::uint64_t number_of(const json* v) {
    REQUIRE(v != nullptr);
    REQUIRE(v->k == json::kind::number);
    return std::stoull(v->text);
}

/// Parses the file (a parse error fails the test) and checks what every
/// event must have.
trace_file load(const std::string& path) {
    trace_file t;
    const std::string text = read_all(path);
    REQUIRE_NOTHROW(t.doc = json_reader(text).document());
    REQUIRE(t.doc.k == json::kind::object);
    const json* list = t.doc.get("traceEvents");
    REQUIRE(list != nullptr);
    REQUIRE(list->k == json::kind::array);
    const json* unit = t.doc.get("displayTimeUnit");
    REQUIRE(unit != nullptr);
    CHECK(unit->text == "ns");
    const json* other = t.doc.get("otherData");
    REQUIRE(other != nullptr);
    t.dropped = number_of(other->get("dropped_events"));
    t.recorded = number_of(other->get("recorded_events"));
    std::size_t bad_times = 0;
    for (const json& e : list->items) {
        REQUIRE(e.k == json::kind::object);
        event ev;
        ev.raw = &e;
        REQUIRE(e.get("name") != nullptr);
        REQUIRE(e.get("ph") != nullptr);
        REQUIRE(e.get("pid") != nullptr);
        REQUIRE(e.get("tid") != nullptr);
        ev.name = e.get("name")->text;
        ev.ph = e.get("ph")->text;
        if (const json* c = e.get("cat")) ev.cat = c->text;
        ev.tid = static_cast<std::int64_t>(number_of(e.get("tid")));
        if (ev.ph != "M") {
            REQUIRE(e.get("ts") != nullptr);
            ev.ts = micros_to_ns(e.get("ts")->text);
            if (ev.ts < 0) ++bad_times;
        }
        if (ev.ph == "X") {
            REQUIRE(e.get("dur") != nullptr);
            ev.dur = micros_to_ns(e.get("dur")->text);
            if (ev.dur < 0) ++bad_times;
        }
        t.events.push_back(std::move(ev));
    }
    CHECK(bad_times == 0);
    return t;
}

/// Complete events on each thread either nest or are apart: no two overlap
/// partly. Returns the number of violations.
std::size_t partial_overlaps(const trace_file& t) {
    std::map<std::int64_t, std::vector<std::pair<std::int64_t, std::int64_t>>> by_tid;
    for (const event& e : t.events) {
        if (e.ph == "X") by_tid[e.tid].emplace_back(e.ts, e.ts + e.dur);
    }
    std::size_t bad = 0;
    for (auto& [tid, spans] : by_tid) {
        // Starts ascending; of equal starts, the longer (the outer) first.
        std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) {
            return a.first != b.first ? a.first < b.first : a.second > b.second;
        });
        std::vector<std::int64_t> open_ends;
        for (const auto& [begin, end] : spans) {
            while (!open_ends.empty() && open_ends.back() <= begin) open_ends.pop_back();
            if (!open_ends.empty() && end > open_ends.back()) ++bad;
            open_ends.push_back(end);
        }
    }
    return bad;
}

/// thread_name events per tid.
std::map<std::int64_t, std::vector<std::string>> thread_names(const trace_file& t) {
    std::map<std::int64_t, std::vector<std::string>> names;
    for (const event& e : t.events) {
        if (e.ph == "M" && e.name == "thread_name") {
            const json* args = e.raw->get("args");
            REQUIRE(args != nullptr);
            REQUIRE(args->get("name") != nullptr);
            names[e.tid].push_back(args->get("name")->text);
        }
    }
    return names;
}

std::size_t count(const trace_file& t, std::string_view name, std::string_view ph) {
    std::size_t n = 0;
    for (const event& e : t.events) n += e.name == name && e.ph == ph;
    return n;
}

/// Steal instants, arrow starts and arrow ends: each id once in each.
void check_steal_arrows(const trace_file& t) {
    std::multiset<std::uint64_t> steals, starts, ends;
    for (const event& e : t.events) {
        if (e.name != "steal") continue;
        if (e.ph == "i") {
            const json* args = e.raw->get("args");
            REQUIRE(args != nullptr);
            CHECK(args->get("victim") != nullptr);
            steals.insert(number_of(args->get("flow")));
        } else if (e.ph == "s") {
            starts.insert(number_of(e.raw->get("id")));
        } else if (e.ph == "f") {
            ends.insert(number_of(e.raw->get("id")));
        }
    }
    CHECK(starts == steals);
    CHECK(ends == steals);
    CHECK(std::set<std::uint64_t>(steals.begin(), steals.end()).size() == steals.size());
}

struct scratch_dir {
    scratch_dir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "forkline-trace-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~scratch_dir() { std::filesystem::remove_all(path); }
    std::string file(const std::string& name) const { return path + "/" + name; }
    std::string path;
};

// Stage names with characters JSON must escape, and one byte that is not UTF-8.
const std::string k_source_name = "source \"quoted\"";
const std::string k_middle_name = "square\\tab\t";
const std::string k_sink_name = std::string("sink \xff end");
const std::string k_sink_written = "sink \xef\xbf\xbd end";  // U+FFFD in its place

void run_pipeline_once(forkline::runtime& rt, std::uint64_t n, std::atomic<std::uint64_t>& sum) {
    forkline::run_pipeline(
        rt, 4,
        forkline::stage(forkline::serial_in_order, k_source_name,
                        [n, next = std::uint64_t{0}](forkline::flow_control& fc) mutable -> std::uint64_t {
                            if (next == n) {
                                fc.stop();
                                return 0;
                            }
                            return next++;
                        }),
        forkline::stage(forkline::parallel, k_middle_name, [](std::uint64_t& v) { return v * v; }),
        forkline::stage(forkline::serial_in_order, k_sink_name,
                        [&](std::uint64_t& v) { sum.fetch_add(v, std::memory_order_relaxed); }));
}

std::vector<forkline::io::backend> backends() {
    std::vector<forkline::io::backend> all{forkline::io::backend::psync};
    if (forkline::io::detail::uring_probe_errno() == 0) all.push_back(forkline::io::backend::uring);
    return all;
}

}  // namespace

TEST_CASE("a traced run of fork-join, a task group, a pipeline and readers gives a valid, balanced trace") {
    scratch_dir dir;
    const std::string input = dir.file("input");
    {
        std::string bytes(64 * 1024, 'x');
        std::FILE* f = std::fopen(input.c_str(), "wb");
        REQUIRE(f != nullptr);
        REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
        std::fclose(f);
    }
    const std::string path = dir.file("trace.json");
    constexpr unsigned k_workers = 3;  // oversubscribed on small machines, on purpose
    forkline::trace::start_for_test(path);
    std::uint64_t pipeline_items = scaled(2000, 200);
    std::atomic<std::uint64_t> sum{0};
    {
        forkline::runtime rt(config_for(k_workers));
        CHECK(rt.run([] { return fib(22); }) == fib_loop(22));
        // A task the spawner waits for without popping it: someone steals it.
        rt.run([] {
            std::atomic<bool> ran{false};
            forkline::task_group tg;
            tg.spawn([&ran] { ran.store(true); });
            while (!ran.load()) std::this_thread::yield();
            tg.wait();
        });
        run_pipeline_once(rt, pipeline_items, sum);
        for (const forkline::io::backend b : backends()) {
            forkline::io::reader in(input, {.chunk_bytes = 4096, .depth = 4, .io = b, .inline_cached = false});
            std::size_t bytes = 0;
            while (auto c = in.next()) bytes += c->data.size();
            CHECK(bytes == 64 * 1024);
        }
    }
    forkline::trace::stop_for_test();
    forkline::trace::flush();
    CHECK(sum.load() == (pipeline_items - 1) * pipeline_items * (2 * pipeline_items - 1) / 6);

    const trace_file t = load(path);
    CHECK(t.dropped == 0);
    CHECK(t.recorded + 1 + thread_names(t).size() == t.events.size());  // + process_name and thread names
    CHECK(partial_overlaps(t) == 0);

    // Exactly one name per thread; the workers' are fl-w0 ... fl-w2, once each.
    const auto names = thread_names(t);
    std::multiset<std::string> worker_names;
    for (const auto& named : names) {
        CAPTURE(named.first);
        CHECK(named.second.size() == 1);
        if (named.second.front().rfind("fl-w", 0) == 0) worker_names.insert(named.second.front());
    }
    CHECK(worker_names == std::multiset<std::string>{"fl-w0", "fl-w1", "fl-w2"});
    // Every event is on a named thread, except a steal arrow's start, which
    // is on its victim's (a worker, named too).
    std::size_t unnamed = 0;
    for (const event& e : t.events) unnamed += e.ph != "M" && names.count(e.tid) == 0;
    CHECK(unnamed == 0);

    CHECK(count(t, "task", "X") >= 1);
    CHECK(count(t, "injected", "X") >= 3);  // two run() calls and the pipeline
    CHECK(count(t, "search", "X") >= k_workers);
    CHECK(count(t, "submit", "i") >= 3);
    CHECK(count(t, "steal", "i") >= 1);  // the task group's task at least
    check_steal_arrows(t);

    // Each stage's calls, under the stage's name, with the item's sequence.
    std::map<std::string, std::set<std::uint64_t>> items_by_stage;
    for (const event& e : t.events) {
        if (e.ph != "X" || e.cat != "pipeline") continue;
        const json* args = e.raw->get("args");
        REQUIRE(args != nullptr);
        items_by_stage[e.name].insert(number_of(args->get("item")));
    }
    CHECK(items_by_stage.size() == 3);
    for (const std::string& stage : {k_source_name, k_middle_name, k_sink_written}) {
        CAPTURE(stage);
        REQUIRE(items_by_stage.count(stage) == 1);
        // The middle and last stages see every item; the source once more (the stop).
        CHECK(items_by_stage[stage].size() >= pipeline_items);
    }

    // I/O: the readers' threads, and a completion for every submission.
    std::size_t reader_threads = 0;
    for (const auto& [tid, list] : names) reader_threads += list.front() == "fl-read";
    CHECK(reader_threads == backends().size());
    std::map<std::pair<std::int64_t, std::uint64_t>, int> open_ops;  // (tid, tag) -> submitted - completed
    std::size_t submits = 0;
    for (const event& e : t.events) {
        if (e.ph != "i" || e.cat != "io") continue;
        const json* args = e.raw->get("args");
        REQUIRE(args != nullptr);
        const std::uint64_t tag = number_of(args->get("tag"));
        if (e.name == "io_submit") {
            ++submits;
            CHECK(args->get("bytes") != nullptr);
            ++open_ops[{e.tid, tag}];
        } else {
            CHECK(e.name == "io_complete");
            CHECK(args->get("result") != nullptr);
            --open_ops[{e.tid, tag}];
        }
    }
    CHECK(submits >= 16);  // 64 KiB in 4 KiB reads, per backend
    std::size_t unmatched = 0;
    for (const auto& [op, balance] : open_ops) unmatched += balance != 0;
    CHECK(unmatched == 0);
}

TEST_CASE("past its budget a trace drops events, counts them, and stays valid") {
    scratch_dir dir;
    const std::string path = dir.file("small.json");
    constexpr std::size_t k_budget = 40;
    forkline::trace::start_for_test(path, k_budget);
    {
        forkline::runtime rt(config_for(2));
        for (int i = 0; i < 4; ++i) CHECK(rt.run([] { return fib(18); }) == fib_loop(18));
    }
    forkline::trace::stop_for_test();
    forkline::trace::flush();
    const trace_file t = load(path);
    CHECK(t.recorded <= k_budget);
    CHECK(t.dropped > 0);
    REQUIRE(count(t, "trace_events_dropped", "i") == 1);
    for (const event& e : t.events) {
        if (e.name == "trace_events_dropped") {
            CHECK(number_of(e.raw->get("args")->get("dropped_events")) == t.dropped);
        }
    }
    CHECK(partial_overlaps(t) == 0);
    check_steal_arrows(t);  // an arrow is kept whole or dropped whole
}

TEST_CASE("with tracing stopped nothing is recorded") {
    scratch_dir dir;
    const std::string path = dir.file("off.json");
    forkline::trace::start_for_test(path);
    forkline::trace::stop_for_test();
    {
        forkline::runtime rt(config_for(2));
        CHECK(rt.run([] { return fib(18); }) == fib_loop(18));
    }
    forkline::trace::flush();
    const trace_file t = load(path);
    CHECK(t.recorded == 0);
    REQUIRE(t.events.size() == 1);
    CHECK(t.events[0].name == "process_name");
}

TEST_CASE("a trace that cannot be written is a system_failure naming the file, the call and errno") {
    scratch_dir dir;
    const std::string path = dir.file("missing-directory/trace.json");
    forkline::trace::start_for_test(path);
    forkline::trace::stop_for_test();
    try {
        forkline::trace::flush();
        FAIL("flush() wrote to a directory that does not exist");
    } catch (const forkline::system_failure& e) {
        CHECK(e.call() == "fopen");
        CHECK(e.code().value() == ENOENT);
        CHECK(std::string(e.what()).find(path) != std::string::npos);
    }
}

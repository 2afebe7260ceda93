// runtime/trace.cpp: per-thread event buffers, the process-wide collector
// that owns them, and the writer of the Chrome Trace Event file.
// See "Tracing" in runtime/DESIGN.md.
#include "trace.hpp"

#include <errno.h>    // errno
#include <pthread.h>  // pthread_getname_np
#include <unistd.h>   // gettid, getpid

#include <algorithm>      // min
#include <charconv>       // to_chars
#include <cstdio>         // FILE, fopen, fwrite, fclose, fprintf
#include <cstdlib>        // getenv, atexit, strtoull
#include <cstring>        // strlen
#include <mutex>          // mutex, lock_guard, once_flag, call_once
#include <new>            // nothrow, bad_alloc
#include <stdexcept>      // logic_error
#include <string>         // string, to_string
#include <string_view>    // string_view
#include <unordered_map>  // unordered_map (tids seen while writing)
#include <unordered_set>  // unordered_set (interned stage names)
#include <utility>        // move
#include <vector>         // vector

#include "forkline/errors.hpp"  // system_failure, config_error
#include "io_driver.hpp"        // io_driver, completion
#include "json_writer.hpp"      // json::append_quoted

namespace forkline::trace {

std::atomic<bool> g_on{false};

namespace {

enum class phase : std::uint8_t { complete, instant, flow_start, flow_end, counter };
enum class category : std::uint8_t { sched, pipeline, io };
// What a record's a and b mean, and so its "args".
enum class args_kind : std::uint8_t {
    none,
    victim,       // a: the victim worker's index; b: the steal's flow id
    item,         // a: the item's sequence
    io_read,      // a: tag; b: bytes asked
    io_write,     // a: tag; b: bytes
    io_poll,      // a: tag; b: poll events
    io_complete,  // a: tag; b: the result (bytes, revents or -errno), as int64
    flow,         // a: the flow id
    depth,        // a: a queue's depth (counter events)
};

/// One event, as recorded: formatting waits for the writer.
struct record {
    std::uint64_t ts;   // steady clock, ns
    std::uint64_t dur;  // ns (complete events)
    const char* name;   // static or interned: lives for ever
    std::uint64_t a;
    std::uint64_t b;
    std::int32_t tid;   // whose track: usually the recording thread's, a victim's for a steal's arrow
    phase ph;
    category cat;
    args_kind args;
};

constexpr std::uint32_t k_chunk_records = 1024;  // 48 KiB
// Events taken from the shared budget at a time: one atomic RMW per this
// many events, and little budget left unused in idle threads' hands.
constexpr std::size_t k_reserve_step = 256;
constexpr unsigned k_stage_cache = 32;  // per-thread interned-name cache slots
constexpr std::size_t k_write_block = std::size_t{1} << 20;

struct chunk {
    // written by: the owner (release, after filling the record); read by: the writer (acquire)
    std::atomic<std::uint32_t> used{0};
    // written by: the owner (release, after making the chunk); read by: the writer (acquire)
    std::atomic<chunk*> next{nullptr};
    record records[k_chunk_records];
};

struct session;

/// One thread's events in one trace. Never freed: a thread may still hold
/// it after its trace was replaced (tests) or written (exit).
struct thread_buffer {
    // Immutable after registration (made under the collector's mutex).
    session* owner = nullptr;
    std::uint32_t generation = 0;
    std::int32_t tid = 0;
    char name[16] = {};
    chunk* head = nullptr;

    // Owner-private.
    chunk* tail = nullptr;
    std::size_t reserved_left = 0;
    struct cached_name {
        const std::string* key = nullptr;       // the pipeline's string
        const std::string* interned = nullptr;  // our copy
    };
    cached_name stage_names[k_stage_cache];

    // written by: the owner (single writer, relaxed load + store); read by: the writer
    alignas(64) std::atomic<std::uint64_t> dropped{0};
};

/// One trace: a file, a start, a budget, the buffers of the threads in it.
struct session {
    std::string path;
    std::uint64_t start_ns = 0;
    std::size_t budget = 0;
    std::uint32_t generation = 0;
    std::vector<thread_buffer*> buffers;  // guarded by the collector's mutex
    // Events handed out to buffers. relaxed: a count; no data rides on it.
    alignas(64) std::atomic<std::size_t> reserved{0};
    // Ids of steal arrows. relaxed: only uniqueness matters.
    alignas(64) std::atomic<std::uint64_t> next_flow{1};
};

/// Process-wide, never destroyed, so that threads that outlive main() and
/// the exit writer never touch freed memory.
struct collector {
    std::mutex mu;
    session* current = nullptr;                       // guarded by mu
    session* at_exit = nullptr;                       // guarded by mu: the FORKLINE_TRACE trace
    std::vector<std::unique_ptr<session>> sessions;   // guarded by mu; kept: see thread_buffer
    std::unordered_set<std::string> stage_names;      // guarded by mu; nodes never move
};

collector& the_collector() {
    static collector* const c = new collector;
    return *c;
}

// written by: begin_session (under the mutex); read by: every recording
// thread. relaxed: a thread that sees a new generation registers under the
// mutex, which is what publishes the new session; one that sees it late
// records into its old buffer, which stays valid.
std::atomic<std::uint32_t> g_generation{0};

constinit thread_local thread_buffer* t_buffer = nullptr;

session& begin_session(std::string path, std::size_t budget) {
    collector& c = the_collector();
    auto s = std::make_unique<session>();
    s->path = std::move(path);
    s->budget = budget;
    s->start_ns = now_ns();
    std::lock_guard<std::mutex> lock(c.mu);
    s->generation = g_generation.load(std::memory_order_relaxed) + 1;
    g_generation.store(s->generation, std::memory_order_relaxed);
    c.current = s.get();
    c.sessions.push_back(std::move(s));
    g_on.store(true, std::memory_order_relaxed);
    return *c.current;
}

/// This thread's buffer in the current trace; nullptr when there is none or
/// memory ran out.
thread_buffer* current_buffer() noexcept {
    thread_buffer* b = t_buffer;
    if (b != nullptr && b->generation == g_generation.load(std::memory_order_relaxed)) [[likely]] {
        return b;
    }
    collector& c = the_collector();
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.current == nullptr) return nullptr;
    auto* nb = new (std::nothrow) thread_buffer;
    auto* first = new (std::nothrow) chunk;
    if (nb == nullptr || first == nullptr) {
        delete nb;
        delete first;
        return nullptr;
    }
    try {
        c.current->buffers.push_back(nb);
    } catch (...) {
        delete nb;
        delete first;
        return nullptr;
    }
    nb->owner = c.current;
    nb->generation = c.current->generation;
    nb->tid = static_cast<std::int32_t>(::gettid());
    if (pthread_getname_np(pthread_self(), nb->name, sizeof nb->name) != 0) nb->name[0] = '\0';
    nb->head = first;
    nb->tail = first;
    t_buffer = nb;
    return nb;
}

void count_dropped(thread_buffer& b, std::size_t n) noexcept {
    // relaxed load + store: single writer; the writer reads a snapshot.
    b.dropped.store(b.dropped.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

/// Room for n more events from the shared budget; false (and the n counted
/// as dropped) when it is spent.
bool make_room(thread_buffer& b, std::size_t n) noexcept {
    session& s = *b.owner;
    while (b.reserved_left < n) {
        // A plain load first: once the budget is spent, threads stop
        // hammering the counter's line with RMWs.
        if (s.reserved.load(std::memory_order_relaxed) >= s.budget) {
            count_dropped(b, n);
            return false;
        }
        const std::size_t from = s.reserved.fetch_add(k_reserve_step, std::memory_order_relaxed);
        if (from >= s.budget) {
            count_dropped(b, n);
            return false;
        }
        b.reserved_left += std::min(k_reserve_step, s.budget - from);
    }
    return true;
}

/// Appends r; make_room() must have said yes for it.
void push(thread_buffer& b, const record& r) noexcept {
    chunk* c = b.tail;
    // relaxed: our own counter.
    std::uint32_t n = c->used.load(std::memory_order_relaxed);
    if (n == k_chunk_records) {
        auto* fresh = new (std::nothrow) chunk;
        if (fresh == nullptr) {
            count_dropped(b, 1);
            return;
        }
        // release: the writer that follows the link sees an initialised chunk.
        c->next.store(fresh, std::memory_order_release);
        b.tail = fresh;
        c = fresh;
        n = 0;
    }
    c->records[n] = r;
    --b.reserved_left;
    // release: pairs with the writer's acquire load of used; the record is complete.
    c->used.store(n + 1, std::memory_order_release);
}

void record_one(const record& r, thread_buffer& b) noexcept {
    if (make_room(b, 1)) push(b, r);
}

// ---- the I/O decorator ----

class traced_driver final : public io::detail::io_driver {
public:
    explicit traced_driver(std::unique_ptr<io::detail::io_driver> inner) : m_inner(std::move(inner)) {}

    void read(std::uint64_t tag, int fd, char* p, std::size_t n, std::int64_t off) override {
        submitted(args_kind::io_read, tag, n);
        m_inner->read(tag, fd, p, n, off);
    }
    void write(std::uint64_t tag, int fd, const char* p, std::size_t n, std::int64_t off) override {
        submitted(args_kind::io_write, tag, n);
        m_inner->write(tag, fd, p, n, off);
    }
    void wait_ready(std::uint64_t tag, int fd, short events) override {
        submitted(args_kind::io_poll, tag, static_cast<std::uint16_t>(events));
        m_inner->wait_ready(tag, fd, events);
    }
    void cancel(std::uint64_t tag) override { m_inner->cancel(tag); }
    bool wait(std::vector<io::detail::completion>& out, int timeout_ms) override {
        const std::size_t before = out.size();
        const std::uint64_t t0 = now_ns();
        const bool rang = m_inner->wait(out, timeout_ms);
        if (!on()) return rang;
        thread_buffer* b = current_buffer();
        if (b == nullptr) return rang;
        const std::uint64_t t1 = now_ns();
        record_one({t0, t1 - t0, "io_wait", 0, 0, b->tid, phase::complete, category::io, args_kind::none}, *b);
        for (std::size_t i = before; i < out.size(); ++i) {
            record_one({t1, 0, "io_complete", out[i].tag, static_cast<std::uint64_t>(std::int64_t{out[i].result}),
                        b->tid, phase::instant, category::io, args_kind::io_complete},
                       *b);
        }
        return rang;
    }

private:
    void submitted(args_kind kind, std::uint64_t tag, std::uint64_t size) noexcept {
        if (!on()) return;
        thread_buffer* b = current_buffer();
        if (b == nullptr) return;
        record_one({now_ns(), 0, "io_submit", tag, size, b->tid, phase::instant, category::io, kind}, *b);
    }

    std::unique_ptr<io::detail::io_driver> m_inner;
};

// ---- the writer ----

/// Builds the file in blocks and hands them to stdio; remembers the first
/// failure's call and errno.
class json_out {
public:
    explicit json_out(std::FILE* f) : m_file(f) { m_text.reserve(k_write_block + 4096); }

    void put(std::string_view s) {
        m_text.append(s);
        if (m_text.size() >= k_write_block) drain();
    }
    void put_uint(std::uint64_t v) {
        char digits[24];
        const auto r = std::to_chars(digits, digits + sizeof digits, v);
        m_text.append(digits, r.ptr);
    }
    void put_int(std::int64_t v) {
        char digits[24];
        const auto r = std::to_chars(digits, digits + sizeof digits, v);
        m_text.append(digits, r.ptr);
    }
    /// ns as microseconds with three decimals, exactly.
    void put_us(std::uint64_t ns) {
        put_uint(ns / 1000);
        const unsigned frac = static_cast<unsigned>(ns % 1000);
        const char tail[4] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                              static_cast<char>('0' + frac % 10)};
        m_text.append(tail, 4);
    }
    /// A JSON string, through the one escape every JSON file of forkline
    /// uses: any stage name gives a file every parser takes.
    void put_string(std::string_view s) { forkline::detail::json::append_quoted(m_text, s); }

    void drain() {
        if (!m_text.empty() && m_errno == 0 && std::fwrite(m_text.data(), 1, m_text.size(), m_file) != m_text.size()) {
            m_errno = errno != 0 ? errno : EIO;
            m_call = "fwrite";
        }
        m_text.clear();
    }
    int error() const noexcept { return m_errno; }
    const char* failed_call() const noexcept { return m_call; }

private:
    std::FILE* m_file;
    std::string m_text;
    int m_errno = 0;
    const char* m_call = "";
};

const char* category_name(category c) noexcept {
    switch (c) {
        case category::sched: return "sched";
        case category::pipeline: return "pipeline";
        case category::io: return "io";
    }
    return "sched";
}

void put_args(json_out& out, const record& r) {
    switch (r.args) {
        case args_kind::none:
            return;
        case args_kind::victim:
            out.put(",\"args\":{\"victim\":");
            out.put_uint(r.a);
            out.put(",\"flow\":");
            out.put_uint(r.b);
            break;
        case args_kind::item:
            out.put(",\"args\":{\"item\":");
            out.put_uint(r.a);
            break;
        case args_kind::io_read:
        case args_kind::io_write:
            out.put(r.args == args_kind::io_read ? ",\"args\":{\"op\":\"read\",\"tag\":" : ",\"args\":{\"op\":\"write\",\"tag\":");
            out.put_uint(r.a);
            out.put(",\"bytes\":");
            out.put_uint(r.b);
            break;
        case args_kind::io_poll:
            out.put(",\"args\":{\"op\":\"poll\",\"tag\":");
            out.put_uint(r.a);
            out.put(",\"events\":");
            out.put_uint(r.b);
            break;
        case args_kind::io_complete:
            out.put(",\"args\":{\"tag\":");
            out.put_uint(r.a);
            out.put(",\"result\":");
            out.put_int(static_cast<std::int64_t>(r.b));
            break;
        case args_kind::flow:
            return;
        case args_kind::depth:
            out.put(",\"args\":{\"depth\":");
            out.put_uint(r.a);
            break;
    }
    out.put("}");
}

/// Writes one trace to `path`. Throws system_failure.
void write_session(session& s) {
    std::vector<thread_buffer*> buffers;
    {
        std::lock_guard<std::mutex> lock(the_collector().mu);
        buffers = s.buffers;
    }
    const std::uint64_t end_ns = now_ns();
    std::FILE* f = std::fopen(s.path.c_str(), "w");
    if (f == nullptr) {
        throw system_failure("fopen", errno,
                             "forkline: cannot write the trace to '" + s.path + "' (FORKLINE_TRACE)");
    }
    const auto pid = static_cast<std::uint64_t>(::getpid());
    json_out out(f);
    std::uint64_t recorded = 0;
    std::uint64_t dropped = 0;
    bool first = true;
    const auto open_event = [&](std::string_view name, const char* ph, std::uint64_t tid) {
        out.put(first ? "\n{\"name\":" : ",\n{\"name\":");
        first = false;
        out.put_string(name);
        out.put(",\"ph\":\"");
        out.put(ph);
        out.put("\",\"pid\":");
        out.put_uint(pid);
        out.put(",\"tid\":");
        out.put_uint(tid);
    };

    out.put("{\"traceEvents\":[");
    open_event("process_name", "M", pid);
    out.put(",\"args\":{\"name\":");
    out.put_string(program_invocation_short_name);
    out.put("}}");

    // A kernel tid may come back for a later thread; give each later
    // holder its own track (pid_max is at most 2^22).
    std::unordered_map<std::int32_t, unsigned> holders;
    for (thread_buffer* b : buffers) {
        const unsigned k = holders[b->tid]++;
        const std::uint64_t own = static_cast<std::uint64_t>(b->tid) + (std::uint64_t{k} << 22);
        open_event("thread_name", "M", own);
        out.put(",\"args\":{\"name\":");
        out.put_string(b->name);
        out.put("}}");
        // relaxed: a snapshot of a single-writer counter.
        dropped += b->dropped.load(std::memory_order_relaxed);
        // acquire (next, used): pair with push()'s release stores.
        for (chunk* c = b->head; c != nullptr; c = c->next.load(std::memory_order_acquire)) {
            const std::uint32_t n = c->used.load(std::memory_order_acquire);
            for (std::uint32_t i = 0; i < n; ++i) {
                const record& r = c->records[i];
                // Spans that began before this trace did are cut at its start.
                std::uint64_t ts = r.ts;
                std::uint64_t dur = r.dur;
                if (ts < s.start_ns) {
                    dur = dur > s.start_ns - ts ? dur - (s.start_ns - ts) : 0;
                    ts = s.start_ns;
                }
                const std::uint64_t tid = r.tid == b->tid ? own : static_cast<std::uint64_t>(r.tid);
                switch (r.ph) {
                    case phase::complete: open_event(r.name, "X", tid); break;
                    case phase::instant: open_event(r.name, "i", tid); out.put(",\"s\":\"t\""); break;
                    case phase::flow_start: open_event(r.name, "s", tid); break;
                    case phase::flow_end: open_event(r.name, "f", tid); break;
                    case phase::counter: open_event(r.name, "C", tid); break;
                }
                out.put(",\"cat\":\"");
                out.put(category_name(r.cat));
                out.put("\",\"ts\":");
                out.put_us(ts - s.start_ns);
                if (r.ph == phase::complete) {
                    out.put(",\"dur\":");
                    out.put_us(dur);
                }
                if (r.ph == phase::flow_start || r.ph == phase::flow_end) {
                    out.put(",\"id\":");
                    out.put_uint(r.a);
                }
                put_args(out, r);
                out.put("}");
                ++recorded;
            }
        }
    }
    if (dropped != 0) {
        open_event("trace_events_dropped", "i", pid);
        out.put(",\"s\":\"g\",\"cat\":\"sched\",\"ts\":");
        out.put_us(end_ns > s.start_ns ? end_ns - s.start_ns : 0);
        out.put(",\"args\":{\"dropped_events\":");
        out.put_uint(dropped);
        out.put(",\"event_budget\":");
        out.put_uint(s.budget);
        out.put("}}");
    }
    out.put("\n],\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"forkline\",\"recorded_events\":");
    out.put_uint(recorded);
    out.put(",\"dropped_events\":");
    out.put_uint(dropped);
    out.put(",\"event_budget\":");
    out.put_uint(s.budget);
    out.put("}}\n");
    out.drain();
    int err = out.error();
    const char* call = out.failed_call();
    if (std::fclose(f) != 0 && err == 0) {
        err = errno;
        call = "fclose";
    }
    if (err != 0) {
        throw system_failure(call, err, "forkline: writing the trace to '" + s.path + "' (FORKLINE_TRACE)");
    }
    if (dropped != 0) {
        std::fprintf(stderr,
                     "forkline: the trace in %s holds its budget of %zu events; %llu more were dropped\n",
                     s.path.c_str(), s.budget, static_cast<unsigned long long>(dropped));
    }
}

void write_at_exit() noexcept {
    // Later events (threads of runtimes never destroyed) would miss the file.
    g_on.store(false, std::memory_order_relaxed);
    session* s = nullptr;
    {
        std::lock_guard<std::mutex> lock(the_collector().mu);
        s = the_collector().at_exit;
    }
    if (s == nullptr) return;
    try {
        write_session(*s);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
    }
}

}  // namespace

std::size_t parse_budget(const char* events) {
    if (events == nullptr || *events == '\0') return k_default_budget;
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(events, &end, 10);
    if (*events < '0' || *events > '9' || *end != '\0' || errno != 0 || n == 0) {
        throw config_error(std::string("forkline: FORKLINE_TRACE_EVENTS=") + events +
                           " is not a positive number of events (the trace's budget; default " +
                           std::to_string(k_default_budget) + ")");
    }
    return static_cast<std::size_t>(n);
}

void runtime_created() {
    static std::once_flag once;
    std::call_once(once, [] {
        const char* path = std::getenv("FORKLINE_TRACE");
        if (path == nullptr || *path == '\0') return;
        const std::size_t budget = parse_budget(std::getenv("FORKLINE_TRACE_EVENTS"));
        // Fail now, not after the run: an unwritable path is a typo to fix.
        std::FILE* f = std::fopen(path, "w");
        if (f == nullptr) {
            throw system_failure("fopen", errno,
                                 std::string("forkline: FORKLINE_TRACE=") + path +
                                     " cannot be written; unset it or name a writable file");
        }
        std::fclose(f);
        session& s = begin_session(path, budget);
        {
            std::lock_guard<std::mutex> lock(the_collector().mu);
            the_collector().at_exit = &s;
        }
        // Registered while the first runtime is being made: exit handlers run
        // in reverse order, so every runtime made from now on (a static one,
        // default_runtime()) has stopped before the file is written.
        if (std::atexit(write_at_exit) != 0) throw std::bad_alloc();  // its only failure
    });
}

int thread_started() noexcept {
    if (on()) (void)current_buffer();
    return static_cast<int>(::gettid());
}

void record_complete(const char* name, std::uint64_t t0_ns, std::uint64_t dur_ns) noexcept {
    if (thread_buffer* b = current_buffer()) {
        record_one({t0_ns, dur_ns, name, 0, 0, b->tid, phase::complete, category::sched, args_kind::none}, *b);
    }
}

void record_counter(const char* name, std::uint64_t value) noexcept {
    if (thread_buffer* b = current_buffer()) {
        record_one({now_ns(), 0, name, value, 0, b->tid, phase::counter, category::sched, args_kind::depth}, *b);
    }
}

void record_instant(const char* name) noexcept {
    if (thread_buffer* b = current_buffer()) {
        record_one({now_ns(), 0, name, 0, 0, b->tid, phase::instant, category::sched, args_kind::none}, *b);
    }
}

void record_steal(unsigned victim, int victim_tid) noexcept {
    thread_buffer* b = current_buffer();
    // The instant and both ends of the arrow, or none of them.
    if (b == nullptr || !make_room(*b, 3)) return;
    const std::uint64_t t = now_ns();
    const std::uint64_t id = b->owner->next_flow.fetch_add(1, std::memory_order_relaxed);
    push(*b, {t, 0, "steal", victim, id, b->tid, phase::instant, category::sched, args_kind::victim});
    // The arrow starts in the victim's track, in whatever it was running,
    // and ends at the next span of the thief's: the stolen job.
    push(*b, {t, 0, "steal", id, 0, victim_tid, phase::flow_start, category::sched, args_kind::flow});
    push(*b, {t, 0, "steal", id, 0, b->tid, phase::flow_end, category::sched, args_kind::flow});
}

void stage_span::begin(const std::string& stage, std::uint64_t item) noexcept {
    thread_buffer* b = current_buffer();
    if (b == nullptr) return;
    thread_buffer::cached_name& slot =
        b->stage_names[(reinterpret_cast<std::uintptr_t>(&stage) / alignof(std::string)) % k_stage_cache];
    // Same string object and same text: the name we interned for it. A new
    // pipeline may put another name at the address of an old one.
    if (slot.key != &stage || *slot.interned != stage) {
        collector& c = the_collector();
        try {
            std::lock_guard<std::mutex> lock(c.mu);
            slot.interned = &*c.stage_names.insert(stage).first;
            slot.key = &stage;
        } catch (...) {
            slot = {};
            return;  // out of memory: this call goes untraced
        }
    }
    m_name = slot.interned->c_str();
    m_item = item;
    m_t0 = now_ns();
}

void stage_span::finish() noexcept {
    const std::uint64_t t1 = now_ns();
    if (thread_buffer* b = current_buffer()) {
        record_one({m_t0, t1 - m_t0, m_name, m_item, 0, b->tid, phase::complete, category::pipeline, args_kind::item},
                   *b);
    }
    m_name = nullptr;
}

std::unique_ptr<io::detail::io_driver> traced_io(std::unique_ptr<io::detail::io_driver> driver) {
    if (!on()) return driver;
    return std::make_unique<traced_driver>(std::move(driver));
}

void start_for_test(const std::string& path, std::size_t budget) { begin_session(path, budget); }

void flush() {
    session* s = nullptr;
    {
        std::lock_guard<std::mutex> lock(the_collector().mu);
        s = the_collector().current;
    }
    if (s == nullptr) throw std::logic_error("forkline::trace::flush: no trace was started");
    write_session(*s);
}

void stop_for_test() noexcept { g_on.store(false, std::memory_order_relaxed); }

}  // namespace forkline::trace

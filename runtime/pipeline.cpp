// runtime/pipeline.cpp: the pipeline engine's type-free part.
//
// Tokens move between stages; serial stages are run by whoever holds their
// busy bit; paused stages are rescheduled by resume(); the caller waits on a
// futex word. The protocols are described in "Pipelines" in runtime/DESIGN.md
// and cited here by name.
#include "forkline/pipeline.hpp"

#include <chrono>     // steady_clock
#include <optional>   // optional (the stop callback)
#include <stdexcept>  // logic_error
#include <stop_token> // stop_callback
#include <string>     // string, to_string
#include <utility>    // move

#include "forkline/detail/probes.hpp"  // FORKLINE_PROBE (see "Probes" in DESIGN.md)
#include "stats_state.hpp"  // record_pipeline (FORKLINE_STATS)
#include "trace.hpp"        // stage_span (FORKLINE_TRACE)

namespace forkline {

pipeline_error::pipeline_error(std::string stage, std::uint64_t sequence, std::exception_ptr cause,
                               const std::string& cause_text)
    : std::runtime_error("pipeline stage '" + stage + "' failed on item " + std::to_string(sequence) + ": " +
                         cause_text),
      m_stage(std::move(stage)),
      m_sequence(sequence),
      m_cause(std::move(cause)) {}

pipeline_cancelled::pipeline_cancelled(pipeline_stats stats)
    : std::runtime_error("pipeline cancelled after " + std::to_string(stats.items) +
                         " items; each went through every stage"),
      m_stats(std::move(stats)) {}

void resume_handle::resume() const {
    if (m_shared) m_shared->resume(m_stage, m_generation);
}

resume_handle flow_control::pause() { return m_core->pause(*this); }

void flow_control::unpause() noexcept {
    if (m_paused) m_core->unpause(*this);
}

namespace detail {

namespace {

// Inbox word: a token pointer (tokens are aligned, so bit 0 is free) and the
// busy bit, which is the runner role. See "Serial hand-over".
constexpr std::uintptr_t k_busy = 1;
// The source's inbox once it has closed: returned tokens are counted off
// m_live instead. See "Counting what is in flight".
constexpr std::uintptr_t k_closed = ~std::uintptr_t{0};

// m_wait bits. See "Waiting".
constexpr std::uint32_t k_wait_armed = 1u;
constexpr std::uint32_t k_wait_requests = ((1u << 29) - 1) & ~1u;  // bit 1 + s: stage s resumed from outside
constexpr std::uint32_t k_wait_kick = 1u << 29;  // toggled by a push that finds the caller asleep
constexpr std::uint32_t k_wait_done = 1u << 30;
constexpr std::uint32_t k_wait_sleeper = 1u << 31;  // help_until's waiter bit

constexpr std::uint32_t request_bit(unsigned stage) noexcept { return 2u << stage; }

// Pause phases, the low two bits of a pause_slot's state. See "Pause protocol".
constexpr std::uint64_t k_idle = 0;
constexpr std::uint64_t k_pausing = 1;
constexpr std::uint64_t k_armed = 2;
constexpr std::uint64_t k_early = 3;

constexpr std::uint64_t pause_word(std::uint64_t generation, std::uint64_t phase) noexcept {
    return generation << 2 | phase;
}

pipeline_token* token_of(std::uintptr_t word) noexcept {
    return reinterpret_cast<pipeline_token*>(word & ~k_busy);
}

std::uintptr_t word_of(pipeline_token* t) noexcept { return reinterpret_cast<std::uintptr_t>(t); }

// "Statistics": a call shorter than this makes the next k_sample_every - 1
// calls of the stage on this worker go untimed (their time is estimated
// from the timed ones), so that reading the clock (17 ns to over 100 ns on
// the 2-core VM) does not dominate trivial stages.
constexpr std::uint64_t k_short_call_ns = 4'000;
constexpr std::uint32_t k_sample_every = 32;

// C4: an item whose stage calls take less than this in all is not worth
// moving to another worker; re-decided every k_cheap_recheck items.
constexpr std::uint64_t k_cheap_item_ns = 700;
constexpr std::uint64_t k_cheap_recheck = 64;

std::uint64_t now_ns() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

/// Single-writer counter add: a relaxed load and store, not a locked RMW.
void add(std::atomic<std::uint64_t>& c, std::uint64_t by) noexcept {
    c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

bool has_offers(const pipeline_stage_state& st) noexcept {
    // relaxed: a peek; H2's exchange (acquire) is what takes the tokens.
    return token_of(st.inbox.load(std::memory_order_relaxed)) != nullptr;
}

std::size_t chain_length(const pipeline_token* t) noexcept {
    std::size_t n = 0;
    for (; t != nullptr; t = t->next) ++n;
    return n;
}

}  // namespace

std::atomic<batch_take_hook> g_batch_take_hook{nullptr};

void check_max_tokens(std::size_t max_tokens) {
    if (max_tokens == 0) {
        throw config_error("forkline::run_pipeline: max_tokens must be at least 1 (it bounds the items in flight)");
    }
}

// ---- set-up ----

pipeline_core::pipeline_core(std::size_t max_tokens, unsigned stage_count)
    : m_max_tokens(max_tokens),
      m_stage_count(stage_count),
      m_stages(new pipeline_stage_state[stage_count]),
      m_shared(std::make_shared<pipeline_shared>(stage_count)) {
    m_shared->core = this;
    for (unsigned s = 0; s < stage_count; ++s) {
        pipeline_stage_state& st = m_stages[s];
        st.index = s;
        st.job.core = this;
        st.job.stage = s;
        st.job.execute = &run_stage_job;
    }
    // relaxed: nothing runs yet. run() is the source's first runner.
    m_stages[0].inbox.store(k_busy, std::memory_order_relaxed);
    m_wait.store(k_wait_armed, std::memory_order_relaxed);
}

pipeline_core::~pipeline_core() = default;

void pipeline_core::configure(unsigned stage, stage_mode mode, const std::string& name, stage_call call,
                              const batch_ops* batch) {
    pipeline_stage_state& st = m_stages[stage];
    if (stage == 0 && mode == stage_mode::parallel) {
        throw config_error("forkline::run_pipeline: the first stage ('" + name +
                           "') must be serial: it is called for item 0, 1, 2 ... in turn");
    }
    if (batch != nullptr && mode == stage_mode::parallel) {
        throw config_error("forkline::run_pipeline: stage '" + name + "' takes batches, so it must be serial");
    }
    st.mode = mode;
    st.name = &name;
    st.call = call;
    st.batch = batch;
    if (stage == 0) {
        st.kind = stage_kind::source;
    } else if (mode == stage_mode::parallel) {
        st.kind = stage_kind::parallel;
    } else if (mode == stage_mode::serial_in_order) {
        st.kind = stage_kind::in_order;
        st.reorder.reset(new pipeline_token*[m_max_tokens]());
    } else {
        st.kind = stage_kind::out_of_order;
    }
    if (batch != nullptr) st.batch_sequences.reserve(batch->max_items);
}

void pipeline_core::add_token(pipeline_token& t) noexcept {
    pipeline_stage_state& source = m_stages[0];
    t.next = source.fifo_head;  // the source's free tokens
    source.fifo_head = &t;
}

// ---- running and waiting ----

namespace {
struct cancel_request {
    pipeline_core* core;
    void operator()() const noexcept { core->cancel(); }
};
}  // namespace

pipeline_stats pipeline_core::run() {
    worker& w = *current_worker();
    m_runtime = w.core;
    m_stats.reset(new pipeline_stat_cell[static_cast<std::size_t>(w.peers) * m_stage_count]);
    const std::uint64_t start = now_ns();
    const std::int64_t base = w.deque.bottom();
    // X1. Runs cancel() at once if the stop was requested already. Its
    // destructor, on every way out of run(), waits for a callback running on
    // another thread, so the callback never outlives the pipeline.
    std::optional<std::stop_callback<cancel_request>> on_stop;
    if (m_stop.stop_possible()) on_stop.emplace(m_stop, cancel_request{this});

    bool holding = false;
    if (pipeline_token* t = source_step(w, holding)) carry(w, t, 1, holding);

    // See "Waiting": help until done; a cleared armed bit without done means
    // stages were resumed from outside the runtime, and we schedule them.
    for (;;) {
        help_until(w, base, m_wait, k_wait_armed, k_wait_sleeper);
        // acquire: pairs with the finisher's and the outside resumers' CAS.
        std::uint32_t cur = m_wait.load(std::memory_order_acquire);
        bool done = false;
        for (;;) {
            if ((cur & k_wait_done) != 0) {
                done = true;
                break;
            }
            const std::uint32_t next = (cur & ~(k_wait_requests | k_wait_sleeper)) | k_wait_armed;
            // acquire: the resumed stages' state is ours to hand on.
            if (m_wait.compare_exchange_weak(cur, next, std::memory_order_acquire, std::memory_order_acquire)) break;
        }
        if (done) break;
        for (unsigned s = 0; s < m_stage_count; ++s) {
            if ((cur & request_bit(s)) != 0) push_stage_job(w, s);
        }
    }

    pipeline_stats out;
    out.wall_ns = now_ns() - start;
    out.items = m_stages[0].next_sequence;
    for (unsigned s = 0; s < m_stage_count; ++s) {
        stage_stats st;
        st.name = *m_stages[s].name;
        st.mode = m_stages[s].mode;
        for (unsigned k = 0; k < w.peers; ++k) {
            const pipeline_stat_cell& c = m_stats[static_cast<std::size_t>(k) * m_stage_count + s];
            // relaxed: every writer's last add happens before the end (m_live, m_wait).
            st.items += c.items.load(std::memory_order_relaxed);
            const std::uint64_t calls = c.calls.load(std::memory_order_relaxed);
            const std::uint64_t timed = c.timed_calls.load(std::memory_order_relaxed);
            const std::uint64_t timed_ns = c.timed_ns.load(std::memory_order_relaxed);
            if (timed != 0) {
                st.busy_ns += static_cast<std::uint64_t>(static_cast<long double>(timed_ns) * calls / timed);
            }
        }
        out.stages.push_back(std::move(st));
    }
    record_pipeline(*w.core, out);  // per-stage totals for report() and FORKLINE_STATS
    std::lock_guard<std::mutex> lock(m_failure_mutex);
    if (m_failure.cause) {
        throw pipeline_error(*m_stages[m_failure.stage].name, m_failure.sequence, m_failure.cause,
                             m_failure.text);
    }
    if (m_cancelled) throw pipeline_cancelled(std::move(out));  // X3
    return out;
}

// X1: see "Cancellation". The source sees the flag before its next call
// (X2); a paused source is resumed so that it does, as F3 does for a failure.
void pipeline_core::cancel() noexcept {
    // seq_cst: one half of the Dekker pair with a pausing source (P2 stores
    // `pausing`, then P3 reads the flag; we store the flag, then read the state).
    m_cancel.store(true, std::memory_order_seq_cst);
    pause_slot& slot = m_shared->slots[0];
    const std::uint64_t st = slot.state.load(std::memory_order_seq_cst);
    const std::uint64_t phase = st & 3;
    if (phase == k_pausing || phase == k_armed) m_shared->resume(0, st >> 2);
}

void pipeline_core::run_stage_job(job* j) noexcept {
    auto* sj = static_cast<pipeline_stage_job*>(j);
    sj->core->stage_job(sj->stage);
}

// The job holds stage s's runner role (the busy bit), so the pipeline is
// alive: the stage has an item waiting, a paused item, or is the open source.
void pipeline_core::stage_job(unsigned s) noexcept {
    worker& w = *current_worker();
    take_outside_requests(w);
    pipeline_stage_state& st = m_stages[s];
    if (st.kind == stage_kind::source) {
        bool holding = false;
        if (pipeline_token* t = source_step(w, holding)) carry(w, t, 1, holding);
    } else if (st.batch != nullptr) {
        if (pipeline_token* t = batch_step(w, st, nullptr)) carry(w, t, m_stage_count, false);
    } else {
        if (pipeline_token* t = serial_step(w, st, nullptr)) carry(w, t, s + 1, false);
    }
}

// Moves token t (at s == m_stage_count: a chain of finished tokens) from
// stage s on, running parallel stages here and handing it to serial ones,
// until it leaves the last stage or another thread takes it. Finished
// tokens go back to the source, which may give us the next item to carry.
// `holding`: we kept the source's role (see "Counting what is in flight",
// C4) and go back to it whenever the item we carry is off our hands.
void pipeline_core::carry(worker& w, pipeline_token* t, unsigned s, bool holding) noexcept {
    for (;;) {
        if (t == nullptr) {
            if (!holding) return;
            t = source_step(w, holding);
            if (t == nullptr) return;
            s = 1;
        }
        take_outside_requests(w);  // a stage resumed from outside waits at most one call
        if (s == m_stage_count) {
            // A source we hold is busy, so the tokens just queue for it.
            t = return_tokens(w, t, &holding);
            s = 1;
            continue;
        }
        pipeline_stage_state& st = m_stages[s];
        if (st.kind == stage_kind::parallel) {
            call_parallel(w, st, *t);
            ++s;
            continue;
        }
        if (!offer(st, t)) {  // the runner will take it; t no longer keeps the pipeline alive
            t = nullptr;
            continue;
        }
        if (st.batch != nullptr) {
            // Read before the step: once it hands back nothing, the stage is
            // released and the pipeline (this object) may be gone.
            s = m_stage_count;
            t = batch_step(w, st, t);  // the last stage: the batch's finished tokens
        } else {
            t = serial_step(w, st, t);
            ++s;
        }
    }
}

// ---- "Serial hand-over" ----

// H1. True: the stage was idle and we are its runner, with t in hand.
// False: t is in the inbox and the runner will take it; the caller must not
// touch the pipeline again (t was its claim on it).
bool pipeline_core::offer(pipeline_stage_state& st, pipeline_token* t) noexcept {
    std::uintptr_t cur = st.inbox.load(std::memory_order_relaxed);
    for (;;) {
        if ((cur & k_busy) == 0) {  // idle, hence empty
            // acquire: pairs with the release in H4 of the last runner; its
            // private state is ours now.
            if (st.inbox.compare_exchange_weak(cur, k_busy, std::memory_order_acquire, std::memory_order_relaxed)) {
                return true;
            }
        } else {
            t->next = token_of(cur);
            // release: publishes t and its item to the runner's H2.
            if (st.inbox.compare_exchange_weak(cur, word_of(t) | k_busy, std::memory_order_release,
                                               std::memory_order_relaxed)) {
                return false;
            }
        }
    }
}

// H2. The runner takes everything offered so far.
bool pipeline_core::refill_or_release(pipeline_stage_state& st) noexcept {
    if (has_offers(st)) {
        take_inbox(st);
        return false;
    }
    std::uintptr_t expected = k_busy;
    // release: as in hand_on (H4). Fails when an offer came meanwhile.
    return st.inbox.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed);
}

void pipeline_core::take_inbox(pipeline_stage_state& st) noexcept {
    // acquire: pairs with the release of every offer() in the list.
    pipeline_token* list = token_of(st.inbox.exchange(k_busy, std::memory_order_acquire));
    if (st.kind == stage_kind::source) {
        while (list != nullptr) {
            pipeline_token* next = list->next;
            list->next = st.fifo_head;
            st.fifo_head = list;
            list = next;
        }
        return;
    }
    if (st.kind == stage_kind::in_order) {
        for (; list != nullptr; list = list->next) st.reorder[list->sequence % m_max_tokens] = list;
        return;
    }
    // Out of order: the list is newest first; reverse it onto the fifo.
    pipeline_token* reversed = nullptr;
    pipeline_token* last = list;
    while (list != nullptr) {
        pipeline_token* next = list->next;
        list->next = reversed;
        reversed = list;
        list = next;
    }
    if (reversed == nullptr) return;
    if (st.fifo_tail != nullptr) {
        st.fifo_tail->next = reversed;
    } else {
        st.fifo_head = reversed;
    }
    st.fifo_tail = last;
}

void pipeline_core::place(pipeline_stage_state& st, pipeline_token* t) noexcept {
    if (st.kind == stage_kind::in_order) {
        st.reorder[t->sequence % m_max_tokens] = t;
        return;
    }
    t->next = nullptr;
    if (st.fifo_tail != nullptr) {
        st.fifo_tail->next = t;
    } else {
        st.fifo_head = t;
    }
    st.fifo_tail = t;
}

pipeline_token* pipeline_core::head(pipeline_stage_state& st) noexcept {
    if (st.kind == stage_kind::in_order) return st.reorder[st.next_sequence % m_max_tokens];
    return st.fifo_head;
}

void pipeline_core::consume_head(pipeline_stage_state& st) noexcept {
    if (st.kind == stage_kind::in_order) {
        st.reorder[st.next_sequence % m_max_tokens] = nullptr;
        ++st.next_sequence;
        return;
    }
    st.fifo_head = st.fifo_head->next;
    if (st.fifo_head == nullptr) st.fifo_tail = nullptr;
}

// H3/H4. After the runner finished an item: if another is ready, the role
// goes to a stage job that other workers can take (the finished item is
// carried on by the caller); otherwise the role is given up, unless an
// offer slipped in.
void pipeline_core::hand_on(worker& w, pipeline_stage_state& st) noexcept {
    for (;;) {
        if (head(st) != nullptr) {
            push_stage_job(w, st.index);
            return;
        }
        if (has_offers(st)) {
            take_inbox(st);
            continue;
        }
        std::uintptr_t expected = k_busy;
        // release: hands the runner-private state to the next runner's H1.
        if (st.inbox.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed)) {
            return;
        }
    }
}

// Runs the serial stage's next item, if one is ready; returns it, done with
// this stage, for the caller to carry on, or nullptr (nothing ready, or the
// item paused, or the role went elsewhere).
pipeline_token* pipeline_core::serial_step(worker& w, pipeline_stage_state& st, pipeline_token* in_hand) noexcept {
    if (in_hand != nullptr) place(st, in_hand);
    for (;;) {
        pipeline_token* x = head(st);
        if (x == nullptr) {
            if (refill_or_release(st)) return nullptr;
            continue;
        }
        if (dead(*x)) {
            m_clear(*x);  // a tombstone: it only keeps the sequence for later in-order stages
        } else {
            st.pause_key = x->sequence;
            flow_control fc = flow_access::make(*this, st.index, x->sequence);
            if (call_guarded(w, st, fc, x, x->sequence) == call_outcome::paused) {
                const pause_outcome p = settle_pause(st, fc);
                if (p == pause_outcome::armed) return nullptr;  // touch nothing more
                if (p == pause_outcome::call_again) continue;
                m_clear(*x);  // dropped: the cut-off passed it while it was paused
            }
        }
        consume_head(st);
        x->next = nullptr;
        if (st.index + 1 == m_stage_count) {
            // The last stage: nothing downstream can overlap with the next
            // item, so run it here rather than hand the role on; x is done
            // (the ready item keeps the pipeline alive while x goes back).
            if (head(st) == nullptr && has_offers(st)) {
                take_inbox(st);
            }
            if (head(st) != nullptr) {
                return_tokens(w, x, nullptr);
                continue;
            }
        }
        hand_on(w, st);
        return x;
    }
}

void pipeline_core::call_parallel(worker& w, pipeline_stage_state& st, pipeline_token& t) noexcept {
    if (dead(t)) {
        m_clear(t);
        return;
    }
    flow_control fc = flow_access::make(*this, st.index, t.sequence);
    call_guarded(w, st, fc, &t, t.sequence);  // cannot pause: pause() throws in a parallel stage
}

// The batching last stage: forms a batch of the ready items (or offers the
// paused one again), calls the stage, and returns the batch's tokens as a
// chain for the caller to give back to the source.
pipeline_token* pipeline_core::batch_step(worker& w, pipeline_stage_state& st, pipeline_token* in_hand) noexcept {
    if (in_hand != nullptr) place(st, in_hand);
    const batch_ops& ops = *st.batch;
    for (;;) {
        if (st.batch_head == nullptr) {
            std::size_t bytes = 0;
            for (;;) {
                pipeline_token* x = head(st);
                if (x == nullptr) {
                    if (!has_offers(st)) break;
                    take_inbox(st);
                    continue;
                }
                if (st.batch_sequences.size() == ops.max_items) break;
                if (dead(*x)) {
                    m_clear(*x);
                } else {
                    std::size_t b = 0;
                    bool taken = false;
                    bool failed = false;  // leaves as a tombstone
                    try {
                        if (ops.bytes != nullptr) b = ops.bytes(*this, *x);
                        if (st.batch_sequences.empty() || ops.max_bytes == 0 || bytes + b <= ops.max_bytes) {
                            ops.take(*this, *x);
                            taken = true;
                        }
                    } catch (const std::exception& e) {
                        m_clear(*x);
                        fail(st.index, x->sequence, std::current_exception(), e.what());
                        failed = true;
                    } catch (...) {
                        m_clear(*x);
                        fail(st.index, x->sequence, std::current_exception(), "a non-standard exception");
                        failed = true;
                    }
                    if (!taken && !failed) break;  // the byte bound: x starts the next batch
                    if (taken) {
                        // relaxed: set by a test before the run starts.
                        if (batch_take_hook hook = g_batch_take_hook.load(std::memory_order_relaxed)) {
                            hook(x->sequence, m_cutoff);
                        }
                        // B1: recorded whenever it was taken, so that the batch and
                        // its sequences stay index for index; a cut-off that came
                        // down meanwhile is applied by B2 below, not here.
                        st.batch_sequences.push_back(x->sequence);
                        bytes += b;
                    }
                }
                consume_head(st);
                x->next = nullptr;
                if (st.batch_tail != nullptr) {
                    st.batch_tail->next = x;
                } else {
                    st.batch_head = x;
                }
                st.batch_tail = x;
            }
            if (st.batch_head == nullptr) {
                std::uintptr_t expected = k_busy;
                // release: as in hand_on (H4).
                if (st.inbox.compare_exchange_strong(expected, 0, std::memory_order_release,
                                                     std::memory_order_relaxed)) {
                    return nullptr;
                }
                continue;
            }
        }
        // B2: a cut-off set while the batch formed, or while it was paused,
        // drops the items at or after it. relaxed: as in dead().
        const std::uint64_t cut = m_cutoff.load(std::memory_order_relaxed);
        for (std::size_t i = st.batch_sequences.size(); i-- > 0;) {
            if (st.batch_sequences[i] >= cut) {
                ops.erase(*this, i);
                st.batch_sequences.erase(st.batch_sequences.begin() + static_cast<std::ptrdiff_t>(i));
            }
        }
        if (!st.batch_sequences.empty()) {
            std::uint64_t least = st.batch_sequences.front();
            for (const std::uint64_t q : st.batch_sequences) least = q < least ? q : least;
            st.pause_key = least;
            flow_control fc = flow_access::make(*this, st.index, st.batch_sequences.front());
            if (call_guarded(w, st, fc, nullptr, least) == call_outcome::paused) {
                const pause_outcome p = settle_pause(st, fc);
                if (p == pause_outcome::armed) return nullptr;
                if (p == pause_outcome::call_again) continue;
            }
        }
        ops.clear(*this);
        st.batch_sequences.clear();
        pipeline_token* chain = st.batch_head;
        st.batch_head = nullptr;
        st.batch_tail = nullptr;
        hand_on(w, st);
        return chain;
    }
}

// ---- the source, and "Counting what is in flight" ----

// Produces the next item, or nullptr (no free token, paused, closed).
// `holding` says on return whether we kept the source's role (C4).
pipeline_token* pipeline_core::source_step(worker& w, bool& holding) noexcept {
    holding = false;
    pipeline_stage_state& st = m_stages[0];
    for (;;) {
        pipeline_token* t = st.fifo_head;
        if (t == nullptr) {  // every token is in flight: wait for one to come back
            // Released: the next token returned (C1) makes its returner the
            // source's runner.
            if (refill_or_release(st)) return nullptr;
            continue;
        }
        // F2': checked with the token in hand, right before the call. A
        // token freed by a dropped item came back after the cut-off was
        // lowered (its return's release, our take's acquire), so this load
        // sees the cut-off and the freed token reads nothing. relaxed: that
        // chain orders it; a failure racing this very call lets through at
        // most this one item, which the cut-off then drops.
        if (m_cutoff.load(std::memory_order_relaxed) != k_no_cutoff) {
            close_source();
            return nullptr;
        }
        // X2: likewise for a cancellation. acquire: pairs with cancel()'s
        // store (which a stop request's return follows).
        if (m_cancel.load(std::memory_order_acquire)) {
            m_cancelled = true;
            close_source();
            return nullptr;
        }
        t->sequence = st.next_sequence;
        st.pause_key = t->sequence;
        flow_control fc = flow_access::make(*this, 0, t->sequence);
        const call_outcome r = call_guarded(w, st, fc, t, t->sequence);
        if (r == call_outcome::failed || r == call_outcome::stopped) {
            close_source();  // the token is still in the free list
            return nullptr;
        }
        if (r == call_outcome::paused) {
            const pause_outcome p = settle_pause(st, fc);
            if (p == pause_outcome::armed) return nullptr;
            continue;  // called again, or dropped (the loop's top closes)
        }
        st.fifo_head = t->next;
        t->next = nullptr;
        ++st.next_sequence;
        // Another item can start at once if a token is free: let a thief
        // produce it while we carry this one, unless items are too cheap
        // for that to pay (C4).
        if (st.fifo_head != nullptr || has_offers(st)) {
            if (items_are_cheap(w, st)) {
                holding = true;
                return t;
            }
            push_stage_job(w, 0);
        } else {
            std::uintptr_t expected = k_busy;
            // release: as above.
            if (!st.inbox.compare_exchange_strong(expected, 0, std::memory_order_release,
                                                  std::memory_order_relaxed)) {
                push_stage_job(w, 0);
            }
        }
        return t;
    }
}

// C1. Gives finished tokens (a chain) back to the source. If the source was
// idle for want of tokens, we become its runner: with `holding` we run it and
// return its next item (and say whether we kept the role); without, we
// push its job.
pipeline_token* pipeline_core::return_tokens(worker& w, pipeline_token* chain, bool* holding) noexcept {
    pipeline_stage_state& source = m_stages[0];
    pipeline_token* tail = chain;
    std::uint64_t n = 1;
    for (; tail->next != nullptr; tail = tail->next) ++n;
    std::uintptr_t cur = source.inbox.load(std::memory_order_relaxed);
    for (;;) {
        if (cur == k_closed) {
            release_live(n);  // C3: possibly the last touch of the pipeline
            return nullptr;
        }
        if ((cur & k_busy) == 0) {
            // acquire: pairs with the release of the source's last runner (H4).
            if (source.inbox.compare_exchange_weak(cur, k_busy, std::memory_order_acquire,
                                                   std::memory_order_relaxed)) {
                tail->next = source.fifo_head;
                source.fifo_head = chain;
                if (holding != nullptr) return source_step(w, *holding);
                push_stage_job(w, 0);
                return nullptr;
            }
        } else {
            tail->next = token_of(cur);
            // release: publishes the tokens (their items destroyed) to the
            // source's take (H2) or close (C2).
            if (source.inbox.compare_exchange_weak(cur, word_of(chain) | k_busy, std::memory_order_release,
                                                   std::memory_order_relaxed)) {
                return nullptr;
            }
        }
    }
}

// C4. Whether the items this worker has seen cost so little (all stages
// together) that handing the source to a thief would cost more in moved
// cache lines than the overlap gains: then the source's runner keeps its
// role and produces the next item itself once the current one is off its
// hands. Decided from this worker's statistics, again every k_cheap_recheck
// items; with no figures for some stage yet, items are not cheap.
bool pipeline_core::items_are_cheap(worker& w, pipeline_stage_state& st) noexcept {
    if (st.cheap_worker == w.index && st.next_sequence - st.cheap_checked_at < k_cheap_recheck) return st.cheap;
    st.cheap_worker = w.index;
    st.cheap_checked_at = st.next_sequence;
    std::uint64_t item_ns = 0;
    for (unsigned s = 0; s < m_stage_count; ++s) {
        const pipeline_stat_cell& c = cell(w, s);
        // relaxed: our own cells.
        const std::uint64_t timed = c.timed_calls.load(std::memory_order_relaxed);
        if (timed == 0) {
            st.cheap = false;
            return false;
        }
        item_ns += c.timed_ns.load(std::memory_order_relaxed) / timed;
    }
    st.cheap = item_ns < k_cheap_item_ns;
    return st.cheap;
}

// C2. The source is done (stopped, failed, or saw a failure). It holds its
// role for good; m_live takes over the count of tokens still out.
void pipeline_core::close_source() noexcept {
    pipeline_stage_state& st = m_stages[0];
    // relaxed: our own unit of m_live keeps it above zero until the
    // release_live() below, which is ordered after this on the same atomic.
    m_live.fetch_add(m_max_tokens, std::memory_order_relaxed);
    // acquire: the tokens returned so far (their release pushes) are ours.
    const std::uintptr_t returned = st.inbox.exchange(k_closed, std::memory_order_acquire);
    const std::size_t in_pool = chain_length(st.fifo_head) + chain_length(token_of(returned));
    release_live(in_pool + 1);  // + 1: the open source's own unit
}

// C3.
void pipeline_core::release_live(std::uint64_t n) noexcept {
    // acq_rel: release publishes this thread's part of the run; the last
    // decrement acquires everyone's before it tells the caller.
    if (m_live.fetch_sub(n, std::memory_order_acq_rel) != n) return;
    std::uint32_t cur = m_wait.load(std::memory_order_relaxed);
    // release: pairs with the caller's acquire load after help_until.
    while (!m_wait.compare_exchange_weak(cur, (cur | k_wait_done) & ~k_wait_armed, std::memory_order_release,
                                         std::memory_order_relaxed)) {
    }
    // The caller may be gone already; a futex wake on its address is harmless.
    if ((cur & k_wait_sleeper) != 0) wake_waiters(m_wait);
}

// ---- calls, failures and "Pause protocol" ----

// key: the sequence a failure is reported for (the item's; a batch's least).
pipeline_core::call_outcome pipeline_core::call_guarded(worker& w, pipeline_stage_state& st, flow_control& fc,
                                                        pipeline_token* item, std::uint64_t key) noexcept {
    pipeline_stat_cell& c = cell(w, st.index);
    // relaxed: our own cell (single writer).
    const std::uint32_t untimed_left = c.untimed_left.load(std::memory_order_relaxed);
    const std::uint64_t t0 = untimed_left == 0 ? now_ns() : 0;
    std::exception_ptr error;
    std::string text;
    FORKLINE_PROBE(stage_enter, st.index, key);
    trace::stage_span traced(*st.name, key);
    try {
        if (item != nullptr) {
            st.call(*this, *item, fc);
        } else {
            st.batch->call(*this, fc);
        }
    } catch (const std::exception& e) {
        error = std::current_exception();
        text = e.what();
    } catch (...) {
        error = std::current_exception();
        text = "a non-standard exception";
    }
    FORKLINE_PROBE(stage_exit, st.index, key);
    traced.end();
    if (untimed_left == 0) {
        const std::uint64_t took = now_ns() - t0;
        add(c.timed_ns, took);
        add(c.timed_calls, 1);
        c.untimed_left.store(took < k_short_call_ns ? k_sample_every - 1 : 0, std::memory_order_relaxed);
    } else {
        c.untimed_left.store(untimed_left - 1, std::memory_order_relaxed);
    }
    add(c.calls, 1);
    const std::uint64_t taken = item != nullptr ? 1 : st.batch_sequences.size();
    if (!error && flow_access::stopped(fc) && st.kind != stage_kind::source) {
        text = "forkline: flow_control::stop() called in stage '" + *st.name +
               "', which is not the first; only the first stage ends the input";
        error = std::make_exception_ptr(std::logic_error(text));
    }
    const bool paused = flow_access::paused(fc);
    if (paused && (error || flow_access::stopped(fc))) {
        // The call is over either way: no handle of it may resume anything.
        // relaxed: nothing is published; a racing resume's CAS fails or is
        // overwritten, and either way nothing is scheduled.
        m_shared->slots[st.index].state.store(pause_word(flow_access::generation(fc), k_idle),
                                              std::memory_order_relaxed);
    }
    if (error) {
        if (st.kind != stage_kind::source) add(c.items, taken);
        if (item != nullptr) m_clear(*item);
        fail(st.index, key, std::move(error), std::move(text));
        return call_outcome::failed;
    }
    if (flow_access::stopped(fc)) return call_outcome::stopped;
    if (paused) return call_outcome::paused;
    add(c.items, taken);
    return call_outcome::done;
}

// P2, in pause(): see "Pause protocol".
resume_handle pipeline_core::pause(flow_control& fc) {
    const unsigned s = flow_access::stage(fc);
    if (flow_access::paused(fc)) return resume_handle(m_shared, s, flow_access::generation(fc));
    pipeline_stage_state& st = m_stages[s];
    if (st.kind == stage_kind::parallel) {
        throw std::logic_error("forkline: flow_control::pause() called in parallel stage '" + *st.name +
                               "'; only serial stages may pause");
    }
    const std::uint64_t generation = ++st.pause_generation;
    pause_slot& slot = m_shared->slots[s];
    // relaxed: published by the seq_cst store below, read by fail()'s sweep after it.
    slot.sequence.store(st.pause_key, std::memory_order_relaxed);
    // seq_cst: one half of the Dekker pair with fail() (P3 reads the cut-off
    // after this; the sweep reads this after storing the cut-off).
    slot.state.store(pause_word(generation, k_pausing), std::memory_order_seq_cst);
    flow_access::set_paused(fc, generation);
    return resume_handle(m_shared, s, generation);
}

// P2', in unpause(): the call takes its pause back before returning.
void pipeline_core::unpause(flow_control& fc) noexcept {
    pause_slot& slot = m_shared->slots[flow_access::stage(fc)];
    // seq_cst: as P2's store, so that fail()'s sweep, which reads the state
    // after lowering the cut-off, sees either the pause (and resumes it,
    // which the store below then overwrites: the call is not paused) or this.
    // A resume() of this generation after the store finds the slot idle and
    // does nothing; one before it marked it `early`, which is overwritten.
    slot.state.store(pause_word(flow_access::generation(fc), k_idle), std::memory_order_seq_cst);
    flow_access::clear_paused(fc);
}

// P3: the stage returned after pause().
pipeline_core::pause_outcome pipeline_core::settle_pause(pipeline_stage_state& st, flow_control& fc) noexcept {
    pause_slot& slot = m_shared->slots[st.index];
    const std::uint64_t generation = flow_access::generation(fc);
    // seq_cst: the other half of the Dekker pair with fail()'s sweep.
    const std::uint64_t cut = m_cutoff.load(std::memory_order_seq_cst);
    // A source also drops its pause for a cancellation (X1's Dekker pair);
    // seq_cst as the load above.
    if (st.kind == stage_kind::source ? cut != k_no_cutoff || m_cancel.load(std::memory_order_seq_cst)
                                      : st.pause_key >= cut) {
        // relaxed: as for a call that failed (call_guarded).
        slot.state.store(pause_word(generation, k_idle), std::memory_order_relaxed);
        return pause_outcome::dropped;
    }
    std::uint64_t expected = pause_word(generation, k_pausing);
    // seq_cst on success: its release hands the stage's private state to the
    // resumer's acquire (P4); after it we touch nothing, since a resume may
    // already be running the stage. acquire on failure: the early resumer's
    // writes before resume() are visible to the call we make again.
    if (slot.state.compare_exchange_strong(expected, pause_word(generation, k_armed), std::memory_order_seq_cst,
                                           std::memory_order_acquire)) {
        return pause_outcome::armed;
    }
    // relaxed: the resume that made it `early` is spent; nothing to publish.
    slot.state.store(pause_word(generation, k_idle), std::memory_order_relaxed);
    return pause_outcome::call_again;
}

// P4 and P5.
bool pipeline_shared::resume(unsigned stage, std::uint64_t generation) noexcept {
    pause_slot& slot = slots[stage];
    // acquire: pairs with P3's arming; what the runner left is ours to schedule.
    std::uint64_t cur = slot.state.load(std::memory_order_acquire);
    for (;;) {
        if ((cur >> 2) != generation) return false;
        const std::uint64_t phase = cur & 3;
        if (phase == k_pausing) {
            // P5, early: the runner has not returned from the call yet. It
            // will see `early` at P3 and call the stage again.
            // acq_rel: release publishes what the resumer did before resume().
            if (slot.state.compare_exchange_weak(cur, pause_word(generation, k_early), std::memory_order_acq_rel,
                                                 std::memory_order_acquire)) {
                return true;
            }
        } else if (phase == k_armed) {
            if (slot.state.compare_exchange_weak(cur, pause_word(generation, k_idle), std::memory_order_acq_rel,
                                                 std::memory_order_acquire)) {
                core->schedule_resumed(stage);  // the armed pause kept the pipeline alive until here
                return true;
            }
        } else {
            return false;
        }
    }
}

void pipeline_core::schedule_resumed(unsigned stage) noexcept {
    worker* w = current_worker();
    if (w != nullptr && w->core == m_runtime) {
        push_stage_job(*w, stage);
        return;
    }
    // Outside the runtime (an I/O thread, a worker of another runtime): the
    // waiting caller, or the next stage job, schedules it. See "Waiting".
    std::uint32_t cur = m_wait.load(std::memory_order_relaxed);
    // release: pairs with the acquire of whoever takes the request.
    while (!m_wait.compare_exchange_weak(cur, (cur | request_bit(stage)) & ~k_wait_armed,
                                         std::memory_order_release, std::memory_order_relaxed)) {
    }
    if ((cur & k_wait_sleeper) != 0) wake_waiters(m_wait);
}

void pipeline_core::take_outside_requests(worker& w) noexcept {
    // relaxed: a peek; the fetch_and below is what takes them.
    if ((m_wait.load(std::memory_order_relaxed) & k_wait_requests) == 0) return;
    // acquire: pairs with the requester's release.
    const std::uint32_t taken = m_wait.fetch_and(~k_wait_requests, std::memory_order_acquire);
    for (unsigned s = 0; s < m_stage_count; ++s) {
        if ((taken & request_bit(s)) != 0) push_stage_job(w, s);
    }
}

void pipeline_core::push_stage_job(worker& w, unsigned s) noexcept {
    job* j = &m_stages[s].job;
    if (!w.deque.push(j)) {  // full: nobody could steal it anyway
        run_job(w, j);
        return;
    }
    bump(w.counters.spawned);
    FORKLINE_PROBE(spawn);
    notify_after_push(w);
    // The caller of run_pipeline helps in help_until, and sleeps there on
    // m_wait, where the runtime's wake-ups for parked workers do not reach
    // it: without this it would sleep out its timeout while work waits in
    // our deque. Toggling a bit changes the word, so a caller between
    // announcing itself and sleeping does not sleep. See "Waiting".
    // relaxed: a hint; the toggle's release publishes nothing the thief
    // needs beyond what the deque push already did.
    if ((m_wait.load(std::memory_order_relaxed) & k_wait_sleeper) != 0) {
        m_wait.fetch_xor(k_wait_kick, std::memory_order_relaxed);
        wake_waiters(m_wait);
    }
}

bool pipeline_core::dead(const pipeline_token& t) const noexcept {
    // relaxed: the failure that set the cut-off happened before the dead
    // token got here when it matters (a tombstone reaching an in-order
    // stage), and coherence then shows it; elsewhere a late view only lets
    // one more call through.
    return t.sequence >= m_cutoff.load(std::memory_order_relaxed);
}

// F1-F3: see "Failures".
void pipeline_core::fail(unsigned stage, std::uint64_t sequence, std::exception_ptr cause, std::string text) noexcept {
    {
        std::lock_guard<std::mutex> lock(m_failure_mutex);
        if (!m_failure.cause || sequence < m_failure.sequence) {
            m_failure.sequence = sequence;
            m_failure.stage = stage;
            m_failure.cause = std::move(cause);
            m_failure.text = std::move(text);
        }
    }
    std::uint64_t cur = m_cutoff.load(std::memory_order_relaxed);
    bool lowered = false;
    // seq_cst: the sweep's half of the Dekker pair with P2/P3.
    while (sequence < cur) {
        if (m_cutoff.compare_exchange_weak(cur, sequence, std::memory_order_seq_cst, std::memory_order_relaxed)) {
            lowered = true;
            break;
        }
    }
    if (!lowered) return;
    // F3: wake paused stages whose item is now dropped (and a paused
    // source, which produces no more), so that nobody waits for a resume
    // that may never come.
    for (unsigned s = 0; s < m_stage_count; ++s) {
        if (m_stages[s].kind == stage_kind::parallel) continue;
        pause_slot& slot = m_shared->slots[s];
        // seq_cst: after our store of the cut-off (Dekker with P2/P3).
        const std::uint64_t st = slot.state.load(std::memory_order_seq_cst);
        const std::uint64_t phase = st & 3;
        if (phase != k_pausing && phase != k_armed) continue;
        if (s != 0 && slot.sequence.load(std::memory_order_relaxed) < sequence) continue;
        m_shared->resume(s, st >> 2);
    }
}

}  // namespace detail
}  // namespace forkline

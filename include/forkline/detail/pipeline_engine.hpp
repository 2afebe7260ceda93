// forkline/detail/pipeline_engine.hpp: run_pipeline's templates.
//
// The chain of item types is computed (and checked) from the stages'
// callables; each token slot holds one std::optional per item type, so an
// item moves from stage to stage inside its slot and the engine allocates
// nothing per item. The typed calls below are what pipeline_core invokes.
#pragma once

#include <cstddef>      // size_t
#include <memory>       // unique_ptr
#include <optional>     // optional
#include <span>         // span
#include <stop_token>   // stop_token
#include <tuple>        // tuple, get
#include <type_traits>  // invoke_result_t, is_invocable_v, remove_cvref_t
#include <utility>      // forward, move, index_sequence
#include <vector>       // vector (the batch)

#include "forkline/detail/pipeline_core.hpp"  // pipeline_core, pipeline_token
#include "forkline/detail/worker.hpp"         // current_worker
#include "forkline/pipeline.hpp"              // stage, flow_control, pipeline_stats

namespace forkline::detail {

/// A batching last stage's callable and bounds (what batch() returns).
template <class F, class SizeFn>
struct batched {
    F fn;
    SizeFn size_of;
    std::size_t max_items;
    std::size_t max_bytes;
};

template <class F>
struct is_batched : std::false_type {};
template <class F, class SizeFn>
struct is_batched<batched<F, SizeFn>> : std::true_type {};

template <class S>
struct stage_callable {
    static constexpr bool is_stage = false;
    using type = void;
};
template <class F>
struct stage_callable<pipeline_stage<F>> {
    static constexpr bool is_stage = true;
    using type = F;
};
template <class S>
using stage_callable_t = typename stage_callable<std::remove_cvref_t<S>>::type;

/// The engine's access to flow_control's private state.
struct flow_access {
    static flow_control make(pipeline_core& core, unsigned stage, std::uint64_t sequence) noexcept {
        return flow_control(core, stage, sequence);
    }
    static bool paused(const flow_control& fc) noexcept { return fc.m_paused; }
    static bool stopped(const flow_control& fc) noexcept { return fc.m_stopped; }
    static std::uint64_t generation(const flow_control& fc) noexcept { return fc.m_generation; }
    static unsigned stage(const flow_control& fc) noexcept { return fc.m_stage; }
    static void set_paused(flow_control& fc, std::uint64_t generation) noexcept {
        fc.m_paused = true;
        fc.m_generation = generation;
    }
    static void clear_paused(flow_control& fc) noexcept { fc.m_paused = false; }
};

/// invoke_result_t, or `void` when F cannot be called so (so that a failed
/// static_assert is not followed by a cascade of errors).
template <bool Ok, class F, class... Args>
struct result_if {
    using type = void;
};
template <class F, class... Args>
struct result_if<true, F, Args...> {
    using type = std::invoke_result_t<F, Args...>;
};

/// Stands for the item of a stage that failed its check, so that one
/// mistake gives one error, not a cascade through the later stages.
struct invalid_item {};

template <class F>
struct first_stage_check {
    static constexpr bool callable = std::is_invocable_v<F&, flow_control&>;
    static_assert(callable, "forkline::run_pipeline: the first stage must be callable as T fn(flow_control&)");
    static_assert(!is_batched<F>::value, "forkline::run_pipeline: only the last stage may take batches");
    using raw = std::remove_cvref_t<typename result_if<callable, F&, flow_control&>::type>;
    static_assert(!callable || !std::is_void_v<raw>,
                  "forkline::run_pipeline: the first stage must return the first item (not void)");
    static constexpr bool ok = callable && !std::is_void_v<raw> && !is_batched<F>::value;
    using result = std::conditional_t<ok, raw, invalid_item>;
};

// In the checks below, Stage is the 0-based index of the stage at fault and
// In the type of the item it is given: both appear in the compiler's
// "required from" lines under the assertion.
template <std::size_t Stage, class In, class F>
struct middle_stage_check {
    static constexpr bool given = !std::is_same_v<In, invalid_item>;  // else: reported already
    static_assert(!is_batched<F>::value, "forkline::run_pipeline: only the last stage may take batches");
    static constexpr bool with_fc = std::is_invocable_v<F&, In&, flow_control&>;
    static constexpr bool plain = std::is_invocable_v<F&, In&>;
    static_assert(!given || with_fc || plain,
                  "forkline::run_pipeline: a middle stage (index: middle_stage_check's first argument) "
                  "must be callable as U fn(T&) or U fn(T&, flow_control&), T being the previous "
                  "stage's result (middle_stage_check's second argument)");
    using raw = std::conditional_t<with_fc, typename result_if<with_fc, F&, In&, flow_control&>::type,
                                   typename result_if<plain, F&, In&>::type>;
    static_assert(!(with_fc || plain) || !std::is_void_v<raw>,
                  "forkline::run_pipeline: a middle stage (index: middle_stage_check's first argument) "
                  "must return the next stage's item; only the last stage returns void");
    static constexpr bool ok = given && (with_fc || plain) && !std::is_void_v<raw> && !is_batched<F>::value;
    using result = std::conditional_t<ok, std::remove_cvref_t<raw>, invalid_item>;
};

template <std::size_t Stage, class In, class F>
struct last_stage_check {
    static constexpr bool given = !std::is_same_v<In, invalid_item>;
    static constexpr bool with_fc = std::is_invocable_v<F&, In&, flow_control&>;
    static constexpr bool plain = std::is_invocable_v<F&, In&>;
    static_assert(!given || with_fc || plain,
                  "forkline::run_pipeline: the last stage (index: last_stage_check's first argument) "
                  "must be callable as void fn(T&) or void fn(T&, flow_control&), T being the previous "
                  "stage's result (last_stage_check's second argument)");
    using raw = std::conditional_t<with_fc, typename result_if<with_fc, F&, In&, flow_control&>::type,
                                   typename result_if<plain, F&, In&>::type>;
    static_assert(std::is_void_v<raw>, "forkline::run_pipeline: the last stage must return void");
    static constexpr bool ok = given && (with_fc || plain) && std::is_void_v<raw>;
};

template <std::size_t Stage, class In, class F, class SizeFn>
struct last_stage_check<Stage, In, batched<F, SizeFn>> {
    static constexpr bool given = !std::is_same_v<In, invalid_item>;
    static constexpr bool with_fc = std::is_invocable_v<F&, std::span<In>, flow_control&>;
    static constexpr bool plain = std::is_invocable_v<F&, std::span<In>>;
    static_assert(!given || with_fc || plain,
                  "forkline::run_pipeline: a batching last stage must be callable as "
                  "void fn(std::span<T>) or void fn(std::span<T>, flow_control&), T being the previous "
                  "stage's result (last_stage_check's second argument)");
    static constexpr bool sized =
        std::is_same_v<SizeFn, no_size_of> || std::is_invocable_r_v<std::size_t, SizeFn&, In&>;
    static_assert(!given || sized,
                  "forkline::run_pipeline: batch()'s size_of must be callable as std::size_t size_of(T&)");
    static constexpr bool ok = given && (with_fc || plain) && sized;
};

template <class... Ts>
struct type_list {};

template <class T, class List>
struct prepend;
template <class T, class... Ts>
struct prepend<T, type_list<Ts...>> {
    using type = type_list<T, Ts...>;
};

/// The item types produced by the stages from index I on, given their input.
template <std::size_t I, class In, class... Fs>
struct item_chain;
template <std::size_t I, class In, class Last>
struct item_chain<I, In, Last> {
    static constexpr bool ok = last_stage_check<I, In, Last>::ok;
    using types = type_list<>;
};
template <std::size_t I, class In, class Mid, class Next, class... Rest>
struct item_chain<I, In, Mid, Next, Rest...> {
    using check = middle_stage_check<I, In, Mid>;
    using out = typename check::result;
    using rest = item_chain<I + 1, out, Next, Rest...>;
    static constexpr bool ok = check::ok && rest::ok;
    using types = typename prepend<out, typename rest::types>::type;
};

template <class F0, class... Fs>
struct pipeline_types {
    using first_check = first_stage_check<F0>;
    using first = typename first_check::result;
    using chain = item_chain<1, first, Fs...>;
    /// Every stage passed its check (each failed check has reported itself).
    static constexpr bool ok = first_check::ok && chain::ok;
    /// T0 ... T(n-2): the item each stage but the last returns.
    using items = typename prepend<first, typename chain::types>::type;
};

template <class List>
struct optional_tuple;
template <class... Ts>
struct optional_tuple<type_list<Ts...>> {
    using type = std::tuple<std::optional<Ts>...>;
    template <std::size_t I>
    using at = std::tuple_element_t<I, std::tuple<Ts...>>;
};

template <class... Stages>
class pipeline_engine final : public pipeline_core {
    static constexpr std::size_t k_stages = sizeof...(Stages);
    using types = pipeline_types<stage_callable_t<Stages>...>;
    using items_layout = optional_tuple<typename types::items>;
    using items_tuple = typename items_layout::type;
    using last_callable = std::tuple_element_t<k_stages - 1, std::tuple<stage_callable_t<Stages>...>>;
    using last_item = typename items_layout::template at<k_stages - 2>;
    static constexpr bool k_batched = is_batched<last_callable>::value;

    /// A token and the values its item takes on its way. A line (or more)
    /// each: neighbouring tokens are often in flight on different workers.
    struct alignas(k_cache_line) slot : pipeline_token {
        items_tuple items;
    };

public:
    template <class... Args>
    explicit pipeline_engine(std::size_t max_tokens, Args&&... stages)
        : pipeline_core(max_tokens, static_cast<unsigned>(k_stages)),
          m_stages(std::forward<Args>(stages)...),
          m_slots(new slot[max_tokens]) {
        if constexpr (k_batched) {
            auto& b = std::get<k_stages - 1>(m_stages).fn();
            m_batch_ops.max_items = b.max_items;
            m_batch_ops.max_bytes = b.max_bytes;
            if constexpr (!std::is_same_v<decltype(b.size_of), no_size_of>) m_batch_ops.bytes = &batch_bytes;
            m_batch_ops.take = &batch_take;
            m_batch_ops.call = &batch_call;
            m_batch_ops.erase = &batch_erase;
            m_batch_ops.clear = &batch_clear;
            m_batch.reserve(b.max_items);
        }
        configure_all(std::make_index_sequence<k_stages>{});
        for (std::size_t i = 0; i < max_tokens; ++i) add_token(m_slots[i]);
        set_clear(&clear);
    }

private:
    template <std::size_t... Is>
    void configure_all(std::index_sequence<Is...>) {
        (configure(static_cast<unsigned>(Is), std::get<Is>(m_stages).mode(), std::get<Is>(m_stages).name(),
                   &call<Is>, (k_batched && Is == k_stages - 1) ? &m_batch_ops : nullptr),
         ...);
    }

    static void clear(pipeline_token& t) noexcept {
        std::apply([](auto&... values) { (values.reset(), ...); }, static_cast<slot&>(t).items);
    }

    template <std::size_t I>
    static void call(pipeline_core& core, pipeline_token& t, flow_control& fc) {
        [[maybe_unused]] auto& self = static_cast<pipeline_engine&>(core);
        [[maybe_unused]] auto& items = static_cast<slot&>(t).items;
        [[maybe_unused]] auto& fn = std::get<I>(self.m_stages).fn();
        if constexpr (I == 0) {
            auto& out = std::get<0>(items);
            out.emplace(fn(fc));
            // stop() or pause(): the value is dropped.
            if (flow_access::stopped(fc) || flow_access::paused(fc)) out.reset();
        } else if constexpr (I + 1 < k_stages) {
            auto& in = *std::get<I - 1>(items);
            auto& out = std::get<I>(items);
            if constexpr (std::is_invocable_v<decltype(fn)&, decltype(in), flow_control&>) {
                out.emplace(fn(in, fc));
            } else {
                out.emplace(fn(in));
            }
            if (flow_access::paused(fc)) {
                out.reset();  // the input stays for the next call
            } else {
                std::get<I - 1>(items).reset();
            }
        } else if constexpr (!k_batched) {
            auto& in = *std::get<I - 1>(items);
            if constexpr (std::is_invocable_v<decltype(fn)&, decltype(in), flow_control&>) {
                fn(in, fc);
            } else {
                fn(in);
            }
            if (!flow_access::paused(fc)) std::get<I - 1>(items).reset();
        }
    }

    static std::size_t batch_bytes(pipeline_core& core, [[maybe_unused]] pipeline_token& t) {
        [[maybe_unused]] auto& self = static_cast<pipeline_engine&>(core);
        if constexpr (k_batched) {
            auto& b = std::get<k_stages - 1>(self.m_stages).fn();
            if constexpr (!std::is_same_v<decltype(b.size_of), no_size_of>) {
                return static_cast<std::size_t>(b.size_of(*std::get<k_stages - 2>(static_cast<slot&>(t).items)));
            }
        }
        return 0;
    }
    static void batch_take(pipeline_core& core, pipeline_token& t) {
        auto& self = static_cast<pipeline_engine&>(core);
        auto& value = std::get<k_stages - 2>(static_cast<slot&>(t).items);
        self.m_batch.push_back(std::move(*value));  // capacity reserved: no allocation
        value.reset();
    }
    static void batch_call(pipeline_core& core, [[maybe_unused]] flow_control& fc) {
        [[maybe_unused]] auto& self = static_cast<pipeline_engine&>(core);
        if constexpr (k_batched) {
            auto& b = std::get<k_stages - 1>(self.m_stages).fn();
            std::span<last_item> items(self.m_batch);
            if constexpr (std::is_invocable_v<decltype(b.fn)&, std::span<last_item>, flow_control&>) {
                b.fn(items, fc);
            } else {
                b.fn(items);
            }
        }
    }
    static void batch_erase(pipeline_core& core, std::size_t index) noexcept {
        auto& self = static_cast<pipeline_engine&>(core);
        self.m_batch.erase(self.m_batch.begin() + static_cast<std::ptrdiff_t>(index));
    }
    static void batch_clear(pipeline_core& core) noexcept { static_cast<pipeline_engine&>(core).m_batch.clear(); }

    std::tuple<Stages...> m_stages;
    std::unique_ptr<slot[]> m_slots;
    batch_ops m_batch_ops;
    // The batch being offered to the last stage (empty unless batching).
    std::vector<std::conditional_t<k_batched, last_item, char>> m_batch;
};

template <class... Stages>
consteval bool pipeline_shape_ok() {
    constexpr bool stages = (stage_callable<std::remove_cvref_t<Stages>>::is_stage && ...);
    static_assert(sizeof...(Stages) >= 2,
                  "forkline::run_pipeline: a pipeline needs at least two stages: a first one that produces "
                  "items and a last one that consumes them");
    static_assert(sizeof...(Stages) <= 28, "forkline::run_pipeline: at most 28 stages");
    static_assert(stages, "forkline::run_pipeline: make each stage with forkline::stage(mode, name, fn)");
    if constexpr (sizeof...(Stages) >= 2 && sizeof...(Stages) <= 28 && stages) {
        return pipeline_types<stage_callable_t<Stages>...>::ok;
    } else {
        return false;
    }
}

template <class... Stages>
pipeline_stats run_on_worker(std::size_t max_tokens, std::stop_token stop, Stages&&... stages) {
    pipeline_engine<std::remove_cvref_t<Stages>...> engine(max_tokens, std::forward<Stages>(stages)...);
    engine.set_stop(std::move(stop));
    return engine.run();
}

void check_max_tokens(std::size_t max_tokens);

}  // namespace forkline::detail

namespace forkline {

template <class... Stages>
pipeline_stats run_pipeline(runtime& rt, std::size_t max_tokens, std::stop_token stop, Stages&&... stages) {
    if constexpr (detail::pipeline_shape_ok<Stages...>()) {  // else the checks have said why
        detail::check_max_tokens(max_tokens);
        // From one of rt's workers run() calls the lambda in place; from any
        // other thread it blocks until a worker of rt has run it.
        return rt.run([&] {
            return detail::run_on_worker(max_tokens, std::move(stop), std::forward<Stages>(stages)...);
        });
    } else {
        return {};
    }
}

template <class... Stages>
pipeline_stats run_pipeline(std::size_t max_tokens, std::stop_token stop, Stages&&... stages) {
    if constexpr (detail::pipeline_shape_ok<Stages...>()) {
        detail::check_max_tokens(max_tokens);
        // A measuring scope's stand-in worker has no runtime: use the default one.
        if (const detail::worker* w = detail::current_worker(); w != nullptr && w->measure == nullptr) {
            return detail::run_on_worker(max_tokens, std::move(stop), std::forward<Stages>(stages)...);
        }
        return run_pipeline(default_runtime(), max_tokens, std::move(stop), std::forward<Stages>(stages)...);
    } else {
        return {};
    }
}

template <class... Stages>
pipeline_stats run_pipeline(runtime& rt, std::size_t max_tokens, Stages&&... stages) {
    return run_pipeline(rt, max_tokens, std::stop_token{}, std::forward<Stages>(stages)...);
}

template <class... Stages>
pipeline_stats run_pipeline(std::size_t max_tokens, Stages&&... stages) {
    return run_pipeline(max_tokens, std::stop_token{}, std::forward<Stages>(stages)...);
}

}  // namespace forkline

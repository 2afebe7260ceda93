// bench/distribute/policy_tbb.cpp: the oneTBB peer, task_arena::enqueue into
// an arena of `workers` slots none of which is kept for the calling thread.
#include <oneapi/tbb/global_control.h>  // global_control
#include <oneapi/tbb/task_arena.h>      // task_arena

#include <optional>  // optional

#include "distribute/policy.hpp"

namespace forkline_bench::distribute {
namespace {

class tbb_arena final : public policy {
public:
    void start(run_context& ctx, unsigned workers) override {
        m_ctx = &ctx;
        // The generator thread never joins the arena, so TBB needs `workers`
        // threads of its own besides it.
        m_limit.emplace(tbb::global_control::max_allowed_parallelism, workers + 1);
        m_arena.emplace(static_cast<int>(workers), 0);
        m_arena->initialize();
    }
    void submit(std::uint32_t i) override {
        m_arena->enqueue([ctx = m_ctx, i] { ctx->execute(i); });
    }
    void stop() override {
        m_arena.reset();
        m_limit.reset();
    }

private:
    run_context* m_ctx = nullptr;
    std::optional<tbb::global_control> m_limit;
    std::optional<tbb::task_arena> m_arena;
};

}  // namespace

std::unique_ptr<policy> make_tbb_arena() { return std::make_unique<tbb_arena>(); }

}  // namespace forkline_bench::distribute

// bench/uts/uts_serial.cpp: the same tree walked with plain recursion, the limit the others approach.
#include "uts.hpp"  // run_uts_serial

namespace forkline_bench {

uts_sample run_uts_serial(const uts::tree_params& p) {
    const uts::tree t(p);
    uts_sample out;
    bool warm = false;
    out.timing = warm_up_then_time([&] {
        const uts::tree_counts c = uts::count_serial(t);
        (warm ? out.timed : out.warmup) = c;
        warm = true;
        return c.nodes;
    });
    return out;
}

}  // namespace forkline_bench

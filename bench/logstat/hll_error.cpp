// bench/logstat/hll_error.cpp: the HyperLogLog sketch of logstat --distinct
// (examples/hyperloglog.hpp) over many seeded streams of distinct keys: the
// relative error's standard deviation, mean and worst stream. The keys are
// 8-byte integers (distinct by construction, a different range per stream),
// hashed as logstat hashes its keys (XXH3 of the bytes).
//
//   hll-error [--distinct N[,N...]] [--streams S]     (default 1000,100000,10000000 and 200)
#include <algorithm>  // max
#include <cmath>      // sqrt, fabs
#include <cstdint>    // uint64_t
#include <cstdio>     // printf
#include <cstdlib>    // strtoull
#include <cstring>    // strcmp
#include <string>     // string
#include <vector>     // vector

#include "hyperloglog.hpp"

int main(int argc, char** argv) {
    std::vector<std::uint64_t> sizes = {1000, 100000, 10000000};
    std::uint64_t streams = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--streams") == 0) streams = std::strtoull(argv[i + 1], nullptr, 10);
        if (std::strcmp(argv[i], "--distinct") == 0) {
            sizes.clear();
            for (const char* p = argv[i + 1]; *p != '\0';) {
                char* end = nullptr;
                sizes.push_back(std::strtoull(p, &end, 10));
                p = *end == ',' ? end + 1 : end;
            }
        }
    }
    std::printf("distinct streams sd_pct mean_pct worst_pct expected_pct\n");
    for (const std::uint64_t n : sizes) {
        double sum = 0, sum_sq = 0, worst = 0;
        for (std::uint64_t s = 0; s < streams; ++s) {
            logstat::hyperloglog h;
            const std::uint64_t base = (s + 1) << 40;
            for (std::uint64_t i = 0; i < n; ++i) {
                const std::uint64_t key = base + i;
                h.add_hash(XXH3_64bits(&key, sizeof key));
            }
            const double e = (h.estimate() - static_cast<double>(n)) / static_cast<double>(n);
            sum += e;
            sum_sq += e * e;
            worst = std::max(worst, std::fabs(e));
        }
        const double mean = sum / static_cast<double>(streams);
        const double sd = std::sqrt(std::max(0.0, sum_sq / static_cast<double>(streams) - mean * mean));
        std::printf("%llu %llu %.3f %.3f %.3f %.3f\n", static_cast<unsigned long long>(n),
                    static_cast<unsigned long long>(streams), 100 * sd, 100 * mean, 100 * worst,
                    100 * logstat::hyperloglog::expected_error());
    }
    return 0;
}

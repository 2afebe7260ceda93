// tests/test_hyperloglog.cpp: logstat's HyperLogLog sketch (examples/hyperloglog.hpp):
// its error over many seeded streams, idempotence, and merges equal to the
// sketch of the whole.
#include <doctest/doctest.h>

#include <cmath>    // sqrt, fabs
#include <cstdint>  // uint64_t
#include <string>   // string, to_string

#include "../examples/hyperloglog.hpp"
#include "support.hpp"  // scaled

namespace {

using logstat::hyperloglog;

std::string key_of(std::uint64_t stream, std::uint64_t i) {
    return "10." + std::to_string(stream % 256) + "." + std::to_string(i >> 8) + "." + std::to_string(i & 255) +
           "/" + std::to_string(stream);
}

struct error_figures {
    double sd = 0, worst = 0, mean = 0;
};

error_figures errors_at(std::uint64_t distinct, std::size_t streams) {
    double sum = 0, sum_sq = 0, worst = 0;
    for (std::size_t s = 0; s < streams; ++s) {
        hyperloglog h;
        for (std::uint64_t i = 0; i < distinct; ++i) h.add(key_of(s + 1000 * distinct, i));
        const double e = (h.estimate() - static_cast<double>(distinct)) / static_cast<double>(distinct);
        sum += e;
        sum_sq += e * e;
        worst = std::max(worst, std::fabs(e));
    }
    const double n = static_cast<double>(streams);
    const double mean = sum / n;
    return {std::sqrt(std::max(0.0, sum_sq / n - mean * mean)), worst, mean};
}

}  // namespace

TEST_CASE("error: standard deviation within 0.81% + 0.2% and no stream beyond 3%, at 10^3 and 10^5 distinct keys") {
    CHECK(hyperloglog::expected_error() == doctest::Approx(0.008125).epsilon(0.001));
    for (const std::uint64_t distinct : {std::uint64_t{1000}, std::uint64_t{100000}}) {
        const std::size_t streams = distinct >= 100000 ? scaled(200, 20) : 200;
        const error_figures f = errors_at(distinct, streams);
        MESSAGE("distinct=" << distinct << " streams=" << streams << " sd=" << f.sd * 100 << "% mean=" << f.mean * 100
                            << "% worst=" << f.worst * 100 << "%");
        CHECK(f.sd <= 0.0081 + 0.002);
        CHECK(f.worst <= 0.03);
        CHECK(std::fabs(f.mean) <= 0.004);  // unbiased, within half the standard error
    }
}

TEST_CASE("a key seen again changes nothing; the empty sketch estimates 0") {
    hyperloglog a, b;
    CHECK(a.estimate() == 0.0);
    for (int i = 0; i < 5000; ++i) a.add(key_of(7, static_cast<std::uint64_t>(i)));
    b = a;
    for (int i = 0; i < 5000; ++i) b.add(key_of(7, static_cast<std::uint64_t>(i % 100)));
    CHECK(a == b);
}

TEST_CASE("merge: the register-wise max of part sketches is the sketch of the whole") {
    hyperloglog whole;
    hyperloglog parts[4];
    for (std::uint64_t i = 0; i < 50000; ++i) {
        const std::string k = key_of(3, i % 20011);  // repeats, across parts too
        whole.add(k);
        parts[(i * 2654435761u) % 4].add(k);
    }
    hyperloglog merged;
    for (const hyperloglog& p : parts) merged.merge(p);
    CHECK(merged == whole);
    CHECK(merged.estimate() == whole.estimate());
    CHECK(std::fabs(whole.estimate() - 20011.0) / 20011.0 <= 0.03);
}

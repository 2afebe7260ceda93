// examples/hyperloglog.hpp: a HyperLogLog sketch of distinct keys (Flajolet,
// Fusy, Gandouet and Meunier, 2007) for logstat's --distinct, at precision
// 14: 16,384 one-byte registers, an expected relative error of
// 1.04 / sqrt(16384) = 0.8125%. Keys are hashed with xxHash's XXH3 (64 bits;
// libxxhash-dev, used header-only), so no large-range correction is needed.
// Sketches merge by a register-wise max: the merge of per-worker or per-rank
// sketches is exactly the sketch of the whole stream (MPI_Allreduce with
// MPI_MAX over the registers does it across ranks).
#pragma once

#include <algorithm>    // max
#include <array>        // array
#include <bit>          // countl_zero
#include <cmath>        // log, ldexp, sqrt
#include <cstddef>      // size_t
#include <cstdint>      // uint8_t, uint64_t
#include <string_view>  // string_view

#define XXH_INLINE_ALL
#include <xxhash.h>  // XXH3_64bits

namespace logstat {

class hyperloglog {
public:
    static constexpr unsigned k_precision = 14;
    static constexpr std::size_t k_registers = std::size_t{1} << k_precision;  ///< m = 16,384

    /// 1.04 / sqrt(m): the standard error of the estimate, as a fraction.
    static double expected_error() noexcept { return 1.04 / std::sqrt(static_cast<double>(k_registers)); }

    static std::uint64_t hash(std::string_view key) noexcept { return XXH3_64bits(key.data(), key.size()); }

    void add(std::string_view key) noexcept { add_hash(hash(key)); }

    /// The top 14 bits pick a register; it keeps the most leading zeros + 1
    /// seen in the other 50 bits (at most 51).
    void add_hash(std::uint64_t h) noexcept {
        const std::size_t index = static_cast<std::size_t>(h >> (64 - k_precision));
        const std::uint64_t rest = (h << k_precision) | (std::uint64_t{1} << (k_precision - 1));  // a stop bit
        const auto rank = static_cast<std::uint8_t>(std::countl_zero(rest) + 1);
        m_registers[index] = std::max(m_registers[index], rank);
    }

    void merge(const hyperloglog& other) noexcept {
        for (std::size_t i = 0; i < k_registers; ++i) m_registers[i] = std::max(m_registers[i], other.m_registers[i]);
    }

    /// The estimate: the harmonic-mean estimator, with linear counting while
    /// it is at most 2.5 m and registers are still zero.
    double estimate() const noexcept {
        const double m = static_cast<double>(k_registers);
        double sum = 0;
        std::size_t zeros = 0;
        for (const std::uint8_t r : m_registers) {
            sum += std::ldexp(1.0, -static_cast<int>(r));
            zeros += r == 0 ? 1 : 0;
        }
        const double alpha = 0.7213 / (1.0 + 1.079 / m);
        const double raw = alpha * m * m / sum;
        if (raw <= 2.5 * m && zeros > 0) return m * std::log(m / static_cast<double>(zeros));
        return raw;
    }

    std::uint8_t* registers() noexcept { return m_registers.data(); }  ///< for MPI_Allreduce(MPI_MAX)
    const std::uint8_t* registers() const noexcept { return m_registers.data(); }
    bool operator==(const hyperloglog& o) const noexcept { return m_registers == o.m_registers; }

private:
    std::array<std::uint8_t, k_registers> m_registers{};
};

}  // namespace logstat

// bench/aligned_buffer.hpp: the big double arrays the bandwidth and matmul
// workloads allocate in each child.
#pragma once

#include <cstddef>      // size_t
#include <cstdlib>      // aligned_alloc, free
#include <memory>       // unique_ptr
#include <stdexcept>    // runtime_error
#include <string>       // string, to_string
#include <string_view>  // string_view

namespace forkline_bench {

struct free_deleter {
    void operator()(double* p) const noexcept { std::free(p); }
};

/// 64-byte aligned doubles, not touched: large ones are fresh pages from the
/// kernel, so the variant's own first touch decides where they live.
using double_buffer = std::unique_ptr<double, free_deleter>;

/// `n` doubles, or a runtime_error that says `what` could not be allocated
/// (e.g. "triad: cannot allocate an array of 1000 doubles (0 MiB, three are
/// needed); try a smaller --n").
inline double_buffer allocate_doubles(std::size_t n, std::string_view what) {
    const std::size_t bytes = (n * sizeof(double) + 63) / 64 * 64;  // aligned_alloc wants a multiple
    auto* p = static_cast<double*>(std::aligned_alloc(64, bytes == 0 ? 64 : bytes));
    if (p == nullptr) {
        throw std::runtime_error(std::string(what) + " (" + std::to_string(bytes >> 20) +
                                 " MiB); try a smaller --n");
    }
    return double_buffer(p);
}

}  // namespace forkline_bench

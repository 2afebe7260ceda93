// runtime/route.cpp: key_router's hot-key detection (a decaying count-min
// sketch) and spreading. See "Keyed routing" in runtime/DESIGN.md.
#include "forkline/route.hpp"

#include <algorithm>  // min, max
#include <bit>        // bit_ceil, countr_zero
#include <cmath>      // isfinite, ceil
#include <string>     // to_string

#include "forkline/errors.hpp"  // config_error

namespace forkline {

namespace {

constexpr unsigned k_rows = 4;
// Cells per row: at least this many, and at least k_cells_per_threshold times
// workers / hot_factor, so that the average collision noise in a cell (routes
// / width) stays an eighth of the hot threshold (hot_factor * routes /
// workers) before the minimum over rows cuts it further.
constexpr std::size_t k_min_width = 1024;
constexpr std::size_t k_max_width = std::size_t{1} << 16;
constexpr double k_cells_per_threshold = 8.0;
// A hot key is cut into pieces of at most a quarter of the threshold, so that
// its share on any one worker is small next to the cold keys' noise there.
constexpr double k_pieces_per_threshold = 4.0;
// Below this count no key is hot, whatever its share: a handful of routes
// say nothing, and a fresh router would otherwise spread its first keys.
constexpr std::uint64_t k_min_hot_count = 32;
constexpr std::uint32_t k_max_window = std::uint32_t{1} << 30;

}  // namespace

key_router::key_router(unsigned workers, route_options options) : m_workers(workers), m_options(options) {
    if (workers == 0) throw config_error("key_router: workers must be at least 1");
    if (!m_options.relief) return;
    if (!(m_options.hot_factor > 0) || !std::isfinite(m_options.hot_factor))
        throw config_error("key_router: hot_factor must be a positive finite number (got " +
                           std::to_string(m_options.hot_factor) + ")");
    if (m_options.window == 0 || m_options.window > k_max_window)
        throw config_error("key_router: window must be in [1, 2^30] routes (got " +
                           std::to_string(m_options.window) + ")");
    const double wanted = std::ceil(k_cells_per_threshold * workers / m_options.hot_factor);
    const std::size_t width = wanted >= static_cast<double>(k_max_width)
                                  ? k_max_width
                                  : std::max(k_min_width, std::bit_ceil(static_cast<std::size_t>(wanted)));
    m_width = width;
    m_width_shift = 64u - static_cast<unsigned>(std::countr_zero(width));
    m_cells = std::make_unique<std::atomic<std::uint32_t>[]>(k_rows * width);  // value-initialised: zero
}

key_router::~key_router() = default;

std::size_t key_router::cell_index(unsigned row, std::uint64_t mixed) const noexcept {
    // Double hashing (h1 + row * h2) over the top bits: rows are independent
    // enough for a sketch with one mix per route.
    const std::uint64_t h2 = detail::mix_key(mixed ^ 0x9e3779b97f4a7c15ULL) | 1;
    const std::uint64_t h = mixed + row * h2;
    return static_cast<std::size_t>(row) * m_width + static_cast<std::size_t>(h >> m_width_shift);
}

std::uint64_t key_router::decayed_total(std::uint64_t routes) const noexcept {
    // Every window the counts are halved, so after k windows the routes before
    // the current one weigh window * (1 - 2^-k), plus the routes of this one.
    const std::uint64_t window = m_options.window;
    const std::uint64_t k = routes / window;
    const std::uint64_t base = k >= 63 ? window : window - (window >> k);
    return base + routes % window;
}

unsigned key_router::spread_for(std::uint64_t count, std::uint64_t routes) const noexcept {
    if (count < k_min_hot_count) return 1;
    const double threshold = m_options.hot_factor * static_cast<double>(decayed_total(routes)) / m_workers;
    if (static_cast<double>(count) <= threshold) return 1;
    const double pieces = std::ceil(k_pieces_per_threshold * static_cast<double>(count) / threshold);
    return pieces >= m_workers ? m_workers : std::max(2u, static_cast<unsigned>(pieces));
}

void key_router::decay() noexcept {
    // Halve every counter. A concurrent increment between the load and the
    // subtraction survives (we subtract, not store), so the count stays an
    // overestimate of the decayed truth, as a count-min sketch must.
    for (std::size_t i = 0; i < k_rows * m_width; ++i) {
        // relaxed: the counts only choose among workers; no data is published
        // through them, and a count that is a little off changes a choice,
        // never correctness.
        const std::uint32_t v = m_cells[i].load(std::memory_order_relaxed);
        if (v > 1) m_cells[i].fetch_sub(v / 2, std::memory_order_relaxed);
    }
}

unsigned key_router::route(std::uint64_t key) noexcept {
    const std::uint64_t mixed = detail::mix_key(key);
    const unsigned home = m_workers <= 1 ? 0u : detail::jump_mixed(mixed, m_workers);
    if (!m_options.relief || m_workers == 1) return home;

    // relaxed (here and below): see decay(). Each value of the clock is seen
    // by exactly one route(), so exactly one of them closes each window.
    const std::uint64_t routes = m_clock.routes.fetch_add(1, std::memory_order_relaxed) + 1;
    if (routes % m_options.window == 0) decay();

    std::uint64_t count = ~std::uint64_t{0};
    std::uint32_t ticket = 0;
    for (unsigned row = 0; row < k_rows; ++row) {
        const std::uint32_t before = m_cells[cell_index(row, mixed)].fetch_add(1, std::memory_order_relaxed);
        if (row == 0) ticket = before;
        count = std::min<std::uint64_t>(count, std::uint64_t{before} + 1);
    }
    const unsigned width = spread_for(count, routes);
    if (width == 1) return home;
    // The row-0 counter advances with every call for this key, so hashing it
    // gives successive calls independent picks; hashing (rather than taking
    // it modulo width) keeps two hot keys that share the cell and alternate
    // from landing on the same piece every time.
    const unsigned piece = static_cast<unsigned>(detail::mix_key(mixed ^ ticket) % width);
    return (home + piece) % m_workers;
}

std::uint64_t key_router::estimate(std::uint64_t key) const noexcept {
    if (!m_options.relief || m_workers == 1) return 0;
    const std::uint64_t mixed = detail::mix_key(key);
    std::uint64_t count = ~std::uint64_t{0};
    // relaxed: a diagnostic snapshot; see decay().
    for (unsigned row = 0; row < k_rows; ++row)
        count = std::min<std::uint64_t>(count, m_cells[cell_index(row, mixed)].load(std::memory_order_relaxed));
    return count;
}

unsigned key_router::spread(std::uint64_t key) const noexcept {
    if (!m_options.relief || m_workers == 1) return 1;
    // relaxed: a snapshot, as in estimate().
    return spread_for(estimate(key), m_clock.routes.load(std::memory_order_relaxed));
}

}  // namespace forkline

// tools/probe_plot.hpp: speedup and efficiency plots of a probe result.
#pragma once

#include <filesystem>  // path
#include <string>      // string
#include <vector>      // vector

#include "forkline/probe.hpp"  // probe::result

namespace forkline_probe {

/// The file name (no extension) write_plots gives a result called `name`:
/// letters, digits, '.', '-', '_', no leading dot.
std::string plot_stem(const std::string& name);

/// Writes DIR/NAME.dat (the points) and DIR/NAME.gp (a gnuplot script: two
/// panels, speedup against workers with the ideal line, the fitted Amdahl
/// and USL curves and min-max bars; efficiency against workers), then runs
/// gnuplot on it when gnuplot is on PATH to make DIR/NAME.png and
/// DIR/NAME.svg. Returns the files made. When gnuplot is absent or fails the
/// .dat and .gp are still written and `note` says why there is no picture.
std::vector<std::filesystem::path> write_plots(const std::filesystem::path& dir,
                                               const forkline::probe::result& r, std::string& note);

}  // namespace forkline_probe

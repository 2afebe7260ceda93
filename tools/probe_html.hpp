// tools/probe_html.hpp: the probe's report as one self-contained HTML page.
#pragma once

#include <filesystem>  // path
#include <span>        // span
#include <string>      // string

#include "forkline/probe.hpp"  // probe::result

namespace forkline_probe {

/// One page, no network: the host's lines, then per workload its verdict
/// with the reasons, a table of the points, the text report's fits and the
/// plot (DIR/NAME.svg, as write_plots makes it) inlined when it exists.
/// `texts[i]` is results[i]'s part of the text report.
std::string html_report(const std::string& title, const std::string& host_text,
                        std::span<const forkline::probe::result> results, std::span<const std::string> texts,
                        const std::filesystem::path& dir);

}  // namespace forkline_probe

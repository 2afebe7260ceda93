// tools/probe_compare.hpp: forkline-probe --compare A B, two reports side
// by side (see "Comparing runs" in runtime/DESIGN.md).
#pragma once

#include <iosfwd>  // ostream
#include <string>  // string

namespace forkline_probe {

/// Reads two probe reports (each a report folder holding results.json, or
/// a JSON file) and writes, per workload and worker count found in both,
/// the ratio of medians B / A with a bootstrap interval and a verdict
/// (faster, slower, within noise). Returns how many points came out slower.
/// Throws std::runtime_error naming the file and what is wrong with it.
unsigned compare_reports(const std::string& a, const std::string& b, std::ostream& out);

}  // namespace forkline_probe

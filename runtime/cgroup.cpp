// runtime/cgroup.cpp: the cgroup CPU limit (cgroup.hpp).
#include "cgroup.hpp"

#include <sys/stat.h>  // stat, S_ISDIR

#include <charconv>     // from_chars
#include <fstream>      // ifstream
#include <string_view>  // string_view
#include <vector>       // vector

namespace forkline::detail {

namespace {

// The file's first line, without its newline; nullopt when it cannot be read.
std::optional<std::string> first_line(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    return line;
}

bool to_long(std::string_view s, long& out) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    if (s.empty()) return false;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size();
}

// `dir`, then each parent up to and including `top` (a prefix of dir).
std::vector<std::string> up_to(std::string dir, const std::string& top) {
    std::vector<std::string> out;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    for (;;) {
        out.push_back(dir);
        if (dir.size() <= top.size()) break;
        const auto slash = dir.find_last_of('/');
        if (slash == std::string::npos || slash < top.size()) {
            out.push_back(top);
            break;
        }
        dir.resize(slash);
    }
    return out;
}

void keep_tighter(std::optional<cpu_limit>& best, double cpus, std::string source) {
    if (!(cpus > 0)) return;
    if (!best || cpus < best->cpus) best = cpu_limit{cpus, std::move(source)};
}

// cgroup v2: "max PERIOD" or "QUOTA PERIOD" in DIR/cpu.max.
void read_v2(const std::string& dir, std::optional<cpu_limit>& best) {
    const std::string file = dir + "/cpu.max";
    const std::optional<std::string> line = first_line(file);
    if (!line) return;
    const auto space = line->find(' ');
    if (space == std::string::npos) return;
    const std::string_view quota = std::string_view(*line).substr(0, space);
    if (quota == "max") return;
    long q = 0;
    long p = 0;
    if (!to_long(quota, q) || !to_long(std::string_view(*line).substr(space + 1), p) || q <= 0 || p <= 0) return;
    keep_tighter(best, static_cast<double>(q) / static_cast<double>(p),
                 "cgroup v2 cpu.max '" + *line + "' in " + dir);
}

// cgroup v1: DIR/cpu.cfs_quota_us (-1: none) over DIR/cpu.cfs_period_us.
void read_v1(const std::string& dir, std::optional<cpu_limit>& best) {
    const std::optional<std::string> quota = first_line(dir + "/cpu.cfs_quota_us");
    const std::optional<std::string> period = first_line(dir + "/cpu.cfs_period_us");
    long q = 0;
    long p = 0;
    if (!quota || !period || !to_long(*quota, q) || !to_long(*period, p) || q <= 0 || p <= 0) return;
    keep_tighter(best, static_cast<double>(q) / static_cast<double>(p),
                 "cgroup v1 cpu.cfs_quota_us " + *quota + " / cpu.cfs_period_us " + *period + " in " + dir);
}

bool is_dir(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::optional<cpu_limit> cgroup_cpu_limit(const std::string& proc_cgroup, const std::string& cgroup_root) {
    std::ifstream in(proc_cgroup);
    if (!in) return std::nullopt;
    std::optional<cpu_limit> best;
    std::string line;
    while (std::getline(in, line)) {
        // hierarchy-ID:controller-list:cgroup-path
        const auto c1 = line.find(':');
        const auto c2 = c1 == std::string::npos ? std::string::npos : line.find(':', c1 + 1);
        if (c2 == std::string::npos) continue;
        const std::string id = line.substr(0, c1);
        const std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
        std::string path = line.substr(c2 + 1);
        if (path.empty() || path[0] != '/') path = "/" + path;
        if (path == "/") path.clear();
        if (id == "0" && controllers.empty()) {
            // v2: the unified hierarchy at the root (a pure v2 mount).
            for (const std::string& dir : up_to(cgroup_root + path, cgroup_root)) read_v2(dir, best);
            continue;
        }
        bool has_cpu = false;
        std::string_view rest = controllers;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            if (rest.substr(0, comma) == "cpu") has_cpu = true;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
        if (!has_cpu) continue;
        // v1: the controller's own mount, named by its controllers. Inside a
        // container without a cgroup namespace the path is the host's and
        // the mount shows only this cgroup: then the mount itself is it.
        const std::string mount = cgroup_root + "/" + controllers;
        const std::string dir = is_dir(mount + path) ? mount + path : mount;
        for (const std::string& d : up_to(dir, mount)) read_v1(d, best);
    }
    return best;
}

}  // namespace forkline::detail

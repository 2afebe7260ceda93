// tools/probe_plot.cpp: speedup and efficiency plots of a probe result, as a
// gnuplot script and its data, rendered when gnuplot is on PATH.
#include "probe_plot.hpp"

#include <cerrno>        // errno
#include <charconv>      // to_chars, chars_format
#include <cmath>         // isfinite
#include <cstdio>        // FILE, fopen, fputs, fclose
#include <cstdlib>       // getenv
#include <string>        // string
#include <string_view>   // string_view
#include <system_error>  // error_code (filesystem::exists)
#include <vector>        // vector

#include <fcntl.h>     // O_RDONLY, O_CLOEXEC
#include <spawn.h>     // posix_spawn, posix_spawn_file_actions_*
#include <sys/stat.h>  // stat, S_ISREG
#include <sys/wait.h>  // waitpid, WIFEXITED, WEXITSTATUS
#include <unistd.h>    // access, pipe2, read, close

#include <forkline/errors.hpp>   // system_failure
#include <forkline/scaling.hpp>  // fit_status

extern char** environ;  // handed to gnuplot unchanged

namespace forkline_probe {
namespace {

namespace fs = std::filesystem;
using forkline::fit_status;

/// The result's name as a file name: letters, digits, '.', '-', '_', and
/// no leading dot (a command's base name may be anything).
std::string file_stem(const std::string& name) {
    std::string out;
    for (const char c : name) {
        const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                          c == '_' || c == '.';
        out += keep ? c : '_';
    }
    if (out.empty()) return "probe";
    if (out[0] == '.') out[0] = '_';
    return out;
}

/// A gnuplot single-quoted string: '' stands for ', and nothing else is
/// special. Only printable ASCII goes through (a line break would end the
/// command, and gnuplot's fonts draw stray bytes as garbage); the JSON
/// keeps the exact name.
std::string gp_quote(std::string_view s) {
    std::string out = "'";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\'') {
            out += "''";
        } else if (u < 0x20 || u > 0x7e) {
            out += '?';
        } else {
            out += c;
        }
    }
    out += '\'';
    return out;
}

/// A number for the data file or the script; "?" (the missing-data mark set
/// in the script) when unknown.
std::string number(double v) {
    if (!std::isfinite(v)) return "?";
    char buf[40];
    // to_chars: a locale's decimal comma would not parse in gnuplot.
    const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 9);
    return std::string(buf, r.ptr);
}

bool amdahl_drawn(const forkline::amdahl_fit& a) {
    return (a.status == fit_status::ok || a.status == fit_status::linear) && std::isfinite(a.serial_fraction);
}

bool usl_drawn(const forkline::usl_fit& u) {
    return (u.status == fit_status::ok || u.status == fit_status::no_peak || u.status == fit_status::linear) &&
           std::isfinite(u.alpha) && std::isfinite(u.beta);
}

/// Writes `text` to `path`; throws system_failure naming the call, the file
/// and the errno.
void write_file(const fs::path& path, const std::string& text) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) {
        throw forkline::system_failure("fopen", errno, "cannot create " + path.string() + " (is the folder writable?)");
    }
    const bool written = std::fputs(text.c_str(), f) >= 0;
    const int write_errno = errno;
    if (std::fclose(f) != 0 || !written) {
        const int e = written ? errno : write_errno;
        throw forkline::system_failure(written ? "fclose" : "fputs", e, "cannot write " + path.string());
    }
}

/// One row per point: workers, median, min, max, speedup with the speedups
/// of the slowest and the fastest repetition, efficiency, Karp-Flatt.
std::string data_text(const forkline::probe::result& r) {
    std::string out = "# " + r.name +
                      ": workers median_s min_s max_s speedup speedup_at_max_s speedup_at_min_s efficiency "
                      "karp_flatt host_ceiling_speedup host_ceiling_efficiency (? = unknown)\n";
    for (const forkline::probe::point& p : r.points) {
        // speedup = T1 / median, so T1 / max and T1 / min bound the
        // repetitions' speedups.
        const double t1 = p.speedup * p.median_s;
        out += std::to_string(p.workers) + ' ' + number(p.median_s) + ' ' + number(p.min_s) + ' ' +
               number(p.max_s) + ' ' + number(p.speedup) + ' ' + number(t1 / p.max_s) + ' ' + number(t1 / p.min_s) +
               ' ' + number(p.efficiency) + ' ' + number(p.karp_flatt) + ' ' +
               // The host's ceiling: N threads of independent work go N / h
               // times as fast as one (compute_ceiling).
               number(p.workers / p.host_slowdown) + ' ' + number(1 / p.host_slowdown) + '\n';
    }
    return out;
}

/// The two panels for the current terminal.
std::string panels(const forkline::probe::result& r, const std::string& dat, bool amdahl, bool usl, bool ceiling) {
    std::string speedup = "plot x title 'ideal (= workers)' with lines dashtype 2 lc rgb '#999999', \\\n"
                          "     " + gp_quote(dat) +
                          " using 1:5:6:7 title 'measured (median, min-max)' with yerrorlines lw 2 pt 7 "
                          "lc rgb '#1f77b4'";
    std::string efficiency = "plot 1 title 'ideal' with lines dashtype 2 lc rgb '#999999', \\\n"
                             "     " + gp_quote(dat) +
                             " using 1:8 title 'measured' with linespoints lw 2 pt 7 lc rgb '#1f77b4'";
    if (ceiling) {
        speedup += ", \\\n     " + gp_quote(dat) +
                   " using 1:10 title 'host ceiling (workers / compute slowdown)' with linespoints dashtype 3 lw 2 "
                   "pt 6 lc rgb '#ff7f0e'";
        efficiency += ", \\\n     " + gp_quote(dat) +
                      " using 1:11 title 'host ceiling' with linespoints dashtype 3 lw 2 pt 6 lc rgb '#ff7f0e'";
    }
    if (amdahl) {
        speedup += ", \\\n     amdahl(x) title sprintf('Amdahl, s = %.3g', s) lw 2 lc rgb '#d62728'";
        efficiency += ", \\\n     amdahl(x) / x title 'Amdahl' lw 2 lc rgb '#d62728'";
    }
    if (usl) {
        speedup += ", \\\n     usl(x) title sprintf('USL, alpha = %.3g, beta = %.3g', a, b) lw 2 lc rgb '#2ca02c'";
        efficiency += ", \\\n     usl(x) / x title 'USL' lw 2 lc rgb '#2ca02c'";
    }
    std::string out;
    out += "set multiplot layout 1,2 title " + gp_quote(r.name + ": " + forkline::probe::to_string(r.verdict)) +
           " noenhanced\n";
    out += "set title 'speedup'\nset ylabel 'speedup (1-worker median / median)'\nset yrange [0:*]\nset key top left\n";
    out += speedup + "\n";
    // Efficiency falls from the top left: the key goes where the curves are not.
    out += "set title 'efficiency'\nset ylabel 'speedup / workers'\nset yrange [0:*]\nset key bottom left\n";
    out += efficiency + "\n";
    out += "unset multiplot\n";
    return out;
}

std::string script_text(const forkline::probe::result& r, const std::string& stem) {
    // The curve through the measured points: where the fit was corrected
    // for the host, the plain fit (the corrected s describes the workload
    // on a host that does not slow down, which the host ceiling shows).
    const forkline::amdahl_fit& fit = r.amdahl_corrected ? r.amdahl_uncorrected : r.amdahl;
    const bool amdahl = amdahl_drawn(fit);
    const bool usl = usl_drawn(r.usl);
    bool ceiling = false;
    for (const forkline::probe::point& p : r.points) ceiling = ceiling || std::isfinite(p.host_slowdown);
    unsigned top = 1;
    std::string tics;
    for (const forkline::probe::point& p : r.points) {
        if (p.workers > top) top = p.workers;
        tics += (tics.empty() ? "" : ", ") + std::to_string(p.workers);
    }
    const std::string dat = stem + ".dat";
    std::string out;
    out += "# forkline-probe: " + stem + "'s speedup and efficiency. Run from this folder: gnuplot " + stem +
           ".gp\n";
    out += "set datafile missing '?'\n";
    out += "set xlabel 'workers'\nset grid\nset key top left\nset samples 400\n";
    out += "set xrange [0.8:" + number(top * 1.05 + 0.2) + "]\n";
    out += "set xtics (" + tics + ")\n";
    if (amdahl) {
        out += "s = " + number(fit.serial_fraction) + "\n";
        out += "amdahl(n) = 1 / (s + (1 - s) / n)\n";
    }
    if (usl) {
        // The speedup form of the USL: throughput over gamma.
        out += "a = " + number(r.usl.alpha) + "\nb = " + number(r.usl.beta) + "\n";
        out += "usl(n) = n / (1 + a * (n - 1) + b * n * (n - 1))\n";
    }
    // gnuplot-nox and some builds lack cairo: plain png (libgd) then.
    out += "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
           "    set terminal pngcairo size 1200,480 noenhanced\n"
           "} else {\n"
           "    set terminal png size 1200,480 noenhanced\n"
           "}\n";
    out += "set output " + gp_quote(stem + ".png") + "\n";
    out += panels(r, dat, amdahl, usl, ceiling);
    out += "set terminal svg size 1200,480 dynamic background rgb 'white' noenhanced\n";
    out += "set output " + gp_quote(stem + ".svg") + "\n";
    out += panels(r, dat, amdahl, usl, ceiling);
    out += "unset output\n";
    return out;
}

/// The first executable regular file called `name` in PATH, or empty.
fs::path find_in_path(std::string_view name) {
    const char* env = std::getenv("PATH");
    const std::string_view path = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
    std::size_t begin = 0;
    for (;;) {
        const std::size_t end = path.find(':', begin);
        std::string_view dir = path.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin);
        if (dir.empty()) dir = ".";  // an empty entry is the current directory
        const fs::path candidate = fs::path(dir) / name;
        struct stat st {};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
        if (end == std::string_view::npos) return {};
        begin = end + 1;
    }
}

/// Runs `gnuplot SCRIPT` in `dir`. Returns "" on success, else why not
/// (gnuplot's last line of output, or the failed call and its errno).
std::string run_gnuplot(const fs::path& gnuplot, const fs::path& dir, const std::string& script) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        return std::string("pipe2 failed: ") + std::error_code(errno, std::generic_category()).message();
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, out[1], 2);
    // The script names its files relative to its folder, so the names need
    // no quoting whatever the folder's path holds.
    posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
    std::string arg0 = "gnuplot";
    std::string arg1 = script;
    char* argv[] = {arg0.data(), arg1.data(), nullptr};
    pid_t pid = -1;
    const int spawned = ::posix_spawn(&pid, gnuplot.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (spawned != 0) {
        ::close(out[0]);
        return "posix_spawn " + gnuplot.string() + " failed: " +
               std::error_code(spawned, std::generic_category()).message();
    }
    std::string said;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n > 0) {
            said.append(buf, static_cast<std::size_t>(n));
            if (said.size() > 16384) said.erase(0, said.size() - 16384);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    ::close(out[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return std::string("waitpid on gnuplot failed: ") +
                   std::error_code(errno, std::generic_category()).message();
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
    // gnuplot's complaint is on its last non-blank lines.
    while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
    const std::size_t nl = said.rfind('\n');
    const std::string last = nl == std::string::npos ? said : said.substr(nl + 1);
    const std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                              : "was killed by signal " + std::to_string(WTERMSIG(status));
    return "gnuplot " + how + (last.empty() ? std::string() : ": " + last);
}

}  // namespace

std::string plot_stem(const std::string& name) { return file_stem(name); }

std::vector<fs::path> write_plots(const fs::path& dir, const forkline::probe::result& r, std::string& note) {
    note.clear();
    std::vector<fs::path> made;
    if (r.points.empty()) {
        note = "no points to plot";
        return made;
    }
    const std::string stem = file_stem(r.name);
    const fs::path dat = dir / (stem + ".dat");
    const fs::path gp = dir / (stem + ".gp");
    write_file(dat, data_text(r));
    made.push_back(dat);
    write_file(gp, script_text(r, stem));
    made.push_back(gp);

    bool any_speedup = false;
    for (const forkline::probe::point& p : r.points) any_speedup = any_speedup || std::isfinite(p.speedup);
    if (!any_speedup) {
        note = "no 1-worker point, so no speedup to plot";
        return made;
    }
    const fs::path gnuplot = find_in_path("gnuplot");
    if (gnuplot.empty()) {
        note = "gnuplot is not on PATH (Debian: gnuplot-nox); " + gp.string() + " makes the plots";
        return made;
    }
    // Pictures from an earlier run must not pass for this one's.
    for (const char* ext : {".png", ".svg"}) {
        std::error_code ec;
        fs::remove(dir / (stem + ext), ec);
    }
    const std::string failed = run_gnuplot(gnuplot, dir, stem + ".gp");
    if (!failed.empty()) {
        note = failed;
        return made;
    }
    std::string missing;
    for (const char* ext : {".png", ".svg"}) {
        const fs::path picture = dir / (stem + ext);
        std::error_code ec;
        if (fs::exists(picture, ec)) {
            made.push_back(picture);
        } else {
            missing += (missing.empty() ? "" : ", ") + picture.string();
        }
    }
    if (!missing.empty()) note = "gnuplot ran but did not make " + missing;
    return made;
}

}  // namespace forkline_probe

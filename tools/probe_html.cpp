// tools/probe_html.cpp: report.html. Everything inline (style, plots), so
// the page can be mailed or archived alone and opens without a network.
#include "probe_html.hpp"

#include <cmath>    // isfinite
#include <cstdio>   // snprintf
#include <fstream>  // ifstream
#include <sstream>  // ostringstream
#include <string>   // string

#include "probe_plot.hpp"  // plot_stem

namespace forkline_probe {

namespace {

namespace probe = forkline::probe;

/// Text for HTML element content and attribute values.
std::string esc(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string num(const char* f, double v) {
    if (!std::isfinite(v)) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string seconds(double s) {
    if (!std::isfinite(s)) return "-";
    if (s >= 1) return num("%.3g s", s);
    if (s >= 1e-3) return num("%.3g ms", s * 1e3);
    return num("%.3g us", s * 1e6);
}

/// The <svg> element of a gnuplot SVG file (its XML prologue dropped), or
/// empty when there is none.
std::string inline_svg(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) return {};
    std::ostringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    const std::size_t at = s.find("<svg");
    return at == std::string::npos ? std::string() : s.substr(at);
}

const char* const k_style =
    "body{font-family:sans-serif;max-width:1250px;margin:1em auto;padding:0 1em;color:#222}"
    "h1{font-size:1.4em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}"
    "pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}"
    "table{border-collapse:collapse;font-size:.9em}td,th{padding:.15em .6em;text-align:right;"
    "border-bottom:1px solid #eee}th{background:#f0f0f0}"
    ".verdict{padding:.5em .8em;border-left:4px solid #1f77b4;background:#f3f8fc}"
    ".bad{border-left-color:#d62728;background:#fdf3f3}svg{max-width:100%;height:auto}";

}  // namespace

std::string html_report(const std::string& title, const std::string& host_text,
                        std::span<const probe::result> results, std::span<const std::string> texts,
                        const std::filesystem::path& dir) {
    std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + esc(title) +
                      "</title><style>" + k_style + "</style></head><body>\n";
    out += "<h1>" + esc(title) + "</h1>\n";
    if (!host_text.empty()) out += "<pre>" + esc(host_text) + "</pre>\n";
    for (std::size_t i = 0; i < results.size(); ++i) {
        const probe::result& r = results[i];
        out += "<h2 id=\"" + esc(plot_stem(r.name)) + "\">" + esc(r.name) + "</h2>\n";
        const bool bad = r.verdict == probe::limit::failed || r.disturbed;
        out += std::string("<p class=\"verdict") + (bad ? " bad" : "") + "\"><b>" + esc(probe::to_string(r.verdict)) +
               "</b>: " + esc(r.verdict == probe::limit::failed ? r.error : r.why) + "</p>\n";
        if (!r.points.empty()) {
            out += "<table><tr><th>workers</th><th>ranks</th><th>median</th><th>min</th><th>max</th><th>reps</th>"
                   "<th>speedup</th><th>efficiency</th><th>host slowdown</th><th>work inflation</th>"
                   "<th>working</th><th>GB/s</th><th>host GB/s</th></tr>\n";
            for (const probe::point& p : r.points) {
                out += "<tr><td>" + std::to_string(p.workers) + "</td><td>" +
                       (p.ranks > 0 ? std::to_string(p.ranks) : std::string("-")) + "</td><td>" +
                       seconds(p.median_s) + "</td><td>" + seconds(p.min_s) + "</td><td>" + seconds(p.max_s) +
                       "</td><td>" + std::to_string(p.seconds.size()) + "</td><td>" + num("%.2f", p.speedup) +
                       "</td><td>" + num("%.2f", p.efficiency) + "</td><td>" + num("%.2fx", p.host_slowdown) +
                       "</td><td>" + num("%.2fx", p.work_inflation) + "</td><td>" +
                       (p.shares ? num("%.0f%%", 100 * p.shares->working) : std::string("-")) + "</td><td>" +
                       num("%.1f", p.bytes_per_s * 1e-9) + "</td><td>" + num("%.1f", p.host_bytes_per_s * 1e-9) +
                       "</td></tr>\n";
            }
            out += "</table>\n";
        }
        if (i < texts.size()) out += "<pre>" + esc(texts[i]) + "</pre>\n";
        const std::string svg = inline_svg(dir / (plot_stem(r.name) + ".svg"));
        if (!svg.empty()) out += "<figure>" + svg + "</figure>\n";
    }
    out += "</body></html>\n";
    return out;
}

}  // namespace forkline_probe

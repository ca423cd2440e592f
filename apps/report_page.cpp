#include "report_page.h"

#include <filesystem>

#include "cudagan/io/atomic_file.h"

namespace fs = std::filesystem;

namespace cudagan::apps {

namespace {

std::string escape(const std::string& s) {
  std::string r;
  r.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '"': r += "&quot;"; break;
      default: r += c;
    }
  }
  return r;
}

// A figure for `file` (relative to OUT) when it exists: shown at its natural size, pixel for pixel, so that
// an 8x8 grid of 32x32 digits stays sharp (and a screenshot shows the file's own pixels).
std::string figure(const std::string& out, const std::string& file, const std::string& caption, int64_t version) {
  if (file.empty() || !fs::exists(fs::path(out) / file)) return "";
  return "<figure><a href=\"" + escape(file) + "\"><img src=\"" + escape(file) + "?v=" + std::to_string(version) +
         "\" alt=\"" + escape(caption) + "\"></a><figcaption>" + escape(caption) + "</figcaption></figure>\n";
}

constexpr const char* kStyle =
    "body{font-family:sans-serif;margin:16px;background:#fafafa;color:#222}"
    "h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 6px}"
    ".status{color:#555;margin-bottom:8px}"
    ".row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}"
    "figure{margin:0}figcaption{font-size:12px;color:#555}"
    "img{image-rendering:pixelated;display:block;border:1px solid #ddd}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    "tr.best td{background:#e3f4e3;font-weight:bold}"
    "pre{background:#fff;border:1px solid #ddd;padding:8px;font-size:12px}";

}  // namespace

std::string report_html(const std::string& out, const ReportPage& p) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  if (p.live) h += "<meta http-equiv=\"refresh\" content=\"30\">";
  h += "<title>" + escape(p.title) + "</title><style>" + kStyle + "</style></head><body>\n";
  h += "<h1>" + escape(p.title) + "</h1>\n<div class=\"status\">" + escape(p.status) + ": step " +
       std::to_string(p.step) + " of " + std::to_string(p.total_steps);
  for (const auto& [name, value] : p.latest) h += " &middot; " + escape(name) + " " + escape(value);
  h += "</div>\n<div class=\"row\">\n";
  h += figure(out, p.latest_grid, "step " + std::to_string(p.step) + ": " + p.latest_grid, p.step);
  h += figure(out, "real_samples.png", "real images", 0);
  h += figure(out, "progress.gif", "progress.gif: the fixed noise over training", p.step);
  h += "</div>\n<div class=\"row\">\n";
  h += figure(out, "loss.png", "losses", p.step);
  h += figure(out, "metrics.png", "sliced Wasserstein distance", p.step);
  h += figure(out, "fcd.png", "Frechet classifier distance (digits)", p.step);
  h += "</div>\n";
  if (!p.metric_rows.empty()) {
    h += "<h2>Evaluations (metrics.csv)";
    if (p.best_row >= 0 && p.best_row < int(p.metric_rows.size()))
      h += ": the best, by " + escape(p.best_note) + ", is step " + escape(p.metric_rows[size_t(p.best_row)][0]) +
           " (checkpoints/best.safetensors)";
    h += "</h2>\n<table><tr>";
    for (const std::string& c : p.metric_columns) h += "<th>" + escape(c) + "</th>";
    h += "</tr>\n";
    for (size_t r = 0; r < p.metric_rows.size(); ++r) {
      h += int(r) == p.best_row ? "<tr class=\"best\">" : "<tr>";
      for (const std::string& v : p.metric_rows[r]) h += "<td>" + escape(v) + "</td>";
      h += "</tr>\n";
    }
    h += "</table>\n";
  }
  h += "<h2>Configuration (config.yaml)</h2>\n<pre>" + escape(p.config_yaml) + "</pre>\n</body></html>\n";
  return h;
}

void write_report_page(const std::string& out, const ReportPage& page) {
  const std::string html = report_html(out, page);
  detail::write_file_atomically((fs::path(out) / "index.html").string(), html.data(), html.size());
}

}  // namespace cudagan::apps

#include "train_eval.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cudagan/core/error.h"
#include "cudagan/io/plot.h"
#include "quality.h"

namespace fs = std::filesystem;

namespace cudagan::apps {

namespace {
std::string header(const std::vector<int>& resolutions) {
  std::string h = "step,swd_avg";
  for (int r : resolutions) h += ",swd_" + std::to_string(r);
  return h;
}

std::string line(const TrainEval::Row& r) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld,%.4f", (long long)r.step, r.average);
  std::string s = buf;
  for (double v : r.per_level) {
    std::snprintf(buf, sizeof buf, ",%.4f", v);
    s += buf;
  }
  return s;
}

bool parse(const std::string& text, size_t levels, TrainEval::Row& r) {
  std::stringstream in(text);
  std::string cell;
  std::vector<double> v;
  while (std::getline(in, cell, ',')) {
    try {
      v.push_back(std::stod(cell));
    } catch (const std::exception&) {
      return false;
    }
  }
  if (v.size() != levels + 2) return false;
  r.step = int64_t(v[0]);
  r.average = v[1];
  r.per_level.assign(v.begin() + 2, v.end());
  return true;
}
}  // namespace

TrainEval::TrainEval(const std::string& out, int64_t resume_step, Tensor real, int batch, uint64_t seed)
    : out_(out), real_(std::move(real)), batch_(batch), seed_(seed),
      resolutions_(metrics::swd_resolutions(int(real_.size(2)))) {
  const std::string path = (fs::path(out_) / "metrics.csv").string();
  if (resume_step >= 0) {  // the rows of the run this one continues, up to its checkpoint
    std::ifstream in(path);
    std::string text;
    std::getline(in, text);
    Row r;
    while (std::getline(in, text))
      if (parse(text, resolutions_.size(), r) && r.step <= resume_step) rows_.push_back(r);
  }
  csv_ = std::fopen(path.c_str(), "w");
  CUDAGAN_CHECK(csv_, "cannot write '", path, "': ", std::strerror(errno), "; choose an OUT you can write to");
  std::fprintf(csv_, "%s\n", header(resolutions_).c_str());
  for (const Row& r : rows_) std::fprintf(csv_, "%s\n", line(r).c_str());
  std::fflush(csv_);
}

TrainEval::~TrainEval() {
  if (csv_) std::fclose(csv_);
}

TrainEval::Outcome TrainEval::evaluate(int64_t step, dcgan::Generator& g) {
  const auto t0 = std::chrono::steady_clock::now();
  const Device device = g.parameters().front().device();
  const Tensor fake = generated_images(g, real_.size(0), batch_, seed_, device);
  Outcome o;
  o.swd = metrics::sliced_wasserstein(real_, fake);
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double best = 0;
  for (size_t i = 0; i < rows_.size(); ++i) best = i == 0 ? rows_[i].average : std::min(best, rows_[i].average);
  o.best = rows_.empty() || o.swd.average_x1e3 < best;
  rows_.push_back({step, o.swd.average_x1e3, o.swd.per_level_x1e3});
  std::fprintf(csv_, "%s\n", line(rows_.back()).c_str());
  std::fflush(csv_);
  plot();
  return o;
}

void TrainEval::plot() const {
  std::vector<Series> series;
  series.push_back({"SWD x1e3 (average)", {}, {}, plot_color(0)});
  for (size_t l = 0; l < resolutions_.size(); ++l)
    series.push_back({std::to_string(resolutions_[l]) + "x" + std::to_string(resolutions_[l]), {}, {}, plot_color(l + 1)});
  for (const Row& r : rows_) {
    series[0].x.push_back(double(r.step));
    series[0].y.push_back(r.average);
    for (size_t l = 0; l < r.per_level.size() && l + 1 < series.size(); ++l) {
      series[l + 1].x.push_back(double(r.step));
      series[l + 1].y.push_back(r.per_level[l]);
    }
  }
  PlotOptions options;
  options.title = "Sliced Wasserstein distance to the real images (lower is better)";
  options.x_label = "step";
  options.y_label = "SWD x 1e3";
  save_line_plot((fs::path(out_) / "metrics.png").string(), series, options);
}

}  // namespace cudagan::apps

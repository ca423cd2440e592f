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
std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

std::vector<double> parse_numbers(const std::string& text) {
  std::stringstream in(text);
  std::string cell;
  std::vector<double> v;
  while (std::getline(in, cell, ',')) {
    try {
      v.push_back(std::stod(cell));
    } catch (const std::exception&) {
      return {};
    }
  }
  return v;
}
}  // namespace

std::vector<std::string> TrainEval::columns() const {
  std::vector<std::string> c{"step", "swd_avg"};
  for (int r : resolutions_) c.push_back("swd_" + std::to_string(r));
  if (digits_) c.insert(c.end(), {"fcd", "confidence", "class_entropy_bits"});
  return c;
}

std::vector<std::string> TrainEval::cells(const Row& r) const {
  std::vector<std::string> c{std::to_string(r.step), number(r.average)};
  for (double v : r.per_level) c.push_back(number(v));
  if (digits_ && r.digits)
    c.insert(c.end(), {number(r.digits->fcd), number(r.digits->mean_confidence), number(r.digits->class_entropy_bits)});
  return c;
}

int TrainEval::best_index() const {
  int best = -1;
  for (size_t i = 0; i < rows_.size(); ++i)
    if (best < 0 || main_value(rows_[i]) < main_value(rows_[size_t(best)])) best = int(i);
  return best;
}

TrainEval::TrainEval(const std::string& out, int64_t resume_step, Tensor real, int batch, uint64_t seed,
                     std::unique_ptr<digits::Evaluator> digit_metrics)
    : out_(out), real_(std::move(real)), batch_(batch), seed_(seed), digits_(std::move(digit_metrics)),
      resolutions_(metrics::swd_resolutions(int(real_.size(2)))) {
  const std::string path = (fs::path(out_) / "metrics.csv").string();
  const size_t width = columns().size();
  if (resume_step >= 0) {  // the rows of the run this one continues, up to its checkpoint, if they have our columns
    std::ifstream in(path);
    std::string text;
    std::getline(in, text);
    while (std::getline(in, text)) {
      const std::vector<double> v = parse_numbers(text);
      if (v.size() != width || int64_t(v[0]) > resume_step) continue;
      Row r;
      r.step = int64_t(v[0]);
      r.average = v[1];
      r.per_level.assign(v.begin() + 2, v.begin() + 2 + std::ptrdiff_t(resolutions_.size()));
      if (digits_) {
        r.digits = digits::Quality{};
        r.digits->fcd = v[width - 3];
        r.digits->mean_confidence = v[width - 2];
        r.digits->class_entropy_bits = v[width - 1];
      }
      rows_.push_back(r);
    }
  }
  csv_ = std::fopen(path.c_str(), "w");
  CUDAGAN_CHECK(csv_, "cannot write '", path, "': ", std::strerror(errno), "; choose an OUT you can write to");
  auto write = [this](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) std::fprintf(csv_, "%s%s", i ? "," : "", cells[i].c_str());
    std::fprintf(csv_, "\n");
  };
  write(columns());
  for (const Row& r : rows_) write(cells(r));
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
  if (digits_) o.digits = digits_->measure(fake);
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int before = best_index();
  rows_.push_back({step, o.swd.average_x1e3, o.swd.per_level_x1e3, o.digits});
  o.best = before < 0 || main_value(rows_.back()) < main_value(rows_[size_t(before)]);
  const std::vector<std::string> c = cells(rows_.back());
  for (size_t i = 0; i < c.size(); ++i) std::fprintf(csv_, "%s%s", i ? "," : "", c[i].c_str());
  std::fprintf(csv_, "\n");
  std::fflush(csv_);
  plot();
  return o;
}

void TrainEval::plot() const {
  std::vector<Series> series;
  series.push_back({"SWD x1e3 (average)", {}, {}, plot_color(0)});
  for (size_t l = 0; l < resolutions_.size(); ++l)
    series.push_back({std::to_string(resolutions_[l]) + "x" + std::to_string(resolutions_[l]), {}, {}, plot_color(l + 1)});
  Series fcd{"FCD (digit classifier)", {}, {}, plot_color(0)};
  for (const Row& r : rows_) {
    series[0].x.push_back(double(r.step));
    series[0].y.push_back(r.average);
    for (size_t l = 0; l < r.per_level.size() && l + 1 < series.size(); ++l) {
      series[l + 1].x.push_back(double(r.step));
      series[l + 1].y.push_back(r.per_level[l]);
    }
    if (r.digits) {
      fcd.x.push_back(double(r.step));
      fcd.y.push_back(r.digits->fcd);
    }
  }
  PlotOptions options;
  options.title = "Sliced Wasserstein distance to the real images (lower is better)";
  options.x_label = "step";
  options.y_label = "SWD x 1e3";
  save_line_plot((fs::path(out_) / "metrics.png").string(), series, options);
  if (!digits_) return;
  // Its own plot: the FCD's scale (hundreds to thousands early on) would flatten the SWD curves.
  options.title = "Frechet classifier distance to MNIST test digits (lower is better)";
  options.y_label = "FCD";
  save_line_plot((fs::path(out_) / "fcd.png").string(), {fcd}, options);
}

}  // namespace cudagan::apps

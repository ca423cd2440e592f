#include "train_outputs.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <cstring>

#include "cudagan/core/error.h"
#include "cudagan/io/plot.h"

namespace fs = std::filesystem;

namespace cudagan::apps {

namespace {
constexpr const char* kCsvHeader = "step,epoch,loss_d,loss_g,d_x,d_g_z1,d_g_z2,images_per_s,elapsed_s";

std::string sample_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%07lld.png", (long long)step);
  return name;
}

std::string csv_line(const LossRow& r) {
  char line[256];
  std::snprintf(line, sizeof line, "%lld,%lld,%.6f,%.6f,%.6f,%.6f,%.6f,%.1f,%.2f", (long long)r.step,
                (long long)r.epoch, r.stats.loss_d, r.stats.loss_g, r.stats.d_x, r.stats.d_g_z1, r.stats.d_g_z2,
                r.images_per_s, r.elapsed_s);
  return line;
}

bool parse_row(const std::string& line, LossRow& r) {
  long long step = 0, epoch = 0;
  return std::sscanf(line.c_str(), "%lld,%lld,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &step, &epoch, &r.stats.loss_d,
                     &r.stats.loss_g, &r.stats.d_x, &r.stats.d_g_z1, &r.stats.d_g_z2, &r.images_per_s,
                     &r.elapsed_s) == 9 &&
         (r.step = step, r.epoch = epoch, true);
}

void make_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  CUDAGAN_CHECK(!ec, "cannot create output folder '", dir.string(), "': ", ec.message(),
                "; choose an OUT you can write to");
}
}  // namespace

TrainOutputs::TrainOutputs(const std::string& out, int64_t resume_step) : out_(out) {
  make_dir(fs::path(out) / "samples");
  make_dir(fs::path(out) / "checkpoints");
  const std::string csv_path = path("losses.csv");
  if (resume_step >= 0) {  // keep what the interrupted run wrote up to its checkpoint
    std::ifstream in(csv_path);
    std::string line;
    std::getline(in, line);  // header
    LossRow r;
    while (std::getline(in, line))
      if (parse_row(line, r) && r.step <= resume_step) rows_.push_back(r);
    std::vector<std::pair<int64_t, fs::path>> grids;
    for (const auto& e : fs::directory_iterator(fs::path(out) / "samples")) {
      long long step = 0;
      if (std::sscanf(e.path().filename().string().c_str(), "step_%lld.png", &step) == 1) {
        if (step <= resume_step)
          grids.emplace_back(step, e.path());
        else
          fs::remove(e.path());
      }
    }
    std::sort(grids.begin(), grids.end());
    for (const auto& g : grids) gif_.add_frame(read_image(g.second.string()));
    if (!grids.empty()) latest_grid_step_ = grids.back().first;
  }
  csv_ = std::fopen(csv_path.c_str(), "w");
  CUDAGAN_CHECK(csv_, "cannot write '", csv_path, "': ", std::strerror(errno), "; choose an OUT you can write to");
  std::fprintf(csv_, "%s\n", kCsvHeader);
  for (const LossRow& r : rows_) std::fprintf(csv_, "%s\n", csv_line(r).c_str());
  std::fflush(csv_);
}

TrainOutputs::~TrainOutputs() {
  if (csv_) std::fclose(csv_);
}

std::string TrainOutputs::path(const std::string& name) const { return (fs::path(out_) / name).string(); }

void TrainOutputs::add_row(const LossRow& row) {
  rows_.push_back(row);
  std::fprintf(csv_, "%s\n", csv_line(row).c_str());
  std::fflush(csv_);
}

void TrainOutputs::add_sample_grid(int64_t step, const Tensor& images) {
  const Image grid = make_grid(images, 8, 2);
  write_png(path("samples/" + sample_name(step)), grid);
  gif_.add_frame(grid);
  latest_grid_step_ = step;
}

std::string TrainOutputs::latest_grid() const {
  return latest_grid_step_ < 0 ? std::string() : "samples/" + sample_name(latest_grid_step_);
}

void TrainOutputs::write_summaries() const {
  if (gif_.frame_count() > 0) gif_.save(path("progress.gif"), 50, true);
  if (rows_.empty()) return;
  Series d{"Loss_D", {}, {}, {31, 119, 180}}, g{"Loss_G", {}, {}, {255, 127, 14}};
  for (const LossRow& r : rows_) {
    d.x.push_back(double(r.step));
    d.y.push_back(r.stats.loss_d);
    g.x.push_back(double(r.step));
    g.y.push_back(r.stats.loss_g);
  }
  PlotOptions options;
  options.title = "Generator and discriminator loss during training";
  options.x_label = "step";
  options.y_label = "loss";
  save_line_plot(path("loss.png"), {g, d}, options);
}

// ---------------------------------------------------------------------------------------------

Console::Console(int64_t total_steps, int epochs, int64_t batches_per_epoch, int batch_size, bool progress_bar)
    : total_steps_(total_steps),
      batch_size_(batch_size),
      epochs_(epochs),
      batches_per_epoch_(batches_per_epoch),
      tty_(progress_bar && isatty(STDOUT_FILENO) == 1) {}

std::string Console::eta(int64_t step, double images_per_s) const {
  if (images_per_s <= 0 || total_steps_ <= step) return "0s";
  const double seconds = double(total_steps_ - step) * double(batch_size_) / images_per_s;
  char s[32];
  const long long t = (long long)seconds;
  if (t >= 3600)
    std::snprintf(s, sizeof s, "%lldh%02lldm", t / 3600, t / 60 % 60);
  else
    std::snprintf(s, sizeof s, "%lldm%02llds", t / 60, t % 60);
  return s;
}

void Console::message(const std::string& line) {
  if (bar_shown_) std::printf("\r\033[K");
  bar_shown_ = false;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

std::string Console::line(const dcgan::StepReport& r) const {
  char line[320];
  std::snprintf(line, sizeof line,
                "[%lld/%d][%lld/%lld] Loss_D: %.4f Loss_G: %.4f D(x): %.4f D(G(z)): %.4f / %.4f | %.0f img/s | "
                "ETA %s",
                (long long)r.epoch, epochs_, (long long)r.batch_in_epoch, (long long)batches_per_epoch_,
                r.stats.loss_d, r.stats.loss_g, r.stats.d_x, r.stats.d_g_z1, r.stats.d_g_z2, recent_rate_,
                eta(r.step, recent_rate_).c_str());
  return line;
}

void Console::log(const dcgan::StepReport& r) { message(line(r)); }

void Console::step(const dcgan::StepReport& r) {
  recent_rate_ = recent_rate_ == 0 ? r.images_per_s : 0.9 * recent_rate_ + 0.1 * r.images_per_s;
  if (!tty_) return;
  const double done = total_steps_ > 0 ? double(r.step) / double(total_steps_) : 0;
  const int width = 24, filled = int(done * width);
  std::string bar(size_t(filled), '#');
  bar.resize(size_t(width), '.');
  std::printf("\r\033[K%s %5.1f%% %s", bar.c_str(), 100 * done, line(r).c_str());
  std::fflush(stdout);
  bar_shown_ = true;
}

}  // namespace cudagan::apps

// OUT/index.html: one static page (no server, no script, no network) that shows a training run as it goes:
// its state, the latest sample grid, the real images, progress.gif, the loss and metric plots, the metrics
// table with the best step, and the configuration. Rewritten atomically (temporary file, rename) at each sample
// grid, evaluation, epoch end and at the end, so a browser never reads half a page; while the run is live the
// page reloads itself every 30 s. Images are linked relative to OUT (the folder can be copied or served as is)
// with the step as a query, so a reload shows the new images rather than cached ones.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cudagan::apps {

struct ReportPage {
  std::string title;        // e.g. "dcgan_train data/mnist"
  std::string status;       // e.g. "training", "finished", "stopped by SIGINT at step 120"
  bool live = true;         // still training: the page reloads itself
  int64_t step = 0, total_steps = 0;
  std::string latest_grid;  // the newest sample grid, relative to OUT ("samples/step_0000400.png"); "" none yet
  std::vector<std::pair<std::string, std::string>> latest;  // the last logged values: ("Loss_D", "0.5123"), ...
  std::vector<std::string> metric_columns;                   // the metrics table (metrics.csv's columns)
  std::vector<std::vector<std::string>> metric_rows;
  int best_row = -1;            // the row of the best evaluation (checkpoints/best.safetensors), -1 none
  std::string best_note;        // e.g. "lowest FCD"
  std::string config_yaml;      // config.yaml as written
};

// The page's HTML. Images are included when their files exist in `out` (real_samples.png, the latest grid,
// progress.gif, loss.png, metrics.png, fcd.png); every text is HTML-escaped.
std::string report_html(const std::string& out, const ReportPage& page);
// Writes OUT/index.html atomically. Throws cudagan::Error naming the path when it cannot be written.
void write_report_page(const std::string& out, const ReportPage& page);

}  // namespace cudagan::apps

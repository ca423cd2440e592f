// Line plots as PNG, with no plotting library: how a training run draws its loss curves
// (loss.png: Loss_D and Loss_G against the step). White background, axes with round-numbered
// ticks and grid lines, title, axis labels, one polyline per series and a legend.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "cudagan/io/image_io.h"

namespace cudagan {

// The i-th colour of matplotlib's default cycle ("tab10"), so series look as they would there.
std::array<uint8_t, 3> plot_color(size_t i);

struct Series {
  std::string name;          // shown in the legend; an unnamed series is left out of it
  std::vector<double> x, y;  // same length; NaN/Inf points are skipped and break the line
  std::array<uint8_t, 3> color = plot_color(0);
};

struct PlotOptions {
  std::string title, x_label, y_label;
  int width = 800, height = 450;
};

// Renders the series into an RGB image of options.width x options.height. Axis ranges cover every
// finite point; series longer than the plot is wide are reduced to each pixel column's minimum and
// maximum, so the envelope of a noisy curve survives. Throws cudagan::Error on mismatched x/y
// lengths or a size below 200x150.
Image render_line_plot(const std::vector<Series>& series, const PlotOptions& options = {});

// render_line_plot, then write_png: atomic, and throws cudagan::Error naming the path on failure.
void save_line_plot(const std::string& path, const std::vector<Series>& series,
                    const PlotOptions& options = {});

}  // namespace cudagan

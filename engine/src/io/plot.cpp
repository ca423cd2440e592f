// Line plots rendered in software: coverage-antialiased strokes, stb_easy_font text (it emits
// axis-aligned quads, which are filled here with exact pixel coverage, so any text scale stays
// crisp enough), round-numbered ticks (1, 2, 5 x 10^k), a legend placed in the emptiest corner.
#include "cudagan/io/plot.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"  // the header defines helpers we do not call
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "cudagan/core/error.h"

namespace cudagan {

std::array<uint8_t, 3> plot_color(size_t i) {
  static const std::array<uint8_t, 3> tab10[10] = {
      {31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
      {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
  return tab10[i % 10];
}

namespace {

using Rgb = std::array<uint8_t, 3>;
constexpr Rgb text_colour{34, 34, 34}, frame_colour{80, 80, 80}, grid_colour{228, 228, 228},
    legend_border{200, 200, 200}, white{255, 255, 255};

class Canvas {
 public:
  Canvas(int width, int height) : image_(Image::blank(width, height, 3, 255)) {}
  Image& image() { return image_; }

  void blend(int x, int y, Rgb c, float alpha) {
    if (x < 0 || y < 0 || x >= image_.width || y >= image_.height || !(alpha > 0)) return;
    alpha = std::min(alpha, 1.0f);
    for (int ch = 0; ch < 3; ++ch) {
      uint8_t& p = image_.at(x, y, ch);
      p = uint8_t(std::lround(p + (c[ch] - p) * alpha));
    }
  }
  // A rectangle with fractional edges: each pixel takes the colour in proportion to its overlap.
  void fill_rect(float x0, float y0, float x1, float y1, Rgb c, float alpha = 1.0f) {
    for (int y = int(std::floor(y0)); y < int(std::ceil(y1)); ++y) {
      const float cy = std::min(y1, y + 1.0f) - std::max(y0, float(y));
      for (int x = int(std::floor(x0)); x < int(std::ceil(x1)); ++x) {
        const float cx = std::min(x1, x + 1.0f) - std::max(x0, float(x));
        blend(x, y, c, alpha * cx * cy);
      }
    }
  }

 private:
  Image image_;
};

// --- text: stb_easy_font glyphs are 7 units tall above the baseline row, 9 with descenders ---
constexpr float glyph_height = 9.0f;

std::string printable(const std::string& text) {
  std::string s = text;
  for (char& ch : s)
    if (ch < 32 || ch > 126) ch = '?';  // the font covers ASCII 32..126 only
  return s;
}

// Glyphs are placed one by one, half a font unit tighter than the font's own advance (its author's
// advice for scaled-up text), and scaled-up strokes are thickened a little so that 1.5x text is not
// spindly. Below 1.25x the font is drawn at its native size: fractional sizes there blur it.
constexpr float tracking = -0.5f;
float crisp_scale(float scale) { return scale < 1.25f ? 1.0f : scale; }

float glyph_advance(char ch) { return float(stb_easy_font_charinfo[ch - 32].advance & 15) + tracking; }

float text_width(const std::string& text, float scale) {
  const std::string s = printable(text);
  float units = 0;
  for (char ch : s) units += glyph_advance(ch);
  // The last advance includes the gap after the glyph: about one unit of it is not ink.
  return s.empty() ? 0.0f : (units - 1 - tracking) * scale;
}

// Draws `text` with its top-left corner at (x, y); vertical text reads bottom to top with its
// bottom-left corner (the start of the line) at (x, y). The strokes are gathered in a coverage mask
// first (maximum, not sum), so where two of a glyph's segments overlap the edge does not darken.
void draw_text(Canvas& canvas, float x, float y, const std::string& text, float scale, Rgb colour,
               bool vertical = false) {
  const std::string s = printable(text);
  if (s.empty()) return;
  const int mask_w = int(std::ceil(text_width(s, scale) + 2 * scale)) + 3;
  const int mask_h = int(std::ceil(glyph_height * scale)) + 3;
  std::vector<float> mask(size_t(mask_w) * mask_h, 0.0f);
  const float embolden = scale > 1.0f ? 0.15f : 0.0f;
  auto cover = [&](float x0, float y0, float x1, float y1) {  // mask coordinates, origin at (1, 1)
    x0 += 1 - embolden, y0 += 1 - embolden, x1 += 1 + embolden, y1 += 1 + embolden;
    for (int my = std::max(0, int(std::floor(y0))); my < std::min(mask_h, int(std::ceil(y1))); ++my) {
      const float cy = std::min(y1, my + 1.0f) - std::max(y0, float(my));
      for (int mx = std::max(0, int(std::floor(x0))); mx < std::min(mask_w, int(std::ceil(x1))); ++mx) {
        const float cx = std::min(x1, mx + 1.0f) - std::max(x0, float(mx));
        float& m = mask[size_t(my) * mask_w + mx];
        m = std::max(m, std::min(1.0f, cx * cy));
      }
    }
  };
  char quads[64 * 32];  // the widest glyph has under 20 quads
  float pen = 0;
  for (char ch : s) {
    char glyph[2] = {ch, '\0'};
    const int count = stb_easy_font_print(0, 0, glyph, nullptr, quads, int(sizeof quads));
    for (int q = 0; q < count; ++q) {
      float v0[2], v2[2];  // opposite corners of an axis-aligned quad
      std::memcpy(v0, &quads[q * 64], sizeof v0);
      std::memcpy(v2, &quads[q * 64 + 32], sizeof v2);
      cover((pen + v0[0]) * scale, v0[1] * scale, (pen + v2[0]) * scale, v2[1] * scale);
    }
    pen += glyph_advance(ch);
  }
  // Mask pixel (mx, my) is text-space pixel (mx - 1, my - 1); rotated text maps text x to -y.
  for (int my = 0; my < mask_h; ++my)
    for (int mx = 0; mx < mask_w; ++mx) {
      const float m = mask[size_t(my) * mask_w + mx];
      if (m <= 0) continue;
      const int tx = mx - 1, ty = my - 1, ox = int(std::floor(x)), oy = int(std::floor(y));
      if (!vertical)
        canvas.blend(ox + tx, oy + ty, colour, m);
      else
        canvas.blend(ox + ty, oy - 1 - tx, colour, m);
    }
}

// --- axes ---
struct Axis {
  double lo = 0, hi = 1;  // the data range the plot area spans
  double step = 0.2;
  std::vector<double> ticks;
  std::vector<std::string> labels;
};

double nice_step(double range, int target) {
  const double raw = range / std::max(target, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude;
}

std::string tick_label(double v, double step, double largest) {
  char buf[32];
  if (largest >= 1e6 || step < 1e-4) {
    // Enough significant digits to tell neighbouring ticks apart.
    const int digits = std::clamp(int(std::ceil(std::log10(largest / step))) + 1, 1, 15);
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  } else {
    const int decimals = std::max(0, int(-std::floor(std::log10(step) + 1e-9)));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

void set_ticks(Axis& axis, int target) {
  axis.step = nice_step(axis.hi - axis.lo, target);
  axis.ticks.clear();
  axis.labels.clear();
  const double largest = std::max(std::abs(axis.lo), std::abs(axis.hi));
  const double first = std::ceil(axis.lo / axis.step - 1e-9);
  for (double k = first; k * axis.step <= axis.hi + axis.step * 1e-9 && k < first + 50; k += 1) {
    const double v = std::abs(k) < 0.5 ? 0.0 : k * axis.step;  // never "-0"
    axis.ticks.push_back(v);
    axis.labels.push_back(tick_label(v, axis.step, largest));
  }
}

// The span of the finite values, widened by `margin` of itself on each side; a single value
// gets a span around it.
Axis data_axis(const std::vector<Series>& series, bool use_x, double margin) {
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        const double v = use_x ? s.x[i] : s.y[i];
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  Axis axis;
  if (lo > hi) return axis;  // nothing finite: [0, 1]
  if (!std::isfinite(hi - lo)) {
    lo = std::max(lo, -1e300);
    hi = std::min(hi, 1e300);
  }
  if (hi - lo <= std::abs(hi) * 1e-12) {
    const double d = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const double pad = (hi - lo) * margin;
  axis.lo = lo - pad;
  axis.hi = hi + pad;
  return axis;
}

// --- series ---
struct Area {
  int x0, y0, w, h;  // plot area in pixels
};

// Keeps, per pixel column, the lowest and the highest point (in their original order): the
// outline a dense polyline would draw anyway, at a cost bounded by the plot width.
template <class ToPixel>
std::vector<size_t> thin_out(const Series& s, const std::vector<size_t>& run, const ToPixel& px) {
  std::vector<size_t> kept;
  size_t i = 0;
  while (i < run.size()) {
    const long column = long(std::floor(px(s.x[run[i]])));
    size_t lo = run[i], hi = run[i], j = i;
    for (; j < run.size() && long(std::floor(px(s.x[run[j]]))) == column; ++j) {
      if (s.y[run[j]] < s.y[lo]) lo = run[j];
      if (s.y[run[j]] > s.y[hi]) hi = run[j];
    }
    kept.push_back(std::min(lo, hi));
    if (lo != hi) kept.push_back(std::max(lo, hi));
    i = j;
  }
  return kept;
}

// Antialiased stroke: a pixel's coverage falls off linearly with its distance from the segment.
// Coverage is kept as a maximum per pixel, so the joints of a polyline do not darken.
void stroke(std::vector<float>& cover, const Area& a, double ax, double ay, double bx, double by,
            double half) {
  if (!std::isfinite(ax + ay + bx + by)) return;
  const double reach = half + 1.0;
  // Clamped in floating point first: a point far outside the area must not overflow an int.
  auto clip = [](double v, int lo, int hi) { return int(std::clamp(v, double(lo), double(hi))); };
  const int px0 = clip(std::floor(std::min(ax, bx) - reach), a.x0, a.x0 + a.w - 1);
  const int px1 = clip(std::ceil(std::max(ax, bx) + reach), a.x0, a.x0 + a.w - 1);
  const int py0 = clip(std::floor(std::min(ay, by) - reach), a.y0, a.y0 + a.h - 1);
  const int py1 = clip(std::ceil(std::max(ay, by) + reach), a.y0, a.y0 + a.h - 1);
  const double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  for (int y = py0; y <= py1; ++y)
    for (int x = px0; x <= px1; ++x) {
      const double cx = x + 0.5 - ax, cy = y + 0.5 - ay;
      const double t = len2 > 0 ? std::clamp((cx * dx + cy * dy) / len2, 0.0, 1.0) : 0.0;
      const double d = std::hypot(cx - t * dx, cy - t * dy);
      const float c = float(std::clamp(half + 0.5 - d, 0.0, 1.0));
      float& slot = cover[size_t(y - a.y0) * a.w + (x - a.x0)];
      slot = std::max(slot, c);
    }
}

}  // namespace

Image render_line_plot(const std::vector<Series>& series, const PlotOptions& options) {
  const int width = options.width, height = options.height;
  CUDAGAN_CHECK(width >= 200 && height >= 150 && width <= 16384 && height <= 16384, "line plot: size ", width,
                "x", height, " is outside 200x150 .. 16384x16384");
  for (const Series& s : series)
    CUDAGAN_CHECK(s.x.size() == s.y.size(), "line plot: series '", s.name, "' has ", s.x.size(),
                  " x values but ", s.y.size(), " y values");

  // Sizes grow with the image; at 800x450 the tick labels are 1.5x the font's native 9 px.
  const float k = std::clamp(std::min(width / 800.0f, height / 450.0f), 0.5f, 4.0f);
  const float text_scale = crisp_scale(1.5f * k), title_scale = crisp_scale(2.0f * k);
  const float text_h = glyph_height * text_scale, pad = 12 * k, gap = 6 * k, tick_len = 5 * k;

  // Vertical layout first: it fixes the plot height, hence the y ticks, hence their label widths,
  // which fix the left margin and so the width available to the x ticks.
  const float top = pad + (options.title.empty() ? text_h * 0.5f : glyph_height * title_scale + pad);
  const float bottom = pad + tick_len + gap + text_h + (options.x_label.empty() ? 0 : gap * 1.5f + text_h);
  Area area{0, int(top), 0, int(height - top - bottom)};

  Axis ay = data_axis(series, false, 0.05);
  set_ticks(ay, std::clamp(int(area.h / (5 * text_h)), 2, 10));
  float y_label_w = 0;
  for (const std::string& l : ay.labels) y_label_w = std::max(y_label_w, text_width(l, text_scale));
  const float left = pad + (options.y_label.empty() ? 0 : text_h + gap * 1.5f) + y_label_w + gap + tick_len;
  area.x0 = int(left);
  area.w = int(width - left - 2.5f * pad);

  Axis ax = data_axis(series, true, 0.02);
  for (int target = std::clamp(int(area.w / (12 * text_h)), 2, 12);; --target) {
    set_ticks(ax, target);
    float widest = 0;
    for (const std::string& l : ax.labels) widest = std::max(widest, text_width(l, text_scale));
    const double spacing = ax.step / (ax.hi - ax.lo) * area.w;
    if (spacing >= widest + 3 * gap || target <= 2) break;
  }
  auto to_px = [&](double x) { return area.x0 + (x - ax.lo) / (ax.hi - ax.lo) * area.w; };
  auto to_py = [&](double y) { return area.y0 + (ay.hi - y) / (ay.hi - ay.lo) * area.h; };

  Canvas canvas(width, height);
  for (double t : ax.ticks)
    canvas.fill_rect(float(std::floor(to_px(t))), area.y0, float(std::floor(to_px(t))) + 1, area.y0 + area.h,
                     grid_colour);
  for (double t : ay.ticks)
    canvas.fill_rect(area.x0, float(std::floor(to_py(t))), area.x0 + area.w, float(std::floor(to_py(t))) + 1,
                     grid_colour);

  // Series, each through its own coverage buffer; `ink` remembers where any of them drew.
  const size_t area_pixels = size_t(area.w) * area.h;
  std::vector<float> ink(area_pixels, 0.0f), cover(area_pixels);
  const double half_width = std::max(0.75, 1.0 * k), dot_radius = std::max(2.0, 2.5 * k);  // 2 px at 800x450
  for (const Series& s : series) {
    std::fill(cover.begin(), cover.end(), 0.0f);
    size_t i = 0;
    while (i < s.x.size()) {  // runs of finite points; a NaN or Inf breaks the line
      std::vector<size_t> run;
      for (; i < s.x.size() && std::isfinite(s.x[i]) && std::isfinite(s.y[i]); ++i) run.push_back(i);
      ++i;
      if (run.empty()) continue;
      const bool sorted =
          std::is_sorted(run.begin(), run.end(), [&](size_t a, size_t b) { return s.x[a] < s.x[b]; });
      if (sorted && run.size() > size_t(2 * area.w)) run = thin_out(s, run, to_px);
      if (run.size() == 1) {
        stroke(cover, area, to_px(s.x[run[0]]), to_py(s.y[run[0]]), to_px(s.x[run[0]]), to_py(s.y[run[0]]),
               dot_radius);
        continue;
      }
      for (size_t j = 1; j < run.size(); ++j)
        stroke(cover, area, to_px(s.x[run[j - 1]]), to_py(s.y[run[j - 1]]), to_px(s.x[run[j]]),
               to_py(s.y[run[j]]), half_width);
    }
    for (size_t p = 0; p < area_pixels; ++p) {
      if (cover[p] <= 0) continue;
      canvas.blend(area.x0 + int(p % area.w), area.y0 + int(p / area.w), s.color, cover[p]);
      ink[p] = std::max(ink[p], cover[p]);
    }
  }

  // Frame, ticks and their labels.
  const float fx0 = area.x0 - 1.0f, fy0 = area.y0 - 1.0f, fx1 = float(area.x0 + area.w),
              fy1 = float(area.y0 + area.h);
  canvas.fill_rect(fx0, fy0, fx1 + 1, fy0 + 1, frame_colour);
  canvas.fill_rect(fx0, fy1, fx1 + 1, fy1 + 1, frame_colour);
  canvas.fill_rect(fx0, fy0, fx0 + 1, fy1 + 1, frame_colour);
  canvas.fill_rect(fx1, fy0, fx1 + 1, fy1 + 1, frame_colour);
  for (size_t t = 0; t < ax.ticks.size(); ++t) {
    const float x = float(std::floor(to_px(ax.ticks[t])));
    canvas.fill_rect(x, fy1 + 1, x + 1, fy1 + 1 + tick_len, frame_colour);
    draw_text(canvas, x + 0.5f - text_width(ax.labels[t], text_scale) / 2, fy1 + 1 + tick_len + gap,
              ax.labels[t], text_scale, text_colour);
  }
  for (size_t t = 0; t < ay.ticks.size(); ++t) {
    const float y = float(std::floor(to_py(ay.ticks[t])));
    canvas.fill_rect(fx0 - tick_len, y, fx0, y + 1, frame_colour);
    // Glyphs span 7 of their 9 units above the descenders: centre those 7 on the tick.
    draw_text(canvas, fx0 - tick_len - gap - text_width(ay.labels[t], text_scale),
              y + 0.5f - 3.5f * text_scale, ay.labels[t], text_scale, text_colour);
  }

  // Title and axis labels, centred on the plot area.
  const float mid_x = area.x0 + area.w / 2.0f, mid_y = area.y0 + area.h / 2.0f;
  if (!options.title.empty())
    draw_text(canvas, mid_x - text_width(options.title, title_scale) / 2, pad, options.title, title_scale,
              text_colour);
  if (!options.x_label.empty())
    draw_text(canvas, mid_x - text_width(options.x_label, text_scale) / 2, height - pad - text_h,
              options.x_label, text_scale, text_colour);
  if (!options.y_label.empty())
    draw_text(canvas, pad, mid_y + text_width(options.y_label, text_scale) / 2, options.y_label, text_scale,
              text_colour, true);

  // Legend, in the corner of the plot area where the series left the least ink.
  std::vector<const Series*> named;
  float name_w = 0;
  for (const Series& s : series)
    if (!s.name.empty()) {
      named.push_back(&s);
      name_w = std::max(name_w, text_width(s.name, text_scale));
    }
  if (!named.empty()) {
    const float row_h = text_h + gap, swatch = 22 * k, inset = 8 * k;
    const float box_w = gap * 2 + swatch + gap + name_w, box_h = gap + row_h * named.size();
    float best_x = 0, best_y = 0, best_ink = INFINITY;
    for (int corner = 0; corner < 4; ++corner) {  // top-right, top-left, bottom-right, bottom-left
      const float bx = corner % 2 == 0 ? area.x0 + area.w - inset - box_w : area.x0 + inset;
      const float by = corner < 2 ? area.y0 + inset : area.y0 + area.h - inset - box_h;
      double sum = 0;
      for (int y = std::max(0, int(by - area.y0)); y < std::min(area.h, int(by + box_h - area.y0)); ++y)
        for (int x = std::max(0, int(bx - area.x0)); x < std::min(area.w, int(bx + box_w - area.x0)); ++x)
          sum += ink[size_t(y) * area.w + x];
      if (sum < best_ink - 0.5) {
        best_ink = sum;
        best_x = std::round(bx);
        best_y = std::round(by);
      }
    }
    canvas.fill_rect(best_x, best_y, best_x + box_w, best_y + box_h, white, 0.9f);
    canvas.fill_rect(best_x, best_y, best_x + box_w, best_y + 1, legend_border);
    canvas.fill_rect(best_x, best_y + box_h - 1, best_x + box_w, best_y + box_h, legend_border);
    canvas.fill_rect(best_x, best_y, best_x + 1, best_y + box_h, legend_border);
    canvas.fill_rect(best_x + box_w - 1, best_y, best_x + box_w, best_y + box_h, legend_border);
    for (size_t r = 0; r < named.size(); ++r) {
      const float row_top = best_y + gap + row_h * r;
      const float line_y = std::round(row_top + 3.5f * text_scale);
      canvas.fill_rect(best_x + gap, line_y - 1, best_x + gap + swatch, line_y + 1, named[r]->color);
      draw_text(canvas, best_x + gap * 2 + swatch, row_top, named[r]->name, text_scale, text_colour);
    }
  }
  return std::move(canvas.image());
}

void save_line_plot(const std::string& path, const std::vector<Series>& series, const PlotOptions& options) {
  write_png(path, render_line_plot(series, options));
}

}  // namespace cudagan

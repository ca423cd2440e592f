#include "latent_arithmetic.h"

#include <algorithm>
#include <cctype>

#include "cudagan/core/error.h"

namespace cudagan::apps {

std::vector<LatentTerm> parse_latent_arithmetic(const std::string& e, int grid_size) {
  const auto fail = [&](size_t at, const std::string& why) {
    throw Error(detail::concat("--arithmetic \"", e, "\": ", why, " at character ", at + 1,
                               "; write groups of sample indices joined by + and -, e.g. \"3,17,42 - 5,9 + 11\""));
  };
  std::vector<LatentTerm> terms;
  LatentTerm term;
  bool want_index = true;  // after a sign or a comma (or at the start)
  bool seen_sign = false;  // a sign is waiting for its group
  size_t i = 0;
  const auto close = [&](size_t at) {
    if (term.indices.empty()) fail(at, "a group without sample indices");
    terms.push_back(term);
    term = LatentTerm{};
  };
  for (; i < e.size(); ++i) {
    const char c = e[i];
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (std::isdigit(static_cast<unsigned char>(c))) {
      if (!want_index) fail(i, "a sample index where + , or - was expected");
      long long value = 0;
      const size_t start = i;
      for (; i < e.size() && std::isdigit(static_cast<unsigned char>(e[i])); ++i)
        value = std::min(value * 10 + (e[i] - '0'), 1000000000LL);  // saturates: no overflow, still too large
      --i;
      if (value >= grid_size)
        fail(start, detail::concat("sample ", e.substr(start, i + 1 - start), " is not in the grid of ", grid_size,
                                   " samples (indices 0 to ", grid_size - 1, "; --n sets the grid)"));
      term.indices.push_back(int(value));
      want_index = false;
      seen_sign = false;
    } else if (c == ',') {
      if (want_index) fail(i, "a comma without a sample index before it");
      want_index = true;
    } else if (c == '+' || c == '-') {
      if (seen_sign || (want_index && !term.indices.empty())) fail(i, "a sign where a sample index was expected");
      if (!term.indices.empty()) close(i);
      term.sign = c == '-' ? -1 : 1;
      want_index = true;
      seen_sign = true;
    } else {
      fail(i, detail::concat("'", c, "' is not a digit, a comma, + or -"));
    }
  }
  if (want_index) fail(e.empty() ? 0 : e.size() - 1, "the expression ends without a sample index");
  close(i);
  return terms;
}

std::vector<float> evaluate_latent_arithmetic(const std::vector<LatentTerm>& terms, const std::vector<float>& latents,
                                              int nz) {
  std::vector<double> sum(size_t(nz), 0.0);
  for (const LatentTerm& t : terms) {
    for (int index : t.indices)
      for (int k = 0; k < nz; ++k) sum[size_t(k)] += double(t.sign) * latents[size_t(index) * nz + k] / double(t.indices.size());
  }
  return std::vector<float>(sum.begin(), sum.end());
}

}  // namespace cudagan::apps

// dcgan_sample --arithmetic: the DCGAN paper's vector arithmetic on latent vectors (Radford et al. 2015,
// Fig. 7: "smiling woman - neutral woman + neutral man = smiling man"). The user picks samples by their
// index in the grid that `dcgan_sample --seed S --n N` draws; each group of indices stands for the mean of
// its latent vectors, and the groups are added and subtracted.
#pragma once

#include <string>
#include <vector>

namespace cudagan::apps {

struct LatentTerm {
  int sign = 1;              // +1 or -1
  std::vector<int> indices;  // sample indices of the grid, 0-based, row-major
};

// Parses "A - B + C": groups of comma-separated sample indices (0 <= index < grid_size) joined by '+' and
// '-', e.g. "3,17,42 - 5,9 + 11"; a leading sign is allowed, spaces are ignored. Throws cudagan::Error with
// the expression and the position for anything else (an empty group, two signs in a row, an index out of
// range, a stray character).
std::vector<LatentTerm> parse_latent_arithmetic(const std::string& expression, int grid_size);

// The latent vector of the expression: sum over terms of sign x the mean of the term's rows of `latents`
// (grid_size rows of nz values).
std::vector<float> evaluate_latent_arithmetic(const std::vector<LatentTerm>& terms, const std::vector<float>& latents,
                                              int nz);

}  // namespace cudagan::apps

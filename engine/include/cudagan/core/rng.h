// Rng: a seeded, portable pseudo-random number generator (xoshiro256** seeded through splitmix64; normals by
// Box-Muller computed in double). The same seed gives the same numbers on every platform and
// compiler, which std::normal_distribution does not promise. Its state can be saved and restored
// (checkpoints resume exactly). There is no global generator: pass one where randomness is needed.
#pragma once

#include <array>
#include <cstdint>

namespace cudagan {

// One step of splitmix64 from state x: a well-mixed 64-bit value, and different x give unrelated ones. For
// deriving seeds (per epoch, per worker) from a seed, as Rng's constructor does.
uint64_t splitmix64(uint64_t x);

// Not thread-safe: give each thread its own (split()). Copying a generator copies its state, so
// the copy repeats the original's numbers.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0);  // any seed; equal seeds give equal sequences
  uint64_t next_u64();  // 64 uniformly distributed bits
  double uniform();     // [0, 1), 53 random bits
  double normal();      // N(0, 1); consumes two next_u64() draws
  // An independent generator derived from this one (e.g. one per data-loader worker or per epoch);
  // advances this one by one draw.
  Rng split();

  // The complete state: set_state(state()) later continues the same sequence exactly.
  using State = std::array<uint64_t, 4>;
  State state() const { return s_; }
  void set_state(const State& s) { s_ = s; }

 private:
  State s_{};
};

}  // namespace cudagan

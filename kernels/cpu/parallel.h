// When the CPU kernels' loops run on the OpenMP team: one threshold for all of them.
#pragma once

#include <cstdint>

namespace cudagan::cpu {

// Below this many elements a loop's work is smaller than the cost of waking the OpenMP team (measured on
// the 2-core development machine: element-wise loops of 32 Ki floats take about as long as the wake-up).
constexpr int64_t kParallelMinElems = int64_t(1) << 15;

}  // namespace cudagan::cpu

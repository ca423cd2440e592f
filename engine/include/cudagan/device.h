// Where a tensor lives: the CPU or CUDA device n. Every tensor carries one; nothing moves between
// devices unless asked to with Tensor::to().
#pragma once

#include <string>

namespace cudagan {

enum class DeviceType { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  // "cpu", "cuda" or "cuda:N"; throws cudagan::Error for anything else.
  static Device parse(const std::string& text);

  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  std::string str() const;  // "cpu" or "cuda:N"
  bool operator==(const Device& o) const { return type == o.type && (is_cpu() || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

// True when this build has the CUDA backend and at least one GPU is visible.
bool cuda_available();
// Number of visible GPUs (0 in a CPU-only build).
int cuda_device_count();

}  // namespace cudagan

// Where a tensor lives: the CPU or CUDA device n. Every tensor carries one; nothing moves between
// devices unless asked to with Tensor::to().
#pragma once

#include <string>

namespace cudagan {

enum class DeviceType { cpu, cuda };

// A device tag: a plain value, cheap to copy. Naming a GPU checks nothing; using one that is not
// there (or a GPU in a build without CUDA) throws cudagan::Error where memory is first allocated.
struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;  // the GPU ordinal (as CUDA numbers the visible devices); 0 and ignored for the CPU

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  // "cpu", "cuda" or "cuda:N"; throws cudagan::Error for anything else.
  static Device parse(const std::string& text);

  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  std::string str() const;  // "cpu" or "cuda:N"
  // Same device: same type and, for GPUs, the same index.
  bool operator==(const Device& o) const { return type == o.type && (is_cpu() || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

// True when this build has the CUDA backend and at least one GPU is visible.
bool cuda_available();
// Number of visible GPUs (0 in a CPU-only build).
int cuda_device_count();

// A device as programs take it from their users: "auto" (GPU 0 when cuda_available(), else the CPU)
// or what Device::parse accepts. Unlike Device::parse, naming a GPU checks that there is one: throws
// cudagan::Error (one line, with the fix) when there is none, before any work is done.
Device resolve_device(const std::string& name);

}  // namespace cudagan

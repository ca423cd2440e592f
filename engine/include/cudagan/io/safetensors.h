// The safetensors file format (https://github.com/huggingface/safetensors), as used for
// checkpoints: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// padded with spaces to a multiple of 8, then the raw little-endian tensor data, offsets counted
// from the start of that data section. Files written here load in PyTorch/NumPy with the
// safetensors package, and theirs (F32/F64) load here.
//
// Checksums: every file written here carries, in its metadata under the reserved key "crc32", one zlib
// crc32 per tensor (8 hex digits, in data order). Loading verifies them and names a tensor whose bytes
// changed; a file without them (written by another program, or before cudagan had them) loads unverified.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cudagan/core/tensor.h"

namespace cudagan {

// Writes the tensors (float32 -> F32, float64 -> F64; any device, copied to the host) in the given
// order, with their checksums, atomically (temporary file, fsync, rename): an interrupted save leaves
// the previous checkpoint intact. Throws cudagan::Error on a duplicate or empty name, an undefined
// tensor, the reserved metadata key "crc32", or a write error naming the path.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

inline constexpr const char* kChecksumKey = "crc32";  // the metadata key of the checksums

struct SafetensorsFile {
  std::string path;                                     // where it was read from, for messages
  std::vector<std::pair<std::string, Tensor>> tensors;  // CPU tensors, in data order
  std::map<std::string, std::string> metadata;          // without the checksums
  bool checksums_verified = false;                      // it had checksums, and every tensor matched

  bool contains(const std::string& name) const;
  // Throws cudagan::Error naming the missing tensor and the file.
  const Tensor& at(const std::string& name) const;
  // Copies tensor `name` into `target` (any device; F64 and F32 converted to target's dtype). A missing
  // tensor or a shape other than target's throws cudagan::Error naming the file, the tensor and both
  // shapes, followed by `hint` (what the user should do about it).
  void load_into(const std::string& name, Tensor target, const std::string& hint) const;
};

// Reads and validates a whole file (sizes, JSON, dtypes, offsets against shapes, overlaps, gaps,
// trailing bytes, checksums when present). Any problem throws cudagan::Error with one line naming
// the file and what is wrong, e.g. "checkpoint 'g.safetensors' is truncated: ..." or "... is damaged:
// the bytes of tensor 'G.main.0.weight' do not match the checksum saved with them ...".
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace cudagan

// safetensors reading and writing (format in cudagan/io/safetensors.h). nlohmann::ordered_json keeps
// the header's keys in insertion order, so a saved file lists "__metadata__" first and then the
// tensors in the caller's order, as the reference Rust writer does, and the bytes are reproducible.
#include "cudagan/io/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include <zlib.h>

#include "cudagan/io/atomic_file.h"
#include "cudagan/core/error.h"

namespace cudagan {
namespace {

using Json = nlohmann::ordered_json;

// The reference implementation refuses larger headers too; it keeps a corrupt length from
// turning into a huge allocation.
constexpr uint64_t max_header_bytes = 100'000'000;

// The data section is the tensors' memory as is, so the host must be little-endian like the format.
void require_little_endian() {
  const uint16_t probe = 1;
  uint8_t first = 0;
  std::memcpy(&first, &probe, 1);
  CUDAGAN_CHECK(first == 1, "safetensors needs a little-endian host");
}

const char* format_dtype(DType t) { return t == DType::float32 ? "F32" : "F64"; }

// zlib's crc32 of `bytes` bytes (in pieces: its length argument is 32-bit).
uint32_t crc32_of(const void* data, size_t bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(data);
  for (size_t done = 0; done < bytes;) {
    const uInt piece = uInt(std::min<size_t>(bytes - done, size_t(1) << 30));
    crc = crc32(crc, p + done, piece);
    done += piece;
  }
  return uint32_t(crc);
}

std::string hex32(uint32_t v) {
  char s[9];
  std::snprintf(s, sizeof s, "%08x", v);
  return s;
}

// The checksum list: one crc32 per tensor, in data order, as 8 lowercase hex digits joined by commas.
std::vector<uint32_t> parse_checksums(const std::string& list, const std::function<void(const std::string&)>& fail) {
  std::vector<uint32_t> out;
  if (list.empty()) return out;
  for (size_t at = 0;;) {
    const size_t comma = list.find(',', at);
    const std::string item = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (item.size() != 8 || item.find_first_not_of("0123456789abcdef") != std::string::npos)
      fail("has an invalid header: its checksum list '" + std::string(kChecksumKey) + "' holds '" + item +
           "', not 8 hex digits");
    out.push_back(uint32_t(std::stoul(item, nullptr, 16)));
    if (comma == std::string::npos) return out;
    at = comma + 1;
  }
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  require_little_endian();
  CUDAGAN_CHECK(!metadata.count(kChecksumKey), "cannot write '", path, "': the metadata key '", kChecksumKey,
                "' is reserved for the tensors' checksums");
  Json header = Json::object();
  if (!tensors.empty() || !metadata.empty()) header["__metadata__"] = Json::object();
  std::vector<Tensor> host;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    CUDAGAN_CHECK(!name.empty() && name != "__metadata__", "cannot write '", path, "': invalid tensor name '",
                  name, "'");
    CUDAGAN_CHECK(names.insert(name).second, "cannot write '", path, "': duplicate tensor name '", name, "'");
    CUDAGAN_CHECK(tensor.defined(), "cannot write '", path, "': tensor '", name, "' is undefined");
    host.push_back(tensor.detach().to(Device::cpu()));
    const uint64_t bytes = uint64_t(tensor.numel()) * dtype_size(tensor.dtype());
    header[name] = {{"dtype", format_dtype(tensor.dtype())},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (header.contains("__metadata__")) {
    Json& meta = header["__metadata__"];
    for (const auto& [key, value] : metadata) meta[key] = value;
    std::string sums;
    for (const Tensor& t : host)
      sums += (sums.empty() ? "" : ",") + hex32(crc32_of(t.raw_data(), size_t(t.numel()) * dtype_size(t.dtype())));
    if (!host.empty()) meta[kChecksumKey] = sums;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const Json::exception& e) {  // a name or a metadata string that is not UTF-8
    throw Error(
        detail::concat("cannot write '", path, "': the header is not valid UTF-8 JSON (", e.what(), ")"));
  }
  // Padding to a multiple of 8 keeps the data section 8-byte aligned when the file is mapped.
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = uint8_t(uint64_t(text.size()) >> (8 * i));

  detail::write_file_atomically(path, [&](FILE* f) {
    std::fwrite(length, 1, 8, f);
    std::fwrite(text.data(), 1, text.size(), f);
    for (const Tensor& t : host) {
      const size_t bytes = size_t(t.numel()) * dtype_size(t.dtype());
      if (bytes > 0) std::fwrite(t.raw_data(), 1, bytes, f);
    }
  });
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(), [&](const auto& entry) { return entry.first == name; });
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& entry : tensors)
    if (entry.first == name) return entry.second;
  throw Error(detail::concat("checkpoint '", path, "' has no tensor '", name, "' (it holds ", tensors.size(),
                             " tensors)"));
}

void SafetensorsFile::load_into(const std::string& name, Tensor target, const std::string& hint) const {
  CUDAGAN_CHECK(contains(name), "checkpoint '", path, "' has no tensor '", name, "': ", hint);
  const Tensor& src = at(name);
  CUDAGAN_CHECK(src.shape() == target.shape(), "checkpoint '", path, "' does not match: '", name, "' is ",
                shape_str(src.shape()), " in the file and ", shape_str(target.shape()), " here; ", hint);
  target.copy_(src.dtype() == target.dtype() ? src : src.to(target.dtype()));
}

namespace {

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

// One header entry, checked on its own; `fail` throws with the file's name in front.
template <class Fail>
Entry parse_entry(const std::string& name, const Json& value, const Fail& fail) {
  if (!value.is_object()) fail("has an invalid header: the entry of tensor '" + name + "' is not an object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!value.contains(key)) fail("has an invalid header: tensor '" + name + "' has no \"" + key + "\"");
  Entry e{name, DType::float32, {}, 0, 0};
  const Json& dtype = value["dtype"];
  const std::string dtype_text = dtype.is_string() ? dtype.get<std::string>() : dtype.dump();
  if (dtype_text == "F32")
    e.dtype = DType::float32;
  else if (dtype_text == "F64")
    e.dtype = DType::float64;
  else
    fail("has tensor '" + name + "' of dtype '" + dtype_text +
         "', which cudagan does not read (only F32 and F64)");

  const Json& shape = value["shape"];
  if (!shape.is_array()) fail("has an invalid header: the shape of tensor '" + name + "' is not an array");
  uint64_t numel = 1;
  for (const Json& d : shape) {
    // A bound on each dimension keeps the byte count below from overflowing.
    if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t(1) << 40))
      fail("has an invalid header: the shape of tensor '" + name + "' is " + shape.dump());
    e.shape.push_back(int64_t(d.get<uint64_t>()));
    numel = d.get<uint64_t>() == 0 || numel == 0 ? 0 : numel * d.get<uint64_t>();
    if (numel > (uint64_t(1) << 40)) fail("has an invalid header: tensor '" + name + "' is too large");
  }
  const Json& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned() || offsets[0].get<uint64_t>() > offsets[1].get<uint64_t>())
    fail("has an invalid header: the data_offsets of tensor '" + name + "' are " + offsets.dump() +
         ", not [begin, end] with begin <= end");
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  const uint64_t bytes = numel * dtype_size(e.dtype);
  if (e.end - e.begin != bytes)
    fail("has an invalid header: tensor '" + name + "' " + shape_str(e.shape) + " " + dtype_text + " needs " +
         std::to_string(bytes) + " bytes but its data_offsets " + offsets.dump() + " span " +
         std::to_string(e.end - e.begin));
  return e;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  require_little_endian();
  auto fail = [&](const std::string& problem) { throw Error("checkpoint '" + path + "' " + problem); };

  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw Error(detail::concat("cannot read checkpoint '", path, "': ", std::strerror(errno)));
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(detail::concat("cannot read checkpoint '", path, "': ", ec.message()));
  if (file_size < 8)
    fail("is truncated: it has " + std::to_string(file_size) + " bytes, fewer than the 8-byte header length");

  uint8_t length_bytes[8];
  if (std::fread(length_bytes, 1, 8, file.get()) != 8)
    fail("could not be read: " + std::string(std::strerror(errno)));
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(length_bytes[i]) << (8 * i);
  if (header_len > file_size - 8)
    fail("is truncated or not a safetensors file: its header length (" + std::to_string(header_len) +
         " bytes) runs past the end of the file (" + std::to_string(file_size) + " bytes)");
  if (header_len > max_header_bytes)
    fail("is not a safetensors file: its header length (" + std::to_string(header_len) +
         " bytes) is implausible");

  std::string text(header_len, '\0');
  if (header_len > 0 && std::fread(text.data(), 1, header_len, file.get()) != header_len)
    fail("could not be read: " + std::string(std::strerror(errno)));
  Json header;
  try {
    header = Json::parse(text);
  } catch (const Json::parse_error& e) {
    fail("has an invalid header: not valid JSON (error at byte " + std::to_string(e.byte) +
         " of the header)");
  } catch (const Json::exception& e) {  // e.g. a number too large for a double (found by fuzz_safetensors)
    fail("has an invalid header: " + std::string(e.what()));
  }
  if (!header.is_object()) fail("has an invalid header: it is not a JSON object");

  SafetensorsFile out;
  out.path = path;
  std::vector<Entry> entries;
  std::vector<uint32_t> checksums;
  bool has_checksums = false;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail("has an invalid header: __metadata__ is not an object");
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string()) fail("has an invalid header: metadata '" + key + "' is not a string");
        if (key == kChecksumKey)
          checksums = parse_checksums(v.get<std::string>(), fail), has_checksums = true;
        else
          out.metadata[key] = v.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(name, value, fail));
  }

  // The tensors must tile the data section exactly: in offset order, each begins where the
  // previous one ended, and the last ends at the end of the file.
  const uint64_t data_size = file_size - 8 - header_len;
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.end > data_size)
      fail("is truncated: tensor '" + e.name + "' ends at byte " + std::to_string(e.end) +
           " of the data section, which holds only " + std::to_string(data_size) + " bytes");
    if (e.begin < expected)
      fail("is corrupt: tensors '" + previous->name + "' and '" + e.name + "' overlap in the data section");
    if (e.begin > expected)
      fail("is corrupt: bytes [" + std::to_string(expected) + ", " + std::to_string(e.begin) +
           ") of the data section belong to no tensor (before '" + e.name + "')");
    expected = e.end;
    previous = &e;
  }
  if (expected != data_size)
    fail("is corrupt: its data section holds " + std::to_string(data_size) + " bytes but the tensors cover " +
         std::to_string(expected));

  if (has_checksums && checksums.size() != entries.size())
    fail("is corrupt: its checksum list has " + std::to_string(checksums.size()) + " entries for " +
         std::to_string(entries.size()) + " tensors");
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    Tensor t = Tensor::empty(e.shape, e.dtype, Device::cpu());
    const size_t bytes = size_t(e.end - e.begin);
    if (bytes > 0 && std::fread(t.raw_data(), 1, bytes, file.get()) != bytes)
      fail("could not be read: " +
           std::string(std::ferror(file.get()) ? std::strerror(errno) : "unexpected end"));
    if (has_checksums) {
      const uint32_t crc = crc32_of(t.raw_data(), bytes);
      if (crc != checksums[i])
        fail("is damaged: the bytes of tensor '" + e.name + "' do not match the checksum saved with them (crc32 " +
             hex32(crc) + ", saved " + hex32(checksums[i]) +
             "): the file changed after it was written; use another checkpoint or copy it again");
    }
    out.tensors.emplace_back(e.name, std::move(t));
  }
  out.checksums_verified = has_checksums;
  return out;
}

}  // namespace cudagan

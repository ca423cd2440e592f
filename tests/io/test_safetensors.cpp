// safetensors: round trips, the exact bytes of a tiny file, every corruption with its message, and
// an independent reader (the Python safetensors package) when one is installed.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "cudagan/core/error.h"
#include "cudagan/io/safetensors.h"
#include "support/temp_dir.h"

using namespace cudagan;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using cudagan::test::TempDir;

using cudagan::test::read_bytes;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string length_prefix(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char(uint8_t(n >> (8 * i)));
  return s;
}

// A file made by hand: header JSON (padded to 8 bytes) and `data` zero bytes.
std::string handmade(const std::string& json, size_t data) {
  std::string header = json;
  header.append((8 - header.size() % 8) % 8, ' ');
  return length_prefix(header.size()) + header + std::string(data, '\0');
}

}  // namespace

TEST_CASE("safetensors: float32 and float64 tensors and metadata round-trip exactly", "[io]") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const Tensor w = Tensor::from_vector(std::vector<float>{1.5f, -2.25f, 3e-38f, 1e30f, -0.0f, 7.0f}, {2, 3});
  const Tensor d = Tensor::from_vector(std::vector<double>{0.1, -1e-300, 12345.678901234567}, {3});
  const Tensor s = Tensor::scalar(4.0, DType::float64);
  const Tensor e = Tensor::zeros({0, 5});
  save_safetensors(path, {{"netG.w", w}, {"stats", d}, {"step", s}, {"empty", e}},
                   {{"format", "cudagan"}, {"epoch", "3"}});

  const SafetensorsFile f = load_safetensors(path);
  REQUIRE(f.tensors.size() == 4);
  CHECK(f.tensors[0].first == "netG.w");  // in the order saved
  CHECK(f.tensors[3].first == "empty");
  CHECK(f.metadata == std::map<std::string, std::string>{{"format", "cudagan"}, {"epoch", "3"}});
  CHECK(f.at("netG.w").dtype() == DType::float32);
  CHECK(f.at("netG.w").shape() == Shape{2, 3});
  CHECK(f.at("netG.w").to_vector() == w.to_vector());
  CHECK(f.at("stats").dtype() == DType::float64);
  CHECK(f.at("stats").to_vector() == d.to_vector());
  CHECK(f.at("step").shape() == Shape{});
  CHECK(f.at("step").item() == 4.0);
  CHECK(f.at("empty").shape() == Shape{0, 5});
  CHECK(f.contains("stats"));
  CHECK_FALSE(f.contains("netD.w"));
  REQUIRE_THROWS_WITH(f.at("netD.w"), Contains("'netD.w'") && Contains(path));
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
}

TEST_CASE("safetensors: the bytes of a tiny file are exactly the format's", "[io]") {
  TempDir dir;
  const std::string path = dir.file("tiny.safetensors");
  save_safetensors(path, {{"a", Tensor::from_vector(std::vector<float>{1.0f, -2.0f}, {2})}}, {{"k", "v"}});
  // 98 bytes of JSON (the checksum of the 8 data bytes is zlib.crc32 = c3872656), six spaces to pad to
  // 104 = 0x68, then 1.0f = 0x3f800000 and -2.0f = 0xc0000000 little-endian.
  const std::string json =
      R"({"__metadata__":{"k":"v","crc32":"c3872656"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE(json.size() == 98);
  const std::string expected =
      std::string("\x68\0\0\0\0\0\0\0", 8) + json + "      " + std::string("\0\0\x80\x3f\0\0\0\xc0", 8);
  CHECK(read_bytes(path) == expected);

  // No metadata: no "__metadata__" key; an empty file list is a valid file too.
  save_safetensors(path, {});
  CHECK(read_bytes(path) == length_prefix(8) + "{}      ");
  CHECK(load_safetensors(path).tensors.empty());
}

TEST_CASE("safetensors: a truncated file says so, at every length", "[io]") {
  TempDir dir;
  const std::string good = dir.file("good.safetensors");
  save_safetensors(good, {{"w", Tensor::ones({4, 4})}, {"b", Tensor::ones({4})}}, {{"step", "10"}});
  const std::string bytes = read_bytes(good);
  const std::string cut = dir.file("cut.safetensors");
  for (size_t keep : {size_t(0), size_t(5), size_t(8), size_t(9), size_t(40), bytes.size() - 16 * 4 - 16,
                      bytes.size() - 17, bytes.size() - 1}) {
    write_bytes(cut, bytes.substr(0, keep));
    INFO("kept " << keep << " of " << bytes.size() << " bytes");
    REQUIRE_THROWS_WITH(load_safetensors(cut), Contains("checkpoint '" + cut + "'") && Contains("truncated"));
  }
  // Extra bytes at the end are an error too: the tensors must cover the data section exactly.
  write_bytes(cut, bytes + "xyz");
  REQUIRE_THROWS_WITH(load_safetensors(cut),
                      Contains("data section holds 83 bytes but the tensors cover 80"));
}

TEST_CASE("safetensors: corrupt headers are named precisely", "[io]") {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  auto fails_with = [&](const std::string& file_bytes, const std::string& message) {
    write_bytes(path, file_bytes);
    INFO("expecting: " << message);
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains("checkpoint '" + path + "'") && Contains(message));
  };
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

  // A header length with a high byte flipped.
  std::string flipped = handmade("{" + ok_entry + "}", 8);
  flipped[7] = char(0x80);
  fails_with(flipped, "header length (9223372036854775864 bytes) runs past the end of the file");

  fails_with(handmade("{" + ok_entry, 8), "not valid JSON");
  fails_with(handmade("[1, 2]", 0), "not a JSON object");
  fails_with(handmade(R"({"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", 4),
             "tensor 'w' of dtype 'BF16', which cudagan does not read");
  fails_with(handmade(R"({"w":{"dtype":"F32","shape":[2]}})", 8), "tensor 'w' has no \"data_offsets\"");
  fails_with(handmade(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
             "shape of tensor 'w'");
  fails_with(handmade(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
             "tensor 'w' [3] F32 needs 12 bytes but its data_offsets [0,8] span 8");
  fails_with(handmade(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "begin <= end");
  fails_with(handmade(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                      12),
             "tensors 'w' and 'v' overlap");
  fails_with(handmade(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
             "bytes [0, 4) of the data section belong to no tensor");
  fails_with(handmade(R"({"__metadata__":{"epoch":3},)" + ok_entry + "}", 8),
             "metadata 'epoch' is not a string");

  const std::string missing = dir.file("missing.safetensors");
  REQUIRE_THROWS_WITH(load_safetensors(missing),
                      Contains("cannot read checkpoint '" + missing + "'") && Contains("No such file"));

  // A hand-made valid file, with its tensors listed out of data order, loads in data order.
  write_bytes(path,
              handmade(R"({"late":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},)" + ok_entry + "}", 16));
  const SafetensorsFile f = load_safetensors(path);
  REQUIRE(f.tensors.size() == 2);
  CHECK(f.tensors[0].first == "w");
  CHECK(f.tensors[1].first == "late");
}

TEST_CASE("safetensors: bad saves throw and leave nothing behind", "[io]") {
  TempDir dir;
  const std::string path = dir.file("x.safetensors");
  const Tensor t = Tensor::ones({2});
  REQUIRE_THROWS_WITH(save_safetensors(path, {{"a", t}, {"a", t}}), Contains("duplicate tensor name 'a'"));
  REQUIRE_THROWS_WITH(save_safetensors(path, {{"a", Tensor()}}), Contains("'a' is undefined"));
  REQUIRE_THROWS_WITH(save_safetensors(path, {{"__metadata__", t}}), Contains("invalid tensor name"));
  const std::string bad = dir.file("missing/x.safetensors");
  REQUIRE_THROWS_WITH(save_safetensors(bad, {{"a", t}}),
                      Contains("cannot write '" + bad + "'") && Contains("No such file or directory"));
  CHECK(fs::is_empty(dir.path));
}

TEST_CASE("safetensors: found by fuzzing: a number too large for a double in the header is an invalid header",
          "[io][fuzz]") {
  TempDir dir;
  const std::string path = dir.file("overflow.safetensors");
  std::ofstream(path, std::ios::binary) << handmade(R"({"w":{"dtype":"F32","shape":[3e4299997],"data_offsets":[0,0]}})", 0);
  REQUIRE_THROWS_WITH(load_safetensors(path), Contains(path) && Contains("invalid header"));
}

TEST_CASE("safetensors: a changed byte in any tensor is named; files without checksums load unverified",
          "[io][checksum]") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {4});
  const Tensor b = Tensor::from_vector(std::vector<double>{0.5, -0.25, 8}, {3});
  save_safetensors(path, {{"G.a", a}, {"D.b", b}}, {{"step", "7"}});
  const SafetensorsFile ok = load_safetensors(path);
  CHECK(ok.checksums_verified);
  CHECK(ok.metadata == std::map<std::string, std::string>{{"step", "7"}});  // the checksums are not metadata

  const std::string good = read_bytes(path);
  const size_t data_start = good.size() - (4 * 4 + 3 * 8);
  // One flipped bit anywhere in the data section: the tensor that holds it is named.
  for (size_t at : {data_start, data_start + 15, data_start + 16, good.size() - 1}) {
    std::string bad = good;
    bad[at] = char(bad[at] ^ 0x01);
    std::ofstream(path, std::ios::binary) << bad;
    const char* tensor = at < data_start + 16 ? "'G.a'" : "'D.b'";
    CAPTURE(at);
    REQUIRE_THROWS_WITH(load_safetensors(path), Contains("is damaged") && Contains(tensor) && Contains(path));
  }
  // A damaged checksum list is named as such.
  std::string list = good;
  const size_t crc = list.find("\"crc32\":\"") + 9;
  list[crc] = 'z';
  std::ofstream(path, std::ios::binary) << list;
  REQUIRE_THROWS_WITH(load_safetensors(path), Contains("checksum list"));

  // Written without checksums (by another program, or an older cudagan): loads, unverified.
  std::ofstream(path, std::ios::binary)
      << handmade(R"({"__metadata__":{"step":"7"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8);
  const SafetensorsFile old = load_safetensors(path);
  CHECK_FALSE(old.checksums_verified);
  CHECK(old.at("w").to_vector() == std::vector<double>{0, 0});
  // The key is reserved.
  REQUIRE_THROWS_WITH(save_safetensors(dir.file("x.safetensors"), {{"a", a}}, {{"crc32", "0"}}),
                      Contains("reserved"));
}

TEST_CASE("safetensors: the Python safetensors package reads our files and we read its", "[io]") {
  if (std::system("python3 -c 'import safetensors.numpy, numpy' > /dev/null 2>&1") != 0) {
    WARN(
        "skipped: the Python packages safetensors and numpy are not installed "
        "(pip install safetensors numpy) -- the format was not checked independently");
    return;
  }
  TempDir dir;
  const std::string ours = dir.file("ours.safetensors"), theirs = dir.file("theirs.safetensors");
  save_safetensors(ours,
                   {{"w", Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3})},
                    {"d", Tensor::from_vector(std::vector<double>{0.5, -0.25}, {2})}},
                   {{"format", "cudagan"}});
  const std::string script = dir.file("check.py");
  std::ofstream(script)
      << "import sys, numpy as np\n"
         "from safetensors import safe_open\n"
         "from safetensors.numpy import load_file, save_file\n"
         "t = load_file(sys.argv[1])\n"
         "assert t['w'].dtype == np.float32 and t['w'].shape == (2, 3), t['w']\n"
         "assert (t['w'] == np.arange(1, 7, dtype=np.float32).reshape(2, 3)).all()\n"
         "assert t['d'].dtype == np.float64 and list(t['d']) == [0.5, -0.25]\n"
         "with safe_open(sys.argv[1], 'np') as f:\n"
         "    assert f.metadata()['format'] == 'cudagan', f.metadata()\n"
         "    assert len(f.metadata()['crc32'].split(',')) == 2, f.metadata()\n"
         "save_file({'b': np.array([7.0, 8.0]), 'a': np.ones((2, 2), np.float32)}, sys.argv[2],\n"
         "          metadata={'from': 'python'})\n";
  REQUIRE(std::system(("python3 '" + script + "' '" + ours + "' '" + theirs + "'").c_str()) == 0);
  const SafetensorsFile f = load_safetensors(theirs);
  CHECK(f.metadata.at("from") == "python");
  CHECK(f.at("a").dtype() == DType::float32);
  CHECK(f.at("a").to_vector() == std::vector<double>{1, 1, 1, 1});
  CHECK(f.at("b").dtype() == DType::float64);
  CHECK(f.at("b").to_vector() == std::vector<double>{7, 8});
}

TEST_CASE("safetensors: load_into converts F64 to the target's dtype and names a missing or misshapen tensor",
          "[io]") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  save_safetensors(path, {{"w", Tensor::from_vector(std::vector<double>{1.5, -2.0, 0.25}, {3})}});
  const SafetensorsFile f = load_safetensors(path);

  Tensor target = Tensor::zeros({3});  // float32
  f.load_into("w", target, "unused hint");
  CHECK(target.to_float_vector() == std::vector<float>{1.5f, -2.0f, 0.25f});

  Tensor wrong = Tensor::zeros({2, 2});
  CHECK_THROWS_WITH(f.load_into("w", wrong, "use the flags of the run that wrote it"),
                    Contains("'w' is [3] in the file and [2, 2] here; use the flags of the run that wrote it"));
  CHECK(wrong.to_float_vector() == std::vector<float>(4, 0.0f));  // untouched
  CHECK_THROWS_WITH(f.load_into("v", target, "a different model"),
                    Contains("checkpoint '" + path + "' has no tensor 'v': a different model"));
}

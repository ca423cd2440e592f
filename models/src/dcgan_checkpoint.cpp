#include "cudagan/dcgan_checkpoint.h"

#include <sstream>

#include "cudagan/core/error.h"
#include "cudagan/io/safetensors.h"

namespace cudagan::dcgan {

namespace {
constexpr const char* kFormat = "cudagan-dcgan-checkpoint-1";

void add_module(std::vector<std::pair<std::string, Tensor>>& out, const std::string& prefix, const nn::Module& m) {
  for (auto& [name, t] : m.named_parameters()) out.emplace_back(prefix + name, t);
  for (auto& [name, t] : m.named_buffers()) out.emplace_back(prefix + name, t);
}

void add_adam(std::vector<std::pair<std::string, Tensor>>& out, const std::string& prefix, const nn::Module& m,
              optim::Adam& opt) {
  for (const auto& [name, p] : m.named_parameters()) {
    const optim::Adam::ParamState& s = opt.state_of(p);
    if (!s.exp_avg.defined()) continue;  // no step taken yet
    out.emplace_back(prefix + name + ".exp_avg", s.exp_avg);
    out.emplace_back(prefix + name + ".exp_avg_sq", s.exp_avg_sq);
  }
}

// Each parameter's Adam step count, in the module's parameter order (the checkpoint's "steps" list).
std::vector<int64_t> adam_steps(const nn::Module& m, optim::Adam& opt) {
  std::vector<int64_t> steps;
  for (const auto& [name, p] : m.named_parameters()) steps.push_back(opt.state_of(p).step);
  return steps;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

const std::string& meta(const SafetensorsFile& f, const std::string& path, const std::string& key) {
  auto it = f.metadata.find(key);
  CUDAGAN_CHECK(it != f.metadata.end(), "checkpoint '", path, "' lacks '", key,
                "' in its metadata: it was not written by dcgan_train");
  return it->second;
}

int64_t meta_int(const SafetensorsFile& f, const std::string& path, const std::string& key) {
  const std::string& v = meta(f, path, key);
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  throw Error("checkpoint '" + path + "' has a malformed '" + key + "': '" + v + "'");
}

// Why a checkpoint's tensors may not fit the model built from the flags.
constexpr const char* kArchitectureHint =
    "it was written for a different model: use the --image-size, --channels, --nz, --ngf and --ndf of the run "
    "that wrote it";

void load_module(const SafetensorsFile& f, const std::string& prefix, nn::Module& m) {
  for (auto& [name, t] : m.named_parameters()) f.load_into(prefix + name, t, kArchitectureHint);
  for (auto& [name, t] : m.named_buffers()) f.load_into(prefix + name, t, kArchitectureHint);
}

void load_adam(const SafetensorsFile& f, const std::string& path, const std::string& prefix, const nn::Module& m,
               optim::Adam& opt) {
  const auto named = m.named_parameters();
  std::vector<int64_t> steps;
  std::stringstream list(meta(f, path, prefix + "steps"));
  for (std::string item; std::getline(list, item, ',');) steps.push_back(std::stoll(item));
  CUDAGAN_CHECK(steps.size() == named.size(), "checkpoint '", path, "' holds Adam state for ", steps.size(),
                " parameters, the model has ", named.size());
  for (size_t i = 0; i < named.size(); ++i) {
    const auto& [name, p] = named[i];
    optim::Adam::ParamState& s = opt.state_of(p);
    s.step = steps[i];
    const std::string base = prefix + name;
    if (!f.contains(base + ".exp_avg")) {
      s.exp_avg = s.exp_avg_sq = Tensor();
      continue;
    }
    s.exp_avg = Tensor::empty(p.shape(), p.dtype(), p.device());
    s.exp_avg_sq = Tensor::empty(p.shape(), p.dtype(), p.device());
    f.load_into(base + ".exp_avg", s.exp_avg, kArchitectureHint);
    f.load_into(base + ".exp_avg_sq", s.exp_avg_sq, kArchitectureHint);
  }
}

Architecture architecture_from(const SafetensorsFile& f, const std::string& path) {
  CUDAGAN_CHECK(f.metadata.count("format") && f.metadata.at("format") == kFormat, "'", path,
                "' is not a cudagan DCGAN checkpoint (no format '", kFormat, "' in its metadata)");
  Architecture a;
  a.image_size = int(meta_int(f, path, "image_size"));
  a.channels = int(meta_int(f, path, "channels"));
  a.nz = int(meta_int(f, path, "nz"));
  a.ngf = int(meta_int(f, path, "ngf"));
  a.ndf = int(meta_int(f, path, "ndf"));
  return a;
}
}  // namespace

void save_checkpoint(const std::string& path, const Generator& g, const Discriminator& d, optim::Adam& opt_g,
                     optim::Adam& opt_d, const TrainingState& state) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  add_module(tensors, "G.", g);
  add_module(tensors, "D.", d);
  add_adam(tensors, "G_adam.", g, opt_g);
  add_adam(tensors, "D_adam.", d, opt_d);
  const Architecture& a = g.architecture();
  std::map<std::string, std::string> metadata{
      {"format", kFormat},
      {"image_size", std::to_string(a.image_size)},
      {"channels", std::to_string(a.channels)},
      {"nz", std::to_string(a.nz)},
      {"ngf", std::to_string(a.ngf)},
      {"ndf", std::to_string(a.ndf)},
      {"step", std::to_string(state.step)},
      {"epoch", std::to_string(state.epoch)},
      {"batch_in_epoch", std::to_string(state.batch_in_epoch)},
      {"rng_state", join({int64_t(state.rng[0]), int64_t(state.rng[1]), int64_t(state.rng[2]), int64_t(state.rng[3])})},
      {"G_adam.steps", join(adam_steps(g, opt_g))},
      {"D_adam.steps", join(adam_steps(d, opt_d))},
      {"config", state.config_yaml},
  };
  save_safetensors(path, tensors, metadata);
}

TrainingState load_checkpoint(const std::string& path, Generator& g, Discriminator& d, optim::Adam& opt_g,
                              optim::Adam& opt_d) {
  const SafetensorsFile f = load_safetensors(path);
  const Architecture a = architecture_from(f, path), here = g.architecture();
  CUDAGAN_CHECK(a.image_size == here.image_size && a.channels == here.channels && a.nz == here.nz &&
                    a.ngf == here.ngf && a.ndf == here.ndf,
                "checkpoint '", path, "' was trained with image size ", a.image_size, ", ", a.channels,
                " channels, nz ", a.nz, ", ngf ", a.ngf, ", ndf ", a.ndf, "; this run has ", here.image_size, ", ",
                here.channels, ", ", here.nz, ", ", here.ngf, ", ", here.ndf, ": use the same settings to resume");
  load_module(f, "G.", g);
  load_module(f, "D.", d);
  load_adam(f, path, "G_adam.", g, opt_g);
  load_adam(f, path, "D_adam.", d, opt_d);
  TrainingState s;
  s.step = meta_int(f, path, "step");
  s.epoch = meta_int(f, path, "epoch");
  s.batch_in_epoch = meta_int(f, path, "batch_in_epoch");
  std::stringstream rng(meta(f, path, "rng_state"));
  size_t i = 0;
  for (std::string item; std::getline(rng, item, ',') && i < 4; ++i) s.rng[i] = uint64_t(std::stoll(item));
  CUDAGAN_CHECK(i == 4, "checkpoint '", path, "' has a malformed rng_state");
  s.config_yaml = meta(f, path, "config");
  s.checksums_verified = f.checksums_verified;
  return s;
}

Architecture checkpoint_architecture(const std::string& path) {
  return architecture_from(load_safetensors(path), path);
}

std::unique_ptr<Generator> load_generator(const std::string& path, Device device, bool* checksums_verified) {
  const SafetensorsFile f = load_safetensors(path);
  if (checksums_verified) *checksums_verified = f.checksums_verified;
  cudagan::Rng unused(0);
  auto g = std::make_unique<Generator>(architecture_from(f, path), unused);
  load_module(f, "G.", *g);
  g->to(device);
  return g;
}

std::string unverified_checkpoint_note(const std::string& path) {
  return "note: checkpoint '" + path +
         "' carries no checksums (written by an older cudagan or another program); its tensors were loaded "
         "without verifying them";
}

}  // namespace cudagan::dcgan

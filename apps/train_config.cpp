#include "train_config.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "cudagan/core/error.h"

namespace cudagan::apps {

namespace {
void add_options(CLI::App& app, TrainConfig& c) {
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // the config file's
  // values come first on the merged command line, so a flag given by the user wins
  app.add_option("data", c.data, "Training data: an image folder (jpg/png/bmp/tga, recursive), a folder with "
                                 "the MNIST idx files, or 'synthetic'");
  app.add_option("out", c.out, "Output folder (samples, checkpoints, losses.csv, ...)");
  app.add_option("--epochs", c.epochs, "Passes over the data")->capture_default_str();
  app.add_option("--batch-size", c.batch_size, "Images per step")->capture_default_str();
  app.add_option("--lr", c.lr, "Adam learning rate (both networks)")->capture_default_str();
  app.add_option("--beta1", c.beta1, "Adam beta1")->capture_default_str();
  app.add_option("--beta2", c.beta2, "Adam beta2")->capture_default_str();
  app.add_option("--nz", c.nz, "Size of the latent vector z")->capture_default_str();
  app.add_option("--ngf", c.ngf, "Generator width")->capture_default_str();
  app.add_option("--ndf", c.ndf, "Discriminator width")->capture_default_str();
  app.add_option("--image-size", c.image_size, "Image side: a power of two from 16 to 256")->capture_default_str();
  app.add_option("--channels", c.channels, "Image channels: auto (from the data), 1 or 3")->capture_default_str();
  app.add_option("--seed", c.seed, "Random seed (weights, noise, data order)")->capture_default_str();
  app.add_option("--device", c.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--workers", c.workers, "Data-loading threads (0: load on the training thread)")
      ->capture_default_str();
  app.add_option("--max-steps", c.max_steps, "Stop after this many steps in all (0: no limit)")
      ->capture_default_str();
  app.add_option("--sample-every", c.sample_every, "Write a sample grid every N steps (and at each epoch's end)")
      ->capture_default_str();
  app.add_option("--checkpoint-every", c.checkpoint_every,
                 "Write checkpoints/latest every N steps (and at each epoch's end)")
      ->capture_default_str();
  app.add_option("--checkpoint-minutes", c.checkpoint_minutes,
                 "Also write checkpoints/latest at least every M minutes of training, fractions too (0: off)")
      ->capture_default_str();
  app.add_option("--log-every", c.log_every, "Print the log line every N steps")->capture_default_str();
  app.add_option("--eval-every", c.eval_every,
                 "Measure the sliced Wasserstein distance to the data every N steps and at the end (metrics.csv, "
                 "metrics.png, checkpoints/best.safetensors); -1: at each epoch's end and the end; 0: off")
      ->capture_default_str();
  app.add_option("--eval-images", c.eval_images, "Real (and as many generated) images per evaluation")
      ->capture_default_str();
  app.add_option("--classifier", c.classifier,
                 "The digit classifier for the FCD of MNIST runs (default: the one shipped with cudagan, "
                 "data/digit_classifier)");
  app.add_flag("--tf32", c.tf32, "Allow TF32 tensor-core GEMMs on the GPU (faster, 10-bit mantissa inputs)");
  app.add_option("--batchnorm", c.batchnorm,
                 "Under mpirun: sync (batchnorm statistics of the global batch, as one process) or local "
                 "(each rank's, as PyTorch DDP without SyncBatchNorm)")
      ->capture_default_str();
  app.add_option("--resume", c.resume,
                 "Continue from a checkpoint: a path, or 'latest' for OUT/checkpoints/latest.safetensors");
}

// YAML keys are the flags' names; underscores are accepted for dashes.
// The file's DATA and OUT are returned apart: they apply only where the command line gives none.
std::vector<std::string> yaml_as_arguments(const std::string& path, const CLI::App& app, std::string& data,
                                           std::string& out) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error("cannot read config file '" + path + "': check the path");
  } catch (const YAML::Exception& e) {
    throw Error("config file '" + path + "' is not valid YAML: " + e.msg + " (line " +
                std::to_string(e.mark.line + 1) + ")");
  }
  std::vector<std::string> args;
  if (root.IsNull()) return args;
  CUDAGAN_CHECK(root.IsMap(), "config file '", path, "' must be a map of keys to values, like 'epochs: 5'");
  for (const auto& item : root) {
    // A key written as a sequence, a map or null ("? [a, b]: 1", "~: 1") has no flag's name (found by fuzzing:
    // as<std::string>() threw yaml-cpp's own exception out of the parser).
    CUDAGAN_CHECK(item.first.IsScalar(), "config file '", path,
                  "': every key must be a flag's name, like 'epochs: 5'; found a key that is a list, a map or null");
    std::string key = item.first.as<std::string>();
    std::replace(key.begin(), key.end(), '_', '-');
    CUDAGAN_CHECK(item.second.IsScalar(), "config file '", path, "': '", key, "' must have a single value");
    const std::string value = item.second.as<std::string>();
    if (key == "data" || key == "out") {
      (key == "data" ? data : out) = value;
      continue;
    }
    CUDAGAN_CHECK(key != "config" && key != "help", "config file '", path, "': '", key, "' cannot be set there");
    const CLI::Option* opt = nullptr;
    try {
      opt = app.get_option("--" + key);
    } catch (const CLI::OptionNotFound&) {
    }
    CUDAGAN_CHECK(opt, "config file '", path, "': unknown key '", key, "' (the keys are the flags of --help)");
    if (opt->get_expected_max() == 0) {  // a flag
      bool on = false;
      CUDAGAN_CHECK(YAML::convert<bool>::decode(item.second, on), "config file '", path, "': '", key,
                    "' must be true or false, got '", value, "'");
      if (on) args.push_back("--" + key);
    } else {
      args.push_back("--" + key + "=" + value);
    }
  }
  return args;
}
}  // namespace

bool parse_train_config(int argc, char** argv, TrainConfig& config, int& exit_code) {
  // First pass: find --config, if any (and answer --help).
  std::string config_path;
  {
    TrainConfig scratch;
    CLI::App app{"Train a DCGAN (Radford et al. 2015) on images; see README.md"};
    add_options(app, scratch);
    app.add_option("--config", config_path, "YAML file with the same keys as these flags; flags override it");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      exit_code = app.exit(e);
      return false;
    }
  }
  std::vector<std::string> merged;  // the file's values first: with TakeLast, the user's flags win
  std::string file_data, file_out;
  if (!config_path.empty()) {
    CLI::App app;
    TrainConfig scratch;
    add_options(app, scratch);
    merged = yaml_as_arguments(config_path, app, file_data, file_out);
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config") {
      ++i;
      continue;
    }
    if (a.rfind("--config=", 0) != 0) merged.push_back(a);
  }
  CLI::App app{"Train a DCGAN (Radford et al. 2015) on images; see README.md"};
  add_options(app, config);
  std::vector<std::string> reversed(merged.rbegin(), merged.rend());  // CLI11 parses a reversed vector
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e);
    return false;
  }
  if (config.data.empty()) config.data = file_data;
  if (config.out.empty()) config.out = file_out;
  if (config.resume == "latest" || (app.count("--resume") && config.resume.empty()))
    config.resume = (std::filesystem::path(config.out) / "checkpoints" / "latest.safetensors").string();
  return true;
}

void validate(const TrainConfig& c) {
  CUDAGAN_CHECK(!c.data.empty(), "no training data given: dcgan_train DATA OUT (DATA: an image folder, an MNIST "
                "folder or 'synthetic'); see --help");
  CUDAGAN_CHECK(!c.out.empty(), "no output folder given: dcgan_train DATA OUT; see --help");
  CUDAGAN_CHECK(c.epochs > 0, "--epochs must be positive, got ", c.epochs);
  CUDAGAN_CHECK(c.batch_size > 0, "--batch-size must be positive, got ", c.batch_size);
  CUDAGAN_CHECK(c.lr > 0, "--lr must be positive, got ", c.lr);
  CUDAGAN_CHECK(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1, "--beta1 and --beta2 must lie in [0, 1)");
  CUDAGAN_CHECK(c.channels == "auto" || c.channels == "1" || c.channels == "3", "--channels must be auto, 1 or 3, got '",
                c.channels, "'");
  // --image-size, --nz, --ngf, --ndf: checked now, before the data is read (1 stands in for "auto").
  dcgan::validate(architecture(c, c.channels == "3" ? 3 : 1));
  CUDAGAN_CHECK(c.workers >= 0 && c.workers <= 64, "--workers must be between 0 and 64, got ", c.workers);
  CUDAGAN_CHECK(c.max_steps >= 0, "--max-steps must be >= 0 (0: no limit), got ", c.max_steps);
  CUDAGAN_CHECK(c.sample_every > 0 && c.checkpoint_every > 0 && c.log_every > 0,
                "--sample-every, --checkpoint-every and --log-every must be positive");
  CUDAGAN_CHECK(c.checkpoint_minutes >= 0 && c.checkpoint_minutes <= 1e6,
                "--checkpoint-minutes must be between 0 (off) and 1e6, got ", c.checkpoint_minutes);
  CUDAGAN_CHECK(c.eval_every >= -1, "--eval-every must be -1 (each epoch's end), 0 (off) or a step count, got ",
                c.eval_every);
  CUDAGAN_CHECK(c.eval_images >= 2 && c.eval_images <= 1000000, "--eval-images must be between 2 and 1000000, got ",
                c.eval_images);
  CUDAGAN_CHECK(c.classifier.empty() || std::filesystem::exists(c.classifier), "--classifier '", c.classifier,
                "' does not exist: give a file written by train_digit_classifier, or leave it out for the shipped one");
  CUDAGAN_CHECK(c.batchnorm == "sync" || c.batchnorm == "local", "--batchnorm must be sync or local, got '",
                c.batchnorm, "'");
}

dcgan::Architecture architecture(const TrainConfig& c, int channels) {
  dcgan::Architecture a;
  a.image_size = c.image_size;
  a.channels = channels;
  a.nz = c.nz;
  a.ngf = c.ngf;
  a.ndf = c.ndf;
  return a;
}

namespace {
// The shortest decimal that reads back as the same double ("0.0002", not "0.00020000000000000001").
std::string shortest(double v) {
  char buf[40];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}
}  // namespace

std::string to_yaml(const TrainConfig& c) {
  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "data" << YAML::Value << c.data;
  y << YAML::Key << "out" << YAML::Value << c.out;
  y << YAML::Key << "epochs" << YAML::Value << c.epochs;
  y << YAML::Key << "batch-size" << YAML::Value << c.batch_size;
  y << YAML::Key << "lr" << YAML::Value << shortest(c.lr);
  y << YAML::Key << "beta1" << YAML::Value << shortest(c.beta1);
  y << YAML::Key << "beta2" << YAML::Value << shortest(c.beta2);
  y << YAML::Key << "nz" << YAML::Value << c.nz;
  y << YAML::Key << "ngf" << YAML::Value << c.ngf;
  y << YAML::Key << "ndf" << YAML::Value << c.ndf;
  y << YAML::Key << "image-size" << YAML::Value << c.image_size;
  y << YAML::Key << "channels" << YAML::Value << c.channels;
  y << YAML::Key << "seed" << YAML::Value << c.seed;
  y << YAML::Key << "device" << YAML::Value << c.device;
  y << YAML::Key << "workers" << YAML::Value << c.workers;
  y << YAML::Key << "max-steps" << YAML::Value << c.max_steps;
  y << YAML::Key << "sample-every" << YAML::Value << c.sample_every;
  y << YAML::Key << "checkpoint-every" << YAML::Value << c.checkpoint_every;
  y << YAML::Key << "checkpoint-minutes" << YAML::Value << shortest(c.checkpoint_minutes);
  y << YAML::Key << "log-every" << YAML::Value << c.log_every;
  y << YAML::Key << "eval-every" << YAML::Value << c.eval_every;
  y << YAML::Key << "eval-images" << YAML::Value << c.eval_images;
  if (!c.classifier.empty()) y << YAML::Key << "classifier" << YAML::Value << c.classifier;
  y << YAML::Key << "tf32" << YAML::Value << c.tf32;
  y << YAML::Key << "batchnorm" << YAML::Value << c.batchnorm;
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

}  // namespace cudagan::apps

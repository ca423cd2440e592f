// data_parallel: a research program of its own trained data-parallel with cudagan::dist — an MNIST digit
// classifier (conv + batchnorm), the same on 1 process or N:
//
//   data_parallel --data DIR [--steps 300] [--batch-size 64] [--batchnorm sync|local] [--device auto|cpu|cuda]
//   mpirun -np 4 data_parallel --data DIR          # 4 ranks, 16 images each per step of 64
//
// What makes it data-parallel is five lines, marked [dist] below: join the job, shard the loader by rank,
// start from rank 0's weights, synchronise batchnorm, and average the gradients before each Adam step. The
// global batch stays --batch-size, so N ranks compute what one process computes (with synchronised
// batchnorm), N times faster at best. Rank 0 alone prints. The loss is one-vs-rest bce_with_logits, as in
// examples/mnist_classifier (the engine has no softmax cross-entropy).
#include <cudagan/cudagan.h>
#include <cudagan/data/data.h>
#include <cudagan/dist/dist.h>
#include <cudagan/runtime/blas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

using namespace cudagan;

namespace {

constexpr int kClasses = 10;

struct Options {
  std::string data;
  int steps = 300;
  int batch_size = 64;
  std::string batchnorm = "sync";
  std::string device = "auto";
  uint64_t seed = 1;
};

const char* const kUsage =
    "usage: data_parallel --data DIR [--steps N] [--batch-size N] [--batchnorm sync|local] [--device auto|cpu|cuda] "
    "[--seed N]";

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) throw Error("'" + arg + "' needs a value (or is unknown): " + kUsage);
    const std::string value = argv[++i];
    if (arg == "--data")
      o.data = value;
    else if (arg == "--steps")
      o.steps = std::atoi(value.c_str());
    else if (arg == "--batch-size")
      o.batch_size = std::atoi(value.c_str());
    else if (arg == "--batchnorm")
      o.batchnorm = value;
    else if (arg == "--device")
      o.device = value;
    else if (arg == "--seed")
      o.seed = std::strtoull(value.c_str(), nullptr, 10);
    else
      throw Error("unknown flag '" + arg + "': " + kUsage);
  }
  CUDAGAN_CHECK(!o.data.empty(), "--data DIR is required (the folder with the MNIST idx files): ", kUsage);
  CUDAGAN_CHECK(o.steps > 0 && o.batch_size > 0, "--steps and --batch-size must be positive");
  CUDAGAN_CHECK(o.batchnorm == "sync" || o.batchnorm == "local", "--batchnorm must be sync or local");
  return o;
}

// [N, 1, 28, 28] -> 10 logits.
std::unique_ptr<nn::Sequential> make_classifier(Rng& gen) {
  auto net = std::make_unique<nn::Sequential>();
  net->emplace<nn::Conv2d>(gen, 1, 16, 4, 2, 1, false);  // -> 14x14
  net->emplace<nn::BatchNorm2d>(16);
  net->emplace<nn::ReLU>();
  net->emplace<nn::Conv2d>(gen, 16, 32, 4, 2, 1, false);  // -> 7x7
  net->emplace<nn::BatchNorm2d>(32);
  net->emplace<nn::ReLU>();
  net->emplace<nn::Flatten>();
  net->emplace<nn::Linear>(gen, 32 * 7 * 7, kClasses);
  return net;
}

Tensor one_hot(const std::vector<int>& labels, Device device) {
  std::vector<float> v(labels.size() * kClasses, 0.0f);
  for (size_t i = 0; i < labels.size(); ++i) v[i * kClasses + size_t(labels[i])] = 1.0f;
  return Tensor::from_vector(v, {int64_t(labels.size()), kClasses}, device);
}

// The fraction of the first 2,000 test digits whose largest logit is the label (eval mode: running statistics,
// no collective, so rank 0 runs it alone).
double accuracy(nn::Module& net, const data::Dataset& test, Device device) {
  net.eval();
  NoGradGuard no_grad;
  data::DataLoader loader(test, 500, 0, 0);
  data::Batch batch;
  int64_t correct = 0, seen = 0;
  while (seen < 2000 && loader.next(batch)) {
    const std::vector<float> logits = net(batch.images.to(device)).to_float_vector();
    for (size_t i = 0; i < batch.labels.size(); ++i) {
      const float* row = logits.data() + i * kClasses;
      correct += int(std::max_element(row, row + kClasses) - row) == batch.labels[i];
    }
    seen += int64_t(batch.labels.size());
  }
  net.train();
  return double(correct) / double(seen);
}

int run(const Options& o, const dist::Communicator& comm) {
  const int rank = comm.rank(), world = comm.world_size();
  CUDAGAN_CHECK(o.batch_size % world == 0, "--batch-size ", o.batch_size, " does not divide over ", world, " ranks");
  const Device device = comm.device_for(o.device);  // [dist] one GPU per rank, by its local rank
  const auto train_set = data::open_mnist(o.data, "train", 28);
  if (rank == 0) std::printf("data_parallel: %s; %s; %s\n", comm.describe().c_str(), train_set->describe().c_str(),
                             device.str().c_str());

  Rng gen(o.seed);
  const auto net = make_classifier(gen);
  net->to(device);
  dist::broadcast_module(comm, *net);                                  // [dist] rank 0's weights everywhere
  if (o.batchnorm == "sync") dist::synchronize_batchnorm(comm, *net);  // [dist] global-batch statistics
  dist::GradientAverager average_gradients(comm, *net);               // [dist] one all-reduce per step
  optim::Adam adam(net->parameters(), {1e-3, 0.9, 0.999, 1e-8, 0.0});
  // [dist] This rank's share of every global batch of the seed's order.
  data::DataLoader loader(*train_set, o.batch_size, o.seed, 1, true, data::Shard{rank, world});

  data::Batch batch;
  const auto start = std::chrono::steady_clock::now();
  for (int step = 1; step <= o.steps; ++step) {
    if (!loader.next(batch)) {
      loader.start_epoch(loader.epoch() + 1);
      loader.next(batch);
    }
    adam.zero_grad();
    const Tensor loss = bce_with_logits((*net)(batch.images.to(device)), one_hot(batch.labels, device));
    loss.backward();
    average_gradients();  // [dist] before the optimiser: every rank then takes the same step
    adam.step();
    std::vector<double> global_loss = {loss.item()};
    comm.all_reduce(global_loss, dist::ReduceOp::average);
    if (rank == 0 && (step % 50 == 0 || step == o.steps)) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %4d  loss %.4f  %.0f img/s (all ranks)\n", step, global_loss[0],
                  step * double(o.batch_size) / seconds);
      std::fflush(stdout);
    }
  }
  if (rank == 0) {
    const auto test_set = data::open_mnist(o.data, "test", 28);
    std::printf("test accuracy: %.2f%% of the first 2000 t10k digits\n", 100.0 * accuracy(*net, *test_set, device));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  blas::ensure_fast_kernels(argc, argv);
  std::unique_ptr<dist::Communicator> comm;
  try {
    comm = dist::init(argc, argv);  // [dist] a job of one process when started without mpirun
    const int code = run(parse(argc, argv), *comm);
    comm->finalize();
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "data_parallel: %s\n", e.what());
    if (comm && comm->world_size() > 1) comm->abort(1);  // the other ranks may wait in a collective
    return 1;
  }
}

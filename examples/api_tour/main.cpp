// api_tour: the code of docs/api.md, as one program that the install test builds against an
// installed cudagan and runs on the CPU.
//
//   api_tour --data DIR --out DIR      (DIR: the MNIST idx files, e.g. data/mnist)
//
// Each region between "// [tour:NAME]" and "// [/tour]" appears verbatim (less its indentation) in
// docs/api.md; tests/install/check_api_docs.sh fails when the two differ, so edit both together.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>

// [tour:includes]
#include <cudagan/core/cuda.h>         // GPU memory statistics, TF32, synchronisation
#include <cudagan/cudagan.h>      // tensors, ops, autograd, nn, optim, random, devices
#include <cudagan/data/data.h>         // datasets and the DataLoader
#include <cudagan/dist/dist.h>         // data-parallel training over MPI / NCCL
#include <cudagan/io/image_io.h>     // PNG grids
#include <cudagan/io/safetensors.h>  // checkpoints

using namespace cudagan;
// [/tour]

// [tour:custom-module]
// [N, 1, 28, 28] -> one logit per image [N, 1]. Sub-modules registered under a name make their
// parameters this module's too ("features.0.weight", "head.weight", ...).
class TinyNet : public nn::Module {
 public:
  explicit TinyNet(Rng& gen)
      : features_(register_module("features", std::make_shared<nn::Sequential>())),
        head_(register_module("head", std::make_shared<nn::Linear>(gen, 16 * 7 * 7, 1))) {
    features_->emplace<nn::Conv2d>(gen, 1, 8, 4, 2, 1);  // -> [N, 8, 14, 14]
    features_->emplace<nn::LeakyReLU>(0.2);
    features_->emplace<nn::Conv2d>(gen, 8, 16, 4, 2, 1, false);  // -> [N, 16, 7, 7], no bias
    features_->emplace<nn::BatchNorm2d>(16);
    features_->emplace<nn::LeakyReLU>(0.2);
    features_->emplace<nn::Flatten>();  // -> [N, 784]
  }
  Tensor forward(const Tensor& x) override { return (*head_)((*features_)(x)); }

 private:
  std::shared_ptr<nn::Sequential> features_;
  std::shared_ptr<nn::Linear> head_;
};
// [/tour]

namespace {

void tour(const std::string& data_dir, const std::string& out_dir) {
  // [tour:tensors]
  Rng gen(42);                 // seeded; there is no global generator
  Tensor a = Tensor::zeros({2, 3});  // float32 on the CPU unless told otherwise
  Tensor b = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor x = Tensor::randn({4, 1, 28, 28}, gen);  // N(0, 1), NCHW
  Tensor c = a + 2.0 * b;                         // ops return new tensors: add, mul, scale, ...
  std::printf("c = %s\n", c.str().c_str());
  std::printf("sum(c) = %g, x is %s on %s\n", sum(c).item(), shape_str(x.shape()).c_str(),
              x.device().str().c_str());
  Tensor rows = x.reshape({4, -1});  // a view of the same storage, no copy: [4, 784]
  std::printf("rows: %s\n", shape_str(rows.shape()).c_str());

  // Autograd: ops on tensors that require a gradient record themselves; backward() fills grad().
  Tensor w = Tensor::ones({2, 3}).requires_grad_();
  Tensor y = sum(w * b);
  y.backward();
  std::printf("dy/dw = %s\n", w.grad().str().c_str());  // equals b
  // [/tour]

  // [tour:module]
  TinyNet net(gen);  // parameters drawn from `gen` on the CPU: a seed gives the same weights anywhere
  for (const auto& [name, p] : net.named_parameters())
    std::printf("  %-22s %s\n", name.c_str(), shape_str(p.shape()).c_str());
  std::printf("%lld parameters\n", (long long)net.parameter_count());
  // [/tour]

  // [tour:train-step]
  optim::Adam adam(net.parameters(), {2e-4, 0.5, 0.999, 1e-8, 0.0});  // lr, beta1, beta2, eps, weight decay
  Tensor images = Tensor::randn({16, 1, 28, 28}, gen);
  Tensor targets = Tensor::ones({16, 1});
  adam.zero_grad();                                     // drop the previous step's gradients
  Tensor loss = bce_with_logits(net(images), targets);  // fused and stable: feed logits, not sigmoids
  loss.backward();                                      // gradients of every parameter
  adam.step();
  std::printf("loss %.4f\n", loss.item());

  net.eval();  // batchnorm uses its running statistics
  {
    NoGradGuard no_grad;  // evaluation records no graph
    Tensor p_real = sigmoid(net(images));
    std::printf("mean D(x) %.4f\n", mean(p_real).item());
  }
  net.train();
  // [/tour]

  // [tour:gpu]
  Device device = cuda_available() ? Device::cuda(0) : Device::cpu();
  net.to(device);                        // parameters and buffers move in place; adam follows them
  Tensor on_device = images.to(device);  // copies between devices are always explicit
  adam.zero_grad();
  Tensor loss_on_device = bce_with_logits(net(on_device), targets.to(device));  // runs where its inputs are
  loss_on_device.backward();
  adam.step();
  std::printf("a step on %s, loss %.4f\n", device.str().c_str(), loss_on_device.item());
  if (device.is_cuda()) {
    cuda_synchronize(device);
    std::printf("GPU memory peak: %zu bytes\n", cuda_memory_stats(device).peak_bytes);
  }
  net.to(Device::cpu());
  // [/tour]

  // [tour:save-load]
  const std::string path = out_dir + "/tinynet.safetensors";
  nn::NamedTensors state = net.named_parameters();  // any device; saved as float32 "F32"
  for (const auto& buffer : net.named_buffers()) state.push_back(buffer);
  save_safetensors(path, state, {{"step", "1"}});  // atomic: a crash never leaves half a file

  TinyNet restored(gen);                          // fresh weights, then overwritten from the file
  SafetensorsFile file = load_safetensors(path);  // validated; throws cudagan::Error naming the problem
  for (auto& [name, t] : restored.named_parameters()) t.copy_(file.at(name));
  for (auto& [name, t] : restored.named_buffers()) t.copy_(file.at(name));
  std::printf("%zu tensors from %s, step %s\n", file.tensors.size(), path.c_str(),
              file.metadata.at("step").c_str());
  // [/tour]

  // [tour:images]
  Tensor samples = tanh(Tensor::randn({16, 1, 28, 28}, gen));      // e.g. generator outputs in [-1, 1]
  save_image_grid(samples, out_dir + "/samples.png", /*nrow=*/4);  // a 4x4 grid, 2-pixel borders

  Image picture = Image::blank(64, 32, 3);  // or build pixels yourself and write any 8-bit image
  for (int col = 0; col < 64; ++col)
    for (int row = 0; row < 32; ++row) picture.at(col, row, 0) = uint8_t(col * 4);
  write_png(out_dir + "/ramp.png", picture);
  // [/tour]

  // [tour:data]
  auto mnist = data::open_mnist(data_dir, "train", 28);  // or data::open_dataset(path, size)
  std::printf("%s\n", mnist->describe().c_str());
  data::DataLoader loader(*mnist, /*batch_size=*/64, /*seed=*/1, /*workers=*/2);
  data::Batch batch;
  for (int k = 0; k < 3 && loader.next(batch); ++k)  // next() is false at the end of the epoch
    std::printf("batch %d: images %s, first label %d\n", k, shape_str(batch.images.shape()).c_str(),
                batch.labels[0]);
  save_image_grid(batch.images, out_dir + "/mnist_batch.png");  // images are in [-1, 1] too
  // [/tour]

  // [tour:data-parallel]
  auto comm = dist::single_process();  // a real program: dist::init(argc, argv), started by mpirun
  Rng replica_gen(7);
  TinyNet replica(replica_gen);
  dist::broadcast_module(*comm, replica);       // every rank starts from rank 0's weights
  dist::synchronize_batchnorm(*comm, replica);  // batchnorm statistics of the global batch
  dist::GradientAverager average(*comm, replica);
  optim::Adam replica_adam(replica.parameters(), {});
  data::DataLoader shard(*mnist, /*global batch*/ 64, 1, 0, true, data::Shard{comm->rank(), comm->world_size()});
  data::Batch part;
  shard.next(part);  // this rank's 64 / world_size() images of the first global batch
  replica_adam.zero_grad();
  bce_with_logits(replica(part.images), Tensor::ones({part.images.size(0), 1})).backward();
  average();  // one all-reduce of every gradient, before the step: every rank takes the same one
  replica_adam.step();
  std::printf("rank %d of %d (%s)\n", comm->rank(), comm->world_size(), comm->describe().c_str());
  // [/tour]
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir = "data/mnist", out_dir = "out/api_tour";
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 < argc && flag == "--data") {
      data_dir = argv[i + 1];
    } else if (i + 1 < argc && flag == "--out") {
      out_dir = argv[i + 1];
    } else {
      std::fprintf(stderr, "api_tour: unknown or incomplete flag '%s': usage api_tour --data DIR --out DIR\n",
                   flag.c_str());
      return 2;
    }
  }
  try {
    std::filesystem::create_directories(out_dir);
    tour(data_dir, out_dir);
    std::printf("api_tour: done; files in %s\n", out_dir.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "api_tour: %s\n", e.what());
    return 1;
  }
}

// dcgan::Trainer over a real MPI job: N ranks, each on its share of every global batch, train the same
// networks as one process on the whole batch. Every rank runs both and compares them.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "cudagan/cudagan.h"
#include "cudagan/data/data.h"
#include "cudagan/dcgan.h"
#include "cudagan/trainer.h"
#include "mpi_test_support.h"
#include "support/compare.h"

using namespace cudagan;
using cudagan::test::test_world;

namespace {

constexpr int kSteps = 5;

struct Run {
  std::vector<double> losses;  // loss_d, loss_g, d_x, d_g_z1, d_g_z2 per step
  std::vector<float> g_weights, d_weights, d_running;
};

// kSteps of DCGAN-16 on the synthetic set, global batch 8 (as dcgan_train builds it): data-parallel over
// comm, or in this process alone when comm is null.
Run train(const dist::Communicator* comm, bool sync_batchnorm) {
  const dcgan::Architecture arch{16, 3, 8, 4, 4};
  const auto data = data::open_synthetic(16, 3, 64);
  const data::Shard shard = comm ? data::Shard{comm->rank(), comm->world_size()} : data::Shard{};
  data::DataLoader loader(*data, 8, 1, 0, true, shard);
  Rng init(7);
  dcgan::Generator g(arch, init);
  dcgan::Discriminator d(arch, init);
  dcgan::init_weights(g, init);
  dcgan::init_weights(d, init);
  optim::Adam opt_g(g.parameters(), {2e-4, 0.5, 0.999, 1e-8, 0.0}), opt_d(d.parameters(), {2e-4, 0.5, 0.999, 1e-8, 0.0});
  dcgan::Schedule s;
  s.epochs = 1;
  s.max_steps = kSteps;
  Run run;
  dcgan::Callbacks c;
  c.on_step = [&](const dcgan::StepReport& r) {
    run.losses.insert(run.losses.end(), {r.stats.loss_d, r.stats.loss_g, r.stats.d_x, r.stats.d_g_z1, r.stats.d_g_z2});
    CHECK(r.images == 8);  // the global batch, on every rank
  };
  dcgan::Trainer trainer({g, d, opt_g, opt_d}, loader, dcgan::gaussian_noise(arch.nz), init.split(), s, c);
  if (comm) trainer.distribute(*comm, sync_batchnorm);
  REQUIRE(trainer.run() == dcgan::Outcome::finished);
  for (const Tensor& p : g.parameters())
    for (float v : p.to_float_vector()) run.g_weights.push_back(v);
  for (const Tensor& p : d.parameters())
    for (float v : p.to_float_vector()) run.d_weights.push_back(v);
  for (const Tensor& b : d.buffers())
    for (float v : b.to_float_vector()) run.d_running.push_back(v);
  return run;
}

}  // namespace

TEST_CASE("N ranks with synchronised batchnorm train what one process trains on the global batch", "[ranks]") {
  const dist::Communicator& comm = test_world();
  const Run alone = train(nullptr, true);
  const Run parallel = train(&comm, true);
  // The two runs differ only in the order of fp32 sums: the convolutions' weight gradients are summed over
  // 8 images at once alone, over 8 / N per rank and then across ranks in parallel (batchnorm's sums are in
  // double either way). Each such reordering changes a sum by a few ulp of its largest partial sums, about
  // 1e-7 of it (fp32's epsilon 6e-8 times a small factor); five Adam steps carry that through (measured on
  // 2 ranks: 3e-8 of the losses' scale, 4e-9 absolute in the weights, about 1e-7 of their scale). 1e-5 of
  // each tensor's scale leaves a factor of 100 for other BLAS kernels and rank counts. A broken reduction
  // moves them 100 times further: D's gradients not averaged, 3.5e-3 of the losses' scale; every rank
  // taking rank 0's rows of the noise, 3.4e-3 (both planted once and caught).
  test::require_close_to_scale(parallel.losses, alone.losses, 1e-5, "losses, D(x), D(G(z)) of 5 steps");
  test::require_close_to_scale(parallel.g_weights, alone.g_weights, 1e-5, "G's weights after 5 steps");
  test::require_close_to_scale(parallel.d_weights, alone.d_weights, 1e-5, "D's weights after 5 steps");
  test::require_close_to_scale(parallel.d_running, alone.d_running, 1e-5, "D's running statistics");
  // And every rank holds the same networks.
  std::vector<double> spread(parallel.g_weights.begin(), parallel.g_weights.begin() + 64);
  std::vector<double> low = spread;
  comm.all_reduce(spread, dist::ReduceOp::max);
  comm.all_reduce(low, dist::ReduceOp::min);
  CHECK(spread == low);
}

TEST_CASE("N ranks with local batchnorm train, on per-rank statistics", "[ranks]") {
  const dist::Communicator& comm = test_world();
  const Run alone = train(nullptr, true);
  const Run local = train(&comm, false);
  REQUIRE(local.losses.size() == alone.losses.size());
  // Statistics over 8 / N images are not those over 8: the losses must differ, or the flag did nothing.
  double largest = 0;
  for (size_t i = 0; i < local.losses.size(); ++i) largest = std::max(largest, std::fabs(local.losses[i] - alone.losses[i]));
  CHECK(largest > 1e-3);
}

// cudagan::dist on a real MPI job (mpirun -np 2, or more): every rank runs these cases in the same order.
// Each checks a collective against what it must compute, which every rank can work out alone.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "cudagan/cudagan.h"
#include "cudagan/dist/dist.h"
#include "mpi_test_support.h"
#include "support/compare.h"

using namespace cudagan;
using cudagan::test::test_world;

namespace {

// A small network with batchnorm, for the module helpers: conv -> BN -> leaky relu -> conv.
struct Net : nn::Module {
  explicit Net(Rng& rng) {
    seq = register_module("main", std::make_shared<nn::Sequential>());
    seq->add(std::make_shared<nn::Conv2d>(rng, 2, 3, 3, 1, 1, false));
    seq->add(std::make_shared<nn::BatchNorm2d>(3));
    seq->add(std::make_shared<nn::LeakyReLU>(0.2));
    seq->add(std::make_shared<nn::Conv2d>(rng, 3, 1, 3, 1, 0, false));
  }
  Tensor forward(const Tensor& x) override { return seq->forward(x); }
  std::shared_ptr<nn::Sequential> seq;
};

// Rows [first, first + count) of x [N, ...], as a new tensor.
Tensor rows(const Tensor& x, int64_t first, int64_t count) {
  Shape shape = x.shape();
  const int64_t per_row = x.numel() / shape[0];
  shape[0] = count;
  const std::vector<float> all = x.to_float_vector();
  return Tensor::from_vector(std::vector<float>(all.begin() + first * per_row, all.begin() + (first + count) * per_row),
                             shape);
}

void require_close(const Tensor& actual, const Tensor& expected, const std::string& what) {
  test::require_close_to_scale(actual.to_float_vector(), expected.to_float_vector(), 1e-5, what);
}

}  // namespace

TEST_CASE("all_reduce sums, averages and takes extremes of CPU tensors across the ranks", "[ranks]") {
  const dist::Communicator& comm = test_world();
  const int r = comm.rank(), n = comm.world_size();
  REQUIRE(n >= 2);
  std::vector<float> mine(7);
  for (int i = 0; i < 7; ++i) mine[size_t(i)] = float((r + 1) * (i + 1));
  for (dist::ReduceOp op : {dist::ReduceOp::sum, dist::ReduceOp::average, dist::ReduceOp::max, dist::ReduceOp::min}) {
    Tensor t = Tensor::from_vector(mine, {7});
    comm.all_reduce(t, op);
    const std::vector<float> got = t.to_float_vector();
    for (int i = 0; i < 7; ++i) {
      const double ranks_sum = double(n) * (n + 1) / 2;  // sum of (r + 1)
      const double expected = op == dist::ReduceOp::sum       ? ranks_sum * (i + 1)
                              : op == dist::ReduceOp::average ? ranks_sum / n * (i + 1)
                              : op == dist::ReduceOp::max     ? double(n) * (i + 1)
                                                              : double(i + 1);
      CHECK(got[size_t(i)] == Approx(expected));
    }
  }
  Tensor d = Tensor::from_vector(std::vector<double>{1e-300 * (r + 1), 3.0}, {2});  // float64 stays float64
  comm.all_reduce(d, dist::ReduceOp::sum);
  CHECK(d.to_vector()[0] == Approx(1e-300 * n * (n + 1) / 2));
  std::vector<double> host = {double(r), 1.0};
  comm.all_reduce(host, dist::ReduceOp::sum);
  CHECK(host == std::vector<double>{double(n) * (n - 1) / 2, double(n)});
}

TEST_CASE("broadcast overwrites every rank with the root's values", "[ranks]") {
  const dist::Communicator& comm = test_world();
  Tensor t = Tensor::full({3, 2}, double(comm.rank() + 10));
  comm.broadcast(t, 1);
  CHECK(t.to_vector() == std::vector<double>(6, 11.0));
  CHECK_THROWS_WITH(comm.broadcast(t, comm.world_size()), Catch::Contains("is not a rank"));
}

TEST_CASE("agree passes equal fingerprints and stops every rank on different ones", "[ranks]") {
  const dist::Communicator& comm = test_world();
  CHECK_NOTHROW(comm.agree(dist::fingerprint("same everywhere"), "the configuration"));
  // Only rank 1 differs, yet every rank must throw (rank 0 included), or the others would go on alone.
  const std::string mine = comm.rank() == 1 ? "lr 0.001" : "lr 0.0002";
  CHECK_THROWS_WITH(comm.agree(dist::fingerprint(mine), "the configuration"),
                    Catch::Contains("the configuration differs between the ranks"));
}

TEST_CASE("broadcast_module gives every rank rank 0's weights and running statistics", "[ranks]") {
  const dist::Communicator& comm = test_world();
  Rng mine(100 + uint64_t(comm.rank())), root(100);  // different weights on each rank
  Net net(mine), expected(root);
  net.buffers()[0].fill_(double(comm.rank()));  // running_mean differs too
  expected.buffers()[0].fill_(0.0);
  dist::broadcast_module(comm, net);
  const nn::NamedTensors got = net.named_parameters(), want = expected.named_parameters();
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i].second.to_vector() == want[i].second.to_vector());
  CHECK(net.buffers()[0].to_vector() == expected.buffers()[0].to_vector());
}

TEST_CASE("GradientAverager averages every gradient in one all-reduce; a missing one counts as zero", "[ranks]") {
  const dist::Communicator& comm = test_world();
  const int r = comm.rank(), n = comm.world_size();
  Rng rng(3);
  Net net(rng);
  const std::vector<Tensor> params = net.parameters();
  dist::GradientAverager average(comm, net);
  for (size_t i = 0; i < params.size(); ++i)
    if (!(r == 0 && i == 1)) Tensor(params[i]).set_grad(Tensor::full(params[i].shape(), double((r + 1) * (i + 1))));
  average();
  CHECK(average.calls() == 1);
  for (size_t i = 0; i < params.size(); ++i) {
    // Ranks 1..n-1 gave (r + 1)(i + 1), rank 0 too except for parameter 1, where it had no gradient.
    double total = 0;
    for (int k = 0; k < n; ++k) total += (k == 0 && i == 1) ? 0.0 : double((k + 1) * (i + 1));
    const std::vector<double> g = params[i].grad().to_vector();
    for (double v : g) CHECK(v == Approx(total / n));
  }
}

TEST_CASE("synchronised batchnorm over the ranks' slices computes the full batch's batchnorm", "[ranks]") {
  const dist::Communicator& comm = test_world();
  const int r = comm.rank(), n = comm.world_size();
  const int64_t per_rank = 3, batch = per_rank * n;
  Rng data(11);
  const Tensor x_all = Tensor::randn({batch, 2, 5, 4}, data, DType::float32, Device::cpu(), 0.5, 2.0);
  // The reference: the whole batch through one network, on this rank alone.
  Rng init_a(5), init_b(5);
  Net full(init_a), part(init_b);
  Tensor x_full = x_all.clone().requires_grad_();
  const Tensor y_full = full(x_full);
  Rng wr(13);
  const Tensor w_all = Tensor::randn(y_full.shape(), wr);
  sum(y_full * w_all).backward();

  // This rank's slice, with synchronised batchnorm; its loss is its part of the same sum.
  dist::synchronize_batchnorm(comm, part);
  Tensor x_part = rows(x_all, r * per_rank, per_rank).requires_grad_();
  const Tensor y_part = part(x_part);
  sum(y_part * rows(w_all, r * per_rank, per_rank)).backward();

  require_close(y_part, rows(y_full, r * per_rank, per_rank), "output");
  require_close(x_part.grad(), rows(x_full.grad(), r * per_rank, per_rank), "input gradient");
  // Parameter gradients: each rank holds its slice's share; their sum is the full batch's.
  const std::vector<Tensor> pf = full.parameters(), pp = part.parameters();
  for (size_t i = 0; i < pf.size(); ++i) {
    Tensor g = pp[i].grad().clone();
    comm.all_reduce(g, dist::ReduceOp::sum);
    require_close(g, pf[i].grad(), "gradient of " + full.named_parameters()[i].first);
  }
  // The running statistics moved as the full batch's did, identically on every rank.
  const std::vector<Tensor> bf = full.buffers(), bp = part.buffers();
  for (size_t i = 0; i < bf.size(); ++i) require_close(bp[i], bf[i], full.named_buffers()[i].first);
}

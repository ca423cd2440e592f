// Synchronised (cross-replica) batchnorm through the op and the modules. R replicas run in R threads of one
// process (test::FakeReplicas, whose ReplicaSum sums over them with a barrier, as an all-reduce would), each
// with its slice of one batch and its own copy of the parameters and running statistics, as each process of
// a data-parallel run has; together they must compute what one call computes on the whole batch. Then the
// calls themselves: one sum per forward and one per backward, none in evaluation mode or under
// nn::LocalBatchNorm, since every replica must make the same calls or the collective hangs.
//
// The threads use the engine concurrently. Its CPU side has no shared mutable state to guard: autograd's
// one global, the no-grad flag, is thread_local; each replica builds its own graph from its own tensors; and
// no two replicas share a leaf (concurrent gradient accumulation into one would race), since each has its own
// parameters, as processes do.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cudagan/cudagan.h"
#include "support/compare.h"
#include "support/fake_replicas.h"

using namespace cudagan;

namespace {

constexpr double kMomentum = 0.1, kEps = 1e-5;

// batch_norm2d, or batch_norm2d_relu with a slope.
struct Variant {
  bool fused;
  double slope;
  std::string name() const {
    return fused ? "batch_norm2d_relu slope " + std::to_string(slope) : std::string("batch_norm2d");
  }
};
const Variant kVariants[] = {{false, 0.0}, {true, 0.2}, {true, 0.0}};

Tensor run_op(const Variant& v, const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& rm,
              const Tensor& rv, bool training, std::shared_ptr<const ReplicaSum> across) {
  return v.fused ? batch_norm2d_relu(x, gamma, beta, rm, rv, training, kMomentum, kEps, v.slope, across)
                 : batch_norm2d(x, gamma, beta, rm, rv, training, kMomentum, kEps, across);
}

// Rows [begin, begin + count) of x along dimension 0, as a new tensor of x's dtype.
Tensor rows_of(const Tensor& x, int64_t begin, int64_t count) {
  const int64_t row = x.numel() / x.size(0);
  const std::vector<double> all = x.to_vector();
  Shape shape = x.shape();
  shape[0] = count;
  const Tensor part = Tensor::from_vector(
      std::vector<double>(all.begin() + begin * row, all.begin() + (begin + count) * row), shape);
  return part.to(x.dtype());
}

// N split into `replicas` slices of N / replicas or one more (uneven when N is not a multiple).
std::vector<int64_t> split_batch(int64_t batch, int replicas) {
  std::vector<int64_t> sizes;
  for (int r = 0; r < replicas; ++r) sizes.push_back(batch / replicas + (r < batch % replicas ? 1 : 0));
  return sizes;
}

std::vector<double> concat(const std::vector<std::vector<double>>& parts) {
  std::vector<double> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<double> add_up(const std::vector<std::vector<double>>& parts) {
  std::vector<double> out(parts.at(0).size(), 0.0);
  for (const auto& p : parts)
    for (size_t i = 0; i < out.size(); ++i) out[i] += p.at(i);
  return out;
}

// What one replica (or the single whole-batch call) produced.
struct Result {
  std::vector<double> y, dx, dgamma, dbeta, running_mean, running_var;
};

// The op on x with its own copies of the parameters and running statistics, then backward from
// loss = sum(y * w).
Result forward_backward(const Variant& v, const Tensor& x, const Tensor& w, const Tensor& gamma,
                        const Tensor& beta, const Tensor& rm, const Tensor& rv,
                        std::shared_ptr<const ReplicaSum> across) {
  Tensor xr = x.clone(), gr = gamma.clone(), br = beta.clone(), rmr = rm.clone(), rvr = rv.clone();
  xr.requires_grad_();
  gr.requires_grad_();
  br.requires_grad_();
  const Tensor y = run_op(v, xr, gr, br, rmr, rvr, true, std::move(across));
  sum(y * w).backward();
  return {y.to_vector(),         xr.grad().to_vector(), gr.grad().to_vector(),
          br.grad().to_vector(), rmr.to_vector(),       rvr.to_vector()};
}

}  // namespace

TEST_CASE("sync batchnorm: replicas on slices of a batch compute the whole batch's batchnorm",
          "[batch_norm2d][sync]") {
  struct Case {
    Shape shape;
    int replicas;
    DType dtype;
  };
  // Odd sizes and uneven slices; [N, C] (after a linear layer); one value per channel on each replica (which
  // only synchronised batchnorm may train on); float64, where a wrong term cannot hide under fp32 rounding.
  const Case cases[] = {{{7, 5, 3, 5}, 2, DType::float32}, {{7, 5, 3, 5}, 3, DType::float32},
                        {{9, 6}, 2, DType::float32},       {{9, 6}, 3, DType::float32},
                        {{3, 4}, 3, DType::float32},       {{5, 3, 4, 3}, 2, DType::float64},
                        {{5, 3, 4, 3}, 3, DType::float64}};
  uint64_t seed = 100;
  for (const Case& cs : cases) {
    for (const Variant& v : kVariants) {
      const std::string what = v.name() + " " + shape_str(cs.shape) + " " + dtype_name(cs.dtype) + ", " +
                               std::to_string(cs.replicas) + " replicas";
      INFO(what);
      // fp32: each result within a few roundings of the whole batch's (the sums are added in another order);
      // 1e-5 of the tensor's scale is far below what a missing or local term changes (O(1/R)).
      const double rel = cs.dtype == DType::float32 ? 1e-5 : 1e-12;
      Rng gen(++seed);
      const int64_t c = cs.shape[1];
      const Tensor x = Tensor::randn(cs.shape, gen, cs.dtype, Device::cpu(), 1.5, 2.0);  // mean far from 0
      const Tensor w = Tensor::randn(cs.shape, gen, cs.dtype);
      const Tensor gamma = Tensor::rand({c}, gen, cs.dtype, Device::cpu(), 0.5, 1.5);
      const Tensor beta = Tensor::randn({c}, gen, cs.dtype);
      const Tensor rm = Tensor::randn({c}, gen, cs.dtype);
      const Tensor rv = Tensor::rand({c}, gen, cs.dtype, Device::cpu(), 0.5, 2.0);

      const Result whole = forward_backward(v, x, w, gamma, beta, rm, rv, nullptr);

      test::FakeReplicas group(cs.replicas);
      std::vector<Tensor> xs, ws;
      int64_t begin = 0;
      for (int64_t n : split_batch(cs.shape[0], cs.replicas)) {
        xs.push_back(rows_of(x, begin, n));
        ws.push_back(rows_of(w, begin, n));
        begin += n;
      }
      std::vector<Result> parts(size_t(cs.replicas));
      group.run([&](int r) {
        parts[size_t(r)] =
            forward_backward(v, xs[size_t(r)], ws[size_t(r)], gamma, beta, rm, rv, group.member(r));
      });

      std::vector<std::vector<double>> ys, dxs, dgammas, dbetas;
      for (int r = 0; r < cs.replicas; ++r) {
        const Result& p = parts[size_t(r)];
        ys.push_back(p.y);
        dxs.push_back(p.dx);
        dgammas.push_back(p.dgamma);
        dbetas.push_back(p.dbeta);
        // Every replica's running statistics are the whole batch's (unbiased with the global count).
        const std::string rank = ", replica " + std::to_string(r);
        test::require_close_to_scale(p.running_mean, whole.running_mean, rel, "running mean" + rank);
        test::require_close_to_scale(p.running_var, whole.running_var, rel, "running var" + rank);
        CHECK(group.call_count(r) == 2);
      }
      test::require_close_to_scale(concat(ys), whole.y, rel, "y, the replicas' concatenated");
      test::require_close_to_scale(concat(dxs), whole.dx, rel, "dx, the replicas' concatenated");
      // Each replica's gamma / beta gradient is its share: added up (what averaging does, times R), the
      // whole batch's.
      test::require_close_to_scale(add_up(dgammas), whole.dgamma, rel, "dgamma, the replicas' sum");
      test::require_close_to_scale(add_up(dbetas), whole.dbeta, rel, "dbeta, the replicas' sum");
    }
  }
}

TEST_CASE("sync batchnorm: one sum per forward and one per backward, none in evaluation mode",
          "[batch_norm2d][sync]") {
  test::FakeReplicas one(1);  // a group of one: each sum leaves its input as it is, and is counted
  const std::shared_ptr<const ReplicaSum> across = one.member(0);
  Rng gen(7);
  const Tensor x = Tensor::randn({4, 3, 2, 5}, gen), w = Tensor::randn({4, 3, 2, 5}, gen);
  Tensor gamma = Tensor::rand({3}, gen, DType::float32, Device::cpu(), 0.5, 1.5),
         beta = Tensor::randn({3}, gen);
  gamma.requires_grad_();
  beta.requires_grad_();
  const Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  int expected = 0;
  for (const Variant& v : kVariants) {
    INFO(v.name());
    Tensor xg = x.clone();
    xg.requires_grad_();
    Tensor y = run_op(v, xg, gamma, beta, rm, rv, true, across);
    REQUIRE(one.call_count(0) == ++expected);
    const test::FakeReplicas::Call call = one.calls(0).back();
    CHECK(call.shape == Shape{2 * 3 + 1});  // [sum x | sum x^2 | count]
    CHECK(call.dtype == DType::float64);
    CHECK(call.device == Device::cpu());
    sum(y * w).backward();
    REQUIRE(one.call_count(0) == ++expected);
    CHECK(one.calls(0).back().shape == Shape{2 * 3 + 1});

    // With one replica the synchronised op is the local one, within rounding.
    const Tensor rm_local = Tensor::zeros({3}), rv_local = Tensor::ones({3});
    const Tensor rm_sync = Tensor::zeros({3}), rv_sync = Tensor::ones({3});
    test::require_close_to_scale(run_op(v, x, gamma, beta, rm_sync, rv_sync, true, across).to_vector(),
                                 run_op(v, x, gamma, beta, rm_local, rv_local, true, nullptr).to_vector(),
                                 1e-6, "one replica's y");
    test::require_close_to_scale(rv_sync.to_vector(), rv_local.to_vector(), 1e-6,
                                 "one replica's running var");
    expected += 1;  // that forward (its backward never runs)

    // x needs no gradient, only gamma and beta: the backward still sums once, as every replica does.
    y = run_op(v, x, gamma, beta, rm, rv, true, across);
    sum(y * w).backward();
    REQUIRE(one.call_count(0) == (expected += 2));

    // Evaluation mode uses the running statistics, which every replica holds: no sum either way.
    Tensor xe = x.clone();
    xe.requires_grad_();
    y = run_op(v, xe, gamma, beta, rm, rv, false, across);
    sum(y * w).backward();
    REQUIRE(one.call_count(0) == expected);
    REQUIRE(xe.grad().defined());
  }
}

TEST_CASE("sync batchnorm: a network of replicas computes the whole batch's outputs and gradients",
          "[nn][batch_norm2d][sync]") {
  // conv -> BN -> LeakyReLU (fused in Sequential) -> conv -> BN -> ReLU (fused) -> flatten -> linear -> BN
  // (alone), the same seed on every replica: identical weights, as broadcast_module makes them.
  auto make_net = [] {
    Rng gen(11);
    auto net = std::make_shared<nn::Sequential>();
    net->emplace<nn::Conv2d>(gen, 2, 4, 3, 1, 1);
    net->emplace<nn::BatchNorm2d>(4);
    net->emplace<nn::LeakyReLU>(0.2);
    net->emplace<nn::Conv2d>(gen, 4, 3, 3, 2, 1);
    net->emplace<nn::BatchNorm2d>(3);
    net->emplace<nn::ReLU>();
    net->emplace<nn::Flatten>();
    net->emplace<nn::Linear>(gen, 3 * 3 * 3, 5);
    net->emplace<nn::BatchNorm2d>(5);
    return net;
  };
  constexpr int kReplicas = 3;
  Rng gen(12);
  const Tensor x = Tensor::randn({8, 2, 5, 5}, gen), w = Tensor::randn({8, 5}, gen);

  auto whole_net = make_net();
  Tensor xw = x.clone();
  xw.requires_grad_();
  const Tensor y_whole = (*whole_net)(xw);
  sum(y_whole * w).backward();

  test::FakeReplicas group(kReplicas);
  std::vector<std::shared_ptr<nn::Sequential>> nets;
  std::vector<Tensor> xs, ws, ys;
  int64_t begin = 0;
  for (int64_t n : split_batch(8, kReplicas)) {
    nets.push_back(make_net());
    const std::shared_ptr<const ReplicaSum> across = group.member(int(nets.size()) - 1);
    int found = 0;
    nets.back()->apply([&](nn::Module& m) {  // as cudagan::dist::synchronize_batchnorm does
      if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&m)) {
        bn->across_replicas = across;
        ++found;
      }
    });
    REQUIRE(found == 3);
    xs.push_back(rows_of(x, begin, n));
    xs.back().requires_grad_();
    ws.push_back(rows_of(w, begin, n));
    begin += n;
  }
  ys.resize(kReplicas);
  group.run([&](int r) {
    ys[size_t(r)] = (*nets[size_t(r)])(xs[size_t(r)]);
    sum(ys[size_t(r)] * ws[size_t(r)]).backward();
  });

  std::vector<std::vector<double>> y_parts, dx_parts;
  for (int r = 0; r < kReplicas; ++r) {
    y_parts.push_back(ys[size_t(r)].to_vector());
    dx_parts.push_back(xs[size_t(r)].grad().to_vector());
    CHECK(group.call_count(r) == 6);  // three batchnorms, forward and backward
  }
  // Through three layers of fp32 (the batch statistics summed in another order): 1e-4 of each tensor's scale.
  test::require_close_to_scale(concat(y_parts), y_whole.to_vector(), 1e-4, "network output");
  test::require_close_to_scale(concat(dx_parts), xw.grad().to_vector(), 1e-4, "input gradient");
  const nn::NamedTensors whole_params = whole_net->named_parameters();
  auto max_abs = [](const std::vector<double>& v) {
    double m = 0;
    for (double e : v) m = std::max(m, std::fabs(e));
    return m;
  };
  for (size_t i = 0; i < whole_params.size(); ++i) {
    const std::string& name = whole_params[i].first;
    std::vector<std::vector<double>> grads;
    for (const auto& net : nets) grads.push_back(net->named_parameters()[i].second.grad().to_vector());
    const std::vector<double> sum_of_replicas = add_up(grads),
                              whole = whole_params[i].second.grad().to_vector();
    if (name == "0.bias" || name == "3.bias" || name == "7.bias") {
      // A bias right before a batchnorm has no effect (the mean takes it out), so its gradient is 0 up to
      // rounding on either side: check it is noise, small beside its layer's weight gradient.
      const double scale = max_abs(whole_params[i - 1].second.grad().to_vector());
      CHECK(max_abs(sum_of_replicas) <= 1e-4 * scale);
      CHECK(max_abs(whole) <= 1e-4 * scale);
      continue;
    }
    test::require_close_to_scale(sum_of_replicas, whole, 1e-4, name + " gradient, the replicas' sum");
  }
  const nn::NamedTensors whole_buffers = whole_net->named_buffers();
  for (const auto& net : nets)
    for (size_t i = 0; i < whole_buffers.size(); ++i)
      test::require_close_to_scale(net->named_buffers()[i].second.to_vector(),
                                   whole_buffers[i].second.to_vector(), 1e-4, whole_buffers[i].first);
}

TEST_CASE(
    "sync batchnorm: LocalBatchNorm keeps a replica's lone forward out of the collective, then restores",
    "[nn][batch_norm2d][sync]") {
  test::FakeReplicas one(1);
  const std::shared_ptr<const ReplicaSum> across = one.member(0);
  Rng gen(21);
  nn::Sequential net;
  net.emplace<nn::Conv2d>(gen, 1, 2, 3, 1, 1);
  auto bn1 = net.emplace<nn::BatchNorm2d>(2);
  net.emplace<nn::ReLU>();
  auto inner = net.emplace<nn::Sequential>();
  auto bn2 = inner->emplace<nn::BatchNorm2d>(2);
  auto bn_local = net.emplace<nn::BatchNorm2d>(2);  // a layer the library left local: it must stay so
  bn1->across_replicas = across;
  bn2->across_replicas = across;
  const Tensor x = Tensor::randn({3, 1, 4, 4}, gen);

  net(x);
  REQUIRE(one.call_count(0) == 2);  // bn1 (fused with the ReLU) and bn2 (inside the nested Sequential)
  {
    const nn::LocalBatchNorm local(net);
    CHECK(bn1->across_replicas == nullptr);
    CHECK(bn2->across_replicas == nullptr);
    Tensor xg = x.clone();
    xg.requires_grad_();
    sum(net(xg)).backward();
    CHECK(one.call_count(0) == 2);
  }
  CHECK(bn1->across_replicas == across);
  CHECK(bn2->across_replicas == across);
  CHECK(bn_local->across_replicas == nullptr);
  net(x);
  CHECK(one.call_count(0) == 4);

  // Also restored when the forward throws (a wrong input shape).
  try {
    const nn::LocalBatchNorm local(net);
    net(Tensor::randn({3, 2, 4, 4}, gen));
    FAIL("a 2-channel input to a 1-channel conv must throw");
  } catch (const Error&) {
  }
  CHECK(bn1->across_replicas == across);
  CHECK(bn2->across_replicas == across);

  net.eval();
  net(x);  // evaluation mode: the running statistics, no sum
  CHECK(one.call_count(0) == 4);
}

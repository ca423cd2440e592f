// cudagan::dist in one process, whatever the build: the collectives of a job of one rank are the identity,
// and the helpers leave a network as it is. (Their work across ranks: tests/dist/mpi, under mpirun.)
#include <catch2/catch.hpp>

#include <cstdlib>

#include "cudagan/cudagan.h"
#include "cudagan/dist/dist.h"

using namespace cudagan;

TEST_CASE("a single-process communicator is rank 0 of 1 and its collectives change nothing", "[dist]") {
  const auto comm = dist::single_process();
  CHECK(comm->rank() == 0);
  CHECK(comm->world_size() == 1);
  CHECK(comm->is_root());
  CHECK(comm->local_rank() == 0);
  CHECK(comm->describe().find("single process") != std::string::npos);
  Tensor t = Tensor::from_vector(std::vector<float>{1, -2, 3}, {3});
  for (dist::ReduceOp op : {dist::ReduceOp::sum, dist::ReduceOp::average, dist::ReduceOp::max}) {
    comm->all_reduce(t, op);
    CHECK(t.to_vector() == std::vector<double>{1, -2, 3});
  }
  comm->broadcast(t, 0);
  CHECK(t.to_vector() == std::vector<double>{1, -2, 3});
  CHECK_THROWS_WITH(comm->broadcast(t, 1), Catch::Contains("root 1 is not a rank of 1"));
  CHECK_NOTHROW(comm->agree(dist::fingerprint("x"), "the configuration"));
  Tensor undefined;
  CHECK_THROWS_WITH(comm->all_reduce(undefined), Catch::Contains("undefined"));
}

TEST_CASE("fingerprint is FNV-1a: fixed values, different for different bytes", "[dist]") {
  CHECK(dist::fingerprint("") == 14695981039346656037ull);
  CHECK(dist::fingerprint("a") == 0xaf63dc4c8601ec8cull);
  CHECK(dist::fingerprint("lr: 0.0002") != dist::fingerprint("lr: 0.0003"));
}

TEST_CASE("device_for takes a rank's device from --device", "[dist]") {
  const auto comm = dist::single_process();
  CHECK(comm->device_for("cpu") == Device::cpu());
  if (!cuda_available()) {
    CHECK(comm->device_for("auto") == Device::cpu());
    CHECK_THROWS_WITH(comm->device_for("cuda"), Catch::Contains("no GPU is visible"));
  } else {
    CHECK(comm->device_for("auto") == Device::cuda(0));
  }
}

TEST_CASE("the data-parallel helpers leave a single process's network untouched", "[dist]") {
  const auto comm = dist::single_process();
  Rng rng(2);
  nn::Sequential net;
  net.emplace<nn::Linear>(rng, 3, 2);
  net.emplace<nn::BatchNorm2d>(2);
  const std::vector<double> before = net.parameters()[0].to_vector();
  dist::broadcast_module(*comm, net);
  dist::synchronize_batchnorm(*comm, net);  // one rank: nothing to synchronise
  CHECK(net.parameters()[0].to_vector() == before);
  net.apply([](nn::Module& m) {
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&m)) CHECK(!bn->across_replicas);
  });
  dist::GradientAverager average(*comm, net);
  CHECK(average.elements() == 3 * 2 + 2 + 2 + 2);
  Tensor(net.parameters()[0]).set_grad(Tensor::full({2, 3}, 0.5));
  average();
  CHECK(net.parameters()[0].grad().to_vector() == std::vector<double>(6, 0.5));
  CHECK(average.calls() == 0);  // one rank: no all-reduce at all
}

TEST_CASE("init refuses, in a build without MPI, to run as one of several launched processes", "[dist]") {
  if (dist::built_with_mpi()) {
    SUCCEED("this build has MPI: init joins the job instead (tests/dist/mpi)");
    return;
  }
  setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  int argc = 1;
  char name[] = "test";
  char* args[] = {name, nullptr};
  char** argv = args;
  CHECK_THROWS_WITH(dist::init(argc, argv), Catch::Contains("rebuild with -DCUDAGAN_MPI=ON"));
  unsetenv("OMPI_COMM_WORLD_SIZE");
}

// Catch2 runner for the MPI tests, which run in two ways:
//   under mpirun (CTest's dist.collectives: mpirun -np 2 cudagan_mpi_tests "[ranks]"), every rank runs the
//     [ranks] cases together, on the communicator this runner makes (test_world());
//   alone (the [mpirun] cases, one CTest test each), the cases start mpirun themselves, with dcgan_train.
// Without MPI in the build, or without mpirun, it prints why and exits with 77, which CTest reports as
// skipped: a build without MPI has nothing to check here, and must not pass for one that has. Listing the
// tests (CTest's discovery) needs neither.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "cudagan/dist/dist.h"
#include "cudagan/runtime/blas.h"
#include "mpi_test_support.h"

namespace {

constexpr int kSkipReturnCode = 77;
const cudagan::dist::Communicator* g_world = nullptr;  // set once by main, before any test runs

bool listing(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strncmp(a, "--list", 6) == 0 || std::strcmp(a, "-l") == 0 || std::strcmp(a, "--help") == 0 ||
        std::strcmp(a, "-h") == 0)
      return true;
  }
  return false;
}

bool under_launcher() { return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK"); }

}  // namespace

namespace cudagan::test {
const dist::Communicator& test_world() {
  REQUIRE(g_world);  // a [ranks] case run without mpirun
  return *g_world;
}
}  // namespace cudagan::test

int main(int argc, char** argv) {
  if (listing(argc, argv)) return Catch::Session().run(argc, argv);
  if (!cudagan::dist::built_with_mpi()) {
    std::printf("cudagan MPI tests skipped: this build has no MPI (install libopenmpi-dev openmpi-bin and "
                "reconfigure with -DCUDAGAN_MPI=ON)\n");
    return kSkipReturnCode;
  }
  if (!under_launcher()) {
    if (!std::filesystem::exists(CUDAGAN_MPIEXEC)) {
      std::printf("cudagan MPI tests skipped: %s is not there (install openmpi-bin)\n", CUDAGAN_MPIEXEC);
      return kSkipReturnCode;
    }
    return Catch::Session().run(argc, argv);
  }
  cudagan::blas::ensure_fast_kernels(argc, argv);
  auto world = cudagan::dist::init(argc, argv);
  g_world = world.get();
  const int failed = Catch::Session().run(argc, argv);
  // Every rank exits with the worst result, so mpirun's status is the job's, whichever rank failed.
  std::vector<double> worst = {double(failed)};
  world->all_reduce(worst, cudagan::dist::ReduceOp::max);
  world->finalize();
  return int(worst[0]);
}

// A job of one process: every collective is the identity (the sum, mean, min or max over one rank is
// that rank's value), so code written for N ranks runs unchanged, and without MPI.
#include <cstdio>
#include <cstdlib>

#include "backend.h"

namespace cudagan::dist {

namespace {
struct SingleProcess final : Communicator::Impl {
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string describe() const override {
    return built_with_mpi() ? "single process" : "single process (built without MPI)";
  }
  void all_reduce(void*, int64_t, DType, Device, ReduceOp) override {}
  void all_reduce_host(double*, int64_t, ReduceOp) override {}
  void all_reduce_min_u64(uint64_t*, int64_t) override {}
  void broadcast(void*, int64_t, Device, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) noexcept override {
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(exit_code);  // as MPI_Abort does: no destructors, no atexit (worker threads may be running)
  }
  void finalize() noexcept override {}
};
}  // namespace

std::unique_ptr<Communicator::Impl> make_single_process() { return std::make_unique<SingleProcess>(); }

}  // namespace cudagan::dist

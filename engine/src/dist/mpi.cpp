// The MPI backend: the processes mpirun (or srun) started, MPI_COMM_WORLD. CPU buffers are reduced by
// MPI_Allreduce in place; GPU buffers by NCCL on the engine's stream (nccl.h), or, in a build without
// NCCL, copied to the host, reduced by MPI and copied back.
//
// MPI's default error handler (MPI_ERRORS_ARE_FATAL) is kept on purpose: when a peer dies (kill -9, a
// node lost) the next collective fails and the job ends, rather than returning an error that every
// caller would have to turn into an abort anyway.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend.h"
#include "core/backend.h"
#include "cudagan/core/error.h"
#include "nccl.h"

namespace cudagan::dist {

namespace {

MPI_Datatype mpi_type(DType dtype) { return dtype == DType::float64 ? MPI_DOUBLE : MPI_FLOAT; }

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::max: return MPI_MAX;
    case ReduceOp::min: return MPI_MIN;
    default: return MPI_SUM;  // average: a sum, divided afterwards
  }
}

// MPI counts are int: reduce large buffers in pieces.
constexpr int64_t kMaxCount = int64_t(1) << 30;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (end && *end == '\0' && n >= 0) ? int(n) : fallback;
}

template <class T> void divide(T* p, int64_t n, int world) {
  for (int64_t i = 0; i < n; ++i) p[i] /= T(world);
}

class Mpi final : public Communicator::Impl {
 public:
  Mpi(int& argc, char**& argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    CUDAGAN_CHECK(!initialized, "dist::init: MPI is already initialised; call dist::init once per process");
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw Error("dist::init: MPI_Init_thread failed: check the MPI installation (mpirun --version)");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    // The machine-local rank: the launcher's when it says, else from MPI's shared-memory split (the
    // same answer, for launchers that do not export it).
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    int split_rank = 0, split_size = 1;
    MPI_Comm_rank(local, &split_rank);
    MPI_Comm_size(local, &split_size);
    MPI_Comm_free(&local);
    local_rank_ = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("SLURM_LOCALID", split_rank));
    local_size_ = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", split_size);
    int hosts_flag = split_rank == 0 ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &hosts_flag, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    hosts_ = hosts_flag;
  }
  ~Mpi() override { finalize(); }

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }

  std::string describe() const override {
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
    int length = 0;
    MPI_Get_library_version(version, &length);
    std::string v(version, size_t(length));
    v = v.substr(0, v.find_first_of(",\n"));  // "Open MPI v4.1.6, package: ..." -> "Open MPI v4.1.6"
    std::string s = detail::concat("MPI (", v, "), ", world_, world_ == 1 ? " rank" : " ranks", " on ", hosts_,
                                   hosts_ == 1 ? " host" : " hosts");
    const std::string nccl = nccl_version();
    if (!nccl.empty()) s += ", NCCL " + nccl + " for GPU tensors";
    return s;
  }

  void all_reduce(void* data, int64_t count, DType dtype, Device device, ReduceOp op) override {
    if (count == 0) return;
    if (device.is_cuda() && built_with_nccl()) return nccl_for(device).all_reduce(data, count, dtype, op);
    if (device.is_cuda()) {  // staged: correct without NCCL, at two copies' cost
      const size_t bytes = size_t(count) * dtype_size(dtype);
      std::vector<unsigned char> host(bytes);
      device_copy(host.data(), Device::cpu(), data, device, bytes);
      all_reduce(host.data(), count, dtype, Device::cpu(), op);
      device_copy(data, device, host.data(), Device::cpu(), bytes);
      return;
    }
    const size_t elem = dtype_size(dtype);
    for (int64_t done = 0; done < count; done += kMaxCount) {
      const int n = int(std::min(kMaxCount, count - done));
      MPI_Allreduce(MPI_IN_PLACE, static_cast<unsigned char*>(data) + size_t(done) * elem, n, mpi_type(dtype),
                    mpi_op(op), MPI_COMM_WORLD);
    }
    if (op == ReduceOp::average) {
      if (dtype == DType::float64)
        divide(static_cast<double*>(data), count, world_);
      else
        divide(static_cast<float*>(data), count, world_);
    }
  }

  void all_reduce_host(double* values, int64_t count, ReduceOp op) override {
    all_reduce(values, count, DType::float64, Device::cpu(), op);
  }

  void all_reduce_min_u64(uint64_t* values, int64_t count) override {
    MPI_Allreduce(MPI_IN_PLACE, values, int(count), MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  }

  void broadcast(void* data, int64_t bytes, Device device, int root) override {
    if (bytes == 0) return;
    if (device.is_cuda() && built_with_nccl()) return nccl_for(device).broadcast(data, bytes, root);
    if (device.is_cuda()) {
      std::vector<unsigned char> host{};
      host.resize(size_t(bytes));
      device_copy(host.data(), Device::cpu(), data, device, size_t(bytes));
      broadcast(host.data(), bytes, Device::cpu(), root);
      device_copy(data, device, host.data(), Device::cpu(), size_t(bytes));
      return;
    }
    for (int64_t done = 0; done < bytes; done += kMaxCount)
      MPI_Bcast(static_cast<unsigned char*>(data) + done, int(std::min(kMaxCount, bytes - done)), MPI_BYTE, root,
                MPI_COMM_WORLD);
  }

  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }

  [[noreturn]] void abort(int exit_code) noexcept override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this is for the compiler
  }

  void finalize() noexcept override {
    if (finalized_) return;
    finalized_ = true;
    nccl_.reset();  // before MPI goes: NCCL's teardown may still talk to its peers
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
  }

 private:
  NcclGroup& nccl_for(Device device) {
    if (!nccl_) {
      nccl_ = make_nccl(rank_, world_, device, [](void* bytes, size_t size) {
        MPI_Bcast(bytes, int(size), MPI_BYTE, 0, MPI_COMM_WORLD);
      });
    }
    CUDAGAN_CHECK(nccl_->device() == device, "dist: this rank's NCCL communicator is on ", nccl_->device().str(),
                  ", not ", device.str(), ": a rank trains on one GPU");
    return *nccl_;
  }

  int rank_ = 0, world_ = 1, local_rank_ = 0, local_size_ = 1, hosts_ = 1;
  bool finalized_ = false;
  std::unique_ptr<NcclGroup> nccl_;
};

}  // namespace

bool built_with_mpi() { return true; }

std::unique_ptr<Communicator::Impl> make_mpi(int& argc, char**& argv) { return std::make_unique<Mpi>(argc, argv); }

}  // namespace cudagan::dist

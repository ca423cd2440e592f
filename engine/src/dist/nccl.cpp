// NCCL for the GPU tensors of an MPI job: one communicator per process, on its one GPU, made once the
// first GPU tensor is reduced. Collectives go on the engine's stream of that device, so they are
// ordered with the kernels around them and the host never waits for them.
#include "nccl.h"

#include <nccl.h>

#include <cuda_runtime.h>

#include "core/dispatch.h"
#include "cudagan/core/error.h"

namespace cudagan::dist {

namespace {
void check(ncclResult_t status, const char* call) {
  if (status != ncclSuccess)
    throw Error(detail::concat("NCCL error in ", call, ": ", ncclGetErrorString(status),
                               (status == ncclSystemError || status == ncclRemoteError
                                    ? " (a peer may have failed; see the other ranks' messages)"
                                    : "")));
}

ncclDataType_t nccl_type(DType dtype) { return dtype == DType::float64 ? ncclFloat64 : ncclFloat32; }

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return ncclSum;
    case ReduceOp::average: return ncclAvg;
    case ReduceOp::max: return ncclMax;
    case ReduceOp::min: return ncclMin;
  }
  return ncclSum;
}

class Nccl final : public NcclGroup {
 public:
  Nccl(int rank, int world, Device device, const std::function<void(void*, size_t)>& broadcast_from_root)
      : device_(device) {
    ncclUniqueId id{};
    if (rank == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    broadcast_from_root(&id, sizeof id);
    (void)cuda_context(device_);  // makes the device current (ncclCommInitRank binds to it)
    check(ncclCommInitRank(&comm_, world, id, rank), "ncclCommInitRank");
  }
  ~Nccl() override {
    if (comm_) (void)ncclCommDestroy(comm_);  // errors at teardown have nowhere to go
  }
  void all_reduce(void* data, int64_t count, DType dtype, ReduceOp op) override {
    const cuda::KernelContext& ctx = cuda_context(device_);
    check(ncclAllReduce(data, data, size_t(count), nccl_type(dtype), nccl_op(op), comm_,
                        reinterpret_cast<cudaStream_t>(ctx.stream)),
          "ncclAllReduce");
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    const cuda::KernelContext& ctx = cuda_context(device_);
    check(ncclBroadcast(data, data, size_t(bytes), ncclUint8, root, comm_,
                        reinterpret_cast<cudaStream_t>(ctx.stream)),
          "ncclBroadcast");
  }
  Device device() const override { return device_; }

 private:
  Device device_;
  ncclComm_t comm_ = nullptr;
};
}  // namespace

bool built_with_nccl() { return true; }

std::unique_ptr<NcclGroup> make_nccl(int rank, int world, Device device,
                                     const std::function<void(void*, size_t)>& broadcast_from_root) {
  return std::make_unique<Nccl>(rank, world, device, broadcast_from_root);
}

std::string nccl_version() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "";
  // NCCL_VERSION_CODE: major * 10000 + minor * 100 + patch since 2.9.
  return detail::concat(v / 10000, ".", (v / 100) % 100, ".", v % 100);
}

}  // namespace cudagan::dist

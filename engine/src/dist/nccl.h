// GPU collectives of an MPI job, through NCCL (nccl.cpp; nccl_stub.cpp in a build without NCCL, where
// make_nccl is never reached because built_with_nccl() is false). Kept apart from mpi.cpp so that
// neither needs the other's headers: the bootstrap is a function that broadcasts bytes from rank 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "cudagan/core/device.h"
#include "cudagan/core/dtype.h"
#include "cudagan/dist/dist.h"

namespace cudagan::dist {

class NcclGroup {
 public:
  virtual ~NcclGroup() = default;
  // In place, on the engine's stream of the group's device: the host does not wait.
  virtual void all_reduce(void* data, int64_t count, DType dtype, ReduceOp op) = 0;
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  virtual Device device() const = 0;
};

// The NCCL communicator of `world` ranks, this one `rank`, on `device`: rank 0 makes the unique id and
// `broadcast_from_root(bytes, size)` hands it to the others (an MPI_Bcast). Collective.
std::unique_ptr<NcclGroup> make_nccl(int rank, int world, Device device,
                                     const std::function<void(void*, size_t)>& broadcast_from_root);
std::string nccl_version();  // "2.27.3", or "" without NCCL

}  // namespace cudagan::dist

// A build without NCCL: GPU tensors are staged through the host by mpi.cpp instead.
#include "cudagan/core/error.h"
#include "nccl.h"

namespace cudagan::dist {

bool built_with_nccl() { return false; }

std::unique_ptr<NcclGroup> make_nccl(int, int, Device, const std::function<void(void*, size_t)>&) {
  throw Error("this cudagan was built without NCCL: GPU tensors are reduced through the host");
}

std::string nccl_version() { return ""; }

}  // namespace cudagan::dist

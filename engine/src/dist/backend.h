// What a Communicator is made of: the backend that moves the bytes. Two exist, chosen at build time
// and at init(): one process alone (single_process.cpp, always built) and MPI with NCCL for GPU
// buffers (mpi.cpp, built with CUDAGAN_MPI). Communicator (communicator.cpp) checks its arguments and
// hands raw buffers to these, so neither backend repeats the checks.
#pragma once

#include <cstdint>
#include <string>

#include "cudagan/core/device.h"
#include "cudagan/core/dtype.h"
#include "cudagan/dist/dist.h"

namespace cudagan::dist {

struct Communicator::Impl {
  virtual ~Impl() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  virtual std::string describe() const = 0;
  // In place over `count` elements at `data` on `device` (a device pointer for a GPU).
  virtual void all_reduce(void* data, int64_t count, DType dtype, Device device, ReduceOp op) = 0;
  virtual void all_reduce_host(double* values, int64_t count, ReduceOp op) = 0;
  // The element-wise minimum of `count` unsigned 64-bit values (agree() sends h and ~h: min and max).
  virtual void all_reduce_min_u64(uint64_t* values, int64_t count) = 0;
  virtual void broadcast(void* data, int64_t bytes, Device device, int root) = 0;
  virtual void barrier() = 0;
  [[noreturn]] virtual void abort(int exit_code) noexcept = 0;
  virtual void finalize() noexcept = 0;
};

std::unique_ptr<Communicator::Impl> make_single_process();
// Joins the MPI job; absent (and never called) in a build without MPI.
std::unique_ptr<Communicator::Impl> make_mpi(int& argc, char**& argv);

}  // namespace cudagan::dist

// cudagan::dist: data-parallel training over processes and machines, on engines clusters already
// have. MPI starts and joins the processes (mpirun, or Slurm's srun) and all-reduces CPU tensors;
// NCCL (bootstrapped through MPI) all-reduces GPU tensors on the engine's stream. Nothing here is
// home-made: no sockets, no collectives of our own.
//
//   int main(int argc, char** argv) {
//     auto comm = cudagan::dist::init(argc, argv);      // one per process; MPI_Finalize at its end
//     const Device device = comm->device_for("auto");   // one GPU per rank, by the local rank
//     MyNet net(rng);                                   // the same seed on every rank
//     net.to(device);
//     cudagan::dist::broadcast_module(*comm, net);       // identical weights: rank 0's
//     cudagan::dist::synchronize_batchnorm(*comm, net);  // batch statistics of the global batch
//     cudagan::dist::GradientAverager average(*comm, net);
//     for (...) {                                        // each rank: its slice of the global batch
//       loss.backward();
//       average();                                       // one all-reduce of every gradient
//       opt.step();
//     }
//   }
//
// Built with MPI (CMake option CUDAGAN_MPI, AUTO by default), init() joins the job mpirun (or srun, or any
// PMI launcher) started; a program started alone is a job of one rank and makes no MPI call. Built
// without MPI, every Communicator is a single process, and init() refuses to run under a launcher that
// started several (each would believe it is rank 0 and write the same files). Without NCCL (a CUDA build whose toolkit lacks it) GPU tensors are
// staged through the host and reduced by MPI: correct, slower.
//
// Every collective (all_reduce, broadcast, agree, GradientAverager, a synchronised batchnorm's forward
// and backward) must be called by every rank, in the same order, with the same shapes: that is MPI's
// and NCCL's contract, and breaking it hangs the job. An error on one rank must therefore end the whole
// job: catch it at the top of the program and call abort(), which ends every rank (MPI_Abort).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cudagan/core/tensor.h"
#include "cudagan/ops/ops.h"

namespace cudagan::nn {
class Module;
}

namespace cudagan::dist {

// True when this build has MPI (CUDAGAN_MPI found it) / NCCL for GPU tensors.
bool built_with_mpi();
bool built_with_nccl();

enum class ReduceOp { sum, average, max, min };

// One process's membership of the job: its rank among world_size() ranks. Made by init(); not
// copyable (it owns the MPI communicator, and the NCCL one once a GPU tensor was reduced).
class Communicator {
 public:
  struct Impl;
  explicit Communicator(std::unique_ptr<Impl> impl);
  ~Communicator();  // finalize()
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;        // 0 .. world_size() - 1
  int world_size() const;  // 1 for a process started alone
  bool is_root() const { return rank() == 0; }
  // The rank among the ranks on this machine (OMPI_COMM_WORLD_LOCAL_RANK, or SLURM_LOCALID, or from
  // MPI's shared-memory split): which GPU a rank takes.
  int local_rank() const;
  int local_size() const;
  // "MPI (Open MPI v4.1.6), 2 ranks on 1 host" or "single process (built without MPI)".
  std::string describe() const;

  // The device this rank trains on for a --device value: "auto" is cuda:local_rank when this machine
  // has that many GPUs (else the CPU when it has none); "cuda" means cuda:local_rank; "cpu" and
  // "cuda:N" are taken as given. Throws cudagan::Error when ranks on one machine would share GPUs
  // without being asked to ("cuda" with more local ranks than GPUs).
  Device device_for(const std::string& spec) const;

  // Element-wise over all ranks, in place, on the tensor's device (float32 or float64, contiguous).
  // CPU: MPI_Allreduce(MPI_IN_PLACE). GPU: ncclAllReduce on the device's engine stream (the next op
  // on that stream sees the result; the host does not wait), or staged through the host without NCCL.
  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::sum) const;
  // Host values, element-wise over all ranks, in place.
  void all_reduce(std::vector<double>& values, ReduceOp op = ReduceOp::sum) const;
  // Overwrites t on every rank with root's values (same shape and dtype on every rank).
  void broadcast(Tensor& t, int root = 0) const;
  // Every rank gives a fingerprint (e.g. fingerprint() of its configuration): returns normally when
  // all are equal, else throws cudagan::Error on every rank: "<what> differs between ranks ...".
  void agree(uint64_t fingerprint, const std::string& what) const;
  void barrier() const;

  // Ends every rank of the job now with `exit_code` (MPI_Abort; exit() in a single process). For the
  // error path: print the message first.
  [[noreturn]] void abort(int exit_code) const noexcept;
  // Leaves the job (MPI_Finalize after freeing the NCCL communicator); idempotent. Every rank must
  // call it (or destroy its Communicator) at a normal end.
  void finalize() noexcept;

  // The ReplicaSum that synchronised batchnorm uses: a float64 all-reduce over this communicator.
  // It refers to this Communicator, which must outlive the modules it is given to.
  std::shared_ptr<const ReplicaSum> replica_sum() const;

  Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Joins the job (MPI_Init_thread, FUNNELED: only the calling thread makes MPI calls) when a launcher
// started this process (OMPI_COMM_WORLD_SIZE, PMI_RANK, PMI_SIZE or PMIX_RANK is set); otherwise returns
// single_process(). argc/argv are MPI's to look at. Call once per process. Throws cudagan::Error when MPI cannot start, and in a
// build without MPI when a launcher started several processes (PMI_SIZE, OMPI_COMM_WORLD_SIZE or
// SLURM_NTASKS above 1): "this cudagan was built without MPI: rebuild with -DCUDAGAN_MPI=ON".
std::unique_ptr<Communicator> init(int& argc, char**& argv);

// The same job as one process, whatever the build: for tests and for code that takes a Communicator
// but runs alone. Makes no MPI call.
std::unique_ptr<Communicator> single_process();

// A 64-bit FNV-1a hash of bytes, for Communicator::agree.
uint64_t fingerprint(const std::string& bytes);

// --- data-parallel helpers -------------------------------------------------------------------------

// Overwrites every parameter and buffer of `net` on every rank with root's: one broadcast of one
// flattened buffer. After it the replicas are identical whatever each rank initialised.
void broadcast_module(const Communicator& comm, nn::Module& net, int root = 0);

// Makes every BatchNorm2d in `net` take its statistics over the global batch (the sum of the ranks'
// batches): one all-reduce of the per-channel sums forward, one of the gradient sums backward. An
// N-rank run is then the computation of a 1-rank run with the global batch. With world_size() == 1
// it leaves `net` as it is.
void synchronize_batchnorm(const Communicator& comm, nn::Module& net);

// Averages a network's gradients over the ranks: gathers every parameter's gradient into one flat
// buffer (a missing gradient counts as zero), one all-reduce, and writes the average back. The
// layout is fixed at construction: the parameters must stay the same tensors (Module::to keeps them).
class GradientAverager {
 public:
  GradientAverager(const Communicator& comm, const nn::Module& net);
  void operator()();  // collective: every rank calls it after its backward pass
  int64_t elements() const { return elements_; }
  int64_t calls() const { return calls_; }  // all-reduces made so far

 private:
  const Communicator& comm_;
  std::vector<Tensor> params_;
  int64_t elements_ = 0;
  int64_t calls_ = 0;
  Tensor flat_;  // persistent: no allocation per step
};

}  // namespace cudagan::dist

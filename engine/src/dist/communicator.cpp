// Communicator: the checks every backend shares (backend.h moves the bytes), init(), and the
// data-parallel helpers built on the collectives.
#include <cstdlib>
#include <cstring>

#include "backend.h"
#include "core/backend.h"
#include "cudagan/core/error.h"
#include "cudagan/nn/modules.h"

namespace cudagan::dist {

namespace {

void check_reducible(const char* what, const Tensor& t) {
  CUDAGAN_CHECK(t.defined(), "dist::", what, ": the tensor is undefined");
  CUDAGAN_CHECK(!t.requires_grad() || t.is_leaf(), "dist::", what,
                ": reduce a leaf or a detached tensor, not an intermediate result of autograd");
}

// Whether an MPI launcher started this process: Open MPI's mpirun, or a PMI / PMIx one (MPICH's Hydra,
// Slurm's srun). Without one, init() makes no MPI call at all: a process started alone is a job of one
// rank anyway, and MPI's singleton start-up would cost time and leave its run-time's allocations behind.
bool under_launcher() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(name)) return true;
  return false;
}

// How many processes the launcher started, where it says.
int launched_processes() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    const char* v = std::getenv(name);
    if (v && std::atoi(v) > 1) return std::atoi(v);
  }
  return 1;
}

// The synchronised batchnorm's hook: a float64 sum over the communicator.
class CommunicatorSum final : public ReplicaSum {
 public:
  explicit CommunicatorSum(const Communicator& comm) : comm_(comm) {}
  void sum_(Tensor& t) const override { comm_.all_reduce(t, ReduceOp::sum); }

 private:
  const Communicator& comm_;
};

}  // namespace

Communicator::Communicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Communicator::~Communicator() { finalize(); }

int Communicator::rank() const { return impl_->rank(); }
int Communicator::world_size() const { return impl_->world_size(); }
int Communicator::local_rank() const { return impl_->local_rank(); }
int Communicator::local_size() const { return impl_->local_size(); }
std::string Communicator::describe() const { return impl_->describe(); }

Device Communicator::device_for(const std::string& spec) const {
  const int gpus = cuda_device_count();
  if (spec == "auto" || spec == "cuda") {
    if (spec == "auto" && gpus == 0) return Device::cpu();
    CUDAGAN_CHECK(gpus > 0, "--device cuda: no GPU is visible on this machine; use --device cpu");
    CUDAGAN_CHECK(local_rank() < gpus, "rank ", rank(), " is local rank ", local_rank(), " of ", local_size(),
                  " on its machine, which has ", gpus, gpus == 1 ? " GPU" : " GPUs",
                  ": start at most one rank per GPU (mpirun -np ", gpus, " per machine), or use --device cpu");
    return Device::cuda(local_rank());
  }
  return resolve_device(spec);
}

void Communicator::all_reduce(Tensor& t, ReduceOp op) const {
  check_reducible("all_reduce", t);
  impl_->all_reduce(t.raw_data(), t.numel(), t.dtype(), t.device(), op);
}

void Communicator::all_reduce(std::vector<double>& values, ReduceOp op) const {
  impl_->all_reduce_host(values.data(), int64_t(values.size()), op);
}

void Communicator::broadcast(Tensor& t, int root) const {
  check_reducible("broadcast", t);
  CUDAGAN_CHECK(root >= 0 && root < world_size(), "dist::broadcast: root ", root, " is not a rank of ",
                world_size());
  impl_->broadcast(t.raw_data(), t.numel() * int64_t(dtype_size(t.dtype())), t.device(), root);
}

void Communicator::agree(uint64_t fingerprint, const std::string& what) const {
  uint64_t v[2] = {fingerprint, ~fingerprint};  // min of both: the min and the max of the fingerprints
  impl_->all_reduce_min_u64(v, 2);
  CUDAGAN_CHECK(v[0] == ~v[1], what, " differs between the ranks (rank ", rank(), " has fingerprint ",
                fingerprint, "): start every rank with the same arguments and configuration");
}

void Communicator::barrier() const { impl_->barrier(); }
void Communicator::abort(int exit_code) const noexcept {
  impl_->abort(exit_code);
  std::_Exit(exit_code);  // not reached: both backends' abort end the process
}
void Communicator::finalize() noexcept {
  if (impl_) impl_->finalize();
}

std::shared_ptr<const ReplicaSum> Communicator::replica_sum() const {
  return std::make_shared<CommunicatorSum>(*this);
}

std::unique_ptr<Communicator> init(int& argc, char**& argv) {
  if (built_with_mpi() && under_launcher()) return std::make_unique<Communicator>(make_mpi(argc, argv));
  const int launched = launched_processes();
  CUDAGAN_CHECK(launched == 1, "a launcher started ", launched,
                " processes, but this cudagan was built without MPI, so each would train alone and write the "
                "same files: install libopenmpi-dev and rebuild with -DCUDAGAN_MPI=ON");
  return single_process();
}

std::unique_ptr<Communicator> single_process() { return std::make_unique<Communicator>(make_single_process()); }

uint64_t fingerprint(const std::string& bytes) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a, 64 bits: the offset basis
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// --- data-parallel helpers -------------------------------------------------------------------------

namespace {
// Copies each tensor into (to_flat) or out of the flat buffer, in order, on their device.
void pack(const std::vector<Tensor>& parts, const Tensor& flat, bool to_flat) {
  const size_t elem = dtype_size(flat.dtype());
  char* base = static_cast<char*>(flat.raw_data());
  size_t at = 0;
  for (const Tensor& t : parts) {
    const size_t bytes = size_t(t.numel()) * elem;
    if (to_flat)
      device_copy(base + at, flat.device(), t.raw_data(), t.device(), bytes);
    else
      device_copy(t.raw_data(), t.device(), base + at, flat.device(), bytes);
    at += bytes;
  }
}

// Every tensor of a module's state lives on one device, in one dtype, or it cannot share one buffer.
void check_uniform(const char* what, const std::vector<Tensor>& parts) {
  for (const Tensor& t : parts)
    CUDAGAN_CHECK(t.device() == parts.front().device() && t.dtype() == parts.front().dtype(), "dist::", what,
                  ": the module's tensors are on several devices or of several dtypes; move it to one device");
}
}  // namespace

void broadcast_module(const Communicator& comm, nn::Module& net, int root) {
  std::vector<Tensor> parts = net.parameters();
  for (const Tensor& b : net.buffers()) parts.push_back(b);
  if (parts.empty() || comm.world_size() == 1) return;
  check_uniform("broadcast_module", parts);
  int64_t total = 0;
  for (const Tensor& t : parts) total += t.numel();
  Tensor flat = Tensor::empty({total}, parts.front().dtype(), parts.front().device());
  pack(parts, flat, true);
  comm.broadcast(flat, root);
  pack(parts, flat, false);
}

void synchronize_batchnorm(const Communicator& comm, nn::Module& net) {
  if (comm.world_size() == 1) return;
  const std::shared_ptr<const ReplicaSum> sum = comm.replica_sum();
  net.apply([&](nn::Module& m) {
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&m)) bn->across_replicas = sum;
  });
}

GradientAverager::GradientAverager(const Communicator& comm, const nn::Module& net)
    : comm_(comm), params_(net.parameters()) {
  CUDAGAN_CHECK(!params_.empty(), "dist::GradientAverager: the module has no parameters");
  check_uniform("GradientAverager", params_);
  for (const Tensor& p : params_) elements_ += p.numel();
}

void GradientAverager::operator()() {
  if (comm_.world_size() == 1) return;
  const Tensor& first = params_.front();
  if (!flat_.defined()) flat_ = Tensor::empty({elements_}, first.dtype(), first.device());
  CUDAGAN_CHECK(flat_.device() == first.device(), "dist::GradientAverager: the parameters moved from ",
                flat_.device().str(), " to ", first.device().str(), "; make the averager after Module::to");
  std::vector<Tensor> grads;
  grads.reserve(params_.size());
  for (Tensor& p : params_) {
    Tensor g = p.grad();
    if (!g.defined()) {  // a parameter this rank's graph did not reach: its gradient is zero
      g = Tensor::zeros(p.shape(), p.dtype(), p.device());
      p.set_grad(g);
    }
    grads.push_back(g);
  }
  pack(grads, flat_, true);
  comm_.all_reduce(flat_, ReduceOp::average);
  pack(grads, flat_, false);
  ++calls_;
}

}  // namespace cudagan::dist

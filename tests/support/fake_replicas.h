// A data-parallel run inside one test process, for synchronised batchnorm: R replicas, one thread each, and a
// ReplicaSum per replica that sums over the group with a barrier, as an MPI or NCCL all-reduce would. It also
// counts every replica's calls and records what each call was given.
//
//   test::FakeReplicas group(3);
//   group.run([&](int rank) { ... batch_norm2d(x[rank], ..., group.member(rank)) ... });
//
// run() starts one thread per replica and rethrows the first exception any of them threw. When one replica
// fails before reaching a sum, the others would wait for it forever: the failure aborts the group, which
// wakes them with an error (and so does a barrier that waits longer than a minute, a hang turned into a
// failure). Catch2's assertions are not thread-safe: replica threads only compute and store, the test
// asserts after run() returns.
//
// Mode::serialised runs one replica at a time: a replica holds the group's baton while it runs and lets go
// of it only while it waits inside a sum. The replicas still meet at every sum (the collective works), but
// their engine calls never overlap, which a GPU's shared engine context needs: its one stream and workspace
// serve every host thread, so two threads' multi-kernel ops (a two-stage reduction through the workspace)
// could interleave their launches. The CPU engine has no such shared state (autograd's only global, the
// no-grad flag, is thread_local; each replica owns its tensors), so the CPU tests run concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cudagan/core/tensor.h"
#include "cudagan/ops/ops.h"

namespace cudagan::test {

class FakeReplicas {
 public:
  enum class Mode { concurrent, serialised };

  // What one sum_ call was given.
  struct Call {
    Shape shape;
    DType dtype;
    Device device;
  };

  explicit FakeReplicas(int replicas, Mode mode = Mode::concurrent)
      : replicas_(replicas), mode_(mode), calls_(size_t(replicas)), parts_(size_t(replicas)) {
    for (int r = 0; r < replicas; ++r) members_.push_back(std::make_shared<Member>(*this, r));
  }
  FakeReplicas(const FakeReplicas&) = delete;
  FakeReplicas& operator=(const FakeReplicas&) = delete;

  int size() const { return replicas_; }
  // Replica `rank`'s ReplicaSum; valid while the group lives.
  std::shared_ptr<const ReplicaSum> member(int rank) const { return members_.at(size_t(rank)); }

  // fn(rank) on one thread per replica; returns when all are done, rethrowing the first exception.
  void run(const std::function<void(int)>& fn) {
    std::vector<std::exception_ptr> errors(static_cast<size_t>(replicas_));
    std::vector<std::thread> threads;
    for (int r = 0; r < replicas_; ++r)
      threads.emplace_back([&, r] {
        try {
          std::unique_lock<std::mutex> baton(baton_, std::defer_lock);
          if (mode_ == Mode::serialised) {
            baton.lock();
            t_baton() = &baton;
          }
          fn(r);
          t_baton() = nullptr;
        } catch (...) {
          t_baton() = nullptr;
          errors[size_t(r)] = std::current_exception();
          abort();
        }
      });
    for (std::thread& t : threads) t.join();
    for (const std::exception_ptr& e : errors)
      if (e) std::rethrow_exception(e);
  }

  // The sum_ calls replica `rank` made, in order.
  std::vector<Call> calls(int rank) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_.at(size_t(rank));
  }
  int call_count(int rank) const { return int(calls(rank).size()); }

 private:
  class Member final : public ReplicaSum {
   public:
    Member(FakeReplicas& group, int rank) : group_(group), rank_(rank) {}
    void sum_(Tensor& t) const override { group_.sum(rank_, t); }

   private:
    FakeReplicas& group_;
    int rank_;
  };

  // The baton this thread holds in serialised mode (null otherwise).
  static std::unique_lock<std::mutex>*& t_baton() {
    thread_local std::unique_lock<std::mutex>* baton = nullptr;
    return baton;
  }

  void sum(int rank, Tensor& t) {
    std::vector<double> mine = t.to_vector();  // waits for a GPU: the values are final
    std::unique_lock<std::mutex>* baton = t_baton();
    if (baton) baton->unlock();
    std::vector<double> total;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      calls_[size_t(rank)].push_back({t.shape(), t.dtype(), t.device()});
      parts_[size_t(rank)] = std::move(mine);
      wait_for_all(lock);
      // Every part is in: add them in rank order, so the total does not depend on the threads' timing.
      total.assign(parts_[0].size(), 0.0);
      for (const std::vector<double>& part : parts_) {
        if (part.size() != total.size()) mismatch_ = true;
        for (size_t i = 0; i < total.size() && i < part.size(); ++i) total[i] += part[i];
      }
      const bool mismatch = mismatch_;
      wait_for_all(lock);  // nobody overwrites a part before every replica has added them all
      if (mismatch)
        throw std::runtime_error("FakeReplicas: replica " + std::to_string(rank) +
                                 " summed a tensor whose size differs from another replica's");
    }
    if (baton) baton->lock();
    t.copy_(Tensor::from_vector(total, t.shape()));  // float64 on the CPU, copied to t's device
  }

  // A reusable barrier: the last of the replicas to arrive opens it for all of them.
  void wait_for_all(std::unique_lock<std::mutex>& lock) {
    const uint64_t generation = generation_;
    if (++arrived_ == replicas_) {
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
      return;
    }
    const bool opened = changed_.wait_for(lock, std::chrono::seconds(60),
                                          [&] { return generation_ != generation || aborted_; });
    if (aborted_) throw std::runtime_error("FakeReplicas: another replica failed; this one stops waiting");
    if (!opened) {
      aborted_ = true;
      changed_.notify_all();
      throw std::runtime_error(
          "FakeReplicas: a replica waited a minute for the others to reach the same sum "
          "(they made different calls: the collective would hang)");
    }
  }

  void abort() {
    std::lock_guard<std::mutex> lock(mutex_);
    aborted_ = true;
    changed_.notify_all();
  }

  const int replicas_;
  const Mode mode_;
  std::vector<std::shared_ptr<Member>> members_;
  std::mutex baton_;
  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;
  std::vector<std::vector<Call>> calls_;
  std::vector<std::vector<double>> parts_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false, mismatch_ = false;
};

}  // namespace cudagan::test

// Reverse-mode automatic differentiation on a dynamic tape.
//
// Each differentiable op that sees an input requiring a gradient records a Node: its inputs, the
// tensors it saved, and a function from the gradient of its output to the gradients of its inputs.
// Tensor::backward() orders the nodes reachable from the output in reverse topological order, runs
// each once, and accumulates (+=) gradients into the leaves' grad(). Each node is released as soon
// as it has run, freeing its saved tensors; running backward again through a released graph is
// an error, as is calling backward on a tensor that requires no gradient.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cudagan/tensor.h"

namespace cudagan {

class Node {
 public:
  // Given d(loss)/d(output), returns d(loss)/d(input) for each input, in order; an undefined
  // tensor stands for "no gradient" (e.g. an input that requires none).
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

  Node(std::string name, std::vector<Tensor> inputs, BackwardFn backward);
  const std::string& name() const { return name_; }
  const std::vector<Tensor>& inputs() const { return inputs_; }
  bool released() const { return released_; }
  std::vector<Tensor> run(const Tensor& grad_output);  // then releases
  void release();

 private:
  std::string name_;
  std::vector<Tensor> inputs_;
  BackwardFn backward_;
  bool released_ = false;
};

// Makes `output` the differentiable result of op `name` on `inputs` when gradient recording is on
// and any input requires a gradient; otherwise returns it untouched. `backward` must not capture
// `output` itself (save output.detach() instead), or the graph would keep itself alive.
Tensor record(Tensor output, std::string name, std::vector<Tensor> inputs, Node::BackwardFn backward);

// True when any input requires a gradient and recording is on (ops may skip saving tensors otherwise).
bool needs_grad(const std::vector<Tensor>& inputs);

bool grad_enabled();

// While alive, ops record nothing (evaluation, optimizer updates). Per thread, like PyTorch's.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace cudagan

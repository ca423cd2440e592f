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

#include "cudagan/core/tensor.h"

namespace cudagan {

// One recorded op in the graph: the output's grad_fn(). Ops create nodes through record(); user
// code meets them only to inspect a graph (grad_fn()->name(), e.g. "conv2d").
class Node {
 public:
  // Given d(loss)/d(output), returns d(loss)/d(input) for each input, in order; an undefined
  // tensor stands for "no gradient" (e.g. an input that requires none). Each gradient has its
  // input's shape, dtype and device.
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

  Node(std::string name, std::vector<Tensor> inputs, BackwardFn backward);
  const std::string& name() const { return name_; }              // the op's name, for messages
  const std::vector<Tensor>& inputs() const { return inputs_; }  // empty once released
  bool released() const { return released_; }
  // Calls the backward function. Throws cudagan::Error when the node was released (backward
  // through the same graph twice) or the function returns the wrong number of gradients. The
  // caller (Tensor::backward) releases the node afterwards.
  std::vector<Tensor> run(const Tensor& grad_output);
  void release();  // frees the saved tensors and the inputs

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

// Whether ops record on this thread: false inside a NoGradGuard (and during backward itself).
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

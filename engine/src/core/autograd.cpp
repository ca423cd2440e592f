// The tape walk: reverse topological order over the nodes reachable from the output, gradients
// summed per node before it runs, leaves accumulating into grad().
#include "cudagan/core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/backend.h"
#include "elementwise.h"

namespace cudagan {

namespace {
// Per thread, as in PyTorch: a no-grad region on one thread does not affect another.
thread_local bool t_grad_enabled = true;

// dst += g, in place, outside autograd.
void accumulate(const Tensor& dst, const Tensor& g) {
  on_device(
      dst,
      [&](auto zero) {
        using T = decltype(zero);
        cpu::axpy<T>(T(1), g.data<T>(), dst.data<T>(), dst.numel());
      },
      [&](const cuda::KernelContext& ctx) {
        cuda::axpy(ctx, 1.0f, g.data<float>(), dst.data<float>(), dst.numel());
      });
}

void check_gradient(const Node& node, const Tensor& input, const Tensor& grad) {
  CUDAGAN_CHECK(grad.shape() == input.shape() && grad.dtype() == input.dtype() &&
                    grad.device() == input.device(),
                "internal error: backward of ", node.name(), " returned a gradient ", shape_str(grad.shape()),
                " for an input of shape ", shape_str(input.shape()));
}
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

Node::Node(std::string name, std::vector<Tensor> inputs, BackwardFn backward)
    : name_(std::move(name)), inputs_(std::move(inputs)), backward_(std::move(backward)) {}

std::vector<Tensor> Node::run(const Tensor& grad_output) {
  CUDAGAN_CHECK(!released_, "backward through the graph of '", name_,
                "' a second time: its saved tensors were freed by the first backward; "
                "run the forward pass again before calling backward");
  std::vector<Tensor> grads = backward_(grad_output);
  CUDAGAN_CHECK(grads.size() == inputs_.size(), "internal error: backward of ", name_, " returned ",
                grads.size(), " gradients for ", inputs_.size(), " inputs");
  return grads;
}

void Node::release() {
  released_ = true;
  backward_ = nullptr;
  inputs_.clear();
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tensor record(Tensor output, std::string name, std::vector<Tensor> inputs, Node::BackwardFn backward) {
  if (!needs_grad(inputs)) return output;
  output.impl()->grad_fn = std::make_shared<Node>(std::move(name), std::move(inputs), std::move(backward));
  output.impl()->requires_grad = true;
  return output;
}

void Tensor::backward() const {
  CUDAGAN_CHECK(defined(), "backward() on an undefined tensor");
  CUDAGAN_CHECK(numel() == 1, "backward() without a gradient needs a one-element tensor (a loss), got shape ",
                shape_str(shape()), "; pass the gradient of the output explicitly");
  backward(Tensor::ones(shape(), dtype(), device()));
}

void Tensor::backward(const Tensor& grad) const {
  CUDAGAN_CHECK(requires_grad(), "backward() on a tensor that does not require grad: no input of the ops "
                "that produced it requires a gradient (set requires_grad_ on the parameters)");
  CUDAGAN_CHECK(grad.shape() == shape() && grad.dtype() == dtype() && grad.device() == device(),
                "backward(): the gradient ", shape_str(grad.shape()), " does not match the output ",
                shape_str(shape()));
  NoGradGuard no_grad;  // backward functions compute with tensors but must record nothing

  const std::shared_ptr<Node> root = grad_fn();
  if (!root) {  // a leaf: its gradient is the seed itself
    Tensor self = *this;
    if (impl()->grad)
      accumulate(Tensor(impl()->grad), grad);
    else
      self.set_grad(grad.clone());
    return;
  }
  CUDAGAN_CHECK(!root->released(), "backward through the graph of '", root->name(),
                "' a second time: its saved tensors were freed by the first backward; "
                "run the forward pass again before calling backward");

  // Post-order DFS without recursion (graphs can be deep); `order` ends with the root. It holds the
  // nodes by shared_ptr: releasing a node drops its inputs, which may be the last owners of earlier
  // nodes still to run.
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> seen{root.get()};
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs().size()) {
      const Tensor& in = node->inputs()[next++];
      if (in.defined() && in.grad_fn() && seen.insert(in.grad_fn().get()).second)
        stack.push_back({in.grad_fn(), 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  std::unordered_map<Node*, Tensor> pending{{root.get(), grad}};
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = it->get();
    auto found = pending.find(node);
    if (found == pending.end()) {  // no gradient flowed here (e.g. only undefined grads)
      node->release();
      continue;
    }
    const Tensor g = found->second;
    pending.erase(found);
    const std::vector<Tensor> inputs = node->inputs();
    const std::vector<Tensor> grads = node->run(g);
    node->release();
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& in = inputs[i];
      const Tensor& gi = grads[i];
      if (!in.defined() || !in.requires_grad() || !gi.defined()) continue;
      check_gradient(*node, in, gi);
      if (in.grad_fn()) {
        auto slot = pending.find(in.grad_fn().get());
        if (slot == pending.end())
          pending.emplace(in.grad_fn().get(), gi);
        else {  // into a fresh tensor: the pending one may be shared with others (it may be some op's gi)
          Tensor summed = slot->second.clone();
          accumulate(summed, gi);
          slot->second = summed;
        }
      } else if (in.impl()->grad) {
        accumulate(Tensor(in.impl()->grad), gi);
      } else {
        Tensor leaf = in;
        leaf.set_grad(gi.clone());  // never alias: gi may be another input's gradient too
      }
    }
  }
}

}  // namespace cudagan

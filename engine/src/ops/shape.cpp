// Shape ops: reshape (a view, no copy) and cat along the batch dimension (a copy into new storage).
#include <algorithm>

#include "core/backend.h"
#include "cudagan/core/autograd.h"
#include "cudagan/ops/ops.h"

namespace cudagan {

Tensor reshape(const Tensor& x, const Shape& shape) {
  check_defined("reshape", x, "input");
  Shape resolved = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      CUDAGAN_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = int64_t(i);
    } else {
      CUDAGAN_CHECK(resolved[i] >= 0, "reshape: negative dimension in ", shape_str(shape));
      known *= resolved[i];
    }
  }
  if (infer >= 0) {
    CUDAGAN_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot view ", shape_str(x.shape()), " as ",
                  shape_str(shape));
    resolved[size_t(infer)] = x.numel() / known;
  }
  CUDAGAN_CHECK(shape_numel(resolved) == x.numel(), "reshape: cannot view ", shape_str(x.shape()), " (",
                x.numel(), " elements) as ", shape_str(shape));
  Tensor view = x.detach();
  view.impl()->shape = resolved;
  return record(view, "reshape", {x}, [from = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{reshape(g, from)};
  });
}

Tensor Tensor::reshape(const Shape& shape) const { return cudagan::reshape(*this, shape); }

Tensor cat(const std::vector<Tensor>& tensors) {
  CUDAGAN_CHECK(!tensors.empty(), "cat: no tensors given");
  const Tensor& first = tensors.front();
  check_defined("cat", first, "a tensor");
  CUDAGAN_CHECK(first.dim() >= 1, "cat: tensors need at least one dimension");
  int64_t rows = 0;
  std::vector<int64_t> counts;
  for (const Tensor& t : tensors) {
    check_defined("cat", t, "a tensor");
    check_compatible("cat", first, t);
    Shape a = first.shape(), b = t.shape();
    CUDAGAN_CHECK(a.size() == b.size() && std::equal(a.begin() + 1, a.end(), b.begin() + 1), "cat: shapes ",
                  shape_str(a), " and ", shape_str(b), " differ beyond dimension 0");
    counts.push_back(t.size(0));
    rows += t.size(0);
  }
  Shape shape = first.shape();
  shape[0] = rows;
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  int64_t at = 0;
  for (const Tensor& t : tensors) {
    device_copy(batch_slice(out, at, t.size(0)).raw_data(), out.device(), t.raw_data(), t.device(),
                size_t(t.numel()) * dtype_size(t.dtype()));
    at += t.size(0);
  }
  return record(out, "cat", tensors, [counts](const Tensor& g) {
    std::vector<Tensor> grads;
    int64_t start = 0;
    for (int64_t c : counts) {
      grads.push_back(batch_slice(g, start, c));
      start += c;
    }
    return grads;
  });
}

}  // namespace cudagan

#include "core/backend.h"

namespace cudagan {

void check_defined(const char* op, const Tensor& t, const char* what) {
  CUDAGAN_CHECK(t.defined(), op, ": ", what, " is an undefined tensor");
}

void check_compatible(const char* op, const Tensor& a, const Tensor& b) {
  CUDAGAN_CHECK(a.device() == b.device(), op, ": tensors on different devices (", a.device().str(), " and ",
                b.device().str(), "); move them to one device with to()");
  CUDAGAN_CHECK(a.dtype() == b.dtype(), op, ": tensors of different dtypes (", dtype_name(a.dtype()), " and ",
                dtype_name(b.dtype()), "); convert with to(dtype)");
}

void check_rank(const char* op, const Tensor& t, int64_t rank, const char* what) {
  CUDAGAN_CHECK(t.dim() == rank, op, ": ", what, " must have ", rank, " dimensions, got shape ",
                shape_str(t.shape()));
}

}  // namespace cudagan

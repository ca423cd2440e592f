// The OpenMP team size for one scope: tests that compare results on 1, 2, ... threads set it here and get the
// caller's back however the scope ends.
#pragma once

#include <omp.h>

namespace cudagan::test {

class OmpThreads {
 public:
  explicit OmpThreads(int threads) : before_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~OmpThreads() { omp_set_num_threads(before_); }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

 private:
  int before_;
};

}  // namespace cudagan::test

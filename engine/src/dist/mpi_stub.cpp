// A build without MPI: every Communicator is a single process (single_process.cpp).
#include "backend.h"
#include "cudagan/core/error.h"

namespace cudagan::dist {

bool built_with_mpi() { return false; }

std::unique_ptr<Communicator::Impl> make_mpi(int&, char**&) {
  throw Error("this cudagan was built without MPI: install libopenmpi-dev and rebuild with -DCUDAGAN_MPI=ON");
}

}  // namespace cudagan::dist

// What the MPI tests share: the job's communicator for the [ranks] cases (made by main.cpp), and the
// mpirun command line for the [mpirun] cases.
#pragma once

#include <string>

#include "cudagan/dist/dist.h"

namespace cudagan::test {

// The communicator of the mpirun job this process is a rank of; fails the case outside one.
const dist::Communicator& test_world();

// "mpirun --oversubscribe -np N" with what a root container needs (CI runs as root).
inline std::string mpirun(int ranks) {
  return std::string("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 ") +
         CUDAGAN_MPIEXEC + " --oversubscribe -np " + std::to_string(ranks) + " ";
}

}  // namespace cudagan::test

# Decides whether data-parallel training is built over MPI (CUDAGAN_HAVE_MPI) from CUDAGAN_MPI=AUTO|ON|OFF,
# and whether GPU tensors are reduced by NCCL (CUDAGAN_HAVE_NCCL: a CUDA build whose NCCL is found).
# Without MPI, cudagan::dist still exists: every Communicator is then a single process.
set(CUDAGAN_MPI AUTO CACHE STRING "Build data-parallel training over MPI: AUTO (when MPI is found), ON or OFF")
set_property(CACHE CUDAGAN_MPI PROPERTY STRINGS AUTO ON OFF)
set(CUDAGAN_HAVE_MPI OFF)
set(CUDAGAN_HAVE_NCCL OFF)
if(NOT CUDAGAN_MPI STREQUAL "OFF")
  # MPI's C API, called from C++ (the project enables no C compiler): MPI_CXX_SKIP_MPICXX leaves out MPI's
  # C++ bindings, deprecated since MPI-2.2 and removed in MPI-3.
  set(MPI_CXX_SKIP_MPICXX ON CACHE BOOL "Do not link MPI's deprecated C++ bindings")
  find_package(MPI COMPONENTS CXX)
  if(MPI_CXX_FOUND)
    set(CUDAGAN_HAVE_MPI ON)
  elseif(CUDAGAN_MPI STREQUAL "ON")
    message(FATAL_ERROR "CUDAGAN_MPI=ON but no MPI was found: install it (Debian: apt-get install libopenmpi-dev "
                        "openmpi-bin) or configure with -DCUDAGAN_MPI=OFF")
  else()
    message(STATUS "MPI not found: cudagan::dist runs single-process (apt-get install libopenmpi-dev openmpi-bin)")
  endif()
endif()

# NCCL ships with the CUDA toolkit on some machines and as the nvidia-nccl-cu13 Python wheel on others
# (site-packages/nvidia/nccl/{include,lib}); NCCL_ROOT names any other place.
if(CUDAGAN_HAVE_MPI AND CUDAGAN_HAVE_CUDA)
  file(GLOB _cudagan_nccl_wheels /usr/lib/python3*/site-packages/nvidia/nccl /usr/local/lib/python3*/dist-packages/nvidia/nccl
       /usr/local/lib/python3*/site-packages/nvidia/nccl /usr/lib/python3/dist-packages/nvidia/nccl)
  find_path(CUDAGAN_NCCL_INCLUDE_DIR nccl.h HINTS $ENV{NCCL_ROOT} ${CUDAToolkit_INCLUDE_DIRS} ${_cudagan_nccl_wheels}
            PATH_SUFFIXES include)
  find_library(CUDAGAN_NCCL_LIBRARY NAMES nccl libnccl.so.2
               HINTS $ENV{NCCL_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${_cudagan_nccl_wheels} PATH_SUFFIXES lib lib64)
  if(CUDAGAN_NCCL_INCLUDE_DIR AND CUDAGAN_NCCL_LIBRARY)
    set(CUDAGAN_HAVE_NCCL ON)
    add_library(cudagan_nccl INTERFACE)
    target_include_directories(cudagan_nccl INTERFACE ${CUDAGAN_NCCL_INCLUDE_DIR})
    target_link_libraries(cudagan_nccl INTERFACE ${CUDAGAN_NCCL_LIBRARY})
  else()
    message(STATUS "NCCL not found (set NCCL_ROOT): GPU tensors are all-reduced through the host")
  endif()
endif()
message(STATUS "cudagan::dist: MPI ${CUDAGAN_HAVE_MPI}, NCCL ${CUDAGAN_HAVE_NCCL}")

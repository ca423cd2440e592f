# Decides whether the CUDA backend is built (CUDAGAN_HAVE_CUDA) from CUDAGAN_CUDA=AUTO|ON|OFF.
set(CUDAGAN_HAVE_CUDA OFF)
if(NOT CUDAGAN_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80 90 CACHE STRING "GPU architectures to build for (A100: 80, H100/H200: 90)")
    endif()
    # The shared CUDA runtime everywhere (the engine's host code links CUDA::cudart): a process with
    # both the static and the shared runtime would hold two runtimes with separate state.
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(CUDAGAN_HAVE_CUDA ON)
  elseif(CUDAGAN_CUDA STREQUAL "ON")
    message(FATAL_ERROR "CUDAGAN_CUDA=ON but no CUDA compiler was found: install the CUDA toolkit "
                        "(nvcc on PATH or CMAKE_CUDA_COMPILER set) or configure with -DCUDAGAN_CUDA=OFF")
  else()
    message(STATUS "CUDA compiler not found: building the CPU backend only")
  endif()
endif()

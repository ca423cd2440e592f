# Third-party dependencies, all from Debian packages; nothing is downloaded at build time.
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(Threads REQUIRED)

# The CPU GEMMs run on OpenBLAS (libopenblas-dev): its CBLAS header and library.
find_path(CUDAGAN_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas x86_64-linux-gnu/openblas-pthread)
find_library(CUDAGAN_OPENBLAS_LIBRARY NAMES openblas)
if(NOT CUDAGAN_CBLAS_INCLUDE_DIR OR NOT CUDAGAN_OPENBLAS_LIBRARY)
  message(FATAL_ERROR "OpenBLAS not found: install it with 'apt-get install libopenblas-dev'")
endif()
add_library(cudagan_blas INTERFACE)
target_include_directories(cudagan_blas INTERFACE ${CUDAGAN_CBLAS_INCLUDE_DIR})
target_link_libraries(cudagan_blas INTERFACE ${CUDAGAN_OPENBLAS_LIBRARY})

# Warnings on, for every target of ours.
set(CUDAGAN_WARNINGS -Wall -Wextra -Wpedantic -Wno-unknown-pragmas)

# stb (libstb-dev): Debian ships the implementations compiled into libstb, so no translation unit of
# ours defines STB_*_IMPLEMENTATION.
find_path(CUDAGAN_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb)
find_library(CUDAGAN_STB_LIBRARY NAMES stb)
if(NOT CUDAGAN_STB_INCLUDE_DIR OR NOT CUDAGAN_STB_LIBRARY)
  message(FATAL_ERROR "stb not found: install it with 'apt-get install libstb-dev'")
endif()
add_library(cudagan_stb INTERFACE)
target_include_directories(cudagan_stb INTERFACE ${CUDAGAN_STB_INCLUDE_DIR})
target_link_libraries(cudagan_stb INTERFACE ${CUDAGAN_STB_LIBRARY})

find_package(ZLIB REQUIRED)            # MNIST .gz files
find_package(GIF REQUIRED)             # progress.gif (libgif-dev)
find_package(nlohmann_json 3 REQUIRED) # safetensors headers (nlohmann-json3-dev)

# The installed package for research code: `cmake --install build --prefix P` gives
#   P/include/cudagan/**.h                    the engine's (core/ ops/ nn/ data/ io/ runtime/) and models' headers
#   P/lib/libcudagan_{kernels,core,io,dist,models}.a
#   P/lib/cmake/cudagan/                      cudagan-config.cmake, -config-version.cmake, -targets*.cmake
#   P/bin/dcgan_train, P/bin/dcgan_sample, P/bin/dcgan_eval, P/bin/train_digit_classifier
#   P/share/cudagan/digit_classifier.safetensors  the FCD's classifier (data/digit_classifier)
# and an outside project needs only
#   find_package(cudagan REQUIRED)
#   target_link_libraries(app PRIVATE cudagan::cudagan)   # or cudagan::core, or cudagan::models
# with CMAKE_PREFIX_PATH=P. The libraries' own install() rules (the EXPORT set cudagan-targets) are
# in kernels/, engine/ and models/; this file must be included after them and after apps/.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CUDAGAN_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/cudagan)

install(TARGETS dcgan_train dcgan_sample dcgan_eval train_digit_classifier RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The digit classifier of the FCD, found by the apps as <bin>/../share/cudagan/digit_classifier.safetensors.
install(FILES ${PROJECT_SOURCE_DIR}/data/digit_classifier/digit_classifier.safetensors
        DESTINATION ${CMAKE_INSTALL_DATADIR}/cudagan)

install(EXPORT cudagan-targets
  NAMESPACE cudagan::
  FILE cudagan-targets.cmake
  DESTINATION ${CUDAGAN_INSTALL_CMAKEDIR})

# The config asks for at least the CUDA major version the library was compiled with.
set(CUDAGAN_CUDA_VERSION_MAJOR "")
if(CUDAGAN_HAVE_CUDA)
  set(CUDAGAN_CUDA_VERSION_MAJOR ${CUDAToolkit_VERSION_MAJOR})
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/cudagan-config.cmake.in
  ${PROJECT_BINARY_DIR}/cudagan-config.cmake
  INSTALL_DESTINATION ${CUDAGAN_INSTALL_CMAKEDIR})
# SameMajorVersion: find_package(cudagan 0.1) accepts any installed 0.x not older than 0.1.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cudagan-config-version.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cudagan-config.cmake ${PROJECT_BINARY_DIR}/cudagan-config-version.cmake
  DESTINATION ${CUDAGAN_INSTALL_CMAKEDIR})

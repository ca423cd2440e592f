# CUDAGAN_SANITIZE=address,undefined (any -fsanitize= list): every target of the build, and the examples the
# install test builds against it, compiled and linked with those sanitizers. Errors are fatal
# (-fno-sanitize-recover), and LeakSanitizer, on with ASan, fails a test that leaks. The CPU backend only:
# the CUDA runtime and ASan do not share an address space well, so a sanitized build must not build CUDA.
#
# CUDAGAN_CI_SANITIZE (default: on when the environment has CI set, as .ci/run does) registers one more CTest
# test, sanitize.cpu_suite, that configures, builds and runs the whole CPU suite in a nested build with
# address,undefined (tools/sanitize-suite.sh), so that the README's one test command runs it in CI too.
set(CUDAGAN_SANITIZE "" CACHE STRING "Sanitizers for every target, e.g. address,undefined (CPU-only builds)")
set(cudagan_ci_default OFF)
if(DEFINED ENV{CI})
  set(cudagan_ci_default ON)
endif()
option(CUDAGAN_CI_SANITIZE "Register the nested sanitizer suite as a CTest test" ${cudagan_ci_default})
# CUDAGAN_CI_FUZZ (the same default) registers fuzz.parsers: the libFuzzer targets built with clang in a nested
# build and each run for a bounded time (tools/fuzz-suite.sh).
option(CUDAGAN_CI_FUZZ "Register the nested fuzzing run as a CTest test" ${cudagan_ci_default})

set(CUDAGAN_SANITIZE_FLAGS "")
if(CUDAGAN_SANITIZE)
  if(NOT CUDAGAN_CUDA STREQUAL "OFF")
    message(FATAL_ERROR "CUDAGAN_SANITIZE needs a CPU-only build: add -DCUDAGAN_CUDA=OFF")
  endif()
  set(CUDAGAN_SANITIZE_FLAGS -fsanitize=${CUDAGAN_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_compile_options(${CUDAGAN_SANITIZE_FLAGS})
  add_link_options(${CUDAGAN_SANITIZE_FLAGS})
endif()

# Optional CUDA support. MUOND_CUDA=AUTO builds it when nvcc is found (on PATH or in
# /usr/local/cuda), ON requires it, OFF skips it. Binaries link the CUDA runtime but never the
# driver stub (libcuda.so from the toolkit's stubs/ folder): with the stub linked, a binary
# fails to start on machines without a GPU, and muond must run there on its CPU backends.
set(MUOND_HAVE_CUDA OFF)
if(NOT MUOND_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(CMAKE_CUDA_ARCHITECTURES 90) # Hopper (sm_90) code plus compute_90 PTX
    set(MUOND_HAVE_CUDA ON)
  elseif(MUOND_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MUOND_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
message(STATUS "muond: CUDA backend ${MUOND_HAVE_CUDA}")

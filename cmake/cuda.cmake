# Optional CUDA support. MUOND_CUDA=AUTO builds it when nvcc is found (on PATH or in
# /usr/local/cuda), ON requires it, OFF skips it. Binaries link the CUDA runtime but never the
# driver stub (libcuda.so from the toolkit's stubs/ folder): with the stub linked, a binary
# fails to start on machines without a GPU, and muond must run there on its CPU backends.
set(MUOND_HAVE_CUDA OFF)
set(MUOND_HAVE_NCCL OFF)
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
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    # Warnings are errors for CUDA too when MUOND_WERROR is on (host compiler and nvcc).
    if(MUOND_WERROR)
      string(APPEND CMAKE_CUDA_FLAGS " -Werror all-warnings -Xcompiler=-Wall,-Wextra,-Werror")
    endif()
    set(MUOND_HAVE_CUDA ON)
    # NCCL ships beside the toolkit here (/usr/local/cuda); the comm layer's nccl backend
    # needs it. Without it the CUDA kernels still build and the comm stays on MPI.
    find_path(MUOND_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
    find_library(MUOND_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
    if(MUOND_NCCL_INCLUDE_DIR AND MUOND_NCCL_LIBRARY)
      set(MUOND_HAVE_NCCL ON)
    elseif(MUOND_CUDA STREQUAL "ON")
      message(FATAL_ERROR "MUOND_CUDA=ON but NCCL (nccl.h, libnccl) was not found")
    endif()
  elseif(MUOND_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MUOND_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
message(STATUS "muond: CUDA backend ${MUOND_HAVE_CUDA}, NCCL ${MUOND_HAVE_NCCL}")

// Copyright (c) OpenMMLab. All rights reserved.
// Build information of mnc_mm._ext, as mmcv's get_compiler_version.
#include <string>
#ifdef MNC_MM_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

std::string get_compiler_version() {
#if defined(__clang__)
  return "clang " + std::to_string(__clang_major__) + "." +
         std::to_string(__clang_minor__);
#elif defined(__GNUC__)
  return "GCC " + std::to_string(__GNUC__) + "." +
         std::to_string(__GNUC_MINOR__);
#else
  return "unknown";
#endif
}

std::string get_compiling_cuda_version() {
#ifdef MNC_MM_WITH_CUDA
  const int v = CUDART_VERSION;
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
#else
  return "not available";
#endif
}

// Copyright (c) OpenMMLab. All rights reserved.
// Helpers shared by the C++ entry points of mnc_mm._ext (torch side only).
#ifndef MNC_MM_PYTORCH_CPP_HELPER_HPP
#define MNC_MM_PYTORCH_CPP_HELPER_HPP
#include <torch/extension.h>

#define CHECK_CUDA(x) \
  TORCH_CHECK(x.device().is_cuda(), #x " must be a CUDA tensor")
#define CHECK_CPU(x) \
  TORCH_CHECK(!x.device().is_cuda(), #x " must be a CPU tensor")
#define CHECK_CONTIGUOUS(x) \
  TORCH_CHECK(x.is_contiguous(), #x " must be contiguous")
#define CHECK_CUDA_INPUT(x) \
  CHECK_CUDA(x);            \
  CHECK_CONTIGUOUS(x)
#define CHECK_CPU_INPUT(x) \
  CHECK_CPU(x);            \
  CHECK_CONTIGUOUS(x)

// The error of an op entry point given CUDA tensors in a CPU-only build.
#define MNC_MM_CUDA_NOT_BUILT(op)                                          \
  TORCH_CHECK(false, op ": mnc_mm._ext was built without CUDA; rebuild it " \
              "with FORCE_CUDA=1 on a machine with the CUDA toolkit")

#endif  // MNC_MM_PYTORCH_CPP_HELPER_HPP

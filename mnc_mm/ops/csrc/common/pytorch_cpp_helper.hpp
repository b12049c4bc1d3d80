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

// The tensor a backward kernel accumulates into: `grad` itself if its dtype
// is acc_t, else (half, bfloat16) an acc_t tensor of its sizes and strides,
// holding a copy of `grad` if keep_values (the kernel adds to it) and
// uninitialised otherwise (the kernel overwrites it). Accumulating in acc_t
// keeps the small contributions of large bins and needs no half atomics.
// finish_acc_grad_buffer writes the buffer back into `grad`.
template <typename acc_t>
at::Tensor acc_grad_buffer(const at::Tensor& grad, const bool keep_values) {
  const auto acc_dtype = c10::CppTypeToScalarType<acc_t>::value;
  if (grad.scalar_type() == acc_dtype) return grad;
  at::Tensor buffer = at::empty_strided(grad.sizes(), grad.strides(),
                                        grad.options().dtype(acc_dtype));
  return keep_values ? buffer.copy_(grad) : buffer;
}

inline void finish_acc_grad_buffer(const at::Tensor& buffer,
                                   at::Tensor& grad) {
  if (!buffer.is_same(grad)) grad.copy_(buffer);
}

#endif  // MNC_MM_PYTORCH_CPP_HELPER_HPP

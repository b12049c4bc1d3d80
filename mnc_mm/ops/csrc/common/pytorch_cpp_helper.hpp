// Copyright (c) OpenMMLab. All rights reserved.
// Helpers shared by the C++ entry points of mnc_mm._ext (torch side only).
#ifndef MNC_MM_PYTORCH_CPP_HELPER_HPP
#define MNC_MM_PYTORCH_CPP_HELPER_HPP
#include <torch/extension.h>

#include <cfloat>
#include <cmath>

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

// spatial_scale must be finite and positive in the dtype the kernels use
// it in: double for float64 tensors, float for every other dtype (float32,
// and half and bfloat16, which compute in float). 1e39 or 1e-46 pass as a
// double but become inf or 0 in float.
inline void check_spatial_scale(const char* op, const double spatial_scale,
                                const at::ScalarType dtype) {
  const bool in_double = dtype == at::kDouble;
  const double used =
      in_double ? spatial_scale
                : (std::fabs(spatial_scale) > FLT_MAX
                       ? std::copysign(INFINITY, spatial_scale)
                       : static_cast<double>(static_cast<float>(spatial_scale)));
  TORCH_CHECK_VALUE(std::isfinite(used) && used > 0, op,
                    ": spatial_scale must be positive and finite in ",
                    in_double ? "float64" : "float32",
                    " (the dtype the kernel computes it in), got ",
                    spatial_scale, ", which is ", used, " there");
}

// The value checks of the RoI rows [batch_idx, x1, y1, x2, y2] of a CPU
// kernel, run in the kernel itself (so the Python layer needs no host
// sync): every value finite, the batch index an integer in [0, batch).
template <typename scalar_t>
void check_roi_values(const char* op, const scalar_t* rois,
                      const int64_t num_rois, const int64_t batch) {
  for (int64_t n = 0; n < num_rois; ++n) {
    const scalar_t* roi = rois + n * 5;
    bool finite = true;
    for (int k = 0; k < 5; ++k)
      finite = finite && std::isfinite(static_cast<double>(roi[k]));
    TORCH_CHECK_VALUE(finite, op, ": rois must be finite, got row ", n,
                      ": [", roi[0], ", ", roi[1], ", ", roi[2], ", ",
                      roi[3], ", ", roi[4], "]");
    const double b = static_cast<double>(roi[0]);
    TORCH_CHECK_VALUE(b == std::floor(b) && b >= 0 && b < batch, op,
                      ": rois[:, 0] (batch index) must be an integer in [0, ",
                      batch, "), got ", b, " in row ", n);
  }
}

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

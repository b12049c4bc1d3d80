// Copyright (c) OpenMMLab. All rights reserved.
// Device-agnostic entry points of PSRoIPool: check the tensors, then run the
// CPU kernels or, in a CUDA build, the CUDA launchers.
#include "pytorch_cpp_helper.hpp"

void ps_roi_pool_forward_cpu(const at::Tensor& input, const at::Tensor& rois,
                             at::Tensor& output, const int output_dim,
                             const int pooled_size, const int group_size,
                             const double spatial_scale);
void ps_roi_pool_backward_cpu(const at::Tensor& grad_output,
                              const at::Tensor& rois, at::Tensor& grad_input,
                              const int output_dim, const int pooled_size,
                              const int group_size,
                              const double spatial_scale);

#ifdef MNC_MM_WITH_CUDA
void PSRoIPoolForwardCUDAKernelLauncher(const at::Tensor& input,
                                        const at::Tensor& rois,
                                        at::Tensor& output,
                                        const int output_dim,
                                        const int pooled_size,
                                        const int group_size,
                                        const double spatial_scale);
void PSRoIPoolBackwardCUDAKernelLauncher(const at::Tensor& grad_output,
                                         const at::Tensor& rois,
                                         at::Tensor& grad_input,
                                         const int output_dim,
                                         const int pooled_size,
                                         const int group_size,
                                         const double spatial_scale);
#endif

namespace {

// features: (N, D * k * k, H, W); rois: (R, 5); pooled: (R, D, P, P).
void check_ps_roi_pool_args(const at::Tensor& features, const at::Tensor& rois,
                            const at::Tensor& pooled,
                            const int64_t output_dim,
                            const int64_t pooled_size,
                            const int64_t group_size,
                            const double spatial_scale) {
  TORCH_CHECK(output_dim > 0 && pooled_size > 0 && group_size > 0,
              "ps_roi_pool: output_dim, pooled_size and group_size must be "
              "positive, got ", output_dim, ", ", pooled_size, ", ",
              group_size);
  TORCH_CHECK(spatial_scale > 0, "ps_roi_pool: spatial_scale must be "
              "positive, got ", spatial_scale);
  TORCH_CHECK(features.device() == rois.device() &&
                  features.device() == pooled.device(),
              "ps_roi_pool: all tensors must be on one device, got ",
              features.device(), ", ", rois.device(), ", ", pooled.device());
  TORCH_CHECK(features.scalar_type() == rois.scalar_type() &&
                  features.scalar_type() == pooled.scalar_type(),
              "ps_roi_pool: all tensors must have one dtype");
  CHECK_CONTIGUOUS(features);
  CHECK_CONTIGUOUS(rois);
  CHECK_CONTIGUOUS(pooled);
  TORCH_CHECK(features.dim() == 4 &&
                  features.size(1) == output_dim * group_size * group_size,
              "ps_roi_pool: the feature map must be (N, ",
              output_dim * group_size * group_size, ", H, W), got ",
              features.sizes());
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5,
              "ps_roi_pool: rois must be (R, 5), got ", rois.sizes());
  TORCH_CHECK(pooled.dim() == 4 && pooled.size(0) == rois.size(0) &&
                  pooled.size(1) == output_dim &&
                  pooled.size(2) == pooled_size &&
                  pooled.size(3) == pooled_size,
              "ps_roi_pool: the pooled tensor must be (", rois.size(0), ", ",
              output_dim, ", ", pooled_size, ", ", pooled_size, "), got ",
              pooled.sizes());
}

}  // namespace

// output: (R, D, P, P), fully written.
void ps_roi_pool_forward(at::Tensor input, at::Tensor rois, at::Tensor output,
                         int64_t output_dim, int64_t pooled_size,
                         int64_t group_size, double spatial_scale) {
  check_ps_roi_pool_args(input, rois, output, output_dim, pooled_size,
                         group_size, spatial_scale);
  if (rois.size(0) == 0) return;
  if (input.is_cuda()) {
#ifdef MNC_MM_WITH_CUDA
    PSRoIPoolForwardCUDAKernelLauncher(input, rois, output, output_dim,
                                       pooled_size, group_size, spatial_scale);
#else
    MNC_MM_CUDA_NOT_BUILT("ps_roi_pool");
#endif
  } else {
    CHECK_CPU(input);
    ps_roi_pool_forward_cpu(input, rois, output, output_dim, pooled_size,
                            group_size, spatial_scale);
  }
}

// grad_input: (N, D * k * k, H, W), zero-filled (or holding a gradient to
// add to); the op accumulates into it.
void ps_roi_pool_backward(at::Tensor grad_output, at::Tensor rois,
                          at::Tensor grad_input, int64_t output_dim,
                          int64_t pooled_size, int64_t group_size,
                          double spatial_scale) {
  check_ps_roi_pool_args(grad_input, rois, grad_output, output_dim,
                         pooled_size, group_size, spatial_scale);
  if (rois.size(0) == 0) return;
  if (grad_output.is_cuda()) {
#ifdef MNC_MM_WITH_CUDA
    PSRoIPoolBackwardCUDAKernelLauncher(grad_output, rois, grad_input,
                                        output_dim, pooled_size, group_size,
                                        spatial_scale);
#else
    MNC_MM_CUDA_NOT_BUILT("ps_roi_pool");
#endif
  } else {
    CHECK_CPU(grad_output);
    ps_roi_pool_backward_cpu(grad_output, rois, grad_input, output_dim,
                             pooled_size, group_size, spatial_scale);
  }
}

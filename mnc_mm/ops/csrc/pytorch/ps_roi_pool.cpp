// Copyright (c) OpenMMLab. All rights reserved.
// Device-agnostic entry points of PSRoIPool and PSRoIMaxAvgPool: check the
// tensors, then run the CPU kernels or, in a CUDA build, the CUDA launchers.
// The score maps come as their (N, D, k, k, H, W) view, any strides.
#include "pytorch_cpp_helper.hpp"

void ps_roi_pool_forward_cpu(const at::Tensor& maps, const at::Tensor& rois,
                             const at::Tensor& channel_start,
                             at::Tensor& output, const int output_dim,
                             const int pooled_size,
                             const double spatial_scale);
void ps_roi_pool_backward_cpu(const at::Tensor& grad_output,
                              const at::Tensor& rois,
                              const at::Tensor& channel_start,
                              at::Tensor& grad_maps, const int output_dim,
                              const int pooled_size,
                              const double spatial_scale);
void ps_roi_max_avg_pool_forward_cpu(const at::Tensor& maps,
                                     const at::Tensor& rois,
                                     at::Tensor& output, const int cig,
                                     const int pooled_size,
                                     const double spatial_scale);
void ps_roi_max_avg_pool_backward_cpu(const at::Tensor& grad_output,
                                      const at::Tensor& maps,
                                      const at::Tensor& rois,
                                      at::Tensor& grad_maps, const int cig,
                                      const int pooled_size,
                                      const double spatial_scale);

#ifdef MNC_MM_WITH_CUDA
void PSRoIPoolForwardCUDAKernelLauncher(const at::Tensor& maps,
                                        const at::Tensor& rois,
                                        const at::Tensor& channel_start,
                                        at::Tensor& output,
                                        const int output_dim,
                                        const int pooled_size,
                                        const double spatial_scale);
void PSRoIPoolBackwardCUDAKernelLauncher(const at::Tensor& grad_output,
                                         const at::Tensor& rois,
                                         const at::Tensor& channel_start,
                                         at::Tensor& grad_maps,
                                         const int output_dim,
                                         const int pooled_size,
                                         const double spatial_scale);
void PSRoIMaxAvgPoolForwardCUDAKernelLauncher(const at::Tensor& maps,
                                              const at::Tensor& rois,
                                              at::Tensor& output,
                                              const int cig,
                                              const int pooled_size,
                                              const double spatial_scale);
void PSRoIMaxAvgPoolBackwardCUDAKernelLauncher(
    const at::Tensor& grad_output, const at::Tensor& maps,
    const at::Tensor& rois, at::Tensor& grad_maps, const int cig,
    const int pooled_size, const double spatial_scale);
#endif

namespace {

// maps: (N, D, k, k, H, W); rois: (R, 5); out: R rows; one device, one
// dtype; rois and out contiguous.
void check_common(const char* op, const at::Tensor& maps,
                  const at::Tensor& rois, const at::Tensor& out,
                  const int64_t pooled_size, const double spatial_scale) {
  TORCH_CHECK(pooled_size > 0, op, ": pooled_size must be positive, got ",
              pooled_size);
  check_spatial_scale(op, spatial_scale, maps.scalar_type());
  TORCH_CHECK(maps.device() == rois.device() && maps.device() == out.device(),
              op, ": all tensors must be on one device, got ", maps.device(),
              ", ", rois.device(), ", ", out.device());
  TORCH_CHECK(maps.scalar_type() == rois.scalar_type() &&
                  maps.scalar_type() == out.scalar_type(),
              op, ": all tensors must have one dtype");
  TORCH_CHECK(maps.dim() == 6 && maps.size(2) == maps.size(3) &&
                  maps.size(2) > 0,
              op, ": the maps must be a (N, D, k, k, H, W) view, got ",
              maps.sizes());
  CHECK_CONTIGUOUS(rois);
  CHECK_CONTIGUOUS(out);
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, op,
              ": rois must be (R, 5), got ", rois.sizes());
  TORCH_CHECK(out.size(0) == rois.size(0), op, ": expected ", rois.size(0),
              " output rows, got ", out.sizes());
}

// PSRoIPool: pooled (R, D, P, P); channel_start empty (maps have D rows) or
// (R,) int64 with start + D <= the maps' rows (the Python wrapper checks the
// values).
void check_ps_roi_pool_args(const at::Tensor& maps, const at::Tensor& rois,
                            const at::Tensor& channel_start,
                            const at::Tensor& pooled,
                            const int64_t output_dim,
                            const int64_t pooled_size,
                            const double spatial_scale) {
  check_common("ps_roi_pool", maps, rois, pooled, pooled_size, spatial_scale);
  if (channel_start.numel() == 0) {
    TORCH_CHECK(maps.size(1) == output_dim, "ps_roi_pool: the maps must have ",
                output_dim, " channel rows, got ", maps.size(1));
  } else {
    TORCH_CHECK(maps.size(1) >= output_dim, "ps_roi_pool: the maps have ",
                maps.size(1), " channel rows, fewer than output_dim ",
                output_dim);
    TORCH_CHECK(channel_start.scalar_type() == at::kLong &&
                    channel_start.dim() == 1 &&
                    channel_start.size(0) == rois.size(0) &&
                    channel_start.device() == rois.device(),
                "ps_roi_pool: channel_start must be (", rois.size(0),
                ",) int64 on ", rois.device(), ", got ",
                channel_start.sizes(), " ", channel_start.scalar_type());
    CHECK_CONTIGUOUS(channel_start);
  }
  TORCH_CHECK(pooled.dim() == 4 && pooled.size(1) == output_dim &&
                  pooled.size(2) == pooled_size &&
                  pooled.size(3) == pooled_size,
              "ps_roi_pool: the pooled tensor must be (", rois.size(0), ", ",
              output_dim, ", ", pooled_size, ", ", pooled_size, "), got ",
              pooled.sizes());
}

// PSRoIMaxAvgPool: scores (R, D / cig).
void check_max_avg_args(const at::Tensor& maps, const at::Tensor& rois,
                        const at::Tensor& scores, const int64_t cig,
                        const int64_t pooled_size,
                        const double spatial_scale) {
  const char* op = "ps_roi_max_avg_pool";
  check_common(op, maps, rois, scores, pooled_size, spatial_scale);
  TORCH_CHECK(cig > 0 && maps.size(1) % cig == 0, op,
              ": channels_per_group must be positive and divide the maps' ",
              maps.size(1), " channel rows, got ", cig);
  TORCH_CHECK(scores.dim() == 2 && scores.size(1) == maps.size(1) / cig, op,
              ": the scores must be (", rois.size(0), ", ",
              maps.size(1) / cig, "), got ", scores.sizes());
}

}  // namespace

// output: (R, D, P, P), fully written.
void ps_roi_pool_forward(at::Tensor maps, at::Tensor rois,
                         at::Tensor channel_start, at::Tensor output,
                         int64_t output_dim, int64_t pooled_size,
                         double spatial_scale) {
  check_ps_roi_pool_args(maps, rois, channel_start, output, output_dim,
                         pooled_size, spatial_scale);
  if (rois.size(0) == 0) return;
  if (maps.is_cuda()) {
#ifdef MNC_MM_WITH_CUDA
    PSRoIPoolForwardCUDAKernelLauncher(maps, rois, channel_start, output,
                                       output_dim, pooled_size,
                                       spatial_scale);
#else
    MNC_MM_CUDA_NOT_BUILT("ps_roi_pool");
#endif
  } else {
    CHECK_CPU(maps);
    ps_roi_pool_forward_cpu(maps, rois, channel_start, output, output_dim,
                            pooled_size, spatial_scale);
  }
}

// grad_maps: like the maps, zero-filled (or holding a gradient to add to);
// the op accumulates into it.
void ps_roi_pool_backward(at::Tensor grad_output, at::Tensor rois,
                          at::Tensor channel_start, at::Tensor grad_maps,
                          int64_t output_dim, int64_t pooled_size,
                          double spatial_scale) {
  check_ps_roi_pool_args(grad_maps, rois, channel_start, grad_output,
                         output_dim, pooled_size, spatial_scale);
  if (rois.size(0) == 0) return;
  if (grad_output.is_cuda()) {
#ifdef MNC_MM_WITH_CUDA
    PSRoIPoolBackwardCUDAKernelLauncher(grad_output, rois, channel_start,
                                        grad_maps, output_dim, pooled_size,
                                        spatial_scale);
#else
    MNC_MM_CUDA_NOT_BUILT("ps_roi_pool");
#endif
  } else {
    CHECK_CPU(grad_output);
    ps_roi_pool_backward_cpu(grad_output, rois, channel_start, grad_maps,
                             output_dim, pooled_size, spatial_scale);
  }
}

// output: (R, G), fully written.
void ps_roi_max_avg_pool_forward(at::Tensor maps, at::Tensor rois,
                                 at::Tensor output,
                                 int64_t channels_per_group,
                                 int64_t pooled_size, double spatial_scale) {
  check_max_avg_args(maps, rois, output, channels_per_group, pooled_size,
                     spatial_scale);
  if (rois.size(0) == 0) return;
  if (maps.is_cuda()) {
#ifdef MNC_MM_WITH_CUDA
    PSRoIMaxAvgPoolForwardCUDAKernelLauncher(maps, rois, output,
                                             channels_per_group, pooled_size,
                                             spatial_scale);
#else
    MNC_MM_CUDA_NOT_BUILT("ps_roi_max_avg_pool");
#endif
  } else {
    CHECK_CPU(maps);
    ps_roi_max_avg_pool_forward_cpu(maps, rois, output, channels_per_group,
                                    pooled_size, spatial_scale);
  }
}

// grad_maps: like the maps, zero-filled (or holding a gradient to add to).
void ps_roi_max_avg_pool_backward(at::Tensor grad_output, at::Tensor maps,
                                  at::Tensor rois, at::Tensor grad_maps,
                                  int64_t channels_per_group,
                                  int64_t pooled_size, double spatial_scale) {
  check_max_avg_args(maps, rois, grad_output, channels_per_group, pooled_size,
                     spatial_scale);
  TORCH_CHECK(grad_maps.sizes() == maps.sizes() &&
                  grad_maps.scalar_type() == maps.scalar_type() &&
                  grad_maps.device() == maps.device(),
              "ps_roi_max_avg_pool: grad_maps must be like the maps ",
              maps.sizes(), ", got ", grad_maps.sizes());
  if (rois.size(0) == 0) return;
  if (maps.is_cuda()) {
#ifdef MNC_MM_WITH_CUDA
    PSRoIMaxAvgPoolBackwardCUDAKernelLauncher(grad_output, maps, rois,
                                              grad_maps, channels_per_group,
                                              pooled_size, spatial_scale);
#else
    MNC_MM_CUDA_NOT_BUILT("ps_roi_max_avg_pool");
#endif
  } else {
    CHECK_CPU(maps);
    ps_roi_max_avg_pool_backward_cpu(grad_output, maps, rois, grad_maps,
                                     channels_per_group, pooled_size,
                                     spatial_scale);
  }
}

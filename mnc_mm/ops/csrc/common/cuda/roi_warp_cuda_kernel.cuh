// Copyright (c) OpenMMLab. All rights reserved.
// CUDA kernels of the RoI warp of MNC (Dai et al., CVPR 2016, Eq. 8), after
// caffe-mnc `roi_warping_layer.cu` (ROIWarpingForward, bilinear_interpolate).
//
// Torch-free: compiles with plain nvcc. The sampling geometry and the
// per-element math are the `__host__ __device__` helpers of
// roi_warp_utils.hpp, which the CPU kernels (pytorch/cpu/roi_warp_cpu.cpp)
// use too; the `__global__` kernels below are compiled only by nvcc.
#ifndef MNC_MM_ROI_WARP_CUDA_KERNEL_CUH
#define MNC_MM_ROI_WARP_CUDA_KERNEL_CUH

#include <cstdint>

#include "common_cuda_helper.hpp"
#include "roi_warp_utils.hpp"

#ifdef __CUDACC__

// Forward: one thread per output element (r, c, ph, pw).
// input (N, C, H, W), rois (R, 5), output (R, C, PH, PW).
template <typename scalar_t, typename acc_t>
__global__ void roi_warp_forward_cuda_kernel(
    const int64_t nthreads, const scalar_t* input, const scalar_t* rois,
    scalar_t* output, const int64_t batch, const int channels,
    const int height, const int width,
    const int pooled_height, const int pooled_width, const acc_t scale,
    const bool quantize) {
  CUDA_1D_KERNEL_LOOP(index, nthreads) {
    const int pw = index % pooled_width;
    const int ph = (index / pooled_width) % pooled_height;
    const int c = (index / pooled_width / pooled_height) % channels;
    const int64_t r = index / pooled_width / pooled_height / channels;
    const scalar_t* roi = rois + r * 5;
    MNC_MM_CHECK_ROI(acc_t, roi, batch);
    const int64_t n = static_cast<int64_t>(static_cast<acc_t>(roi[0]));
    const RoIWarpAxis<acc_t> ax =
        roi_warp_axis<acc_t>(roi[1], roi[3], scale, quantize, pooled_width);
    const RoIWarpAxis<acc_t> ay =
        roi_warp_axis<acc_t>(roi[2], roi[4], scale, quantize, pooled_height);
    int ylo, yhi, xlo, xhi;
    acc_t ly, lx;
    acc_t val = acc_t(0);
    if (roi_warp_taps<acc_t>(roi_warp_sample(ay, ph), height, &ylo, &yhi,
                             &ly) &&
        roi_warp_taps<acc_t>(roi_warp_sample(ax, pw), width, &xlo, &xhi,
                             &lx)) {
      const scalar_t* plane = input + (n * channels + c) * height * width;
      val = roi_warp_bilinear<acc_t>(
          plane[ylo * width + xlo], plane[ylo * width + xhi],
          plane[yhi * width + xlo], plane[yhi * width + xhi], ly, lx);
    }
    output[index] = static_cast<scalar_t>(val);
  }
}

// Backward: block (r, chunk) strides over the C * PH * PW outputs of RoI r.
// Feature gradient: exact adjoint, atomicAdd into grad_input (acc_t, so a
// half op accumulates in float); skipped if grad_input is null.
// Box gradient: per-thread sums, a block tree reduction, then one atomicAdd
// per block into grad_rois[r, 1:5]; skipped if grad_rois is null.
// Launch with blockDim.x == THREADS_PER_BLOCK (a power of two).
template <typename scalar_t, typename acc_t>
__global__ void roi_warp_backward_cuda_kernel(
    const scalar_t* grad_output, const scalar_t* input, const scalar_t* rois,
    acc_t* grad_input, acc_t* grad_rois, const int64_t batch,
    const int channels, const int height,
    const int width, const int pooled_height, const int pooled_width,
    const acc_t scale, const bool quantize) {
  __shared__ acc_t partial[4][THREADS_PER_BLOCK];
  const int64_t r = blockIdx.x;
  const scalar_t* roi = rois + r * 5;
  MNC_MM_CHECK_ROI(acc_t, roi, batch);
  const int64_t n = static_cast<int64_t>(static_cast<acc_t>(roi[0]));
  const RoIWarpAxis<acc_t> ax =
      roi_warp_axis<acc_t>(roi[1], roi[3], scale, quantize, pooled_width);
  const RoIWarpAxis<acc_t> ay =
      roi_warp_axis<acc_t>(roi[2], roi[4], scale, quantize, pooled_height);
  const int64_t per_roi =
      static_cast<int64_t>(channels) * pooled_height * pooled_width;
  const scalar_t* g_roi = grad_output + r * per_roi;
  acc_t sum[4] = {acc_t(0), acc_t(0), acc_t(0), acc_t(0)};
  for (int64_t i = blockIdx.y * (int64_t)blockDim.x + threadIdx.x;
       i < per_roi; i += (int64_t)blockDim.x * gridDim.y) {
    const int pw = i % pooled_width;
    const int ph = (i / pooled_width) % pooled_height;
    const int c = i / pooled_width / pooled_height;
    int ylo, yhi, xlo, xhi;
    acc_t ly, lx;
    if (!roi_warp_taps<acc_t>(roi_warp_sample(ay, ph), height, &ylo, &yhi,
                              &ly) ||
        !roi_warp_taps<acc_t>(roi_warp_sample(ax, pw), width, &xlo, &xhi,
                              &lx))
      continue;
    const acc_t g = static_cast<acc_t>(g_roi[i]);
    const int64_t plane_off = (n * channels + c) * height * width;
    if (grad_input != nullptr) {
      acc_t* gp = grad_input + plane_off;
      atomicAdd(gp + ylo * width + xlo, g * (acc_t(1) - ly) * (acc_t(1) - lx));
      atomicAdd(gp + ylo * width + xhi, g * (acc_t(1) - ly) * lx);
      atomicAdd(gp + yhi * width + xlo, g * ly * (acc_t(1) - lx));
      atomicAdd(gp + yhi * width + xhi, g * ly * lx);
    }
    if (grad_rois != nullptr) {
      const scalar_t* plane = input + plane_off;
      acc_t dx, dy;
      roi_warp_bilinear_grad<acc_t>(
          plane[ylo * width + xlo], plane[ylo * width + xhi],
          plane[yhi * width + xlo], plane[yhi * width + xhi], ly, lx, &dx,
          &dy);
      sum[0] += g * dx * roi_warp_d_first(ax, pw);
      sum[1] += g * dy * roi_warp_d_first(ay, ph);
      sum[2] += g * dx * (pw * ax.d_step);
      sum[3] += g * dy * (ph * ay.d_step);
    }
  }
  if (grad_rois == nullptr) return;  // uniform across the block
  for (int k = 0; k < 4; ++k) partial[k][threadIdx.x] = sum[k];
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride)
      for (int k = 0; k < 4; ++k)
        partial[k][threadIdx.x] += partial[k][threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    for (int k = 0; k < 4; ++k)
      atomicAdd(grad_rois + r * 5 + 1 + k, partial[k][0]);
}

#endif  // __CUDACC__

#endif  // MNC_MM_ROI_WARP_CUDA_KERNEL_CUH

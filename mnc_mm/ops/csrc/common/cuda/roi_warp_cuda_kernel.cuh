// Copyright (c) OpenMMLab. All rights reserved.
// RoI warping of MNC (Dai et al., CVPR 2016, Eq. 8), after caffe-mnc
// `roi_warping_layer.cu` (ROIWarpingForward, bilinear_interpolate).
//
// Torch-free: the per-element math below is `__host__ __device__` so the CPU
// kernels (pytorch/cpu/roi_warp_cpu.cpp) include this header too; the
// `__global__` kernels are compiled only by nvcc.
//
// Geometry of one axis (x shown, y alike), output cell pw in [0, P):
//   a1 = s * x1, a2 = s * x2, each rounded half away from zero if quantize;
//   bin = max(a2 - a1, 0) / P;  x(pw) = a1 + pw * bin.
// One bilinear sample per cell at the bin's top-left corner: the grid spans
// [a1, a2 - bin], with no +1 and no half-pixel offset (mnc_spec §3.1,
// §13.2).
// An inverted box (a2 < a1) has bin = 0: every cell samples the line a1.
// Border rules of the official kernel: a sample with x < -0.5 or
// x > W - 0.5 is 0; otherwise x < 0 clamps to 0 and x >= W - 1 to W - 1.
#ifndef MNC_MM_ROI_WARP_CUDA_KERNEL_CUH
#define MNC_MM_ROI_WARP_CUDA_KERNEL_CUH

#include <cmath>
#include <cstdint>

#include "common_cuda_helper.hpp"

#include "host_device.hpp"

// Round half away from zero, as CUDA's round() (torch.round is half-even).
template <typename T>
MNC_MM_HOST_DEVICE inline T roi_warp_round(T v) {
#ifdef __CUDA_ARCH__
  return round(v);
#else
  return std::round(v);
#endif
}

// Sampling grid of one axis of one RoI.
//   start, bin: sample p lies at start + p * bin (feature-map pixels);
//   d_first, d_step: d(sample p)/d(first corner) = d_first - p * d_step and
//   d(sample p)/d(second corner) = p * d_step, in feature pixels per image
//   pixel. With quantize the rounding is passed straight through (§4.3).
template <typename T>
struct RoIWarpAxis {
  T start, bin, d_first, d_step;
};

template <typename T>
MNC_MM_HOST_DEVICE inline RoIWarpAxis<T> roi_warp_axis(T c1, T c2, T scale,
                                                      bool quantize,
                                                      int pooled) {
  T a1 = c1 * scale, a2 = c2 * scale;
  if (quantize) {
    a1 = roi_warp_round(a1);
    a2 = roi_warp_round(a2);
  }
  RoIWarpAxis<T> axis;
  axis.start = a1;
  if (a2 >= a1) {
    axis.bin = (a2 - a1) / static_cast<T>(pooled);
    axis.d_first = scale;
    axis.d_step = scale / static_cast<T>(pooled);
  } else {  // inverted: max(a2 - a1, 0) = 0 pins every sample to a1
    axis.bin = T(0);
    axis.d_first = scale;
    axis.d_step = T(0);
  }
  return axis;
}

// Bilinear taps of one sample coordinate on an axis of `size` pixels.
// Returns false if the sample lies outside [-0.5, size - 0.5] or is NaN
// (e.g. 0 * inf from an overflowing box): value 0, no gradient. In a
// clamped region lo == hi, so the forward is flat there and the derivative
// v(hi) - v(lo) is 0; at an integer position the derivative is the
// right-sided one, v(lo + 1) - v(lo).
template <typename T>
MNC_MM_HOST_DEVICE inline bool roi_warp_taps(T pos, int size, int* lo,
                                             int* hi, T* frac) {
  if (!(pos >= T(-0.5) && pos <= static_cast<T>(size) - T(0.5)))
    return false;
  if (pos < T(0)) {
    *lo = 0;
    *hi = 0;
    *frac = T(0);
    return true;
  }
  *lo = static_cast<int>(pos);
  if (*lo >= size - 1) {
    *lo = size - 1;
    *hi = size - 1;
    *frac = T(0);
    return true;
  }
  *hi = *lo + 1;
  *frac = pos - static_cast<T>(*lo);
  return true;
}

// Bilinear value from the four corners v_{y x}: v00 = F[ylo, xlo],
// v01 = F[ylo, xhi], v10 = F[yhi, xlo], v11 = F[yhi, xhi].
template <typename T>
MNC_MM_HOST_DEVICE inline T roi_warp_bilinear(T v00, T v01, T v10, T v11,
                                              T ly, T lx) {
  return (T(1) - ly) * ((T(1) - lx) * v00 + lx * v01) +
         ly * ((T(1) - lx) * v10 + lx * v11);
}

// d(value)/dx and d(value)/dy of the bilinear sample.
template <typename T>
MNC_MM_HOST_DEVICE inline void roi_warp_bilinear_grad(T v00, T v01, T v10,
                                                      T v11, T ly, T lx,
                                                      T* dx, T* dy) {
  *dx = (T(1) - ly) * (v01 - v00) + ly * (v11 - v10);
  *dy = (T(1) - lx) * (v10 - v00) + lx * (v11 - v01);
}

#ifdef __CUDACC__

// Forward: one thread per output element (r, c, ph, pw).
// input (N, C, H, W), rois (R, 5), output (R, C, PH, PW).
template <typename scalar_t, typename acc_t>
__global__ void roi_warp_forward_cuda_kernel(
    const int64_t nthreads, const scalar_t* input, const scalar_t* rois,
    scalar_t* output, const int channels, const int height, const int width,
    const int pooled_height, const int pooled_width, const acc_t scale,
    const bool quantize) {
  CUDA_1D_KERNEL_LOOP(index, nthreads) {
    const int pw = index % pooled_width;
    const int ph = (index / pooled_width) % pooled_height;
    const int c = (index / pooled_width / pooled_height) % channels;
    const int64_t r = index / pooled_width / pooled_height / channels;
    const scalar_t* roi = rois + r * 5;
    const int64_t n = static_cast<int64_t>(static_cast<acc_t>(roi[0]));
    const RoIWarpAxis<acc_t> ax =
        roi_warp_axis<acc_t>(roi[1], roi[3], scale, quantize, pooled_width);
    const RoIWarpAxis<acc_t> ay =
        roi_warp_axis<acc_t>(roi[2], roi[4], scale, quantize, pooled_height);
    int ylo, yhi, xlo, xhi;
    acc_t ly, lx;
    acc_t val = acc_t(0);
    if (roi_warp_taps<acc_t>(ay.start + ph * ay.bin, height, &ylo, &yhi,
                             &ly) &&
        roi_warp_taps<acc_t>(ax.start + pw * ax.bin, width, &xlo, &xhi,
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
    acc_t* grad_input, acc_t* grad_rois, const int channels, const int height,
    const int width, const int pooled_height, const int pooled_width,
    const acc_t scale, const bool quantize) {
  __shared__ acc_t partial[4][THREADS_PER_BLOCK];
  const int64_t r = blockIdx.x;
  const scalar_t* roi = rois + r * 5;
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
    if (!roi_warp_taps<acc_t>(ay.start + ph * ay.bin, height, &ylo, &yhi,
                              &ly) ||
        !roi_warp_taps<acc_t>(ax.start + pw * ax.bin, width, &xlo, &xhi,
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
      sum[0] += g * dx * (ax.d_first - pw * ax.d_step);
      sum[1] += g * dy * (ay.d_first - ph * ay.d_step);
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

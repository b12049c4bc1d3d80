// Copyright (c) OpenMMLab. All rights reserved.
// Torch-free sampling geometry and bilinear math of the RoI warp of MNC
// (Dai et al., CVPR 2016, Eq. 8), after caffe-mnc `roi_warping_layer.cu`
// (ROIWarpingForward, bilinear_interpolate), shared by the CPU kernels (g++,
// pytorch/cpu/roi_warp_cpu.cpp) and the CUDA kernels (nvcc,
// common/cuda/roi_warp_cuda_kernel.cuh).
//
// Geometry of one axis (x shown, y alike), output cell pw in [0, P):
//   a1 = s * x1, a2 = s * x2, each rounded half away from zero if quantize;
//   bin = max(a2 - a1, 0) / P;  x(pw) = a1 + pw * bin.
// One bilinear sample per cell at the bin's top-left corner: the grid spans
// [a1, a2 - bin], with no +1 and no half-pixel offset.
// An inverted box (a2 < a1) has bin = 0: every cell samples the line a1.
// Border rules of the official kernel: a sample with x < -0.5 or
// x > W - 0.5 is 0; otherwise x < 0 clamps to 0 and x >= W - 1 to W - 1.
#ifndef MNC_MM_ROI_WARP_UTILS_HPP
#define MNC_MM_ROI_WARP_UTILS_HPP
#include <cmath>

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
//   pixel. With quantize the rounding is passed straight through.
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
  // a2 - a1; without rounding s * c2 - a1 is the expression nvcc contracts
  // to one fma, so it is written as that fma (see roi_warp_sample).
  using std::fma;
  const T extent = quantize ? a2 - a1 : fma(c2, scale, -a1);
  RoIWarpAxis<T> axis;
  axis.start = a1;
  if (extent >= T(0)) {
    axis.bin = extent / static_cast<T>(pooled);
    axis.d_first = scale;
    axis.d_step = scale / static_cast<T>(pooled);
  } else {  // inverted: max(a2 - a1, 0) = 0 pins every sample to a1
    axis.bin = T(0);
    axis.d_first = scale;
    axis.d_step = T(0);
  }
  return axis;
}

// Position of sample p, start + p * bin, and its derivative w.r.t. the
// first corner, d_first - p * d_step. nvcc contracts both to a fused
// multiply-add; written as fma() here, the CPU kernels (g++) and the CUDA
// kernels round them identically in any FP contraction mode, so an exact
// integer or border sample falls on the same side for both.
template <typename T>
MNC_MM_HOST_DEVICE inline T roi_warp_sample(const RoIWarpAxis<T>& axis,
                                            const int p) {
  using std::fma;
  return fma(static_cast<T>(p), axis.bin, axis.start);
}

template <typename T>
MNC_MM_HOST_DEVICE inline T roi_warp_d_first(const RoIWarpAxis<T>& axis,
                                             const int p) {
  using std::fma;
  return fma(-static_cast<T>(p), axis.d_step, axis.d_first);
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

#endif  // MNC_MM_ROI_WARP_UTILS_HPP

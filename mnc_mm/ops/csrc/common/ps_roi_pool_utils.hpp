// Copyright (c) OpenMMLab. All rights reserved.
// Torch-free RoI projection and bin limits of PSRoIPool (msracver/FCIS
// fcis/operator_cxx/psroi_pooling.cu, PSROIPoolForwardKernel), shared by the
// CPU kernels (g++) and the CUDA kernels (nvcc). The expressions nvcc would
// contract to fused multiply-adds are written as fma(), so both compute the
// same limits.
#ifndef MNC_MM_PS_ROI_POOL_UTILS_HPP
#define MNC_MM_PS_ROI_POOL_UTILS_HPP
#include <cmath>

#include "host_device.hpp"

// One RoI on the feature grid: start corner and bin size, in cells.
template <typename T>
struct PSRoIPoolBox {
  T start_w, start_h, bin_w, bin_h;
};

// The box of roi = [x1, y1, x2, y2] in image pixels: round half
// away from zero (C `round`, not torch.round) before scaling, +1 on the end
// coordinate, extent at least 0.1 cell, bin size = extent / pooled_size.
template <typename T>
MNC_MM_HOST_DEVICE inline PSRoIPoolBox<T> ps_roi_pool_box(
    const T x1, const T y1, const T x2, const T y2, const T spatial_scale,
    const int pooled_size) {
  using std::fma;
  using std::round;
  const T start_w = round(x1) * spatial_scale;
  const T start_h = round(y1) * spatial_scale;
  // The official kernel's `roi_end_w - roi_start_w` with roi_end_w =
  // (round(x2) + 1) * scale (msracver/FCIS psroi_pooling.cu): nvcc contracts
  // it to one fused multiply-add. Written as that fma, the CPU (g++) and the
  // CUDA kernels round the extent identically, whatever the compiler's FP
  // contraction mode.
  const T extent_w = fma(round(x2) + T(1), spatial_scale, -start_w);
  const T extent_h = fma(round(y2) + T(1), spatial_scale, -start_h);
  const T min_size = T(0.1);
  const T roi_w = extent_w > min_size ? extent_w : min_size;
  const T roi_h = extent_h > min_size ? extent_h : min_size;
  PSRoIPoolBox<T> box;
  box.start_w = start_w;
  box.start_h = start_h;
  box.bin_w = roi_w / static_cast<T>(pooled_size);
  box.bin_h = roi_h / static_cast<T>(pooled_size);
  return box;
}

// Along one axis: the half-open cell range [*lo, *hi) of bin
// p, floor/ceil of the float limits, clamped to [0, size]. The official
// kernel writes `floor(p * bin + start)`, which nvcc contracts to a fused
// multiply-add; fma() here keeps CPU and CUDA identical to it at the rare
// limits within one ulp of an integer.
// Every input gives 0 <= *lo, *hi <= size: the clamps run in T, so huge or
// infinite limits never reach the int conversion, and a NaN limit (e.g.
// 0 * inf when the scaled box overflows) makes the bin empty (*lo = *hi =
// 0): a NaN never passes `a <= b`.
template <typename T>
MNC_MM_HOST_DEVICE inline void ps_roi_pool_bin_range(const T start,
                                                     const T bin, const int p,
                                                     const int size, int* lo,
                                                     int* hi) {
  using std::ceil;
  using std::floor;
  using std::fma;
  const T upper = static_cast<T>(size);
  T a = floor(fma(static_cast<T>(p), bin, start));
  T b = ceil(fma(static_cast<T>(p + 1), bin, start));
  if (!(a <= b)) {  // NaN limit (or an inverted one): empty bin
    *lo = 0;
    *hi = 0;
    return;
  }
  a = a > T(0) ? (a < upper ? a : upper) : T(0);
  b = b > T(0) ? (b < upper ? b : upper) : T(0);
  *lo = static_cast<int>(a);
  *hi = static_cast<int>(b);
}

// Position-sensitive group of bin p, floor(p * k / P)
// clamped to [0, k - 1] (integer division equals the official float floor
// for any realistic sizes).
MNC_MM_HOST_DEVICE inline int ps_roi_pool_group(const int p,
                                                const int group_size,
                                                const int pooled_size) {
  const int g = p * group_size / pooled_size;
  return g < group_size - 1 ? g : group_size - 1;
}

#endif  // MNC_MM_PS_ROI_POOL_UTILS_HPP

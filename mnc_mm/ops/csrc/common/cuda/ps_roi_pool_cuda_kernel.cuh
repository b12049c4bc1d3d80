// Copyright (c) OpenMMLab. All rights reserved.
// CUDA kernels of PSRoIPool, the official FCIS psroi_pooling.cu recipe
// (msracver/FCIS psroi_pooling.cu), and of its fused variant PSRoIMaxAvgPool
// (PSRoIPool, Group_Max, average over the bins). Torch-free: compiles with
// plain nvcc. The CPU kernels (pytorch/cpu/ps_roi_pool_cpu.cpp) are the
// reference: same bins, same per-bin sums, same winners.
//
// The score maps come as a (N, D, k, k, H, W) view with any strides (the
// official (N, D * k * k, H, W) layout, or channels-last).
#ifndef MNC_MM_PS_ROI_POOL_CUDA_KERNEL_CUH
#define MNC_MM_PS_ROI_POOL_CUDA_KERNEL_CUH
#include <cfloat>
#include <cstdint>

#include "common_cuda_helper.hpp"
#include "ps_roi_pool_utils.hpp"

// The (N, D, k, k, H, W) maps as the kernels index them: sizes, and strides
// in elements (element (b, d, gh, gw, h, w) at b * stride_n + d * stride_d +
// gh * stride_gh + gw * stride_gw + h * stride_h + w * stride_w).
struct PSRoIPoolMaps {
  int batch, rows, group_size, height, width;
  int64_t stride_n, stride_d, stride_gh, stride_gw, stride_h, stride_w;
};

// One bin of one RoI: image b, position-sensitive group (gh, gw), cells
// [hstart, hend) x [wstart, wend).
struct PSRoIPoolCudaBin {
  int64_t b;
  int gh, gw, hstart, hend, wstart, wend;

  // Offset of cell (0, 0) of channel row `row` of this bin in `maps`.
  __device__ int64_t channel(const PSRoIPoolMaps& maps,
                             const int64_t row) const {
    return b * maps.stride_n + row * maps.stride_d + gh * maps.stride_gh +
           gw * maps.stride_gw;
  }
};

// Bin (ph, pw) of the RoI `roi` = [batch_idx, x1, y1, x2, y2]. Returns false
// for an empty bin. A RoI with a non-finite value or a batch index outside
// [0, batch) stops the kernel (MNC_MM_CHECK_ROI).
template <typename scalar_t, typename acc_t>
__device__ inline bool ps_roi_pool_cuda_bin(const scalar_t* roi,
                                            const acc_t spatial_scale,
                                            const PSRoIPoolMaps& maps,
                                            const int pooled_size,
                                            const int ph, const int pw,
                                            PSRoIPoolCudaBin* bin) {
  MNC_MM_CHECK_ROI(acc_t, roi, maps.batch);
  const acc_t b = static_cast<acc_t>(roi[0]);
  const PSRoIPoolBox<acc_t> box = ps_roi_pool_box<acc_t>(
      static_cast<acc_t>(roi[1]), static_cast<acc_t>(roi[2]),
      static_cast<acc_t>(roi[3]), static_cast<acc_t>(roi[4]), spatial_scale,
      pooled_size);
  ps_roi_pool_bin_range<acc_t>(box.start_h, box.bin_h, ph, maps.height,
                               &bin->hstart, &bin->hend);
  ps_roi_pool_bin_range<acc_t>(box.start_w, box.bin_w, pw, maps.width,
                               &bin->wstart, &bin->wend);
  if (bin->hend <= bin->hstart || bin->wend <= bin->wstart) return false;
  bin->b = static_cast<int64_t>(b);
  bin->gh = ps_roi_pool_group(ph, maps.group_size, pooled_size);
  bin->gw = ps_roi_pool_group(pw, maps.group_size, pooled_size);
  return true;
}

// PSRoIPool's value of one bin of the channel whose cell (0, 0) is at
// `channel`: the cells summed in acc_t in row-major order, divided by the
// area, in scalar_t. acc_t is float for half, else scalar_t (the official
// kernel sums in the tensor dtype).
template <typename scalar_t, typename acc_t>
__device__ inline scalar_t ps_roi_pool_cuda_average(
    const scalar_t* channel, const PSRoIPoolMaps& maps,
    const PSRoIPoolCudaBin& bin) {
  acc_t sum = acc_t(0);
  for (int h = bin.hstart; h < bin.hend; ++h) {
    for (int w = bin.wstart; w < bin.wend; ++w) {
      sum += static_cast<acc_t>(
          channel[h * maps.stride_h + w * maps.stride_w]);
    }
  }
  const acc_t area =
      static_cast<acc_t>((bin.hend - bin.hstart) * (bin.wend - bin.wstart));
  return static_cast<scalar_t>(sum / area);
}

// Group_Max of group g in one bin: a strict `>` scan from -FLT_MAX over the
// PSRoIPool values of channel rows g * cig + j, j < cig (ties to the lowest
// row, NaN never wins). Returns the winning row, or -1 if none wins;
// *best = its value (-FLT_MAX if none).
template <typename scalar_t, typename acc_t>
__device__ inline int64_t ps_roi_group_max_cuda(const scalar_t* maps_data,
                                                const PSRoIPoolMaps& maps,
                                                const PSRoIPoolCudaBin& bin,
                                                const int64_t g,
                                                const int cig, acc_t* best) {
  const scalar_t* channel = maps_data + bin.channel(maps, g * cig);
  acc_t top = static_cast<acc_t>(-FLT_MAX);
  int64_t top_row = -1;
  for (int j = 0; j < cig; ++j, channel += maps.stride_d) {
    const acc_t value = static_cast<acc_t>(
        ps_roi_pool_cuda_average<scalar_t, acc_t>(channel, maps, bin));
    if (value > top) {  // false for NaN
      top = value;
      top_row = g * cig + j;
    }
  }
  *best = top;
  return top_row;
}

// Adds `value` to every cell of one bin of the channel at `channel`.
template <typename acc_t>
__device__ inline void ps_roi_pool_cuda_scatter(acc_t* channel,
                                                const PSRoIPoolMaps& maps,
                                                const PSRoIPoolCudaBin& bin,
                                                const acc_t value) {
  for (int h = bin.hstart; h < bin.hend; ++h) {
    for (int w = bin.wstart; w < bin.wend; ++w) {
      atomicAdd(channel + h * maps.stride_h + w * maps.stride_w, value);
    }
  }
}

// Output element `index` = (n, d, ph, pw) of PSRoIPool's (R, D, P, P)
// output: its bin and its input channel row, start[n] + d (channel_start
// null: d). Returns false where the output is 0 and gets no gradient: an
// empty bin, an invalid batch index, or a row outside [0, rows) (the Python
// wrapper rejects such starts).
template <typename scalar_t, typename acc_t>
__device__ inline bool ps_roi_pool_cuda_element(
    const int64_t index, const scalar_t* rois, const int64_t* channel_start,
    const acc_t spatial_scale, const PSRoIPoolMaps& maps,
    const int output_dim, const int pooled_size, PSRoIPoolCudaBin* bin,
    int64_t* row) {
  const int pw = index % pooled_size;
  const int ph = (index / pooled_size) % pooled_size;
  const int64_t d = (index / pooled_size / pooled_size) % output_dim;
  const int64_t n = index / pooled_size / pooled_size / output_dim;
  *row = channel_start ? channel_start[n] + d : d;
  return *row >= 0 && *row < maps.rows &&
         ps_roi_pool_cuda_bin<scalar_t, acc_t>(rois + n * 5, spatial_scale,
                                               maps, pooled_size, ph, pw, bin);
}

// One thread per output element (n, d, ph, pw): the average of its channel
// row at position (gh, gw) over the bin, 0 for an empty bin.
template <typename scalar_t, typename acc_t>
__global__ void ps_roi_pool_forward_cuda_kernel(
    const int64_t nthreads, const scalar_t* maps_data,
    const PSRoIPoolMaps maps, const scalar_t* rois,
    const int64_t* channel_start, scalar_t* output, const acc_t spatial_scale,
    const int output_dim, const int pooled_size) {
  CUDA_1D_KERNEL_LOOP(index, nthreads) {
    PSRoIPoolCudaBin bin;
    int64_t row;
    output[index] =
        ps_roi_pool_cuda_element<scalar_t, acc_t>(
            index, rois, channel_start, spatial_scale, maps, output_dim,
            pooled_size, &bin, &row)
            ? ps_roi_pool_cuda_average<scalar_t, acc_t>(
                  maps_data + bin.channel(maps, row), maps, bin)
            : static_cast<scalar_t>(0);
  }
}

// One thread per output element: atomically adds grad / area to every cell
// of its bin. grad_maps is acc_t (a float buffer for half), indexed by
// `maps` (its sizes and strides), zeroed or holding a gradient to add to.
// No gradient flows to the RoIs.
template <typename scalar_t, typename acc_t>
__global__ void ps_roi_pool_backward_cuda_kernel(
    const int64_t nthreads, const scalar_t* grad_output, const scalar_t* rois,
    const int64_t* channel_start, acc_t* grad_maps, const PSRoIPoolMaps maps,
    const acc_t spatial_scale, const int output_dim, const int pooled_size) {
  CUDA_1D_KERNEL_LOOP(index, nthreads) {
    const acc_t grad = static_cast<acc_t>(grad_output[index]);
    if (grad == acc_t(0)) continue;  // e.g. RoIs dropped by OHEM
    PSRoIPoolCudaBin bin;
    int64_t row;
    if (!ps_roi_pool_cuda_element<scalar_t, acc_t>(
            index, rois, channel_start, spatial_scale, maps, output_dim,
            pooled_size, &bin, &row)) {
      continue;
    }
    const acc_t area =
        static_cast<acc_t>((bin.hend - bin.hstart) * (bin.wend - bin.wstart));
    ps_roi_pool_cuda_scatter(grad_maps + bin.channel(maps, row), maps, bin,
                             grad / area);
  }
}

// One thread per output element (n, g) of the (R, G) scores, G = rows /
// cig: the mean over the P * P bins of the Group_Max of group g, summed in
// double in row-major bin order. An empty bin (and a RoI of an invalid batch
// index) adds 0.
template <typename scalar_t, typename acc_t>
__global__ void ps_roi_max_avg_pool_forward_cuda_kernel(
    const int64_t nthreads, const scalar_t* maps_data,
    const PSRoIPoolMaps maps, const scalar_t* rois, scalar_t* output,
    const acc_t spatial_scale, const int cig, const int pooled_size) {
  const int64_t num_groups = maps.rows / cig;
  CUDA_1D_KERNEL_LOOP(index, nthreads) {
    const int64_t g = index % num_groups;
    const int64_t n = index / num_groups;
    double total = 0.;
    for (int ph = 0; ph < pooled_size; ++ph) {
      for (int pw = 0; pw < pooled_size; ++pw) {
        PSRoIPoolCudaBin bin;
        if (!ps_roi_pool_cuda_bin<scalar_t, acc_t>(rois + n * 5,
                                                   spatial_scale, maps,
                                                   pooled_size, ph, pw,
                                                   &bin)) {
          continue;
        }
        acc_t best;
        ps_roi_group_max_cuda<scalar_t, acc_t>(maps_data, maps, bin, g, cig,
                                               &best);
        total += static_cast<double>(best);
      }
    }
    output[index] = static_cast<scalar_t>(static_cast<acc_t>(
        total / (static_cast<double>(pooled_size) * pooled_size)));
  }
}

// One thread per (n, g, ph, pw): recomputes the winner of group g in bin
// (ph, pw) from the maps and atomically adds grad[n, g] / (P * P) / area to
// every cell of the winner's channel in grad_maps (acc_t, indexed by
// `grad`: the maps' sizes, its own strides). Nothing for a zero gradient, an
// empty bin, or a bin without a winner.
template <typename scalar_t, typename acc_t>
__global__ void ps_roi_max_avg_pool_backward_cuda_kernel(
    const int64_t nthreads, const scalar_t* grad_output,
    const scalar_t* maps_data, const PSRoIPoolMaps maps,
    const scalar_t* rois, acc_t* grad_maps, const PSRoIPoolMaps grad,
    const acc_t spatial_scale, const int cig, const int pooled_size) {
  const int64_t num_groups = maps.rows / cig;
  CUDA_1D_KERNEL_LOOP(index, nthreads) {
    const int pw = index % pooled_size;
    const int ph = (index / pooled_size) % pooled_size;
    const int64_t ng = index / pooled_size / pooled_size;  // n * G + g
    const acc_t grad_score = static_cast<acc_t>(grad_output[ng]);
    if (grad_score == acc_t(0)) continue;  // e.g. RoIs dropped by OHEM
    const int64_t g = ng % num_groups;
    const int64_t n = ng / num_groups;
    PSRoIPoolCudaBin bin;
    if (!ps_roi_pool_cuda_bin<scalar_t, acc_t>(rois + n * 5, spatial_scale,
                                               maps, pooled_size, ph, pw,
                                               &bin)) {
      continue;
    }
    acc_t best;
    const int64_t winner =
        ps_roi_group_max_cuda<scalar_t, acc_t>(maps_data, maps, bin, g, cig,
                                               &best);
    if (winner < 0) continue;
    // d mean / d bin = 1 / P^2, then the bin's average spreads over its
    // cells, in the order of the CPU kernel.
    const acc_t area =
        static_cast<acc_t>((bin.hend - bin.hstart) * (bin.wend - bin.wstart));
    const acc_t value =
        grad_score / static_cast<acc_t>(pooled_size * pooled_size) / area;
    ps_roi_pool_cuda_scatter(grad_maps + bin.channel(grad, winner), grad, bin,
                             value);
  }
}

#endif  // MNC_MM_PS_ROI_POOL_CUDA_KERNEL_CUH

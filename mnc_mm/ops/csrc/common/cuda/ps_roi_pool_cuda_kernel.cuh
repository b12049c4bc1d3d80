// Copyright (c) OpenMMLab. All rights reserved.
// CUDA kernels of PSRoIPool, the official FCIS psroi_pooling.cu recipe
// (fcis_spec.md §1.2-1.3). Torch-free: compiles with plain nvcc.
#ifndef MNC_MM_PS_ROI_POOL_CUDA_KERNEL_CUH
#define MNC_MM_PS_ROI_POOL_CUDA_KERNEL_CUH
#include <cstdint>

#include "common_cuda_helper.hpp"
#include "ps_roi_pool_utils.hpp"

// Output element `index` = (n, d, ph, pw): its bin, the half-open cell range
// [*hstart, *hend) x [*wstart, *wend), and the offset of the input plane it
// reads, (b * C + (d * k + gh) * k + gw) * H * W. Returns false for an empty
// bin, or for a batch index outside [0, batch) (the Python wrapper rejects
// such RoIs; the kernels then write 0 instead of reading out of bounds).
template <typename scalar_t, typename acc_t>
__device__ inline bool ps_roi_pool_cuda_element(
    const int64_t index, const scalar_t* rois, const acc_t spatial_scale,
    const int batch, const int height, const int width, const int output_dim,
    const int pooled_size, const int group_size, int64_t* plane_offset,
    int* hstart, int* hend, int* wstart, int* wend) {
  const int pw = index % pooled_size;
  const int ph = (index / pooled_size) % pooled_size;
  const int d = (index / pooled_size / pooled_size) % output_dim;
  const int64_t n = index / pooled_size / pooled_size / output_dim;
  const scalar_t* roi = rois + n * 5;
  const acc_t b = static_cast<acc_t>(roi[0]);
  if (!(b >= acc_t(0) && b < static_cast<acc_t>(batch))) return false;
  const PSRoIPoolBox<acc_t> box = ps_roi_pool_box<acc_t>(
      static_cast<acc_t>(roi[1]), static_cast<acc_t>(roi[2]),
      static_cast<acc_t>(roi[3]), static_cast<acc_t>(roi[4]), spatial_scale,
      pooled_size);
  ps_roi_pool_bin_range<acc_t>(box.start_h, box.bin_h, ph, height, hstart,
                               hend);
  ps_roi_pool_bin_range<acc_t>(box.start_w, box.bin_w, pw, width, wstart,
                               wend);
  if (*hend <= *hstart || *wend <= *wstart) return false;
  const int gh = ps_roi_pool_group(ph, group_size, pooled_size);
  const int gw = ps_roi_pool_group(pw, group_size, pooled_size);
  const int64_t c =
      (static_cast<int64_t>(d) * group_size + gh) * group_size + gw;
  const int64_t channels =
      static_cast<int64_t>(output_dim) * group_size * group_size;
  *plane_offset = (static_cast<int64_t>(b) * channels + c) * height * width;
  return true;
}

// One thread per output element (n, d, ph, pw): average of input channel
// (d * k + gh) * k + gw over the bin, 0 for an empty bin. acc_t is float for
// half, else scalar_t (the official kernel sums in the tensor dtype).
template <typename scalar_t, typename acc_t>
__global__ void ps_roi_pool_forward_cuda_kernel(
    const int64_t nthreads, const scalar_t* input, const scalar_t* rois,
    scalar_t* output, const acc_t spatial_scale, const int batch,
    const int height, const int width, const int output_dim,
    const int pooled_size, const int group_size) {
  CUDA_1D_KERNEL_LOOP(index, nthreads) {
    int64_t offset;
    int hstart, hend, wstart, wend;
    if (!ps_roi_pool_cuda_element<scalar_t, acc_t>(
            index, rois, spatial_scale, batch, height, width, output_dim,
            pooled_size, group_size, &offset, &hstart, &hend, &wstart,
            &wend)) {
      output[index] = static_cast<scalar_t>(0);
      continue;
    }
    const scalar_t* plane = input + offset;
    acc_t sum = acc_t(0);
    for (int h = hstart; h < hend; ++h) {
      for (int w = wstart; w < wend; ++w) {
        sum += static_cast<acc_t>(plane[h * width + w]);
      }
    }
    const acc_t area = static_cast<acc_t>((hend - hstart) * (wend - wstart));
    output[index] = static_cast<scalar_t>(sum / area);
  }
}

// One thread per output element: atomically adds grad / area to every cell
// of its bin. grad_input is acc_t (a float buffer for half) and must be
// zeroed by the caller. No gradient flows to the RoIs.
template <typename scalar_t, typename acc_t>
__global__ void ps_roi_pool_backward_cuda_kernel(
    const int64_t nthreads, const scalar_t* grad_output, const scalar_t* rois,
    acc_t* grad_input, const acc_t spatial_scale, const int batch,
    const int height, const int width, const int output_dim,
    const int pooled_size, const int group_size) {
  CUDA_1D_KERNEL_LOOP(index, nthreads) {
    int64_t offset;
    int hstart, hend, wstart, wend;
    if (!ps_roi_pool_cuda_element<scalar_t, acc_t>(
            index, rois, spatial_scale, batch, height, width, output_dim,
            pooled_size, group_size, &offset, &hstart, &hend, &wstart,
            &wend)) {
      continue;
    }
    acc_t* plane = grad_input + offset;
    const acc_t area = static_cast<acc_t>((hend - hstart) * (wend - wstart));
    const acc_t value = static_cast<acc_t>(grad_output[index]) / area;
    for (int h = hstart; h < hend; ++h) {
      for (int w = wstart; w < wend; ++w) {
        atomicAdd(plane + h * width + w, value);
      }
    }
  }
}

#endif  // MNC_MM_PS_ROI_POOL_CUDA_KERNEL_CUH

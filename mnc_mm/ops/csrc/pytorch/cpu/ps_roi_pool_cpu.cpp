// Copyright (c) OpenMMLab. All rights reserved.
// CPU kernels of PSRoIPool (fcis_spec.md §1.2-1.3).
//
// Both passes first tabulate the cell ranges of every (RoI, bin) once, then
// run in parallel over the (d, gh) pairs: a task owns the k input channels
// (d * k + gh) * k + gw, gw < k, and the output rows ph of group gh. It reads
// (forward) or writes (backward) only its own planes, which stay in cache
// across RoIs, and writes whole output rows; the backward needs no atomics
// and sums in a fixed order (deterministic).
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "ps_roi_pool_utils.hpp"
#include "pytorch_cpp_helper.hpp"

namespace {

// Geometry of one call: cell ranges of all bins of all RoIs, rows [h0, h1)
// of bin (n, ph) at h0[n * P + ph], likewise for columns.
struct PSRoIPoolBins {
  int64_t num_rois, channels, plane_size;
  int output_dim, pooled_size, group_size;
  // batch[n] = -1 marks a RoI whose batch index lies outside [0, N) (its
  // output is 0; the Python wrapper rejects such RoIs).
  std::vector<int> batch, h0, h1, w0, w1;
  std::vector<int> group;        // group of bin p
  std::vector<int> group_begin;  // bins [begin[g], begin[g + 1]) use group g
};

template <typename scalar_t>
PSRoIPoolBins ps_roi_pool_bins(const at::Tensor& rois,
                               const at::IntArrayRef feature_shape,
                               const int output_dim, const int pooled_size,
                               const int group_size,
                               const double spatial_scale) {
  const int batch = feature_shape[0], height = feature_shape[2],
            width = feature_shape[3];
  PSRoIPoolBins bins;
  bins.num_rois = rois.size(0);
  bins.channels = feature_shape[1];
  bins.plane_size = static_cast<int64_t>(height) * width;
  bins.output_dim = output_dim;
  bins.pooled_size = pooled_size;
  bins.group_size = group_size;
  bins.batch.resize(bins.num_rois);
  for (auto* v : {&bins.h0, &bins.h1, &bins.w0, &bins.w1}) {
    v->resize(bins.num_rois * pooled_size);
  }
  const scalar_t* roi = rois.data_ptr<scalar_t>();
  for (int64_t n = 0; n < bins.num_rois; ++n, roi += 5) {
    const bool valid = roi[0] >= 0 && roi[0] < batch;
    bins.batch[n] = valid ? static_cast<int>(roi[0]) : -1;
    const PSRoIPoolBox<scalar_t> box = ps_roi_pool_box<scalar_t>(
        roi[1], roi[2], roi[3], roi[4], static_cast<scalar_t>(spatial_scale),
        pooled_size);
    for (int p = 0; p < pooled_size; ++p) {
      const int64_t i = n * pooled_size + p;
      ps_roi_pool_bin_range<scalar_t>(box.start_h, box.bin_h, p, height,
                                      &bins.h0[i], &bins.h1[i]);
      ps_roi_pool_bin_range<scalar_t>(box.start_w, box.bin_w, p, width,
                                      &bins.w0[i], &bins.w1[i]);
    }
  }
  // The group of bin p is non-decreasing in p, so each group is a run.
  bins.group.resize(pooled_size);
  bins.group_begin.assign(group_size + 1, pooled_size);
  for (int p = pooled_size - 1; p >= 0; --p) {
    bins.group[p] = ps_roi_pool_group(p, group_size, pooled_size);
    bins.group_begin[bins.group[p]] = p;
  }
  for (int g = group_size - 1; g >= 0; --g) {
    bins.group_begin[g] =
        std::min(bins.group_begin[g], bins.group_begin[g + 1]);
  }
  return bins;
}

// Calls f(plane, out, hs, he, ws, we) for every output element, in parallel
// over (d, gh): plane is the flat (b * C + c) index of its input plane, or
// -1 for an invalid batch index; out is its flat output index; [hs, he) x
// [ws, we) its cells. All calls of one (d, gh) run in one thread, in order.
template <typename F>
void ps_roi_pool_for_each_bin(const PSRoIPoolBins& bins, const F& f) {
  const int P = bins.pooled_size, k = bins.group_size;
  const int64_t rows_per_task =
      bins.num_rois * std::max(1, (P + k - 1) / k) * P;
  // About at::internal::GRAIN_SIZE bins per task, so that small problems run
  // inline instead of paying for a parallel region.
  const int64_t grain = std::max<int64_t>(
      1, at::internal::GRAIN_SIZE / std::max<int64_t>(rows_per_task, 1));
  const int64_t num_tasks = int64_t(bins.output_dim) * k;
  at::parallel_for(0, num_tasks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t d = task / k;
      const int gh = task % k;
      for (int64_t n = 0; n < bins.num_rois; ++n) {
        const int b = bins.batch[n];
        // Channel (d * k + gh) * k + gw = task * k + gw.
        const int64_t plane0 = b < 0 ? -1 : b * bins.channels + task * k;
        const int* w0 = &bins.w0[n * P];
        const int* w1 = &bins.w1[n * P];
        const int ph_end = bins.group_begin[gh + 1];
        for (int ph = bins.group_begin[gh]; ph < ph_end; ++ph) {
          const int hs = bins.h0[n * P + ph], he = bins.h1[n * P + ph];
          const int64_t out_row = ((n * bins.output_dim + d) * P + ph) * P;
          for (int pw = 0; pw < P; ++pw) {
            f(plane0 < 0 ? -1 : plane0 + bins.group[pw], out_row + pw, hs, he,
              w0[pw], w1[pw]);
          }
        }
      }
    }
  });
}

template <typename scalar_t>
void ps_roi_pool_forward_cpu_kernel(const at::Tensor& input,
                                    const at::Tensor& rois,
                                    at::Tensor& output, const int output_dim,
                                    const int pooled_size,
                                    const int group_size,
                                    const double spatial_scale) {
  const PSRoIPoolBins bins = ps_roi_pool_bins<scalar_t>(
      rois, input.sizes(), output_dim, pooled_size, group_size, spatial_scale);
  const int width = input.size(3);
  const scalar_t* in = input.data_ptr<scalar_t>();
  scalar_t* out = output.data_ptr<scalar_t>();
  ps_roi_pool_for_each_bin(bins, [&](int64_t plane, int64_t o, int hs, int he,
                                     int ws, int we) {
    if (plane < 0 || he <= hs || we <= ws) {  // empty bin: output 0
      out[o] = 0;
      return;
    }
    const scalar_t* cells = in + plane * bins.plane_size;
    scalar_t sum = 0;  // the official kernel sums in the tensor dtype
    for (int h = hs; h < he; ++h) {
      for (int w = ws; w < we; ++w) sum += cells[h * width + w];
    }
    out[o] = sum / static_cast<scalar_t>((he - hs) * (we - ws));
  });
}

template <typename scalar_t>
void ps_roi_pool_backward_cpu_kernel(const at::Tensor& grad_output,
                                     const at::Tensor& rois,
                                     at::Tensor& grad_input,
                                     const int output_dim,
                                     const int pooled_size,
                                     const int group_size,
                                     const double spatial_scale) {
  const PSRoIPoolBins bins = ps_roi_pool_bins<scalar_t>(
      rois, grad_input.sizes(), output_dim, pooled_size, group_size,
      spatial_scale);
  const int width = grad_input.size(3);
  const scalar_t* gout = grad_output.data_ptr<scalar_t>();
  scalar_t* gin = grad_input.data_ptr<scalar_t>();
  ps_roi_pool_for_each_bin(bins, [&](int64_t plane, int64_t o, int hs, int he,
                                     int ws, int we) {
    if (plane < 0 || he <= hs || we <= ws) return;  // empty bin: no gradient
    scalar_t* cells = gin + plane * bins.plane_size;
    const scalar_t value =
        gout[o] / static_cast<scalar_t>((he - hs) * (we - ws));
    for (int h = hs; h < he; ++h) {
      for (int w = ws; w < we; ++w) cells[h * width + w] += value;
    }
  });
}

}  // namespace

void ps_roi_pool_forward_cpu(const at::Tensor& input, const at::Tensor& rois,
                             at::Tensor& output, const int output_dim,
                             const int pooled_size, const int group_size,
                             const double spatial_scale) {
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "ps_roi_pool_forward", [&] {
    ps_roi_pool_forward_cpu_kernel<scalar_t>(input, rois, output, output_dim,
                                             pooled_size, group_size,
                                             spatial_scale);
  });
}

void ps_roi_pool_backward_cpu(const at::Tensor& grad_output,
                              const at::Tensor& rois, at::Tensor& grad_input,
                              const int output_dim, const int pooled_size,
                              const int group_size,
                              const double spatial_scale) {
  const auto dtype = grad_output.scalar_type();
  AT_DISPATCH_FLOATING_TYPES(dtype, "ps_roi_pool_backward", [&] {
    ps_roi_pool_backward_cpu_kernel<scalar_t>(grad_output, rois, grad_input,
                                              output_dim, pooled_size,
                                              group_size, spatial_scale);
  });
}

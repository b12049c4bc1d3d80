// Copyright (c) OpenMMLab. All rights reserved.
// CPU kernels of PSRoIPool (fcis_spec.md §1.2-1.3).
//
// Both passes first tabulate the cell ranges of every (RoI, bin) once, then
// run in parallel over input channels c = (d * k + gh) * k + gw: a thread
// reads (forward) or writes (backward) only the planes of its own channels,
// so the input plane stays in cache across RoIs and the backward needs no
// atomics and sums in a fixed order (deterministic).
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "ps_roi_pool_utils.hpp"
#include "pytorch_cpp_helper.hpp"

namespace {

// Cell ranges of all bins of all RoIs: rows [h0, h1) of bin (n, ph) at
// h0[n * P + ph], likewise for columns; batch[n] = -1 marks a RoI whose batch
// index lies outside [0, N) (its output is 0; the Python wrapper rejects it).
struct PSRoIPoolBins {
  std::vector<int> batch, h0, h1, w0, w1;
  // Bins p in [group_begin[g], group_begin[g + 1]) use group g.
  std::vector<int> group_begin;
};

template <typename scalar_t>
PSRoIPoolBins ps_roi_pool_bins(const at::Tensor& rois, const int batch,
                               const int height, const int width,
                               const int pooled_size, const int group_size,
                               const double spatial_scale) {
  const int64_t num_rois = rois.size(0);
  const scalar_t* roi = rois.data_ptr<scalar_t>();
  PSRoIPoolBins bins;
  bins.batch.resize(num_rois);
  bins.h0.resize(num_rois * pooled_size);
  bins.h1.resize(num_rois * pooled_size);
  bins.w0.resize(num_rois * pooled_size);
  bins.w1.resize(num_rois * pooled_size);
  for (int64_t n = 0; n < num_rois; ++n, roi += 5) {
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
  bins.group_begin.assign(group_size + 1, pooled_size);
  for (int p = pooled_size - 1; p >= 0; --p) {
    bins.group_begin[ps_roi_pool_group(p, group_size, pooled_size)] = p;
  }
  for (int g = group_size - 1; g >= 0; --g) {
    if (bins.group_begin[g] > bins.group_begin[g + 1]) {
      bins.group_begin[g] = bins.group_begin[g + 1];
    }
  }
  return bins;
}

// Channels per parallel task: about at::internal::GRAIN_SIZE bins, so that
// small problems run inline instead of paying for a parallel region.
int64_t ps_roi_pool_grain(const int64_t num_rois, const int pooled_size,
                          const int group_size) {
  const int64_t per_group = (pooled_size + group_size - 1) / group_size;
  const int64_t bins = num_rois * per_group * per_group;
  return std::max<int64_t>(1, at::internal::GRAIN_SIZE / std::max<int64_t>(bins, 1));
}

template <typename scalar_t>
void ps_roi_pool_forward_cpu_kernel(const at::Tensor& input,
                                    const at::Tensor& rois,
                                    at::Tensor& output, const int output_dim,
                                    const int pooled_size,
                                    const int group_size,
                                    const double spatial_scale) {
  const int batch = input.size(0), height = input.size(2),
            width = input.size(3);
  const int64_t channels = input.size(1), num_rois = rois.size(0);
  const int64_t plane_size = static_cast<int64_t>(height) * width;
  const int kk = group_size * group_size;
  const PSRoIPoolBins bins = ps_roi_pool_bins<scalar_t>(
      rois, batch, height, width, pooled_size, group_size, spatial_scale);
  const scalar_t* in = input.data_ptr<scalar_t>();
  scalar_t* out = output.data_ptr<scalar_t>();
  at::parallel_for(0, channels, ps_roi_pool_grain(num_rois, pooled_size, group_size), [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t d = c / kk;
      const int gh = (c / group_size) % group_size, gw = c % group_size;
      for (int64_t n = 0; n < num_rois; ++n) {
        const int b = bins.batch[n];
        const scalar_t* plane =
            b < 0 ? in : in + (b * channels + c) * plane_size;
        scalar_t* out_nd = out + (n * output_dim + d) * pooled_size * pooled_size;
        for (int ph = bins.group_begin[gh]; ph < bins.group_begin[gh + 1]; ++ph) {
          const int hs = bins.h0[n * pooled_size + ph];
          const int he = bins.h1[n * pooled_size + ph];
          for (int pw = bins.group_begin[gw]; pw < bins.group_begin[gw + 1]; ++pw) {
            const int ws = bins.w0[n * pooled_size + pw];
            const int we = bins.w1[n * pooled_size + pw];
            if (b < 0 || he <= hs || we <= ws) {  // empty bin: output 0
              out_nd[ph * pooled_size + pw] = 0;
              continue;
            }
            scalar_t sum = 0;
            for (int h = hs; h < he; ++h) {
              const scalar_t* row = plane + h * width;
              for (int w = ws; w < we; ++w) sum += row[w];
            }
            out_nd[ph * pooled_size + pw] =
                sum / static_cast<scalar_t>((he - hs) * (we - ws));
          }
        }
      }
    }
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
  const int batch = grad_input.size(0), height = grad_input.size(2),
            width = grad_input.size(3);
  const int64_t channels = grad_input.size(1), num_rois = rois.size(0);
  const int64_t plane_size = static_cast<int64_t>(height) * width;
  const int kk = group_size * group_size;
  const PSRoIPoolBins bins = ps_roi_pool_bins<scalar_t>(
      rois, batch, height, width, pooled_size, group_size, spatial_scale);
  const scalar_t* gout = grad_output.data_ptr<scalar_t>();
  scalar_t* gin = grad_input.data_ptr<scalar_t>();
  at::parallel_for(0, channels, ps_roi_pool_grain(num_rois, pooled_size, group_size), [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t d = c / kk;
      const int gh = (c / group_size) % group_size, gw = c % group_size;
      for (int64_t n = 0; n < num_rois; ++n) {
        const int b = bins.batch[n];
        if (b < 0) continue;
        scalar_t* plane = gin + (b * channels + c) * plane_size;
        const scalar_t* gout_nd =
            gout + (n * output_dim + d) * pooled_size * pooled_size;
        for (int ph = bins.group_begin[gh]; ph < bins.group_begin[gh + 1]; ++ph) {
          const int hs = bins.h0[n * pooled_size + ph];
          const int he = bins.h1[n * pooled_size + ph];
          for (int pw = bins.group_begin[gw]; pw < bins.group_begin[gw + 1]; ++pw) {
            const int ws = bins.w0[n * pooled_size + pw];
            const int we = bins.w1[n * pooled_size + pw];
            if (he <= hs || we <= ws) continue;  // empty bin: no gradient
            const scalar_t value = gout_nd[ph * pooled_size + pw] /
                                   static_cast<scalar_t>((he - hs) * (we - ws));
            for (int h = hs; h < he; ++h) {
              scalar_t* row = plane + h * width;
              for (int w = ws; w < we; ++w) row[w] += value;
            }
          }
        }
      }
    }
  });
}

}  // namespace

void ps_roi_pool_forward_cpu(const at::Tensor& input, const at::Tensor& rois,
                             at::Tensor& output, const int output_dim,
                             const int pooled_size, const int group_size,
                             const double spatial_scale) {
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "ps_roi_pool_forward_cpu", [&] {
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
  AT_DISPATCH_FLOATING_TYPES(grad_output.scalar_type(), "ps_roi_pool_backward_cpu", [&] {
    ps_roi_pool_backward_cpu_kernel<scalar_t>(grad_output, rois, grad_input,
                                              output_dim, pooled_size,
                                              group_size, spatial_scale);
  });
}

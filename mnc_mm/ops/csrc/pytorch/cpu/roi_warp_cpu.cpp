// Copyright (c) OpenMMLab. All rights reserved.
// CPU kernels of the RoI warp (geometry and per-element math shared with the
// CUDA kernels through roi_warp_utils.hpp).
//
// The sampling grid is separable, so the taps of every output row and column
// of every RoI are tabulated once. The backward pass is deterministic: one
// task owns one (n, c) plane of grad_input and visits the RoIs of image n in
// index order; the box gradient goes through per-(r, c) partial sums that
// are reduced over c in a fixed order.
//
// Every floating dtype runs: the math is in T = at::opmath_type<scalar_t>
// (float for half and bfloat16, as the CUDA kernels), the feature gradient
// goes into a T buffer, the box-gradient sums are in at::acc_type (double
// for float).
#include <ATen/AccumulateType.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "pytorch_cpp_helper.hpp"
#include "roi_warp_utils.hpp"

namespace {

// Bilinear taps of one output row (or column) of one RoI, with the
// derivatives of its sample position w.r.t. the two box corners of the axis.
template <typename T>
struct Tap {
  int lo, hi;
  T frac, d_first, d_second;
  bool valid;
};

// Taps of all RoIs: ytaps (R, PH) and xtaps (R, PW), row major.
template <typename scalar_t, typename T>
void make_taps(const scalar_t* rois, int64_t num_rois, int64_t batch,
               int height, int width, int pooled_height, int pooled_width,
               T scale, bool quantize,
               std::vector<Tap<T>>* ytaps, std::vector<Tap<T>>* xtaps) {
  check_roi_values("roi_warp", rois, num_rois, batch);
  ytaps->resize(num_rois * pooled_height);
  xtaps->resize(num_rois * pooled_width);
  auto fill = [&](const RoIWarpAxis<T>& axis, int size, int pooled,
                  Tap<T>* taps) {
    for (int p = 0; p < pooled; ++p) {
      Tap<T>& t = taps[p];
      t.valid = roi_warp_taps<T>(roi_warp_sample(axis, p), size, &t.lo,
                                 &t.hi, &t.frac);
      t.d_first = roi_warp_d_first(axis, p);
      t.d_second = p * axis.d_step;
    }
  };
  at::parallel_for(0, num_rois, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const scalar_t* roi = rois + r * 5;
      fill(roi_warp_axis<T>(static_cast<T>(roi[2]), static_cast<T>(roi[4]),
                            scale, quantize, pooled_height),
           height, pooled_height, ytaps->data() + r * pooled_height);
      fill(roi_warp_axis<T>(static_cast<T>(roi[1]), static_cast<T>(roi[3]),
                            scale, quantize, pooled_width),
           width, pooled_width, xtaps->data() + r * pooled_width);
    }
  });
}

// Input columns [xmin, xmax] read by the valid x taps; xmax = -1 if none.
template <typename T>
void column_range(const Tap<T>* xt, int pooled_width, int* xmin, int* xmax) {
  *xmin = 0;
  *xmax = -1;
  for (int pw = 0; pw < pooled_width; ++pw)
    if (xt[pw].valid) {
      *xmin = *xmax < 0 ? xt[pw].lo : std::min(*xmin, xt[pw].lo);
      *xmax = std::max(*xmax, xt[pw].hi);
    }
}

template <typename scalar_t>
void roi_warp_forward_cpu_kernel(const scalar_t* input, const scalar_t* rois,
                                 scalar_t* output, int64_t batch,
                                 int64_t num_rois, int channels, int height,
                                 int width, int pooled_height,
                                 int pooled_width, double spatial_scale,
                                 bool quantize) {
  using T = at::opmath_type<scalar_t>;
  const T scale = static_cast<T>(spatial_scale);
  std::vector<Tap<T>> ytaps, xtaps;
  make_taps(rois, num_rois, batch, height, width, pooled_height,
            pooled_width, scale, quantize, &ytaps, &xtaps);
  const int64_t plane_size = static_cast<int64_t>(height) * width;
  const int64_t out_size = static_cast<int64_t>(pooled_height) * pooled_width;
  at::parallel_for(0, num_rois * channels, 1, [&](int64_t begin, int64_t end) {
    // Separable bilinear: interpolate the two input rows of an output row
    // into `row` over the columns the RoI reads, then along x.
    std::vector<T> row(width);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t r = i / channels, c = i % channels;
      const int64_t n = static_cast<int64_t>(static_cast<T>(rois[r * 5]));
      const scalar_t* plane = input + (n * channels + c) * plane_size;
      const Tap<T>* yt = ytaps.data() + r * pooled_height;
      const Tap<T>* xt = xtaps.data() + r * pooled_width;
      int xmin, xmax;
      column_range(xt, pooled_width, &xmin, &xmax);
      scalar_t* out = output + i * out_size;
      for (int ph = 0; ph < pooled_height; ++ph) {
        const Tap<T>& ty = yt[ph];
        scalar_t* out_row = out + ph * pooled_width;
        if (!ty.valid || xmax < 0) {
          for (int pw = 0; pw < pooled_width; ++pw) out_row[pw] = scalar_t(0);
          continue;
        }
        const scalar_t* row_lo = plane + ty.lo * width;
        const scalar_t* row_hi = plane + ty.hi * width;
        for (int x = xmin; x <= xmax; ++x)
          row[x] = (T(1) - ty.frac) * static_cast<T>(row_lo[x]) +
                   ty.frac * static_cast<T>(row_hi[x]);
        for (int pw = 0; pw < pooled_width; ++pw) {
          const Tap<T>& tx = xt[pw];
          out_row[pw] = static_cast<scalar_t>(
              tx.valid ? (T(1) - tx.frac) * row[tx.lo] + tx.frac * row[tx.hi]
                       : T(0));
        }
      }
    }
  });
}

// grad_input (N, C, H, W) in T = at::opmath_type<scalar_t>, overwritten, or
// nullptr; grad_rois (R, 5) or nullptr.
template <typename scalar_t, typename T>
void roi_warp_backward_cpu_kernel(const scalar_t* grad_output,
                                  const scalar_t* input, const scalar_t* rois,
                                  T* grad_input, scalar_t* grad_rois,
                                  int64_t batch, int64_t num_rois,
                                  int channels, int height, int width,
                                  int pooled_height, int pooled_width,
                                  double spatial_scale, bool quantize) {
  using acc_t = at::acc_type<scalar_t, /*is_cuda=*/false>;
  const T scale = static_cast<T>(spatial_scale);
  std::vector<Tap<T>> ytaps, xtaps;
  make_taps(rois, num_rois, batch, height, width, pooled_height,
            pooled_width, scale, quantize, &ytaps, &xtaps);
  // RoIs of each image, in index order.
  std::vector<std::vector<int64_t>> rois_of(batch);
  for (int64_t r = 0; r < num_rois; ++r)
    rois_of[static_cast<int64_t>(static_cast<T>(rois[r * 5]))].push_back(r);
  // Box-gradient partial sums (R, C, 4): (x1, y1, x2, y2).
  std::vector<acc_t> partial(grad_rois ? num_rois * channels * 4 : 0);
  const int64_t plane_size = static_cast<int64_t>(height) * width;
  const int64_t out_size = static_cast<int64_t>(pooled_height) * pooled_width;

  at::parallel_for(0, batch * channels, 1, [&](int64_t begin, int64_t end) {
    // Feature gradient of one output row, first summed along x into `row`
    // (2 taps per sample), then spread over the 2 input rows it reads.
    std::vector<T> row(width, T(0));
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / channels, c = i % channels;
      const scalar_t* plane = input + i * plane_size;
      T* grad_plane = grad_input ? grad_input + i * plane_size : nullptr;
      if (grad_plane)
        for (int64_t k = 0; k < plane_size; ++k) grad_plane[k] = T(0);
      for (const int64_t r : rois_of[n]) {
        const scalar_t* g = grad_output + (r * channels + c) * out_size;
        const Tap<T>* yt = ytaps.data() + r * pooled_height;
        const Tap<T>* xt = xtaps.data() + r * pooled_width;
        int xmin, xmax;
        column_range(xt, pooled_width, &xmin, &xmax);
        acc_t sum[4] = {0, 0, 0, 0};
        for (int ph = 0; ph < pooled_height && xmax >= 0; ++ph) {
          const Tap<T>& ty = yt[ph];
          if (!ty.valid) continue;
          const scalar_t* g_row = g + ph * pooled_width;
          const int64_t lo = ty.lo * width, hi = ty.hi * width;
          if (grad_plane) {
            for (int pw = 0; pw < pooled_width; ++pw) {
              const Tap<T>& tx = xt[pw];
              if (!tx.valid) continue;
              const T go = static_cast<T>(g_row[pw]);
              row[tx.lo] += go * (T(1) - tx.frac);
              row[tx.hi] += go * tx.frac;
            }
            for (int x = xmin; x <= xmax; ++x) {
              grad_plane[lo + x] += (T(1) - ty.frac) * row[x];
              grad_plane[hi + x] += ty.frac * row[x];
              row[x] = T(0);
            }
          }
          if (grad_rois) {
            T row_dx1 = 0, row_dx2 = 0, row_dy = 0;
            for (int pw = 0; pw < pooled_width; ++pw) {
              const Tap<T>& tx = xt[pw];
              if (!tx.valid) continue;
              T dx, dy;
              roi_warp_bilinear_grad<T>(
                  static_cast<T>(plane[lo + tx.lo]),
                  static_cast<T>(plane[lo + tx.hi]),
                  static_cast<T>(plane[hi + tx.lo]),
                  static_cast<T>(plane[hi + tx.hi]), ty.frac, tx.frac, &dx,
                  &dy);
              const T go = static_cast<T>(g_row[pw]);
              row_dx1 += go * dx * tx.d_first;
              row_dx2 += go * dx * tx.d_second;
              row_dy += go * dy;
            }
            sum[0] += row_dx1;
            sum[1] += static_cast<acc_t>(row_dy) * ty.d_first;
            sum[2] += row_dx2;
            sum[3] += static_cast<acc_t>(row_dy) * ty.d_second;
          }
        }
        if (grad_rois)
          for (int k = 0; k < 4; ++k)
            partial[(r * channels + c) * 4 + k] = sum[k];
      }
    }
  });

  if (!grad_rois) return;
  at::parallel_for(0, num_rois, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      acc_t sum[4] = {0, 0, 0, 0};
      for (int64_t c = 0; c < channels; ++c)
        for (int k = 0; k < 4; ++k)
          sum[k] += partial[(r * channels + c) * 4 + k];
      grad_rois[r * 5] = scalar_t(0);
      for (int k = 0; k < 4; ++k)
        grad_rois[r * 5 + 1 + k] = static_cast<scalar_t>(sum[k]);
    }
  });
}

}  // namespace

void roi_warp_forward_cpu(const at::Tensor& input, const at::Tensor& rois,
                          at::Tensor& output, int pooled_height,
                          int pooled_width, double spatial_scale,
                          bool quantize) {
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "roi_warp_forward_cpu",
      [&] {
        roi_warp_forward_cpu_kernel<scalar_t>(
            input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
            output.data_ptr<scalar_t>(), input.size(0), rois.size(0),
            input.size(1),
            input.size(2), input.size(3), pooled_height, pooled_width,
            spatial_scale, quantize);
      });
}

void roi_warp_backward_cpu(const at::Tensor& grad_output,
                           const at::Tensor& input, const at::Tensor& rois,
                           at::Tensor& grad_input, at::Tensor& grad_rois,
                           int pooled_height, int pooled_width,
                           double spatial_scale, bool quantize) {
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "roi_warp_backward_cpu",
      [&] {
        using T = at::opmath_type<scalar_t>;
        const bool need_input = grad_input.numel() > 0;
        at::Tensor grad_input_acc =
            need_input ? acc_grad_buffer<T>(grad_input, false) : grad_input;
        roi_warp_backward_cpu_kernel<scalar_t, T>(
            grad_output.data_ptr<scalar_t>(), input.data_ptr<scalar_t>(),
            rois.data_ptr<scalar_t>(),
            need_input ? grad_input_acc.data_ptr<T>() : nullptr,
            grad_rois.numel() ? grad_rois.data_ptr<scalar_t>() : nullptr,
            input.size(0), rois.size(0), input.size(1), input.size(2),
            input.size(3), pooled_height, pooled_width, spatial_scale,
            quantize);
        if (need_input) finish_acc_grad_buffer(grad_input_acc, grad_input);
      });
}

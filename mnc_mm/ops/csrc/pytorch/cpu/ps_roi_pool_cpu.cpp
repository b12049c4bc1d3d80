// Copyright (c) OpenMMLab. All rights reserved.
// CPU kernels of PSRoIPool (msracver/FCIS psroi_pooling.cu) and of its fused
// variant PSRoIMaxAvgPool (PSRoIPool, Group_Max, average over the bins).
//
// The score maps come as a (N, D, k, k, H, W) view with any strides: the
// official layout (N, D * k * k, H, W), or a channels-last one where the D
// values of one cell and position (gh, gw) are contiguous (what the FCIS
// head makes, so that the fused op adds whole vectors of D).
//
// All passes first tabulate the cell ranges of every (RoI, bin) once, then
// run in parallel. PSRoIPool's tasks each own a fixed set of channels: a
// (d, gh) pair, or all d of one gh when RoIs pick their channels; the fused
// forward runs per RoI and its backward per (gh, gw). A backward task only
// writes its own channels: no atomics, a fixed summation order
// (deterministic).
//
// Every floating dtype runs: float and double compute in their own dtype,
// half and bfloat16 in float (at::opmath_type, as the CUDA kernels): the bin
// limits, the sums, and the gradient, which goes into a float buffer.
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cfloat>
#include <vector>

#include "ps_roi_pool_utils.hpp"
#include "pytorch_cpp_helper.hpp"

namespace {

// Strides (in elements) of a (N, D, k, k, H, W) view of the maps or of
// their gradient.
struct PSRoIPoolStrides {
  int64_t n, d, gh, gw, h, w;
  explicit PSRoIPoolStrides(const at::Tensor& maps)
      : n(maps.stride(0)),
        d(maps.stride(1)),
        gh(maps.stride(2)),
        gw(maps.stride(3)),
        h(maps.stride(4)),
        w(maps.stride(5)) {}
};

// Geometry of one call: the map's channel rows and strides, and the cell
// ranges of all bins of all RoIs: rows [h0, h1) of bin (n, ph) at
// h0[n * P + ph], likewise for columns.
struct PSRoIPoolBins {
  int64_t num_rois, dims;
  PSRoIPoolStrides stride;
  int pooled_size, group_size;
  // batch[n]: the image of RoI n (checked to lie in [0, N)).
  std::vector<int> batch, h0, h1, w0, w1;
  std::vector<int> group;        // group of bin p
  std::vector<int> group_begin;  // bins [begin[g], begin[g + 1]) use group g

  explicit PSRoIPoolBins(const at::Tensor& maps) : stride(maps) {}

  // Offset of cell (0, 0) of channel (d, gh, gw) of RoI n's image in a
  // tensor of strides s (the maps' by default).
  int64_t channel(const int64_t n, const int64_t d, const int gh,
                  const int gw, const PSRoIPoolStrides& s) const {
    return batch[n] * s.n + d * s.d + gh * s.gh + gw * s.gw;
  }
  int64_t channel(const int64_t n, const int64_t d, const int gh,
                  const int gw) const {
    return channel(n, d, gh, gw, stride);
  }
  // Cell range of bin (ph, pw) of RoI n; false for an empty bin.
  bool cells(const int64_t n, const int ph, const int pw, int* hs, int* he,
             int* ws, int* we) const {
    const int64_t i = n * pooled_size;
    *hs = h0[i + ph];
    *he = h1[i + ph];
    *ws = w0[i + pw];
    *we = w1[i + pw];
    return *he > *hs && *we > *ws;
  }
};

// maps: the (N, D, k, k, H, W) view. The limits are computed in acc_t from
// the scalar_t RoIs.
template <typename scalar_t, typename acc_t>
PSRoIPoolBins ps_roi_pool_bins(const char* op, const at::Tensor& rois,
                               const at::Tensor& maps,
                               const int pooled_size,
                               const double spatial_scale) {
  const int batch = maps.size(0), height = maps.size(4),
            width = maps.size(5);
  PSRoIPoolBins bins(maps);
  bins.num_rois = rois.size(0);
  bins.dims = maps.size(1);
  bins.pooled_size = pooled_size;
  bins.group_size = maps.size(2);
  bins.batch.resize(bins.num_rois);
  for (auto* v : {&bins.h0, &bins.h1, &bins.w0, &bins.w1}) {
    v->resize(bins.num_rois * pooled_size);
  }
  const scalar_t* roi = rois.data_ptr<scalar_t>();
  check_roi_values(op, roi, bins.num_rois, batch);
  for (int64_t n = 0; n < bins.num_rois; ++n, roi += 5) {
    bins.batch[n] = static_cast<int>(static_cast<acc_t>(roi[0]));
    const PSRoIPoolBox<acc_t> box = ps_roi_pool_box<acc_t>(
        static_cast<acc_t>(roi[1]), static_cast<acc_t>(roi[2]),
        static_cast<acc_t>(roi[3]), static_cast<acc_t>(roi[4]),
        static_cast<acc_t>(spatial_scale), pooled_size);
    for (int p = 0; p < pooled_size; ++p) {
      const int64_t i = n * pooled_size + p;
      ps_roi_pool_bin_range<acc_t>(box.start_h, box.bin_h, p, height,
                                   &bins.h0[i], &bins.h1[i]);
      ps_roi_pool_bin_range<acc_t>(box.start_w, box.bin_w, p, width,
                                   &bins.w0[i], &bins.w1[i]);
    }
  }
  // The group of bin p is non-decreasing in p, so each group is a run.
  const int k = bins.group_size;
  bins.group.resize(pooled_size);
  bins.group_begin.assign(k + 1, pooled_size);
  for (int p = pooled_size - 1; p >= 0; --p) {
    bins.group[p] = ps_roi_pool_group(p, k, pooled_size);
    bins.group_begin[bins.group[p]] = p;
  }
  for (int g = k - 1; g >= 0; --g) {
    bins.group_begin[g] = std::min(bins.group_begin[g], bins.group_begin[g + 1]);
  }
  return bins;
}

// Runs task(t) for t in [0, num_tasks) in parallel, with about
// at::internal::GRAIN_SIZE cell visits per chunk so that small problems run
// inline instead of paying for a parallel region.
template <typename F>
void ps_roi_pool_parallel(const int64_t num_tasks, const int64_t work_per_task,
                          const F& task) {
  const int64_t grain = std::max<int64_t>(
      1, at::internal::GRAIN_SIZE / std::max<int64_t>(work_per_task, 1));
  at::parallel_for(0, num_tasks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) task(t);
  });
}

// Calls f(channel, out, hs, he, ws, we) for every output element (n, d, ph,
// pw): channel is the offset of its input channel, out its flat output
// index, [hs, he) x [ws, we) its cells. Output
// channel d of RoI n reads channel row start[n] + d (start null: d).
template <typename F>
void ps_roi_pool_for_each_bin(const PSRoIPoolBins& bins, const int output_dim,
                              const int64_t* start, const F& f) {
  const int P = bins.pooled_size, k = bins.group_size;
  // With per-RoI starts, two output channels of different RoIs may read one
  // channel, so a task then takes every d.
  const int dims_per_task = start ? output_dim : 1;
  const int64_t work =
      bins.num_rois * dims_per_task * std::max(1, (P + k - 1) / k) * P;
  ps_roi_pool_parallel(
      int64_t(output_dim / dims_per_task) * k, work, [&](const int64_t task) {
        const int gh = task % k;
        const int64_t d_begin = task / k * dims_per_task;
        const int ph_begin = bins.group_begin[gh],
                  ph_end = bins.group_begin[gh + 1];
        for (int64_t n = 0; n < bins.num_rois; ++n) {
          const int* w0 = &bins.w0[n * P];
          const int* w1 = &bins.w1[n * P];
          for (int64_t d = d_begin; d < d_begin + dims_per_task; ++d) {
            const int64_t c0 = bins.channel(n, start ? start[n] + d : d, gh, 0);
            for (int ph = ph_begin; ph < ph_end; ++ph) {
              const int hs = bins.h0[n * P + ph], he = bins.h1[n * P + ph];
              const int64_t out_row = ((n * output_dim + d) * P + ph) * P;
              for (int pw = 0; pw < P; ++pw) {
                f(c0 + bins.group[pw] * bins.stride.gw, out_row + pw, hs, he,
                  w0[pw], w1[pw]);
              }
            }
          }
        }
      });
}

// Average of the cells [hs, he) x [ws, we) of one channel, summed in acc_t
// (the tensor dtype for float and double, as the official kernel) in
// row-major order, rounded to scalar_t.
template <typename scalar_t, typename acc_t>
inline scalar_t ps_roi_pool_average(const scalar_t* channel,
                                    const PSRoIPoolBins& bins, const int hs,
                                    const int he, const int ws, const int we) {
  acc_t sum = 0;
  for (int h = hs; h < he; ++h) {
    for (int w = ws; w < we; ++w) {
      sum += static_cast<acc_t>(channel[h * bins.stride.h + w * bins.stride.w]);
    }
  }
  return static_cast<scalar_t>(sum / static_cast<acc_t>((he - hs) * (we - ws)));
}

template <typename scalar_t, typename acc_t>
void ps_roi_pool_forward_cpu_kernel(const at::Tensor& maps,
                                    const at::Tensor& rois,
                                    const int64_t* start, at::Tensor& output,
                                    const int output_dim,
                                    const int pooled_size,
                                    const double spatial_scale) {
  const PSRoIPoolBins bins = ps_roi_pool_bins<scalar_t, acc_t>(
      "ps_roi_pool", rois, maps, pooled_size, spatial_scale);
  const scalar_t* in = maps.data_ptr<scalar_t>();
  scalar_t* out = output.data_ptr<scalar_t>();
  ps_roi_pool_for_each_bin(
      bins, output_dim, start,
      [&](int64_t c, int64_t o, int hs, int he, int ws, int we) {
        out[o] = he <= hs || we <= ws  // empty bin: output 0
                     ? scalar_t(0)
                     : ps_roi_pool_average<scalar_t, acc_t>(in + c, bins, hs,
                                                            he, ws, we);
      });
}

// grad_maps: acc_t (see acc_grad_buffer).
template <typename scalar_t, typename acc_t>
void ps_roi_pool_backward_cpu_kernel(const at::Tensor& grad_output,
                                     const at::Tensor& rois,
                                     const int64_t* start,
                                     at::Tensor& grad_maps,
                                     const int output_dim,
                                     const int pooled_size,
                                     const double spatial_scale) {
  const PSRoIPoolBins bins = ps_roi_pool_bins<scalar_t, acc_t>(
      "ps_roi_pool", rois, grad_maps, pooled_size, spatial_scale);
  const scalar_t* gout = grad_output.data_ptr<scalar_t>();
  acc_t* gin = grad_maps.data_ptr<acc_t>();
  ps_roi_pool_for_each_bin(
      bins, output_dim, start,
      [&](int64_t c, int64_t o, int hs, int he, int ws, int we) {
        const acc_t grad = static_cast<acc_t>(gout[o]);
        // empty bin or zero gradient (RoIs dropped by OHEM): nothing to add
        if (he <= hs || we <= ws || grad == acc_t(0)) return;
        const acc_t value = grad / static_cast<acc_t>((he - hs) * (we - ws));
        for (int h = hs; h < he; ++h) {
          for (int w = ws; w < we; ++w) {
            gin[c + h * bins.stride.h + w * bins.stride.w] += value;
          }
        }
      });
}

// The hot loops of the fused op get an AVX2 clone, picked at load time on
// CPUs that have it (GCC/Clang function multi-versioning, x86-64 Linux).
#if defined(__x86_64__) && defined(__linux__) && \
    (defined(__GNUC__) || defined(__clang__))
#define MNC_MM_CPU_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MNC_MM_CPU_CLONES
#endif

// sums[d] = the PSRoIPool average of channel (d, gh, gw), d < D, over the
// cells [hs, he) x [ws, we): summed in acc_t in row-major cell order,
// divided by the area and rounded to scalar_t, as PSRoIPool (so the values
// are identical), held in acc_t.
template <typename scalar_t, typename acc_t>
MNC_MM_CPU_CLONES void ps_roi_average_all(
    const PSRoIPoolBins& bins, const scalar_t* __restrict__ channel0,
    const int hs, const int he, const int ws, const int we,
    acc_t* __restrict__ sums) {
  const int64_t D = bins.dims, sd = bins.stride.d;
  std::fill(sums, sums + D, acc_t(0));
  for (int h = hs; h < he; ++h) {
    for (int w = ws; w < we; ++w) {
      const scalar_t* __restrict__ cell =
          channel0 + h * bins.stride.h + w * bins.stride.w;
      if (sd == 1) {  // channels-last maps: one vector add per cell
        for (int64_t d = 0; d < D; ++d) sums[d] += static_cast<acc_t>(cell[d]);
      } else {
        for (int64_t d = 0; d < D; ++d)
          sums[d] += static_cast<acc_t>(cell[d * sd]);
      }
    }
  }
  const acc_t area = static_cast<acc_t>((he - hs) * (we - ws));
  for (int64_t d = 0; d < D; ++d)
    sums[d] = static_cast<acc_t>(static_cast<scalar_t>(sums[d] / area));
}

// Group_Max of one bin: the winner of group g scans its cig values with a
// strict `>` from -FLT_MAX (ties to the lowest channel, NaN never wins).
// Branch-free: the winners follow the data, branches would mispredict.
template <typename acc_t>
inline void ps_roi_group_max(const acc_t* sums, const int64_t g,
                             const int cig, acc_t* best, int64_t* win) {
  acc_t top = static_cast<acc_t>(-FLT_MAX);
  int64_t top_d = -1;
  for (int j = 0; j < cig; ++j) {
    const acc_t value = sums[g * cig + j];
    const bool wins = value > top;  // false for NaN
    top_d = wins ? g * cig + j : top_d;
    top = wins ? value : top;
  }
  *best = top;
  *win = top_d;
}

// total[g] += the Group_Max value of group g, g < G.
template <typename acc_t>
MNC_MM_CPU_CLONES void ps_roi_add_group_max(const acc_t* __restrict__ sums,
                                            const int64_t G, const int cig,
                                            double* __restrict__ total) {
  if (cig == 2) {  // FCIS: (outside, inside) pairs
    for (int64_t g = 0; g < G; ++g) {
      const acc_t out = sums[2 * g], in = sums[2 * g + 1];
      acc_t top = out > static_cast<acc_t>(-FLT_MAX)
                      ? out
                      : static_cast<acc_t>(-FLT_MAX);
      top = in > top ? in : top;
      total[g] += top;
    }
    return;
  }
  for (int64_t g = 0; g < G; ++g) {
    acc_t best;
    int64_t win;
    ps_roi_group_max(sums, g, cig, &best, &win);
    total[g] += best;
  }
}

template <typename scalar_t, typename acc_t>
void ps_roi_max_avg_pool_forward_cpu_kernel(const at::Tensor& maps,
                                            const at::Tensor& rois,
                                            at::Tensor& output, const int cig,
                                            const int pooled_size,
                                            const double spatial_scale) {
  const PSRoIPoolBins bins = ps_roi_pool_bins<scalar_t, acc_t>(
      "ps_roi_max_avg_pool", rois, maps, pooled_size, spatial_scale);
  const scalar_t* in = maps.data_ptr<scalar_t>();
  scalar_t* out = output.data_ptr<scalar_t>();
  const int64_t D = bins.dims, G = D / cig;
  const int P = pooled_size;
  ps_roi_pool_parallel(bins.num_rois, D * P * P, [&](const int64_t n) {
    std::vector<acc_t> sums(D);
    // An empty bin pools 0 in every channel, so its Group_Max adds 0.
    std::vector<double> total(G, 0.);
    for (int ph = 0; ph < P; ++ph) {
      for (int pw = 0; pw < P; ++pw) {
        const int64_t c0 = bins.channel(n, 0, bins.group[ph], bins.group[pw]);
        int hs, he, ws, we;
        if (!bins.cells(n, ph, pw, &hs, &he, &ws, &we)) continue;
        ps_roi_average_all(bins, in + c0, hs, he, ws, we, sums.data());
        ps_roi_add_group_max(sums.data(), G, cig, total.data());
      }
    }
    for (int64_t g = 0; g < G; ++g) {
      out[n * G + g] = static_cast<scalar_t>(
          static_cast<acc_t>(total[g] / (double(P) * P)));
    }
  });
}

// grad_maps: acc_t (see acc_grad_buffer).
template <typename scalar_t, typename acc_t>
void ps_roi_max_avg_pool_backward_cpu_kernel(const at::Tensor& grad_output,
                                             const at::Tensor& maps,
                                             const at::Tensor& rois,
                                             at::Tensor& grad_maps,
                                             const int cig,
                                             const int pooled_size,
                                             const double spatial_scale) {
  const PSRoIPoolBins bins = ps_roi_pool_bins<scalar_t, acc_t>(
      "ps_roi_max_avg_pool", rois, maps, pooled_size, spatial_scale);
  const PSRoIPoolStrides grad_stride(grad_maps);
  const scalar_t* in = maps.data_ptr<scalar_t>();
  const scalar_t* gout = grad_output.data_ptr<scalar_t>();
  acc_t* gin = grad_maps.data_ptr<acc_t>();
  const int64_t D = bins.dims, G = D / cig;
  const int P = pooled_size, k = bins.group_size;
  // RoIs with an all-zero gradient row (e.g. dropped by OHEM) are skipped.
  std::vector<char> active(bins.num_rois, 0);
  for (int64_t n = 0; n < bins.num_rois; ++n) {
    for (int64_t g = 0; g < G && !active[n]; ++g) {
      active[n] = gout[n * G + g] != scalar_t(0);
    }
  }
  // d mean / d bin = 1 / P^2, in acc_t as autograd's mean backward.
  const acc_t num_bins = static_cast<acc_t>(P * P);
  // Task (gh, gw) writes only channels (*, gh, gw).
  ps_roi_pool_parallel(int64_t(k) * k, bins.num_rois * D * P * P / (k * k),
                       [&](const int64_t task) {
    const int gh = task / k, gw = task % k;
    std::vector<acc_t> sums(D);
    for (int64_t n = 0; n < bins.num_rois; ++n) {
      if (!active[n]) continue;
      const int64_t c0 = bins.channel(n, 0, gh, gw);
      const int64_t grad_c0 = bins.channel(n, 0, gh, gw, grad_stride);
      for (int ph = bins.group_begin[gh]; ph < bins.group_begin[gh + 1];
           ++ph) {
        for (int pw = bins.group_begin[gw]; pw < bins.group_begin[gw + 1];
             ++pw) {
          int hs, he, ws, we;
          if (!bins.cells(n, ph, pw, &hs, &he, &ws, &we)) continue;
          ps_roi_average_all(bins, in + c0, hs, he, ws, we, sums.data());
          const acc_t area = static_cast<acc_t>((he - hs) * (we - ws));
          for (int64_t g = 0; g < G; ++g) {
            const acc_t go = static_cast<acc_t>(gout[n * G + g]);
            acc_t best;
            int64_t win;
            ps_roi_group_max(sums.data(), g, cig, &best, &win);
            if (win < 0 || go == acc_t(0)) continue;
            const acc_t value = go / num_bins / area;
            acc_t* channel = gin + grad_c0 + win * grad_stride.d;
            for (int h = hs; h < he; ++h) {
              for (int w = ws; w < we; ++w) {
                channel[h * grad_stride.h + w * grad_stride.w] += value;
              }
            }
          }
        }
      }
    }
  });
}

const int64_t* start_ptr(const at::Tensor& channel_start) {
  return channel_start.numel() ? channel_start.data_ptr<int64_t>() : nullptr;
}

}  // namespace

// Half and bfloat16 run with acc_t = float: see the file comment.
#define MNC_MM_DISPATCH_CPU(dtype, name, ...)                            \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, name, \
                                  __VA_ARGS__)

void ps_roi_pool_forward_cpu(const at::Tensor& maps, const at::Tensor& rois,
                             const at::Tensor& channel_start,
                             at::Tensor& output, const int output_dim,
                             const int pooled_size,
                             const double spatial_scale) {
  MNC_MM_DISPATCH_CPU(maps.scalar_type(), "ps_roi_pool_forward", [&] {
    ps_roi_pool_forward_cpu_kernel<scalar_t, at::opmath_type<scalar_t>>(
        maps, rois, start_ptr(channel_start), output, output_dim, pooled_size,
        spatial_scale);
  });
}

void ps_roi_pool_backward_cpu(const at::Tensor& grad_output,
                              const at::Tensor& rois,
                              const at::Tensor& channel_start,
                              at::Tensor& grad_maps, const int output_dim,
                              const int pooled_size,
                              const double spatial_scale) {
  MNC_MM_DISPATCH_CPU(grad_output.scalar_type(), "ps_roi_pool_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::Tensor grad_acc = acc_grad_buffer<acc_t>(grad_maps, true);
    ps_roi_pool_backward_cpu_kernel<scalar_t, acc_t>(
        grad_output, rois, start_ptr(channel_start), grad_acc, output_dim,
        pooled_size, spatial_scale);
    finish_acc_grad_buffer(grad_acc, grad_maps);
  });
}

void ps_roi_max_avg_pool_forward_cpu(const at::Tensor& maps,
                                     const at::Tensor& rois,
                                     at::Tensor& output, const int cig,
                                     const int pooled_size,
                                     const double spatial_scale) {
  MNC_MM_DISPATCH_CPU(maps.scalar_type(), "ps_roi_max_avg_pool_forward", [&] {
    ps_roi_max_avg_pool_forward_cpu_kernel<scalar_t,
                                           at::opmath_type<scalar_t>>(
        maps, rois, output, cig, pooled_size, spatial_scale);
  });
}

void ps_roi_max_avg_pool_backward_cpu(const at::Tensor& grad_output,
                                      const at::Tensor& maps,
                                      const at::Tensor& rois,
                                      at::Tensor& grad_maps, const int cig,
                                      const int pooled_size,
                                      const double spatial_scale) {
  MNC_MM_DISPATCH_CPU(maps.scalar_type(), "ps_roi_max_avg_pool_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::Tensor grad_acc = acc_grad_buffer<acc_t>(grad_maps, true);
    ps_roi_max_avg_pool_backward_cpu_kernel<scalar_t, acc_t>(
        grad_output, maps, rois, grad_acc, cig, pooled_size, spatial_scale);
    finish_acc_grad_buffer(grad_acc, grad_maps);
  });
}

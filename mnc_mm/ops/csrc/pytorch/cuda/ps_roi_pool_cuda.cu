// Copyright (c) OpenMMLab. All rights reserved.
// CUDA launchers of PSRoIPool and PSRoIMaxAvgPool (kernels in
// ps_roi_pool_cuda_kernel.cuh). The maps come as their (N, D, k, k, H, W)
// view, any strides; ps_roi_pool.cpp has checked the arguments.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "ps_roi_pool_cuda_kernel.cuh"
#include "pytorch_cpp_helper.hpp"

namespace {

// Sizes and strides (in elements) of a (N, D, k, k, H, W) tensor.
PSRoIPoolMaps ps_roi_pool_maps(const at::Tensor& maps) {
  PSRoIPoolMaps m;
  m.batch = maps.size(0);
  m.rows = maps.size(1);
  m.group_size = maps.size(2);
  m.height = maps.size(4);
  m.width = maps.size(5);
  m.stride_n = maps.stride(0);
  m.stride_d = maps.stride(1);
  m.stride_gh = maps.stride(2);
  m.stride_gw = maps.stride(3);
  m.stride_h = maps.stride(4);
  m.stride_w = maps.stride(5);
  return m;
}

const int64_t* start_ptr(const at::Tensor& channel_start) {
  return channel_start.numel() ? channel_start.data_ptr<int64_t>() : nullptr;
}

}  // namespace

void PSRoIPoolForwardCUDAKernelLauncher(const at::Tensor& maps,
                                        const at::Tensor& rois,
                                        const at::Tensor& channel_start,
                                        at::Tensor& output,
                                        const int output_dim,
                                        const int pooled_size,
                                        const double spatial_scale) {
  const int64_t nthreads = output.numel();
  const c10::cuda::CUDAGuard device_guard(maps.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, maps.scalar_type(), "ps_roi_pool_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        ps_roi_pool_forward_cuda_kernel<scalar_t, acc_t>
            <<<GET_BLOCKS(nthreads), THREADS_PER_BLOCK, 0, stream>>>(
                nthreads, maps.data_ptr<scalar_t>(), ps_roi_pool_maps(maps),
                rois.data_ptr<scalar_t>(), start_ptr(channel_start),
                output.data_ptr<scalar_t>(),
                static_cast<acc_t>(spatial_scale), output_dim, pooled_size);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
}

void PSRoIPoolBackwardCUDAKernelLauncher(const at::Tensor& grad_output,
                                         const at::Tensor& rois,
                                         const at::Tensor& channel_start,
                                         at::Tensor& grad_maps,
                                         const int output_dim,
                                         const int pooled_size,
                                         const double spatial_scale) {
  // atomicAdd in a thread order the hardware picks: the float sums may
  // differ from run to run (the CPU backward is deterministic).
  at::globalContext().alertNotDeterministic("ps_roi_pool_backward_cuda");
  const int64_t nthreads = grad_output.numel();
  const c10::cuda::CUDAGuard device_guard(grad_output.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad_output.scalar_type(), "ps_roi_pool_backward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        at::Tensor grad_acc = acc_grad_buffer<acc_t>(grad_maps, true);
        ps_roi_pool_backward_cuda_kernel<scalar_t, acc_t>
            <<<GET_BLOCKS(nthreads), THREADS_PER_BLOCK, 0, stream>>>(
                nthreads, grad_output.data_ptr<scalar_t>(),
                rois.data_ptr<scalar_t>(), start_ptr(channel_start),
                grad_acc.data_ptr<acc_t>(), ps_roi_pool_maps(grad_acc),
                static_cast<acc_t>(spatial_scale), output_dim, pooled_size);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        finish_acc_grad_buffer(grad_acc, grad_maps);
      });
}

void PSRoIMaxAvgPoolForwardCUDAKernelLauncher(const at::Tensor& maps,
                                              const at::Tensor& rois,
                                              at::Tensor& output,
                                              const int cig,
                                              const int pooled_size,
                                              const double spatial_scale) {
  const int64_t nthreads = output.numel();
  const c10::cuda::CUDAGuard device_guard(maps.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, maps.scalar_type(), "ps_roi_max_avg_pool_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        ps_roi_max_avg_pool_forward_cuda_kernel<scalar_t, acc_t>
            <<<GET_BLOCKS(nthreads), THREADS_PER_BLOCK, 0, stream>>>(
                nthreads, maps.data_ptr<scalar_t>(), ps_roi_pool_maps(maps),
                rois.data_ptr<scalar_t>(), output.data_ptr<scalar_t>(),
                static_cast<acc_t>(spatial_scale), cig, pooled_size);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
}

void PSRoIMaxAvgPoolBackwardCUDAKernelLauncher(
    const at::Tensor& grad_output, const at::Tensor& maps,
    const at::Tensor& rois, at::Tensor& grad_maps, const int cig,
    const int pooled_size, const double spatial_scale) {
  // atomicAdd in a thread order the hardware picks: the float sums may
  // differ from run to run (the CPU backward is deterministic).
  at::globalContext().alertNotDeterministic(
      "ps_roi_max_avg_pool_backward_cuda");
  // One thread per (n, g, ph, pw).
  const int64_t nthreads =
      grad_output.numel() * static_cast<int64_t>(pooled_size) * pooled_size;
  const c10::cuda::CUDAGuard device_guard(maps.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, maps.scalar_type(), "ps_roi_max_avg_pool_backward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        at::Tensor grad_acc = acc_grad_buffer<acc_t>(grad_maps, true);
        ps_roi_max_avg_pool_backward_cuda_kernel<scalar_t, acc_t>
            <<<GET_BLOCKS(nthreads), THREADS_PER_BLOCK, 0, stream>>>(
                nthreads, grad_output.data_ptr<scalar_t>(),
                maps.data_ptr<scalar_t>(), ps_roi_pool_maps(maps),
                rois.data_ptr<scalar_t>(), grad_acc.data_ptr<acc_t>(),
                ps_roi_pool_maps(grad_acc),
                static_cast<acc_t>(spatial_scale), cig, pooled_size);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        finish_acc_grad_buffer(grad_acc, grad_maps);
      });
}

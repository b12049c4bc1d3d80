// Copyright (c) OpenMMLab. All rights reserved.
// CUDA launchers of PSRoIPool (kernels in ps_roi_pool_cuda_kernel.cuh).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "ps_roi_pool_cuda_kernel.cuh"

void PSRoIPoolForwardCUDAKernelLauncher(const at::Tensor& input,
                                        const at::Tensor& rois,
                                        at::Tensor& output,
                                        const int output_dim,
                                        const int pooled_size,
                                        const int group_size,
                                        const double spatial_scale) {
  const int64_t nthreads = output.numel();
  const c10::cuda::CUDAGuard device_guard(input.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(
      input.scalar_type(), "ps_roi_pool_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        ps_roi_pool_forward_cuda_kernel<scalar_t, acc_t>
            <<<GET_BLOCKS(nthreads), THREADS_PER_BLOCK, 0, stream>>>(
                nthreads, input.data_ptr<scalar_t>(),
                rois.data_ptr<scalar_t>(), output.data_ptr<scalar_t>(),
                static_cast<acc_t>(spatial_scale), input.size(0),
                input.size(2), input.size(3), output_dim, pooled_size,
                group_size);
      });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void PSRoIPoolBackwardCUDAKernelLauncher(const at::Tensor& grad_output,
                                         const at::Tensor& rois,
                                         at::Tensor& grad_input,
                                         const int output_dim,
                                         const int pooled_size,
                                         const int group_size,
                                         const double spatial_scale) {
  const int64_t nthreads = grad_output.numel();
  const c10::cuda::CUDAGuard device_guard(grad_output.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(
      grad_output.scalar_type(), "ps_roi_pool_backward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        // Half accumulates in a float buffer: atomics on half are slow and
        // lose the small contributions of large bins.
        const auto acc_dtype = c10::CppTypeToScalarType<acc_t>::value;
        at::Tensor grad_acc = grad_input.scalar_type() == acc_dtype
                                  ? grad_input
                                  : grad_input.to(acc_dtype);
        ps_roi_pool_backward_cuda_kernel<scalar_t, acc_t>
            <<<GET_BLOCKS(nthreads), THREADS_PER_BLOCK, 0, stream>>>(
                nthreads, grad_output.data_ptr<scalar_t>(),
                rois.data_ptr<scalar_t>(), grad_acc.data_ptr<acc_t>(),
                static_cast<acc_t>(spatial_scale), grad_input.size(0),
                grad_input.size(2), grad_input.size(3), output_dim,
                pooled_size, group_size);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        if (!grad_acc.is_same(grad_input)) grad_input.copy_(grad_acc);
      });
}

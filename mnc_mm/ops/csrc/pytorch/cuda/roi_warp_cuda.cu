// Copyright (c) OpenMMLab. All rights reserved.
// CUDA launchers of the RoI warp (kernels in roi_warp_cuda_kernel.cuh).
#include <ATen/AccumulateType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "pytorch_cpp_helper.hpp"
#include "roi_warp_cuda_kernel.cuh"

void roi_warp_forward_cuda(const at::Tensor& input, const at::Tensor& rois,
                           at::Tensor& output, int pooled_height,
                           int pooled_width, double spatial_scale,
                           bool quantize) {
  const c10::cuda::CUDAGuard device_guard(input.device());
  const int64_t nthreads = output.numel();
  if (nthreads == 0) return;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "roi_warp_forward_cuda", [&] {
        using acc_t = at::acc_type<scalar_t, /*is_cuda=*/true>;
        roi_warp_forward_cuda_kernel<scalar_t, acc_t>
            <<<GET_BLOCKS(nthreads), THREADS_PER_BLOCK, 0, stream>>>(
                nthreads, input.data_ptr<scalar_t>(),
                rois.data_ptr<scalar_t>(), output.data_ptr<scalar_t>(),
                input.size(0), input.size(1), input.size(2), input.size(3),
                pooled_height,
                pooled_width, static_cast<acc_t>(spatial_scale), quantize);
      });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Accumulates in acc_t buffers (float for half, so atomicAdd needs no half
// support) and copies them into grad_input / grad_rois at the end.
void roi_warp_backward_cuda(const at::Tensor& grad_output,
                            const at::Tensor& input, const at::Tensor& rois,
                            at::Tensor& grad_input, at::Tensor& grad_rois,
                            int pooled_height, int pooled_width,
                            double spatial_scale, bool quantize) {
  // atomicAdd in a thread order the hardware picks: the float sums may
  // differ from run to run (the CPU backward is deterministic).
  at::globalContext().alertNotDeterministic("roi_warp_backward_cuda");
  const c10::cuda::CUDAGuard device_guard(input.device());
  const bool need_input = grad_input.numel() > 0;
  const bool need_rois = grad_rois.numel() > 0;
  const auto acc_type =
      at::toAccumulateType(input.scalar_type(), /*is_cuda=*/true);
  at::Tensor grad_input_acc, grad_rois_acc;
  if (need_input)
    grad_input_acc = grad_input.scalar_type() == acc_type
                         ? grad_input.zero_()
                         : at::zeros(grad_input.sizes(),
                                     grad_input.options().dtype(acc_type));
  if (need_rois)
    grad_rois_acc = grad_rois.scalar_type() == acc_type
                        ? grad_rois.zero_()
                        : at::zeros(grad_rois.sizes(),
                                    grad_rois.options().dtype(acc_type));
  const int64_t num_rois = rois.size(0);
  const int64_t per_roi = grad_output.numel() / (num_rois > 0 ? num_rois : 1);
  if (num_rois > 0 && per_roi > 0 && (need_input || need_rois)) {
    const int64_t chunks = std::min<int64_t>(
        (per_roi + THREADS_PER_BLOCK - 1) / THREADS_PER_BLOCK, 64);
    const dim3 grid(static_cast<unsigned int>(num_rois),
                    static_cast<unsigned int>(chunks));
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16,   input.scalar_type(), "roi_warp_backward_cuda", [&] {
          using acc_t = at::acc_type<scalar_t, /*is_cuda=*/true>;
          roi_warp_backward_cuda_kernel<scalar_t, acc_t>
              <<<grid, THREADS_PER_BLOCK, 0, stream>>>(
                  grad_output.data_ptr<scalar_t>(),
                  input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
                  need_input ? grad_input_acc.data_ptr<acc_t>() : nullptr,
                  need_rois ? grad_rois_acc.data_ptr<acc_t>() : nullptr,
                  input.size(0), input.size(1), input.size(2), input.size(3),
                  pooled_height,
                  pooled_width, static_cast<acc_t>(spatial_scale), quantize);
        });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  if (need_input && !grad_input_acc.is_same(grad_input))
    grad_input.copy_(grad_input_acc);
  if (need_rois && !grad_rois_acc.is_same(grad_rois))
    grad_rois.copy_(grad_rois_acc);
}

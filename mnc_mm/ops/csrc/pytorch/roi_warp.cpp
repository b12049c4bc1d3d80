// Copyright (c) OpenMMLab. All rights reserved.
// Device-agnostic entry points of the RoI warp: check the arguments, then
// dispatch to the CPU kernels or, in a CUDA build, to the CUDA launchers.
// Outputs are preallocated by the caller and fully overwritten.
#include "pytorch_cpp_helper.hpp"

void roi_warp_forward_cpu(const at::Tensor& input, const at::Tensor& rois,
                          at::Tensor& output, int pooled_height,
                          int pooled_width, double spatial_scale,
                          bool quantize);
void roi_warp_backward_cpu(const at::Tensor& grad_output,
                           const at::Tensor& input, const at::Tensor& rois,
                           at::Tensor& grad_input, at::Tensor& grad_rois,
                           int pooled_height, int pooled_width,
                           double spatial_scale, bool quantize);
#ifdef MNC_MM_WITH_CUDA
void roi_warp_forward_cuda(const at::Tensor& input, const at::Tensor& rois,
                           at::Tensor& output, int pooled_height,
                           int pooled_width, double spatial_scale,
                           bool quantize);
void roi_warp_backward_cuda(const at::Tensor& grad_output,
                            const at::Tensor& input, const at::Tensor& rois,
                            at::Tensor& grad_input, at::Tensor& grad_rois,
                            int pooled_height, int pooled_width,
                            double spatial_scale, bool quantize);
#endif

namespace {

void check_same_place(const at::Tensor& ref, const at::Tensor& t,
                      const char* name) {
  TORCH_CHECK(t.device() == ref.device(), "roi_warp: ", name, " is on ",
              t.device(), " but input is on ", ref.device());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), "roi_warp: ", name,
              " has dtype ", t.scalar_type(), " but input has ",
              ref.scalar_type());
  TORCH_CHECK(t.is_contiguous(), "roi_warp: ", name, " must be contiguous");
}

void check_common(const at::Tensor& input, const at::Tensor& rois,
                  int pooled_height, int pooled_width, double spatial_scale) {
  TORCH_CHECK(input.dim() == 4, "roi_warp: input must be (N, C, H, W), got ",
              input.sizes());
  TORCH_CHECK(input.size(2) > 0 && input.size(3) > 0,
              "roi_warp: input must have H, W >= 1, got ", input.sizes());
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5,
              "roi_warp: rois must be (R, 5), got ", rois.sizes());
  TORCH_CHECK(pooled_height > 0 && pooled_width > 0,
              "roi_warp: output size must be positive, got (", pooled_height,
              ", ", pooled_width, ")");
  TORCH_CHECK(input.is_contiguous(), "roi_warp: input must be contiguous");
  check_same_place(input, rois, "rois");
  check_spatial_scale("roi_warp", spatial_scale, input.scalar_type());
}

}  // namespace

// input (N, C, H, W), rois (R, 5) -> output (R, C, PH, PW).
void roi_warp_forward(const at::Tensor& input, const at::Tensor& rois,
                      at::Tensor output, int pooled_height, int pooled_width,
                      double spatial_scale, bool quantize) {
  check_common(input, rois, pooled_height, pooled_width, spatial_scale);
  check_same_place(input, output, "output");
  TORCH_CHECK(output.sizes() == at::IntArrayRef({rois.size(0), input.size(1),
                                                 pooled_height, pooled_width}),
              "roi_warp: output has shape ", output.sizes());
  if (input.is_cuda()) {
#ifdef MNC_MM_WITH_CUDA
    roi_warp_forward_cuda(input, rois, output, pooled_height, pooled_width,
                          spatial_scale, quantize);
#else
    MNC_MM_CUDA_NOT_BUILT("roi_warp");
#endif
  } else {
    roi_warp_forward_cpu(input, rois, output, pooled_height, pooled_width,
                         spatial_scale, quantize);
  }
}

// grad_input (N, C, H, W) and grad_rois (R, 5); pass an empty tensor for a
// gradient that is not needed.
void roi_warp_backward(const at::Tensor& grad_output, const at::Tensor& input,
                       const at::Tensor& rois, at::Tensor grad_input,
                       at::Tensor grad_rois, int pooled_height,
                       int pooled_width, double spatial_scale, bool quantize) {
  check_common(input, rois, pooled_height, pooled_width, spatial_scale);
  check_same_place(input, grad_output, "grad_output");
  TORCH_CHECK(grad_output.sizes() ==
                  at::IntArrayRef({rois.size(0), input.size(1), pooled_height,
                                   pooled_width}),
              "roi_warp: grad_output has shape ", grad_output.sizes());
  if (grad_input.numel()) {
    check_same_place(input, grad_input, "grad_input");
    TORCH_CHECK(grad_input.sizes() == input.sizes(),
                "roi_warp: grad_input has shape ", grad_input.sizes());
  }
  if (grad_rois.numel()) {
    check_same_place(input, grad_rois, "grad_rois");
    TORCH_CHECK(grad_rois.sizes() == rois.sizes(),
                "roi_warp: grad_rois has shape ", grad_rois.sizes());
  }
  if (input.is_cuda()) {
#ifdef MNC_MM_WITH_CUDA
    roi_warp_backward_cuda(grad_output, input, rois, grad_input, grad_rois,
                           pooled_height, pooled_width, spatial_scale,
                           quantize);
#else
    MNC_MM_CUDA_NOT_BUILT("roi_warp");
#endif
  } else {
    roi_warp_backward_cpu(grad_output, input, rois, grad_input, grad_rois,
                          pooled_height, pooled_width, spatial_scale,
                          quantize);
  }
}

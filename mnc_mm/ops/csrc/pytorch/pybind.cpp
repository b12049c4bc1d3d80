// Copyright (c) OpenMMLab. All rights reserved.
// The one Python binding of mnc_mm._ext: declarations of every op entry
// point (defined in pytorch/<op>.cpp) and their m.def lines.
#include <torch/extension.h>

#include <string>

std::string get_compiler_version();
std::string get_compiling_cuda_version();

// roi_warp.cpp
void roi_warp_forward(const at::Tensor& input, const at::Tensor& rois,
                      at::Tensor output, int pooled_height, int pooled_width,
                      double spatial_scale, bool quantize);
void roi_warp_backward(const at::Tensor& grad_output, const at::Tensor& input,
                       const at::Tensor& rois, at::Tensor grad_input,
                       at::Tensor grad_rois, int pooled_height,
                       int pooled_width, double spatial_scale, bool quantize);

// ps_roi_pool.cpp (maps: the (N, D, k, k, H, W) view of the score maps)
void ps_roi_pool_forward(at::Tensor maps, at::Tensor rois,
                         at::Tensor channel_start, at::Tensor output,
                         int64_t output_dim, int64_t pooled_size,
                         double spatial_scale);
void ps_roi_pool_backward(at::Tensor grad_output, at::Tensor rois,
                          at::Tensor channel_start, at::Tensor grad_maps,
                          int64_t output_dim, int64_t pooled_size,
                          double spatial_scale);
void ps_roi_max_avg_pool_forward(at::Tensor maps, at::Tensor rois,
                                 at::Tensor output,
                                 int64_t channels_per_group,
                                 int64_t pooled_size, double spatial_scale);
void ps_roi_max_avg_pool_backward(at::Tensor grad_output, at::Tensor maps,
                                  at::Tensor rois, at::Tensor grad_maps,
                                  int64_t channels_per_group,
                                  int64_t pooled_size, double spatial_scale);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("get_compiler_version", &get_compiler_version,
        "compiler that built mnc_mm._ext");
  m.def("get_compiling_cuda_version", &get_compiling_cuda_version,
        "CUDA runtime version mnc_mm._ext was built with");
  // MNC
  m.def("roi_warp_forward", &roi_warp_forward, "MNC RoI warp forward",
        py::arg("input"), py::arg("rois"), py::arg("output"),
        py::arg("pooled_height"), py::arg("pooled_width"),
        py::arg("spatial_scale"), py::arg("quantize"));
  m.def("roi_warp_backward", &roi_warp_backward,
        "MNC RoI warp backward (feature and box gradients; an empty grad "
        "tensor skips that gradient)",
        py::arg("grad_output"), py::arg("input"), py::arg("rois"),
        py::arg("grad_input"), py::arg("grad_rois"), py::arg("pooled_height"),
        py::arg("pooled_width"), py::arg("spatial_scale"),
        py::arg("quantize"));
  // FCIS
  m.def("ps_roi_pool_forward", &ps_roi_pool_forward,
        "FCIS position-sensitive RoI pooling, forward (writes output; an "
        "empty channel_start pools channel rows 0..output_dim of every RoI)",
        py::arg("maps"), py::arg("rois"), py::arg("channel_start"),
        py::arg("output"), py::arg("output_dim"), py::arg("pooled_size"),
        py::arg("spatial_scale"));
  m.def("ps_roi_pool_backward", &ps_roi_pool_backward,
        "FCIS position-sensitive RoI pooling, backward (adds to grad_maps)",
        py::arg("grad_output"), py::arg("rois"), py::arg("channel_start"),
        py::arg("grad_maps"), py::arg("output_dim"), py::arg("pooled_size"),
        py::arg("spatial_scale"));
  m.def("ps_roi_max_avg_pool_forward", &ps_roi_max_avg_pool_forward,
        "PSRoIPool, the max over each group's channels, the average over the "
        "bins (the FCIS class score), forward (writes output)",
        py::arg("maps"), py::arg("rois"), py::arg("output"),
        py::arg("channels_per_group"), py::arg("pooled_size"),
        py::arg("spatial_scale"));
  m.def("ps_roi_max_avg_pool_backward", &ps_roi_max_avg_pool_backward,
        "PSRoIMaxAvgPool backward (adds to grad_maps)",
        py::arg("grad_output"), py::arg("maps"), py::arg("rois"),
        py::arg("grad_maps"), py::arg("channels_per_group"),
        py::arg("pooled_size"), py::arg("spatial_scale"));
}

// Copyright (c) OpenMMLab. All rights reserved.
// The one Python binding of mnc_mm._ext: declarations of every op entry
// point (defined in pytorch/<op>.cpp) and their m.def lines.
#include <torch/extension.h>

#include <string>

std::string get_compiler_version();
std::string get_compiling_cuda_version();

// >>> roi_warp declarations
// <<< roi_warp declarations

// >>> ps_roi_pool declarations
// <<< ps_roi_pool declarations

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("get_compiler_version", &get_compiler_version,
        "compiler that built mnc_mm._ext");
  m.def("get_compiling_cuda_version", &get_compiling_cuda_version,
        "CUDA runtime version mnc_mm._ext was built with");
  // >>> roi_warp bindings
  // <<< roi_warp bindings
  // >>> ps_roi_pool bindings
  // <<< ps_roi_pool bindings
}

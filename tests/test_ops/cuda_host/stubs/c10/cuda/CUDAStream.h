// Copyright (c) OpenMMLab. All rights reserved.
// Stand-in for the c10 CUDA header of the same name in the host-run CUDA
// build (tests/test_ops/cuda_host/host_cuda.h).
#pragma once
#include "host_cuda.h"

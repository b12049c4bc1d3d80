// Copyright (c) OpenMMLab. All rights reserved.
// MNC_MM_HOST_DEVICE marks torch-free math shared by the CPU kernels (g++)
// and the CUDA kernels (nvcc).
#ifndef MNC_MM_HOST_DEVICE_HPP
#define MNC_MM_HOST_DEVICE_HPP

#ifdef __CUDACC__
#define MNC_MM_HOST_DEVICE __host__ __device__
#else
#define MNC_MM_HOST_DEVICE
#endif

#endif  // MNC_MM_HOST_DEVICE_HPP

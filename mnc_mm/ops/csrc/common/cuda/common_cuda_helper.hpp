// Copyright (c) OpenMMLab. All rights reserved.
// Torch-free CUDA helpers shared by the *_cuda_kernel.cuh files.
#ifndef MNC_MM_COMMON_CUDA_HELPER_HPP
#define MNC_MM_COMMON_CUDA_HELPER_HPP

#define CUDA_1D_KERNEL_LOOP(i, n)                              \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)blockDim.x * gridDim.x)

#define THREADS_PER_BLOCK 512

inline int GET_BLOCKS(const int64_t N, const int num_threads = THREADS_PER_BLOCK) {
  int64_t optimal_block_num = (N + num_threads - 1) / num_threads;
  const int64_t max_block_num = 4096;
  int64_t blocks = optimal_block_num < max_block_num ? optimal_block_num : max_block_num;
  return static_cast<int>(blocks > 0 ? blocks : 1);
}

#endif  // MNC_MM_COMMON_CUDA_HELPER_HPP

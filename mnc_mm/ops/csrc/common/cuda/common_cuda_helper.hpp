// Copyright (c) OpenMMLab. All rights reserved.
// Torch-free CUDA helpers shared by the *_cuda_kernel.cuh files.
#ifndef MNC_MM_COMMON_CUDA_HELPER_HPP
#define MNC_MM_COMMON_CUDA_HELPER_HPP
#include <cstdint>
#include <cstdio>

#define CUDA_1D_KERNEL_LOOP(i, n)                              \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)blockDim.x * gridDim.x)

#define THREADS_PER_BLOCK 512

// A value check the host cannot make without a device-to-host sync (a RoI's
// batch index, finite corners) runs where a kernel reads the value: a
// failing thread prints `what` and traps, as torch's CUDA_KERNEL_ASSERT
// does, and the error surfaces at the next synchronising call. The CPU
// kernels raise the same checks as errors (check_roi_values).
#define MNC_MM_KERNEL_CHECK(cond, what)                         \
  do {                                                          \
    if (!(cond)) {                                              \
      printf("mnc_mm: %s (block %d, thread %d)\n", what,        \
             static_cast<int>(blockIdx.x),                      \
             static_cast<int>(threadIdx.x));                    \
      __trap();                                                 \
    }                                                           \
  } while (0)

// RoI row [batch_idx, x1, y1, x2, y2] read in acc_t: every value finite and
// the batch index an integer in [0, batch).
template <typename acc_t, typename scalar_t>
__host__ __device__ inline bool roi_row_valid(const scalar_t* roi,
                                              const int64_t batch) {
  for (int k = 0; k < 5; ++k) {
    const acc_t v = static_cast<acc_t>(roi[k]);
    if (!(v - v == acc_t(0))) return false;  // NaN or +-inf
  }
  const acc_t b = static_cast<acc_t>(roi[0]);
  return b >= acc_t(0) && b < static_cast<acc_t>(batch) &&
         b == static_cast<acc_t>(static_cast<int64_t>(b));
}

#define MNC_MM_CHECK_ROI(acc_t, roi, batch)                          \
  MNC_MM_KERNEL_CHECK((roi_row_valid<acc_t>(roi, batch)),            \
                      "rois must be finite with rois[:, 0] (batch index) " \
                      "an integer in [0, N)")

inline int GET_BLOCKS(const int64_t N, const int num_threads = THREADS_PER_BLOCK) {
  int64_t optimal_block_num = (N + num_threads - 1) / num_threads;
  const int64_t max_block_num = 4096;
  int64_t blocks = optimal_block_num < max_block_num ? optimal_block_num : max_block_num;
  return static_cast<int>(blocks > 0 ? blocks : 1);
}

#endif  // MNC_MM_COMMON_CUDA_HELPER_HPP

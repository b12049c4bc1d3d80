// Copyright (c) OpenMMLab. All rights reserved.
// The CUDA dialect of our kernels, run on the host: the qualifiers, the
// built-in indices, atomicAdd, __shared__, __syncthreads, __trap and a
// kernel launch, so that the .cuh kernels and the .cu launchers of
// mnc_mm/ops/csrc compile with g++ and run on CPU tensors
// (tests/test_ops/test_cuda_host.py).
//
// A launch runs the blocks one after another in a seeded random order, and
// the threads of a block as fibers (ucontext) on the calling thread: the
// scheduler picks a random runnable thread, runs it until it finishes,
// reaches __syncthreads (a barrier over the block's live threads, as on
// Volta and later) or is preempted. Preemption: compiled with
// -fsanitize=thread, every memory access calls a __tsan_* hook; the hooks
// below (no libtsan is linked) switch to another thread at a write with a
// seeded probability, so a read-modify-write that is not atomic loses
// updates as it would on a GPU. atomicAdd is std::atomic_ref::fetch_add.
//
// Like the CUDA runtime, a launch with a bad configuration does not run and
// leaves an error pending, reported (and cleared) by the next launch check
// (C10_CUDA_KERNEL_LAUNCH_CHECK); a thread that traps ends the launch's
// threads and leaves its message pending too.
#ifndef MNC_MM_HOST_CUDA_H
#define MNC_MM_HOST_CUDA_H
#include <c10/core/Device.h>
#include <c10/util/Exception.h>
#include <ucontext.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#define MNC_MM_HOST_RUNTIME __attribute__((no_sanitize_thread, noinline))

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1,
                 unsigned int z_ = 1)
      : x(x_), y(y_), z(z_) {}
};
using uint3 = dim3;
typedef struct CUstream_st* cudaStream_t;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// Blocks run one at a time, so one static array per kernel instantiation is
// the shared memory of the running block.
#define __shared__ static

inline thread_local dim3 blockIdx, threadIdx, blockDim, gridDim;

namespace host_cuda {

// Settings of the next launches (set from Python by the test).
inline uint64_t g_seed = 0;
inline double g_preempt = 0.0;  // switch probability at a write
inline std::string g_pending_error;

struct Trap {};

constexpr size_t kStackSize = 256 * 1024;  // per GPU thread

struct Fiber {
  ucontext_t ctx;
  dim3 tid;
  int state;  // 0 runnable, 1 waiting at __syncthreads, 2 finished
};

struct Scheduler {
  std::vector<Fiber> fibers;
  std::vector<std::unique_ptr<char[]>> stacks;
  ucontext_t main_ctx;
  std::mt19937_64 rng;
  std::function<void()> body;
  int current = -1;
  bool trapped = false;
};
inline Scheduler* g_sched = nullptr;

MNC_MM_HOST_RUNTIME inline void switch_to_scheduler() {
  Scheduler& s = *g_sched;
  Fiber& f = s.fibers[s.current];
  s.current = -1;
  swapcontext(&f.ctx, &s.main_ctx);
}

MNC_MM_HOST_RUNTIME inline void fiber_entry() {
  Scheduler& s = *g_sched;
  try {
    s.body();
  } catch (const Trap&) {
    s.trapped = true;
  }
  s.fibers[s.current].state = 2;
  switch_to_scheduler();
}

// Runs the threads of one block to completion.
MNC_MM_HOST_RUNTIME inline void run_block(Scheduler& s) {
  const int n = static_cast<int>(s.fibers.size());
  for (int t = 0; t < n; ++t) {
    Fiber& f = s.fibers[t];
    f.tid = dim3(t % blockDim.x, t / blockDim.x % blockDim.y,
                 t / (blockDim.x * blockDim.y));
    f.state = 0;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = s.stacks[t].get();
    f.ctx.uc_stack.ss_size = kStackSize;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, fiber_entry, 0);
  }
  std::vector<int> runnable;
  while (!s.trapped) {
    runnable.clear();
    int waiting = 0;
    for (int t = 0; t < n; ++t) {
      if (s.fibers[t].state == 0) runnable.push_back(t);
      waiting += s.fibers[t].state == 1;
    }
    if (runnable.empty()) {
      if (waiting == 0) break;  // all finished
      for (auto& f : s.fibers)  // every live thread is at the barrier
        if (f.state == 1) f.state = 0;
      continue;
    }
    const int t = runnable[s.rng() % runnable.size()];
    s.current = t;
    threadIdx = s.fibers[t].tid;
    swapcontext(&s.main_ctx, &s.fibers[t].ctx);
  }
}

MNC_MM_HOST_RUNTIME inline bool valid_config(const dim3& g, const dim3& b,
                                             size_t smem) {
  const uint64_t threads = uint64_t(b.x) * b.y * b.z;
  return g.x >= 1 && g.x <= 2147483647u && g.y >= 1 && g.y <= 65535 &&
         g.z >= 1 && g.z <= 65535 && b.x >= 1 && b.y >= 1 && b.z >= 1 &&
         b.x <= 1024 && b.y <= 1024 && b.z <= 64 && threads <= 1024 &&
         smem <= 48 * 1024;
}

// kernel<<<grid, block, smem, stream>>>(args...), as the generator writes
// it: launch(grid, block, smem, stream, kernel, args...).
template <typename Kernel, typename... Args>
MNC_MM_HOST_RUNTIME void launch(dim3 grid, dim3 block, size_t smem,
                                cudaStream_t, Kernel kernel, Args... args) {
  if (!valid_config(grid, block, smem)) {
    if (g_pending_error.empty())
      g_pending_error = "invalid configuration argument (grid (" +
                        std::to_string(grid.x) + ", " +
                        std::to_string(grid.y) + ", " +
                        std::to_string(grid.z) + "), block (" +
                        std::to_string(block.x) + ", " +
                        std::to_string(block.y) + ", " +
                        std::to_string(block.z) + "))";
    return;
  }
  Scheduler s;
  s.rng.seed(g_seed++);
  s.body = [&] { kernel(args...); };
  const int threads = block.x * block.y * block.z;
  s.fibers.resize(threads);
  s.stacks.resize(threads);
  for (auto& stack : s.stacks)  // pages are committed only where touched
    stack.reset(new char[kStackSize]);
  gridDim = grid;
  blockDim = block;
  std::vector<uint64_t> order(uint64_t(grid.x) * grid.y * grid.z);
  std::iota(order.begin(), order.end(), uint64_t(0));
  std::shuffle(order.begin(), order.end(), s.rng);
  g_sched = &s;
  for (const uint64_t b : order) {
    blockIdx = dim3(b % grid.x, b / grid.x % grid.y, b / (grid.x * grid.y));
    run_block(s);
    if (s.trapped) break;
  }
  g_sched = nullptr;
  if (s.trapped && g_pending_error.empty())
    g_pending_error = "device-side trap (a kernel check failed)";
}

// cudaGetLastError + the check of C10_CUDA_KERNEL_LAUNCH_CHECK.
MNC_MM_HOST_RUNTIME inline void launch_check() {
  std::string error;
  error.swap(g_pending_error);
  TORCH_CHECK(error.empty(), "CUDA error: ", error);
}

MNC_MM_HOST_RUNTIME inline void syncthreads() {
  Scheduler& s = *g_sched;
  s.fibers[s.current].state = 1;
  switch_to_scheduler();
}

// Called by the hooks: maybe let another thread of the block run. The
// random draw runs instrumented library code, whose own hook calls return
// at once (g_drawing).
inline bool g_drawing = false;
MNC_MM_HOST_RUNTIME inline void maybe_preempt() {
  Scheduler* s = g_sched;
  if (g_drawing || s == nullptr || s->current < 0 || g_preempt <= 0) return;
  g_drawing = true;
  const double u = static_cast<double>(s->rng() >> 11) * 0x1.0p-53;
  g_drawing = false;
  if (u < g_preempt) switch_to_scheduler();
}

}  // namespace host_cuda

// Stand-ins for c10/cuda (CUDAGuard.h, CUDAStream.h, CUDAException.h).
namespace c10 {
namespace cuda {
struct CUDAGuard {
  explicit CUDAGuard(const c10::Device&) {}
};
inline cudaStream_t getCurrentCUDAStream() { return nullptr; }
}  // namespace cuda
}  // namespace c10
#define C10_CUDA_KERNEL_LAUNCH_CHECK() host_cuda::launch_check()

#define __syncthreads() host_cuda::syncthreads()
#define __trap() throw host_cuda::Trap()

template <typename T>
inline T atomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value);
}

#endif  // MNC_MM_HOST_CUDA_H

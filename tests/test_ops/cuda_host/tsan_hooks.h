// Copyright (c) OpenMMLab. All rights reserved.
// The __tsan_* entry points that g++ -fsanitize=thread calls at every
// memory access, defined here instead of linking libtsan: plain accesses
// are left alone except that a write may preempt the running GPU thread
// (host_cuda::maybe_preempt); atomic accesses are done atomically. Include
// once per shared object, after host_cuda.h.
#ifndef MNC_MM_TSAN_HOOKS_H
#define MNC_MM_TSAN_HOOKS_H
#include <cstdint>

#define MNC_MM_HOOK extern "C" __attribute__((no_sanitize_thread, used))

MNC_MM_HOOK void __tsan_init() {}
MNC_MM_HOOK void __tsan_func_entry(void*) {}
MNC_MM_HOOK void __tsan_func_exit() {}
MNC_MM_HOOK void __tsan_vptr_update(void**, void*) {}
MNC_MM_HOOK void __tsan_vptr_read(void**) {}
MNC_MM_HOOK void __tsan_read_range(void*, unsigned long) {}
MNC_MM_HOOK void __tsan_write_range(void*, unsigned long) {}

#define MNC_MM_PLAIN_HOOKS(n)                                          \
  MNC_MM_HOOK void __tsan_read##n(void*) {}                            \
  MNC_MM_HOOK void __tsan_unaligned_read##n(void*) {}                  \
  MNC_MM_HOOK void __tsan_volatile_read##n(void*) {}                   \
  MNC_MM_HOOK void __tsan_write##n(void*) { host_cuda::maybe_preempt(); } \
  MNC_MM_HOOK void __tsan_unaligned_write##n(void*) {                  \
    host_cuda::maybe_preempt();                                        \
  }                                                                    \
  MNC_MM_HOOK void __tsan_volatile_write##n(void*) {                   \
    host_cuda::maybe_preempt();                                        \
  }
MNC_MM_PLAIN_HOOKS(1)
MNC_MM_PLAIN_HOOKS(2)
MNC_MM_PLAIN_HOOKS(4)
MNC_MM_PLAIN_HOOKS(8)
MNC_MM_PLAIN_HOOKS(16)

// Atomics: seq_cst whatever order is asked (stronger is always correct).
#define MNC_MM_ATOMIC_HOOKS(bits, T)                                          \
  MNC_MM_HOOK T __tsan_atomic##bits##_load(const volatile T* a, int) {       \
    return __atomic_load_n(a, __ATOMIC_SEQ_CST);                             \
  }                                                                          \
  MNC_MM_HOOK void __tsan_atomic##bits##_store(volatile T* a, T v, int) {    \
    __atomic_store_n(a, v, __ATOMIC_SEQ_CST);                                \
  }                                                                          \
  MNC_MM_HOOK T __tsan_atomic##bits##_exchange(volatile T* a, T v, int) {    \
    return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST);                      \
  }                                                                          \
  MNC_MM_HOOK T __tsan_atomic##bits##_fetch_add(volatile T* a, T v, int) {   \
    return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST);                       \
  }                                                                          \
  MNC_MM_HOOK T __tsan_atomic##bits##_fetch_sub(volatile T* a, T v, int) {   \
    return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST);                       \
  }                                                                          \
  MNC_MM_HOOK T __tsan_atomic##bits##_fetch_and(volatile T* a, T v, int) {   \
    return __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST);                       \
  }                                                                          \
  MNC_MM_HOOK T __tsan_atomic##bits##_fetch_or(volatile T* a, T v, int) {    \
    return __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST);                        \
  }                                                                          \
  MNC_MM_HOOK T __tsan_atomic##bits##_fetch_xor(volatile T* a, T v, int) {   \
    return __atomic_fetch_xor(a, v, __ATOMIC_SEQ_CST);                       \
  }                                                                          \
  MNC_MM_HOOK T __tsan_atomic##bits##_fetch_nand(volatile T* a, T v, int) {  \
    return __atomic_fetch_nand(a, v, __ATOMIC_SEQ_CST);                      \
  }                                                                          \
  MNC_MM_HOOK int __tsan_atomic##bits##_compare_exchange_strong(             \
      volatile T* a, T* c, T v, int, int) {                                  \
    return __atomic_compare_exchange_n(a, c, v, false, __ATOMIC_SEQ_CST,     \
                                       __ATOMIC_SEQ_CST);                    \
  }                                                                          \
  MNC_MM_HOOK int __tsan_atomic##bits##_compare_exchange_weak(               \
      volatile T* a, T* c, T v, int, int) {                                  \
    return __atomic_compare_exchange_n(a, c, v, true, __ATOMIC_SEQ_CST,      \
                                       __ATOMIC_SEQ_CST);                    \
  }                                                                          \
  MNC_MM_HOOK T __tsan_atomic##bits##_compare_exchange_val(                  \
      volatile T* a, T c, T v, int, int) {                                   \
    __atomic_compare_exchange_n(a, &c, v, false, __ATOMIC_SEQ_CST,           \
                                __ATOMIC_SEQ_CST);                           \
    return c;                                                                \
  }
MNC_MM_ATOMIC_HOOKS(8, int8_t)
MNC_MM_ATOMIC_HOOKS(16, int16_t)
MNC_MM_ATOMIC_HOOKS(32, int32_t)
MNC_MM_ATOMIC_HOOKS(64, int64_t)
MNC_MM_HOOK void __tsan_atomic_thread_fence(int) {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
MNC_MM_HOOK void __tsan_atomic_signal_fence(int) {}

#endif  // MNC_MM_TSAN_HOOKS_H

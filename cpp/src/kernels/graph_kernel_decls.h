// Declarations of every ISA's forward-pass kernels, for graph_dispatch.cpp. Not public.
#pragma once
#include "seedcore/graph_kernels.h"

namespace seedcore {

#define SEEDCORE_DECLARE_GRAPH_KERNELS(isa)                                                     \
  void gemm_micro_##isa(int mr, int kc, const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs,        \
                        const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs, bool accumulate); \
  void depthwise3x3_##isa(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count,   \
                          int stride, int dil, const float* w, float bias, float* out);

SEEDCORE_DECLARE_GRAPH_KERNELS(scalar)
#if defined(__x86_64__)
SEEDCORE_DECLARE_GRAPH_KERNELS(avx2)
#endif
#if defined(__aarch64__)
SEEDCORE_DECLARE_GRAPH_KERNELS(neon)
#endif
#undef SEEDCORE_DECLARE_GRAPH_KERNELS

constexpr int kScalarMr = 4, kScalarNr = 8;
constexpr int kAvx2Mr = 6, kAvx2Nr = 16;
constexpr int kNeonMr = 6, kNeonNr = 16;

}  // namespace seedcore

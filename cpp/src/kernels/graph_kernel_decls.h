// Declarations of every ISA's forward-pass kernels, for graph_dispatch.cpp. Not public.
#pragma once
#include "seedcore/graph_kernels.h"

namespace seedcore {

#define SEEDCORE_DECLARE_GEMM_MICRO(isa)                                                      \
  void gemm_micro_##isa(int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c,   \
                        ptrdiff_t c_rs, bool accumulate, const float* row_bias, const float* col_bias, const float* clamp); \
  void gemm_micro_rows_##isa(int m, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, \
                             ptrdiff_t c_rs, bool accumulate, const float* row_bias, const float* col_bias, const float* clamp); \
  void gemm_micro_cols_##isa(int n, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c,         \
                             ptrdiff_t c_rs, bool accumulate, const float* row_bias, const float* col_bias, const float* clamp);
#define SEEDCORE_DECLARE_GRAPH_KERNELS(isa)                                                     \
  SEEDCORE_DECLARE_GEMM_MICRO(isa)                                                              \
  void gemm_pack_bt_##isa(const float* w, ptrdiff_t w_rs, int64_t K, int nr, int NR, float* dst); \
  void depthwise3x3_##isa(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count,   \
                          int stride, int dil, const float* w, float bias, float* out,       \
                          const float* clamp);                                                 \
  void gelu_erf_##isa(const float* x, float* y, int64_t n);                                     \
  void softmax_row_##isa(const float* x, float* y, int64_t n);                                  \
  void layer_norm_row_##isa(const float* x, float* y, int64_t d, const float* w, const float* b, double eps);

SEEDCORE_DECLARE_GRAPH_KERNELS(scalar)
#if defined(__x86_64__)
SEEDCORE_DECLARE_GRAPH_KERNELS(avx2)
SEEDCORE_DECLARE_GEMM_MICRO(avx512)  // AVX-512: the GEMM and depthwise (stride 1, 2); the rest stays AVX2
// The in-place depthwise kernel exists for x86 only (the other tables' entry is null).
void depthwise3x3_plane_avx2(const float* in, int64_t h, int64_t in_w, int64_t ph, int64_t pw, int64_t oh_count,
                             int64_t ow_count, int stride, int dil, const float* w, float bias, float* out,
                             const float* clamp);
void depthwise3x3_avx512(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, int stride, int dil,
                         const float* w, float bias, float* out, const float* clamp);
void depthwise3x3_plane_avx512(const float* in, int64_t h, int64_t in_w, int64_t ph, int64_t pw, int64_t oh_count,
                               int64_t ow_count, int stride, int dil, const float* w, float bias, float* out,
                               const float* clamp);
#endif
#if defined(__aarch64__)
SEEDCORE_DECLARE_GRAPH_KERNELS(neon)
#endif
#undef SEEDCORE_DECLARE_GRAPH_KERNELS
#undef SEEDCORE_DECLARE_GEMM_MICRO

// Tiles and K chunks (kc: the B micro-panel, kc x NR floats, stays in L1 next to the A
// micro-panel; the MC x kc block of A stays in L2).
constexpr int kScalarMr = 4, kScalarNr = 8, kScalarKc = 256;
constexpr int kAvx2Mr = 6, kAvx2Nr = 16, kAvx2Kc = 256;
constexpr int kAvx512Mr = 12, kAvx512Nr = 32, kAvx512Kc = 256;
constexpr int kNeonMr = 8, kNeonNr = 12, kNeonKc = 256;

}  // namespace seedcore

// Scalar GEMM micro-kernel: the twin of the SIMD ones (same packed-panel contract),
// and the kernel used when SIMD is off. Accumulates each C element in k order.
#include "graph_kernel_decls.h"

namespace seedcore {

void gemm_micro_scalar(int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                       bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  constexpr int MR = kScalarMr, NR = kScalarNr;
  float acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j)
      acc[i][j] = accumulate ? c[i * c_rs + j] : row_bias ? row_bias[i] : col_bias ? col_bias[j] : 0.0f;
  for (int k = 0; k < kc; ++k) {
    const float* bk = b + k * b_ks;
    const float* ak = a + k * MR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += ak[i] * bk[j];
  }
  if (clamp)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) {
        float v = acc[i][j];
        if (v < clamp[0]) v = clamp[0];
        if (v > clamp[1]) v = clamp[1];
        acc[i][j] = v;
      }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * c_rs + j] = acc[i][j];
}

// The first m rows of gemm_micro_scalar's tile, element by element the same operations.
void gemm_micro_rows_scalar(int m, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                            bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  constexpr int MR = kScalarMr, NR = kScalarNr;
  for (int i = 0; i < m; ++i) {
    float acc[NR];
    for (int j = 0; j < NR; ++j) acc[j] = accumulate ? c[i * c_rs + j] : row_bias ? row_bias[i] : col_bias ? col_bias[j] : 0.0f;
    for (int k = 0; k < kc; ++k)
      for (int j = 0; j < NR; ++j) acc[j] += a[k * MR + i] * b[k * b_ks + j];
    for (int j = 0; j < NR; ++j) {
      float v = acc[j];
      if (clamp) {
        if (v < clamp[0]) v = clamp[0];
        if (v > clamp[1]) v = clamp[1];
      }
      c[i * c_rs + j] = v;
    }
  }
}

// The first n columns of gemm_micro_scalar's tile, element by element the same
// operations; reads n floats of B per k, writes only those columns of C.
void gemm_micro_cols_scalar(int n, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                            bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  constexpr int MR = kScalarMr, NR = kScalarNr;
  for (int i = 0; i < MR; ++i) {
    float acc[NR];
    for (int j = 0; j < n; ++j) acc[j] = accumulate ? c[i * c_rs + j] : row_bias ? row_bias[i] : col_bias ? col_bias[j] : 0.0f;
    for (int k = 0; k < kc; ++k)
      for (int j = 0; j < n; ++j) acc[j] += a[k * MR + i] * b[k * b_ks + j];
    for (int j = 0; j < n; ++j) {
      float v = acc[j];
      if (clamp) {
        if (v < clamp[0]) v = clamp[0];
        if (v > clamp[1]) v = clamp[1];
      }
      c[i * c_rs + j] = v;
    }
  }
}

// The twin of the SIMD transposing packers; 8 x 8 blocks keep reads and writes local.
void gemm_pack_bt_scalar(const float* w, ptrdiff_t w_rs, int64_t K, int nr, int NR, float* dst) {
  constexpr int kT = 8;
  for (int64_t k0 = 0; k0 < K; k0 += kT) {
    const int kt = int(K - k0 < kT ? K - k0 : kT);
    for (int j = 0; j < NR; ++j) {
      float* d = dst + k0 * NR + j;
      if (j >= nr) {
        for (int k = 0; k < kt; ++k) d[k * NR] = 0.0f;
        continue;
      }
      const float* src = w + j * w_rs + k0;
      for (int k = 0; k < kt; ++k) d[k * NR] = src[k];
    }
  }
}

}  // namespace seedcore

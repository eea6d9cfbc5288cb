// NEON GEMM micro-kernel: 8 x 12 tile in 24 q-register accumulators. Per k: two
// q-loads of the packed A micro-panel (8 rows), three q-loads of the B row, and 24
// vfmaq_laneq_f32 that take A's element straight from its lane (no broadcast loads).
// 24 accumulators + 2 A + 3 B = 29 of the 32 q registers; the accumulators are named
// variables so the compiler keeps them in registers (an array of vectors it spills).
#include <arm_neon.h>

#include "graph_kernel_decls.h"

namespace seedcore {

void gemm_micro_neon(int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                     bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  constexpr int MR = kNeonMr;
  static_assert(kNeonMr == 8 && kNeonNr == 12, "tile layout below");
  float32x4_t c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32, c40, c41, c42, c50, c51, c52, c60, c61, c62, c70, c71, c72;
#define SEEDCORE_ALL_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
  if (accumulate) {
#define SEEDCORE_LOAD_ROW(i) \
  c##i##0 = vld1q_f32(c + i * c_rs); c##i##1 = vld1q_f32(c + i * c_rs + 4); c##i##2 = vld1q_f32(c + i * c_rs + 8);
    SEEDCORE_ALL_ROWS(SEEDCORE_LOAD_ROW)
#undef SEEDCORE_LOAD_ROW
  } else if (row_bias) {
#define SEEDCORE_BIAS_ROW(i) c##i##0 = c##i##1 = c##i##2 = vdupq_n_f32(row_bias[i]);
    SEEDCORE_ALL_ROWS(SEEDCORE_BIAS_ROW)
#undef SEEDCORE_BIAS_ROW
  } else if (col_bias) {
    const float32x4_t b0 = vld1q_f32(col_bias), b1 = vld1q_f32(col_bias + 4), b2 = vld1q_f32(col_bias + 8);
#define SEEDCORE_COL_BIAS_ROW(i) c##i##0 = b0; c##i##1 = b1; c##i##2 = b2;
    SEEDCORE_ALL_ROWS(SEEDCORE_COL_BIAS_ROW)
#undef SEEDCORE_COL_BIAS_ROW
  } else {
#define SEEDCORE_ZERO_ROW(i) c##i##0 = c##i##1 = c##i##2 = vdupq_n_f32(0.0f);
    SEEDCORE_ALL_ROWS(SEEDCORE_ZERO_ROW)
#undef SEEDCORE_ZERO_ROW
  }
#define SEEDCORE_ROW(i, av, lane)                   \
  c##i##0 = vfmaq_laneq_f32(c##i##0, b0, av, lane); \
  c##i##1 = vfmaq_laneq_f32(c##i##1, b1, av, lane); \
  c##i##2 = vfmaq_laneq_f32(c##i##2, b2, av, lane);
#define SEEDCORE_STEP(u)                                                                  \
  {                                                                                       \
    const float32x4_t a0 = vld1q_f32(a + (u) * MR), a1 = vld1q_f32(a + (u) * MR + 4);     \
    const float* bk = b + (u) * b_ks;                                                     \
    const float32x4_t b0 = vld1q_f32(bk), b1 = vld1q_f32(bk + 4), b2 = vld1q_f32(bk + 8); \
    SEEDCORE_ROW(0, a0, 0) SEEDCORE_ROW(1, a0, 1) SEEDCORE_ROW(2, a0, 2)                  \
    SEEDCORE_ROW(3, a0, 3) SEEDCORE_ROW(4, a1, 0) SEEDCORE_ROW(5, a1, 1)                  \
    SEEDCORE_ROW(6, a1, 2) SEEDCORE_ROW(7, a1, 3)                                         \
  }
  // Not unrolled: with two k steps in flight GCC needs more than 32 q registers and
  // spills inside the loop; one step (29 live registers) stays spill-free.
  for (int k = 0; k < kc; ++k) {
    SEEDCORE_STEP(0)
    a += MR;
    b += b_ks;
  }
#undef SEEDCORE_STEP
#undef SEEDCORE_ROW
  if (clamp) {  // v < lo -> lo, v > hi -> hi, NaN kept (compare + select, as the scalar twin)
    const float32x4_t lo = vdupq_n_f32(clamp[0]), hi = vdupq_n_f32(clamp[1]);
#define SEEDCORE_CLAMP(v) v = vbslq_f32(vcltq_f32(v, lo), lo, v); v = vbslq_f32(vcgtq_f32(v, hi), hi, v);
#define SEEDCORE_CLAMP_ROW(i) SEEDCORE_CLAMP(c##i##0) SEEDCORE_CLAMP(c##i##1) SEEDCORE_CLAMP(c##i##2)
    SEEDCORE_ALL_ROWS(SEEDCORE_CLAMP_ROW)
#undef SEEDCORE_CLAMP_ROW
#undef SEEDCORE_CLAMP
  }
#define SEEDCORE_STORE_ROW(i) \
  vst1q_f32(c + i * c_rs, c##i##0); vst1q_f32(c + i * c_rs + 4, c##i##1); vst1q_f32(c + i * c_rs + 8, c##i##2);
  SEEDCORE_ALL_ROWS(SEEDCORE_STORE_ROW)
#undef SEEDCORE_STORE_ROW
#undef SEEDCORE_ALL_ROWS
}

// The first m rows of gemm_micro_neon's tile: three accumulators per row (NR = 12), up
// to four rows at a time, each element `acc + b * a` fused in k order as in the full
// kernel, the clamp as compare + select.
void gemm_micro_rows_neon(int m, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                          bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  constexpr int MR = kNeonMr;
  for (int i0 = 0; i0 < m; i0 += 4) {
    const int rows = m - i0 < 4 ? m - i0 : 4;
    float32x4_t acc[4][3];
    for (int r = 0; r < rows; ++r) {
      const int i = i0 + r;
      for (int h = 0; h < 3; ++h)
        acc[r][h] = accumulate                ? vld1q_f32(c + i * c_rs + 4 * h)
                    : row_bias || !col_bias ? vdupq_n_f32(row_bias ? row_bias[i] : 0.0f)
                                            : vld1q_f32(col_bias + 4 * h);
    }
    for (int k = 0; k < kc; ++k) {
      const float* bk = b + k * b_ks;
      const float32x4_t b0 = vld1q_f32(bk), b1 = vld1q_f32(bk + 4), b2 = vld1q_f32(bk + 8);
      for (int r = 0; r < rows; ++r) {
        const float av = a[k * MR + i0 + r];
        acc[r][0] = vfmaq_n_f32(acc[r][0], b0, av);
        acc[r][1] = vfmaq_n_f32(acc[r][1], b1, av);
        acc[r][2] = vfmaq_n_f32(acc[r][2], b2, av);
      }
    }
    for (int r = 0; r < rows; ++r)
      for (int h = 0; h < 3; ++h) {
        float32x4_t v = acc[r][h];
        if (clamp) {
          const float32x4_t lo = vdupq_n_f32(clamp[0]), hi = vdupq_n_f32(clamp[1]);
          v = vbslq_f32(vcltq_f32(v, lo), lo, v);
          v = vbslq_f32(vcgtq_f32(v, hi), hi, v);
        }
        vst1q_f32(c + (i0 + r) * c_rs + 4 * h, v);
      }
  }
}

namespace {

// The tile's MR = 8 rows x its first J columns along M, in one k loop: per column two
// accumulators hold the 8 rows (the packed A micro-panel's 8 floats per k), B's element
// broadcast.
template <int J>
inline void cols_neon(int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                      bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  constexpr int MR = kNeonMr;
  static_assert(MR == 8, "two q registers per column below");
  float32x4_t acc[J][2];
  float t[MR];
  for (int q = 0; q < J; ++q) {
    if (accumulate) {
      for (int i = 0; i < MR; ++i) t[i] = c[i * c_rs + q];
      acc[q][0] = vld1q_f32(t);
      acc[q][1] = vld1q_f32(t + 4);
    } else if (row_bias || !col_bias) {
      acc[q][0] = row_bias ? vld1q_f32(row_bias) : vdupq_n_f32(0.0f);
      acc[q][1] = row_bias ? vld1q_f32(row_bias + 4) : vdupq_n_f32(0.0f);
    } else {
      acc[q][0] = acc[q][1] = vdupq_n_f32(col_bias[q]);
    }
  }
  for (int k = 0; k < kc; ++k) {
    const float* bk = b + k * b_ks;
    const float32x4_t a0 = vld1q_f32(a + k * MR), a1 = vld1q_f32(a + k * MR + 4);
    for (int q = 0; q < J; ++q) {
      acc[q][0] = vfmaq_n_f32(acc[q][0], a0, bk[q]);
      acc[q][1] = vfmaq_n_f32(acc[q][1], a1, bk[q]);
    }
  }
  for (int q = 0; q < J; ++q) {
    for (int h = 0; h < 2; ++h) {
      float32x4_t v = acc[q][h];
      if (clamp) {
        const float32x4_t lo = vdupq_n_f32(clamp[0]), hi = vdupq_n_f32(clamp[1]);
        v = vbslq_f32(vcltq_f32(v, lo), lo, v);
        v = vbslq_f32(vcgtq_f32(v, hi), hi, v);
      }
      vst1q_f32(t + 4 * h, v);
    }
    for (int i = 0; i < MR; ++i) c[i * c_rs + q] = t[i];
  }
}

}  // namespace

// The first n columns of gemm_micro_neon's tile, the same operations per element
// (`acc + b * a` fused in k order, the clamp as compare + select), reading only n
// columns of B and writing only those of C: along M, 2 FMAs per column per k against the
// full tile's 24 for any width (MobileNetV2's 7 x 7 planes: 49 = 4 x 12 + 1 columns).
void gemm_micro_cols_neon(int n, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                          bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  switch (n) {
#define SEEDCORE_COLS(J) \
  case J: cols_neon<J>(kc, a, b, b_ks, c, c_rs, accumulate, row_bias, col_bias, clamp); break;
    SEEDCORE_COLS(1) SEEDCORE_COLS(2) SEEDCORE_COLS(3) SEEDCORE_COLS(4) SEEDCORE_COLS(5) SEEDCORE_COLS(6)
    SEEDCORE_COLS(7) SEEDCORE_COLS(8) SEEDCORE_COLS(9) SEEDCORE_COLS(10) SEEDCORE_COLS(11)
#undef SEEDCORE_COLS
    default: gemm_micro_neon(kc, a, b, b_ks, c, c_rs, accumulate, row_bias, col_bias, clamp); break;  // n == NR
  }
}

// Transposing B packer: 4 rows x 4 k at a time through an in-register 4 x 4
// transpose (trn1/trn2 on 32- then 64-bit lanes), ragged rows and k scalar.
void gemm_pack_bt_neon(const float* w, ptrdiff_t w_rs, int64_t K, int nr, int NR, float* dst) {
  const int nr4 = nr / 4 * 4;
  const int64_t K4 = K / 4 * 4;
  for (int j0 = 0; j0 < nr4; j0 += 4) {
    const float* src = w + j0 * w_rs;
    for (int64_t k0 = 0; k0 < K4; k0 += 4) {
      const float32x4_t r0 = vld1q_f32(src + k0), r1 = vld1q_f32(src + w_rs + k0);
      const float32x4_t r2 = vld1q_f32(src + 2 * w_rs + k0), r3 = vld1q_f32(src + 3 * w_rs + k0);
      const float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r0, r1)), t1 = vreinterpretq_f64_f32(vtrn2q_f32(r0, r1));
      const float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(r2, r3)), t3 = vreinterpretq_f64_f32(vtrn2q_f32(r2, r3));
      float* d = dst + k0 * NR + j0;
      vst1q_f32(d + 0 * NR, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
      vst1q_f32(d + 1 * NR, vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
      vst1q_f32(d + 2 * NR, vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
      vst1q_f32(d + 3 * NR, vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
    }
    for (int64_t k = K4; k < K; ++k)
      for (int j = 0; j < 4; ++j) dst[k * NR + j0 + j] = src[j * w_rs + k];
  }
  for (int64_t k = 0; k < K; ++k)
    for (int j = nr4; j < NR; ++j) dst[k * NR + j] = j < nr ? w[j * w_rs + k] : 0.0f;
}

}  // namespace seedcore

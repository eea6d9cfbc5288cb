// AVX2+FMA GEMM micro-kernel: 6 x 16 tile, accumulators in ymm0-11. Per k: two loads
// of the B row (ymm12/13), six broadcasts from the packed A micro-panel (one stream, 24
// bytes per k) alternating in ymm14/15, twelve FMAs. The tile starts from C (accumulate),
// the row bias or zero, and is clamped in registers before the store when asked. That uses all 16 ymm registers,
// which is why the kernel is assembly: written with intrinsics, GCC spills and copies
// accumulators inside the k loop (measured 15% slower). C is loaded (accumulate) or
// zeroed, updated in k order, and stored once.
#include <immintrin.h>

#include "graph_kernel_decls.h"

namespace seedcore {

void gemm_micro_avx2(int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                     bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  static_assert(kAvx2Mr == 6 && kAvx2Nr == 16, "tile layout below");
  long n = kc > 0 ? kc : 0;
  const ptrdiff_t b_step = b_ks * ptrdiff_t(sizeof(float)), c_step = c_rs * ptrdiff_t(sizeof(float));
  const long acc = accumulate ? 1 : 0;
  const float* rb = accumulate ? nullptr : row_bias;
  const float* cb = accumulate || row_bias ? nullptr : col_bias;
  asm volatile(
      "test %[acc], %[acc]\n\t"
      "jz 3f\n\t"
      "mov %[c], %%rax\n\t"
      "vmovups (%%rax), %%ymm0\n\t"
      "vmovups 32(%%rax), %%ymm1\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%ymm2\n\t"
      "vmovups 32(%%rax), %%ymm3\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%ymm4\n\t"
      "vmovups 32(%%rax), %%ymm5\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%ymm6\n\t"
      "vmovups 32(%%rax), %%ymm7\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%ymm8\n\t"
      "vmovups 32(%%rax), %%ymm9\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%ymm10\n\t"
      "vmovups 32(%%rax), %%ymm11\n\t"
      "jmp 4f\n\t"
      "3:\n\t"
      "test %[rb], %[rb]\n\t"
      "jz 5f\n\t"
      "vbroadcastss 0(%[rb]), %%ymm0\n\t"
      "vmovaps %%ymm0, %%ymm1\n\t"
      "vbroadcastss 4(%[rb]), %%ymm2\n\t"
      "vmovaps %%ymm2, %%ymm3\n\t"
      "vbroadcastss 8(%[rb]), %%ymm4\n\t"
      "vmovaps %%ymm4, %%ymm5\n\t"
      "vbroadcastss 12(%[rb]), %%ymm6\n\t"
      "vmovaps %%ymm6, %%ymm7\n\t"
      "vbroadcastss 16(%[rb]), %%ymm8\n\t"
      "vmovaps %%ymm8, %%ymm9\n\t"
      "vbroadcastss 20(%[rb]), %%ymm10\n\t"
      "vmovaps %%ymm10, %%ymm11\n\t"
      "jmp 4f\n\t"
      "5:\n\t"
      "test %[cb], %[cb]\n\t"
      "jz 7f\n\t"
      "vmovups (%[cb]), %%ymm0\n\t"
      "vmovups 32(%[cb]), %%ymm1\n\t"
      "vmovaps %%ymm0, %%ymm2\n\t"
      "vmovaps %%ymm1, %%ymm3\n\t"
      "vmovaps %%ymm0, %%ymm4\n\t"
      "vmovaps %%ymm1, %%ymm5\n\t"
      "vmovaps %%ymm0, %%ymm6\n\t"
      "vmovaps %%ymm1, %%ymm7\n\t"
      "vmovaps %%ymm0, %%ymm8\n\t"
      "vmovaps %%ymm1, %%ymm9\n\t"
      "vmovaps %%ymm0, %%ymm10\n\t"
      "vmovaps %%ymm1, %%ymm11\n\t"
      "jmp 4f\n\t"
      "7:\n\t"
      "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
      "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
      "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"
      "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
      "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
      "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
      "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
      "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
      "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
      "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
      "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
      "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
      "4:\n\t"
      "test %[n], %[n]\n\t"
      "jz 2f\n\t"
      "1:\n\t"
      "prefetcht0 768(%[a])\n\t"
      "vmovups (%[b]), %%ymm12\n\t"
      "vmovups 32(%[b]), %%ymm13\n\t"
      "vbroadcastss 0(%[a]), %%ymm14\n\t"
      "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"
      "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"
      "vbroadcastss 4(%[a]), %%ymm15\n\t"
      "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
      "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"
      "vbroadcastss 8(%[a]), %%ymm14\n\t"
      "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
      "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"
      "vbroadcastss 12(%[a]), %%ymm15\n\t"
      "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
      "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
      "vbroadcastss 16(%[a]), %%ymm14\n\t"
      "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"
      "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"
      "vbroadcastss 20(%[a]), %%ymm15\n\t"
      "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"
      "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"
      "add $24, %[a]\n\t"
      "add %[bs], %[b]\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "test %[cl], %[cl]\n\t"
      "jz 6f\n\t"
      "vbroadcastss 0(%[cl]), %%ymm14\n\t"
      "vbroadcastss 4(%[cl]), %%ymm15\n\t"
      "vmaxps %%ymm0, %%ymm14, %%ymm0\n\t"
      "vmaxps %%ymm1, %%ymm14, %%ymm1\n\t"
      "vmaxps %%ymm2, %%ymm14, %%ymm2\n\t"
      "vmaxps %%ymm3, %%ymm14, %%ymm3\n\t"
      "vmaxps %%ymm4, %%ymm14, %%ymm4\n\t"
      "vmaxps %%ymm5, %%ymm14, %%ymm5\n\t"
      "vmaxps %%ymm6, %%ymm14, %%ymm6\n\t"
      "vmaxps %%ymm7, %%ymm14, %%ymm7\n\t"
      "vmaxps %%ymm8, %%ymm14, %%ymm8\n\t"
      "vmaxps %%ymm9, %%ymm14, %%ymm9\n\t"
      "vmaxps %%ymm10, %%ymm14, %%ymm10\n\t"
      "vmaxps %%ymm11, %%ymm14, %%ymm11\n\t"
      "vminps %%ymm0, %%ymm15, %%ymm0\n\t"
      "vminps %%ymm1, %%ymm15, %%ymm1\n\t"
      "vminps %%ymm2, %%ymm15, %%ymm2\n\t"
      "vminps %%ymm3, %%ymm15, %%ymm3\n\t"
      "vminps %%ymm4, %%ymm15, %%ymm4\n\t"
      "vminps %%ymm5, %%ymm15, %%ymm5\n\t"
      "vminps %%ymm6, %%ymm15, %%ymm6\n\t"
      "vminps %%ymm7, %%ymm15, %%ymm7\n\t"
      "vminps %%ymm8, %%ymm15, %%ymm8\n\t"
      "vminps %%ymm9, %%ymm15, %%ymm9\n\t"
      "vminps %%ymm10, %%ymm15, %%ymm10\n\t"
      "vminps %%ymm11, %%ymm15, %%ymm11\n\t"
      "6:\n\t"
      "mov %[c], %%rax\n\t"
      "vmovups %%ymm0, (%%rax)\n\t"
      "vmovups %%ymm1, 32(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%ymm2, (%%rax)\n\t"
      "vmovups %%ymm3, 32(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%ymm4, (%%rax)\n\t"
      "vmovups %%ymm5, 32(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%ymm6, (%%rax)\n\t"
      "vmovups %%ymm7, 32(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%ymm8, (%%rax)\n\t"
      "vmovups %%ymm9, 32(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%ymm10, (%%rax)\n\t"
      "vmovups %%ymm11, 32(%%rax)\n\t"
      "vzeroupper\n\t"
      : [a] "+r"(a), [b] "+r"(b), [n] "+r"(n)
      : [c] "r"(c), [cs] "r"(c_step), [bs] "r"(b_step), [acc] "r"(acc), [rb] "r"(rb), [cb] "r"(cb), [cl] "r"(clamp)
      : "rax", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

// The first m rows of gemm_micro_avx2's tile: per row two accumulators (NR = 16), up to
// four rows at a time (8 independent FMA chains), each element `acc = a * b + acc` in k
// order as in the assembly kernel, the clamp as max(lo, v) then min(hi, v).
void gemm_micro_rows_avx2(int m, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                          bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  constexpr int MR = kAvx2Mr;
  for (int i0 = 0; i0 < m; i0 += 4) {
    const int rows = m - i0 < 4 ? m - i0 : 4;
    __m256 acc[4][2];
    for (int r = 0; r < rows; ++r) {
      const int i = i0 + r;
      if (accumulate) {
        acc[r][0] = _mm256_loadu_ps(c + i * c_rs);
        acc[r][1] = _mm256_loadu_ps(c + i * c_rs + 8);
      } else if (row_bias || !col_bias) {
        acc[r][0] = acc[r][1] = _mm256_set1_ps(row_bias ? row_bias[i] : 0.0f);
      } else {
        acc[r][0] = _mm256_loadu_ps(col_bias);
        acc[r][1] = _mm256_loadu_ps(col_bias + 8);
      }
    }
    for (int k = 0; k < kc; ++k) {
      const __m256 b0 = _mm256_loadu_ps(b + k * b_ks), b1 = _mm256_loadu_ps(b + k * b_ks + 8);
      for (int r = 0; r < rows; ++r) {
        const __m256 av = _mm256_broadcast_ss(a + k * MR + i0 + r);
        acc[r][0] = _mm256_fmadd_ps(b0, av, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(b1, av, acc[r][1]);
      }
    }
    for (int r = 0; r < rows; ++r) {
      for (int h = 0; h < 2; ++h) {
        __m256 v = acc[r][h];
        if (clamp) v = _mm256_min_ps(_mm256_set1_ps(clamp[1]), _mm256_max_ps(_mm256_set1_ps(clamp[0]), v));
        _mm256_storeu_ps(c + (i0 + r) * c_rs + 8 * h, v);
      }
    }
  }
  _mm256_zeroupper();  // clean upper state for the SSE code that follows (see depthwise_avx2.cpp)
}

namespace {

// The tile's MR = 6 rows x its first n columns in one k loop: NB blocks of 8 columns
// along N (6 accumulators each, B's row through a load masked to the block's width, A
// broadcast), then J columns along M (one accumulator of the 6 rows per column: a masked
// load of the packed A micro-panel's 6 floats, B's element broadcast).
template <int NB, int J>
inline void cols_avx2(int n, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                      bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  constexpr int MR = kAvx2Mr;
  constexpr int NBX = NB > 0 ? NB : 1, JX = J > 0 ? J : 1;
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int jm = n - J;
  __m256i mask[NBX];
  for (int blk = 0; blk < NB; ++blk) mask[blk] = _mm256_cmpgt_epi32(_mm256_set1_epi32(jm - 8 * blk), lanes);
  const __m256i rows = _mm256_cmpgt_epi32(_mm256_set1_epi32(MR), lanes);
  alignas(32) float t[8] = {};
  __m256 an[NBX][MR], am[JX];
  for (int blk = 0; blk < NB; ++blk)
    for (int r = 0; r < MR; ++r) {
      if (accumulate)
        an[blk][r] = _mm256_maskload_ps(c + r * c_rs + 8 * blk, mask[blk]);
      else if (row_bias || !col_bias)
        an[blk][r] = _mm256_set1_ps(row_bias ? row_bias[r] : 0.0f);
      else
        an[blk][r] = _mm256_maskload_ps(col_bias + 8 * blk, mask[blk]);
    }
  for (int q = 0; q < J; ++q) {
    if (accumulate) {
      for (int i = 0; i < MR; ++i) t[i] = c[i * c_rs + jm + q];
      am[q] = _mm256_load_ps(t);
    } else if (row_bias || !col_bias) {
      am[q] = row_bias ? _mm256_maskload_ps(row_bias, rows) : _mm256_setzero_ps();
    } else {
      am[q] = _mm256_set1_ps(col_bias[jm + q]);
    }
  }
  for (int k = 0; k < kc; ++k) {
    const float* ak = a + k * MR;
    const float* bk = b + k * b_ks;
    if (NB > 0) {
      __m256 bv[NBX];
      for (int blk = 0; blk < NB; ++blk) bv[blk] = _mm256_maskload_ps(bk + 8 * blk, mask[blk]);
      for (int r = 0; r < MR; ++r) {
        const __m256 ar = _mm256_broadcast_ss(ak + r);
        for (int blk = 0; blk < NB; ++blk) an[blk][r] = _mm256_fmadd_ps(bv[blk], ar, an[blk][r]);
      }
    }
    if (J > 0) {
      const __m256 av = _mm256_maskload_ps(ak, rows);
      for (int q = 0; q < J; ++q) am[q] = _mm256_fmadd_ps(_mm256_broadcast_ss(bk + jm + q), av, am[q]);
    }
  }
  const __m256 lo = _mm256_set1_ps(clamp ? clamp[0] : 0.0f), hi = _mm256_set1_ps(clamp ? clamp[1] : 0.0f);
  for (int blk = 0; blk < NB; ++blk)
    for (int r = 0; r < MR; ++r) {
      __m256 v = an[blk][r];
      if (clamp) v = _mm256_min_ps(hi, _mm256_max_ps(lo, v));
      _mm256_maskstore_ps(c + r * c_rs + 8 * blk, mask[blk], v);
    }
  for (int q = 0; q < J; ++q) {
    __m256 v = am[q];
    if (clamp) v = _mm256_min_ps(hi, _mm256_max_ps(lo, v));
    _mm256_store_ps(t, v);
    for (int i = 0; i < MR; ++i) c[i * c_rs + jm + q] = t[i];
  }
}

}  // namespace

// The first n columns (1 <= n <= NR) of gemm_micro_avx2's tile, the same operations per
// element (`acc = a * b + acc` in k order, the clamp as max(lo, v) then min(hi, v)),
// reading only n columns of B and writing only those of C: a block of 8 columns along N
// (6 FMAs per k), up to 4 left over along M (one FMA per column per k; more are a masked
// block along N), against the full tile's 12 FMAs per k for any width.
void gemm_micro_cols_avx2(int n, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                          bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  const int nb = n / 8, rem = n % 8;
#define SEEDCORE_COLS(NB, J) cols_avx2<NB, J>(n, kc, a, b, b_ks, c, c_rs, accumulate, row_bias, col_bias, clamp)
  if (rem > 4 || nb == 2) {  // along N only, the last block masked
    if (n > 8) SEEDCORE_COLS(2, 0); else SEEDCORE_COLS(1, 0);
  } else if (nb == 0) {
    switch (rem) {
      case 1: SEEDCORE_COLS(0, 1); break;
      case 2: SEEDCORE_COLS(0, 2); break;
      case 3: SEEDCORE_COLS(0, 3); break;
      case 4: SEEDCORE_COLS(0, 4); break;
      default: break;
    }
  } else {
    switch (rem) {
      case 0: SEEDCORE_COLS(1, 0); break;
      case 1: SEEDCORE_COLS(1, 1); break;
      case 2: SEEDCORE_COLS(1, 2); break;
      case 3: SEEDCORE_COLS(1, 3); break;
      case 4: SEEDCORE_COLS(1, 4); break;
      default: break;
    }
  }
#undef SEEDCORE_COLS
  _mm256_zeroupper();
}

// Transposing packer (B panels, and A micro-panels of row-major A): 8 rows x 8 k at a
// time through an in-register 8 x 8 transpose (unpack / shuffle / permute2f128), then 4
// rows x 8 k (the last 4 of the AVX-512 kernel's 12-row A micro-panels), ragged rows and
// k as in the scalar twin.
void gemm_pack_bt_avx2(const float* w, ptrdiff_t w_rs, int64_t K, int nr, int NR, float* dst) {
  const int nr8 = nr / 8 * 8, nr4 = nr / 4 * 4;
  const int64_t K8 = K / 8 * 8;
  for (int j0 = 0; j0 < nr8; j0 += 8) {
    const float* src = w + j0 * w_rs;
    for (int64_t k0 = 0; k0 < K8; k0 += 8) {
      __m256 r0 = _mm256_loadu_ps(src + 0 * w_rs + k0), r1 = _mm256_loadu_ps(src + 1 * w_rs + k0);
      __m256 r2 = _mm256_loadu_ps(src + 2 * w_rs + k0), r3 = _mm256_loadu_ps(src + 3 * w_rs + k0);
      __m256 r4 = _mm256_loadu_ps(src + 4 * w_rs + k0), r5 = _mm256_loadu_ps(src + 5 * w_rs + k0);
      __m256 r6 = _mm256_loadu_ps(src + 6 * w_rs + k0), r7 = _mm256_loadu_ps(src + 7 * w_rs + k0);
      const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
      const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* d = dst + k0 * NR + j0;
      _mm256_storeu_ps(d + 0 * NR, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(d + 1 * NR, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(d + 2 * NR, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(d + 3 * NR, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(d + 4 * NR, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(d + 5 * NR, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(d + 6 * NR, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(d + 7 * NR, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (int64_t k = K8; k < K; ++k)
      for (int j = 0; j < 8; ++j) dst[k * NR + j0 + j] = src[j * w_rs + k];
  }
  if (nr4 > nr8) {  // 4 rows: the 8 x 8 steps on half the rows, each k's 4 floats from one 128-bit half
    const float* src = w + nr8 * w_rs;
    for (int64_t k0 = 0; k0 < K8; k0 += 8) {
      const __m256 r0 = _mm256_loadu_ps(src + 0 * w_rs + k0), r1 = _mm256_loadu_ps(src + 1 * w_rs + k0);
      const __m256 r2 = _mm256_loadu_ps(src + 2 * w_rs + k0), r3 = _mm256_loadu_ps(src + 3 * w_rs + k0);
      const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      float* d = dst + k0 * NR + nr8;
      _mm_storeu_ps(d + 0 * NR, _mm256_castps256_ps128(u0));
      _mm_storeu_ps(d + 1 * NR, _mm256_castps256_ps128(u1));
      _mm_storeu_ps(d + 2 * NR, _mm256_castps256_ps128(u2));
      _mm_storeu_ps(d + 3 * NR, _mm256_castps256_ps128(u3));
      _mm_storeu_ps(d + 4 * NR, _mm256_extractf128_ps(u0, 1));
      _mm_storeu_ps(d + 5 * NR, _mm256_extractf128_ps(u1, 1));
      _mm_storeu_ps(d + 6 * NR, _mm256_extractf128_ps(u2, 1));
      _mm_storeu_ps(d + 7 * NR, _mm256_extractf128_ps(u3, 1));
    }
    for (int64_t k = K8; k < K; ++k)
      for (int j = 0; j < 4; ++j) dst[k * NR + nr8 + j] = src[j * w_rs + k];
  }
  for (int64_t k = 0; k < K; ++k)
    for (int j = nr4; j < NR; ++j) dst[k * NR + j] = j < nr ? w[j * w_rs + k] : 0.0f;
  _mm256_zeroupper();  // clean upper state for the SSE code that follows (see depthwise_avx2.cpp)
}

}  // namespace seedcore

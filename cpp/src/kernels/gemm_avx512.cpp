// AVX-512F GEMM micro-kernel: 12 x 32 tile, accumulators in zmm0-23. Per k: two loads
// of the B row (zmm24/25), twelve broadcasts from the packed A micro-panel alternating
// in zmm26/27, 24 FMAs. The tile starts from C (accumulate), the row bias (one
// broadcast per row) or zero, and is clamped in registers before the store when asked.
// The kernel is assembly because, written with intrinsics, GCC
// spills and shuffles accumulators inside the k loop (measured 25% slower). C is
// loaded (accumulate) or zeroed, updated in k order, and stored once. Only reached
// through the avx2 table when cpuid and XCR0 say AVX-512 F/BW/VL/DQ is usable
// (graph_dispatch.cpp).
#include <immintrin.h>

#include "graph_kernel_decls.h"

// GCC 12 warns inside its own _mm512_max_ps / _mm512_min_ps (their _mm512_undefined_ps
// pass-through operand), a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace seedcore {

void gemm_micro_avx512(int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                       bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  static_assert(kAvx512Mr == 12 && kAvx512Nr == 32, "tile layout below");
  long n = kc > 0 ? kc : 0;
  const ptrdiff_t b_step = b_ks * ptrdiff_t(sizeof(float)), c_step = c_rs * ptrdiff_t(sizeof(float));
  const long acc = accumulate ? 1 : 0;
  const float* rb = accumulate ? nullptr : row_bias;
  const float* cb = accumulate || row_bias ? nullptr : col_bias;
  asm volatile(
      "test %[acc], %[acc]\n\t"
      "jz 3f\n\t"
      "mov %[c], %%rax\n\t"
      "vmovups (%%rax), %%zmm0\n\t"
      "vmovups 64(%%rax), %%zmm1\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%zmm2\n\t"
      "vmovups 64(%%rax), %%zmm3\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%zmm4\n\t"
      "vmovups 64(%%rax), %%zmm5\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%zmm6\n\t"
      "vmovups 64(%%rax), %%zmm7\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%zmm8\n\t"
      "vmovups 64(%%rax), %%zmm9\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%zmm10\n\t"
      "vmovups 64(%%rax), %%zmm11\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%zmm12\n\t"
      "vmovups 64(%%rax), %%zmm13\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%zmm14\n\t"
      "vmovups 64(%%rax), %%zmm15\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%zmm16\n\t"
      "vmovups 64(%%rax), %%zmm17\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%zmm18\n\t"
      "vmovups 64(%%rax), %%zmm19\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%zmm20\n\t"
      "vmovups 64(%%rax), %%zmm21\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups (%%rax), %%zmm22\n\t"
      "vmovups 64(%%rax), %%zmm23\n\t"
      "jmp 4f\n\t"
      "3:\n\t"
      "test %[rb], %[rb]\n\t"
      "jz 5f\n\t"
      "vbroadcastss 0(%[rb]), %%zmm0\n\t"
      "vmovaps %%zmm0, %%zmm1\n\t"
      "vbroadcastss 4(%[rb]), %%zmm2\n\t"
      "vmovaps %%zmm2, %%zmm3\n\t"
      "vbroadcastss 8(%[rb]), %%zmm4\n\t"
      "vmovaps %%zmm4, %%zmm5\n\t"
      "vbroadcastss 12(%[rb]), %%zmm6\n\t"
      "vmovaps %%zmm6, %%zmm7\n\t"
      "vbroadcastss 16(%[rb]), %%zmm8\n\t"
      "vmovaps %%zmm8, %%zmm9\n\t"
      "vbroadcastss 20(%[rb]), %%zmm10\n\t"
      "vmovaps %%zmm10, %%zmm11\n\t"
      "vbroadcastss 24(%[rb]), %%zmm12\n\t"
      "vmovaps %%zmm12, %%zmm13\n\t"
      "vbroadcastss 28(%[rb]), %%zmm14\n\t"
      "vmovaps %%zmm14, %%zmm15\n\t"
      "vbroadcastss 32(%[rb]), %%zmm16\n\t"
      "vmovaps %%zmm16, %%zmm17\n\t"
      "vbroadcastss 36(%[rb]), %%zmm18\n\t"
      "vmovaps %%zmm18, %%zmm19\n\t"
      "vbroadcastss 40(%[rb]), %%zmm20\n\t"
      "vmovaps %%zmm20, %%zmm21\n\t"
      "vbroadcastss 44(%[rb]), %%zmm22\n\t"
      "vmovaps %%zmm22, %%zmm23\n\t"
      "jmp 4f\n\t"
      "5:\n\t"
      "test %[cb], %[cb]\n\t"
      "jz 7f\n\t"
      "vmovups (%[cb]), %%zmm0\n\t"
      "vmovups 64(%[cb]), %%zmm1\n\t"
      "vmovaps %%zmm0, %%zmm2\n\t"
      "vmovaps %%zmm1, %%zmm3\n\t"
      "vmovaps %%zmm0, %%zmm4\n\t"
      "vmovaps %%zmm1, %%zmm5\n\t"
      "vmovaps %%zmm0, %%zmm6\n\t"
      "vmovaps %%zmm1, %%zmm7\n\t"
      "vmovaps %%zmm0, %%zmm8\n\t"
      "vmovaps %%zmm1, %%zmm9\n\t"
      "vmovaps %%zmm0, %%zmm10\n\t"
      "vmovaps %%zmm1, %%zmm11\n\t"
      "vmovaps %%zmm0, %%zmm12\n\t"
      "vmovaps %%zmm1, %%zmm13\n\t"
      "vmovaps %%zmm0, %%zmm14\n\t"
      "vmovaps %%zmm1, %%zmm15\n\t"
      "vmovaps %%zmm0, %%zmm16\n\t"
      "vmovaps %%zmm1, %%zmm17\n\t"
      "vmovaps %%zmm0, %%zmm18\n\t"
      "vmovaps %%zmm1, %%zmm19\n\t"
      "vmovaps %%zmm0, %%zmm20\n\t"
      "vmovaps %%zmm1, %%zmm21\n\t"
      "vmovaps %%zmm0, %%zmm22\n\t"
      "vmovaps %%zmm1, %%zmm23\n\t"
      "jmp 4f\n\t"
      "7:\n\t"
      "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
      "vpxord %%zmm1, %%zmm1, %%zmm1\n\t"
      "vpxord %%zmm2, %%zmm2, %%zmm2\n\t"
      "vpxord %%zmm3, %%zmm3, %%zmm3\n\t"
      "vpxord %%zmm4, %%zmm4, %%zmm4\n\t"
      "vpxord %%zmm5, %%zmm5, %%zmm5\n\t"
      "vpxord %%zmm6, %%zmm6, %%zmm6\n\t"
      "vpxord %%zmm7, %%zmm7, %%zmm7\n\t"
      "vpxord %%zmm8, %%zmm8, %%zmm8\n\t"
      "vpxord %%zmm9, %%zmm9, %%zmm9\n\t"
      "vpxord %%zmm10, %%zmm10, %%zmm10\n\t"
      "vpxord %%zmm11, %%zmm11, %%zmm11\n\t"
      "vpxord %%zmm12, %%zmm12, %%zmm12\n\t"
      "vpxord %%zmm13, %%zmm13, %%zmm13\n\t"
      "vpxord %%zmm14, %%zmm14, %%zmm14\n\t"
      "vpxord %%zmm15, %%zmm15, %%zmm15\n\t"
      "vpxord %%zmm16, %%zmm16, %%zmm16\n\t"
      "vpxord %%zmm17, %%zmm17, %%zmm17\n\t"
      "vpxord %%zmm18, %%zmm18, %%zmm18\n\t"
      "vpxord %%zmm19, %%zmm19, %%zmm19\n\t"
      "vpxord %%zmm20, %%zmm20, %%zmm20\n\t"
      "vpxord %%zmm21, %%zmm21, %%zmm21\n\t"
      "vpxord %%zmm22, %%zmm22, %%zmm22\n\t"
      "vpxord %%zmm23, %%zmm23, %%zmm23\n\t"
      "4:\n\t"
      "test %[n], %[n]\n\t"
      "jz 2f\n\t"
      "1:\n\t"
      "prefetcht0 1536(%[a])\n\t"
      "vmovups (%[b]), %%zmm24\n\t"
      "vmovups 64(%[b]), %%zmm25\n\t"
      "vbroadcastss 0(%[a]), %%zmm26\n\t"
      "vfmadd231ps %%zmm24, %%zmm26, %%zmm0\n\t"
      "vfmadd231ps %%zmm25, %%zmm26, %%zmm1\n\t"
      "vbroadcastss 4(%[a]), %%zmm27\n\t"
      "vfmadd231ps %%zmm24, %%zmm27, %%zmm2\n\t"
      "vfmadd231ps %%zmm25, %%zmm27, %%zmm3\n\t"
      "vbroadcastss 8(%[a]), %%zmm26\n\t"
      "vfmadd231ps %%zmm24, %%zmm26, %%zmm4\n\t"
      "vfmadd231ps %%zmm25, %%zmm26, %%zmm5\n\t"
      "vbroadcastss 12(%[a]), %%zmm27\n\t"
      "vfmadd231ps %%zmm24, %%zmm27, %%zmm6\n\t"
      "vfmadd231ps %%zmm25, %%zmm27, %%zmm7\n\t"
      "vbroadcastss 16(%[a]), %%zmm26\n\t"
      "vfmadd231ps %%zmm24, %%zmm26, %%zmm8\n\t"
      "vfmadd231ps %%zmm25, %%zmm26, %%zmm9\n\t"
      "vbroadcastss 20(%[a]), %%zmm27\n\t"
      "vfmadd231ps %%zmm24, %%zmm27, %%zmm10\n\t"
      "vfmadd231ps %%zmm25, %%zmm27, %%zmm11\n\t"
      "vbroadcastss 24(%[a]), %%zmm26\n\t"
      "vfmadd231ps %%zmm24, %%zmm26, %%zmm12\n\t"
      "vfmadd231ps %%zmm25, %%zmm26, %%zmm13\n\t"
      "vbroadcastss 28(%[a]), %%zmm27\n\t"
      "vfmadd231ps %%zmm24, %%zmm27, %%zmm14\n\t"
      "vfmadd231ps %%zmm25, %%zmm27, %%zmm15\n\t"
      "vbroadcastss 32(%[a]), %%zmm26\n\t"
      "vfmadd231ps %%zmm24, %%zmm26, %%zmm16\n\t"
      "vfmadd231ps %%zmm25, %%zmm26, %%zmm17\n\t"
      "vbroadcastss 36(%[a]), %%zmm27\n\t"
      "vfmadd231ps %%zmm24, %%zmm27, %%zmm18\n\t"
      "vfmadd231ps %%zmm25, %%zmm27, %%zmm19\n\t"
      "vbroadcastss 40(%[a]), %%zmm26\n\t"
      "vfmadd231ps %%zmm24, %%zmm26, %%zmm20\n\t"
      "vfmadd231ps %%zmm25, %%zmm26, %%zmm21\n\t"
      "vbroadcastss 44(%[a]), %%zmm27\n\t"
      "vfmadd231ps %%zmm24, %%zmm27, %%zmm22\n\t"
      "vfmadd231ps %%zmm25, %%zmm27, %%zmm23\n\t"
      "add $48, %[a]\n\t"
      "add %[bs], %[b]\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "test %[cl], %[cl]\n\t"
      "jz 6f\n\t"
      "vbroadcastss 0(%[cl]), %%zmm26\n\t"
      "vbroadcastss 4(%[cl]), %%zmm27\n\t"
      "vmaxps %%zmm0, %%zmm26, %%zmm0\n\t"
      "vmaxps %%zmm1, %%zmm26, %%zmm1\n\t"
      "vmaxps %%zmm2, %%zmm26, %%zmm2\n\t"
      "vmaxps %%zmm3, %%zmm26, %%zmm3\n\t"
      "vmaxps %%zmm4, %%zmm26, %%zmm4\n\t"
      "vmaxps %%zmm5, %%zmm26, %%zmm5\n\t"
      "vmaxps %%zmm6, %%zmm26, %%zmm6\n\t"
      "vmaxps %%zmm7, %%zmm26, %%zmm7\n\t"
      "vmaxps %%zmm8, %%zmm26, %%zmm8\n\t"
      "vmaxps %%zmm9, %%zmm26, %%zmm9\n\t"
      "vmaxps %%zmm10, %%zmm26, %%zmm10\n\t"
      "vmaxps %%zmm11, %%zmm26, %%zmm11\n\t"
      "vmaxps %%zmm12, %%zmm26, %%zmm12\n\t"
      "vmaxps %%zmm13, %%zmm26, %%zmm13\n\t"
      "vmaxps %%zmm14, %%zmm26, %%zmm14\n\t"
      "vmaxps %%zmm15, %%zmm26, %%zmm15\n\t"
      "vmaxps %%zmm16, %%zmm26, %%zmm16\n\t"
      "vmaxps %%zmm17, %%zmm26, %%zmm17\n\t"
      "vmaxps %%zmm18, %%zmm26, %%zmm18\n\t"
      "vmaxps %%zmm19, %%zmm26, %%zmm19\n\t"
      "vmaxps %%zmm20, %%zmm26, %%zmm20\n\t"
      "vmaxps %%zmm21, %%zmm26, %%zmm21\n\t"
      "vmaxps %%zmm22, %%zmm26, %%zmm22\n\t"
      "vmaxps %%zmm23, %%zmm26, %%zmm23\n\t"
      "vminps %%zmm0, %%zmm27, %%zmm0\n\t"
      "vminps %%zmm1, %%zmm27, %%zmm1\n\t"
      "vminps %%zmm2, %%zmm27, %%zmm2\n\t"
      "vminps %%zmm3, %%zmm27, %%zmm3\n\t"
      "vminps %%zmm4, %%zmm27, %%zmm4\n\t"
      "vminps %%zmm5, %%zmm27, %%zmm5\n\t"
      "vminps %%zmm6, %%zmm27, %%zmm6\n\t"
      "vminps %%zmm7, %%zmm27, %%zmm7\n\t"
      "vminps %%zmm8, %%zmm27, %%zmm8\n\t"
      "vminps %%zmm9, %%zmm27, %%zmm9\n\t"
      "vminps %%zmm10, %%zmm27, %%zmm10\n\t"
      "vminps %%zmm11, %%zmm27, %%zmm11\n\t"
      "vminps %%zmm12, %%zmm27, %%zmm12\n\t"
      "vminps %%zmm13, %%zmm27, %%zmm13\n\t"
      "vminps %%zmm14, %%zmm27, %%zmm14\n\t"
      "vminps %%zmm15, %%zmm27, %%zmm15\n\t"
      "vminps %%zmm16, %%zmm27, %%zmm16\n\t"
      "vminps %%zmm17, %%zmm27, %%zmm17\n\t"
      "vminps %%zmm18, %%zmm27, %%zmm18\n\t"
      "vminps %%zmm19, %%zmm27, %%zmm19\n\t"
      "vminps %%zmm20, %%zmm27, %%zmm20\n\t"
      "vminps %%zmm21, %%zmm27, %%zmm21\n\t"
      "vminps %%zmm22, %%zmm27, %%zmm22\n\t"
      "vminps %%zmm23, %%zmm27, %%zmm23\n\t"
      "6:\n\t"
      "mov %[c], %%rax\n\t"
      "vmovups %%zmm0, (%%rax)\n\t"
      "vmovups %%zmm1, 64(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%zmm2, (%%rax)\n\t"
      "vmovups %%zmm3, 64(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%zmm4, (%%rax)\n\t"
      "vmovups %%zmm5, 64(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%zmm6, (%%rax)\n\t"
      "vmovups %%zmm7, 64(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%zmm8, (%%rax)\n\t"
      "vmovups %%zmm9, 64(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%zmm10, (%%rax)\n\t"
      "vmovups %%zmm11, 64(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%zmm12, (%%rax)\n\t"
      "vmovups %%zmm13, 64(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%zmm14, (%%rax)\n\t"
      "vmovups %%zmm15, 64(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%zmm16, (%%rax)\n\t"
      "vmovups %%zmm17, 64(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%zmm18, (%%rax)\n\t"
      "vmovups %%zmm19, 64(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%zmm20, (%%rax)\n\t"
      "vmovups %%zmm21, 64(%%rax)\n\t"
      "add %[cs], %%rax\n\t"
      "vmovups %%zmm22, (%%rax)\n\t"
      "vmovups %%zmm23, 64(%%rax)\n\t"
      "vzeroupper\n\t"
      : [a] "+r"(a), [b] "+r"(b), [n] "+r"(n)
      : [c] "r"(c), [cs] "r"(c_step), [bs] "r"(b_step), [acc] "r"(acc), [rb] "r"(rb), [cb] "r"(cb), [cl] "r"(clamp)
      : "rax", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27");
}

namespace {

// R rows (1..8) of the tile from row i0: 2R independent FMA chains per k, all in registers
// (R is a template argument so the row loops unroll).
template <int R>
inline void rows_avx512(int i0, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                        bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  constexpr int MR = kAvx512Mr;
  __m512 acc[R][2];
  for (int r = 0; r < R; ++r) {
    const int i = i0 + r;
    if (accumulate) {
      acc[r][0] = _mm512_loadu_ps(c + i * c_rs);
      acc[r][1] = _mm512_loadu_ps(c + i * c_rs + 16);
    } else if (row_bias || !col_bias) {
      acc[r][0] = acc[r][1] = _mm512_set1_ps(row_bias ? row_bias[i] : 0.0f);
    } else {
      acc[r][0] = _mm512_loadu_ps(col_bias);
      acc[r][1] = _mm512_loadu_ps(col_bias + 16);
    }
  }
  const float* ak = a + i0;
  for (int k = 0; k < kc; ++k, ak += MR, b += b_ks) {
    // With few rows the B panel streams from L2/L3 (a batch-1 classifier's 5 MB of
    // weights): ask for it 16 k-steps ahead.
    if (R <= 2) _mm_prefetch(reinterpret_cast<const char*>(b + 64 * b_ks), _MM_HINT_T1);
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(ak[r]);
      acc[r][0] = _mm512_fmadd_ps(b0, av, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(b1, av, acc[r][1]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < 2; ++h) {
      __m512 v = acc[r][h];
      if (clamp) v = _mm512_min_ps(_mm512_set1_ps(clamp[1]), _mm512_max_ps(_mm512_set1_ps(clamp[0]), v));
      _mm512_storeu_ps(c + (i0 + r) * c_rs + 16 * h, v);
    }
}

}  // namespace

// The first m rows of gemm_micro_avx512's tile: per row two accumulators (NR = 32), up
// to eight rows at a time (16 independent FMA chains), each element `acc = a * b + acc`
// in k order as in the assembly kernel, the clamp as max(lo, v) then min(hi, v).
void gemm_micro_rows_avx512(int m, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                            bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  for (int i0 = 0; i0 < m; i0 += 8) {
    switch (m - i0 < 8 ? m - i0 : 8) {
#define SEEDCORE_ROWS_CASE(R) \
  case R: rows_avx512<R>(i0, kc, a, b, b_ks, c, c_rs, accumulate, row_bias, col_bias, clamp); break;
      SEEDCORE_ROWS_CASE(1) SEEDCORE_ROWS_CASE(2) SEEDCORE_ROWS_CASE(3) SEEDCORE_ROWS_CASE(4)
      SEEDCORE_ROWS_CASE(5) SEEDCORE_ROWS_CASE(6) SEEDCORE_ROWS_CASE(7) SEEDCORE_ROWS_CASE(8)
#undef SEEDCORE_ROWS_CASE
      default: break;
    }
  }
  _mm256_zeroupper();  // vzeroupper: clean upper state for the SSE code that follows
}

}  // namespace seedcore

namespace seedcore {
namespace {

// The tile's MR rows x its first n columns in one k loop: NB blocks of 16 columns along
// N (MR accumulators each, B's row through a load masked to the block's width, A
// broadcast), then J columns along M (one accumulator of all MR rows per column: a
// masked load of the packed A micro-panel's MR floats, B's element broadcast).
template <int NB, int J>
inline void cols_avx512(int n, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                        bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  constexpr int MR = kAvx512Mr;
  constexpr int NBX = NB > 0 ? NB : 1, JX = J > 0 ? J : 1;
  const int jm = n - J;  // the first column along M
  __mmask16 mask[NBX];
  for (int blk = 0; blk < NB; ++blk) {
    const int w = jm - 16 * blk < 16 ? jm - 16 * blk : 16;
    mask[blk] = __mmask16((1u << w) - 1u);
  }
  const __mmask16 rows = __mmask16((1u << MR) - 1u);
  alignas(64) float t[16];
  __m512 an[NBX][MR], am[JX];
  for (int blk = 0; blk < NB; ++blk)
    for (int r = 0; r < MR; ++r) {
      if (accumulate)
        an[blk][r] = _mm512_maskz_loadu_ps(mask[blk], c + r * c_rs + 16 * blk);
      else if (row_bias || !col_bias)
        an[blk][r] = _mm512_set1_ps(row_bias ? row_bias[r] : 0.0f);
      else
        an[blk][r] = _mm512_maskz_loadu_ps(mask[blk], col_bias + 16 * blk);
    }
  for (int q = 0; q < J; ++q) {
    if (accumulate) {
      for (int i = 0; i < MR; ++i) t[i] = c[i * c_rs + jm + q];
      am[q] = _mm512_maskz_load_ps(rows, t);
    } else if (row_bias || !col_bias) {
      am[q] = row_bias ? _mm512_maskz_loadu_ps(rows, row_bias) : _mm512_setzero_ps();
    } else {
      am[q] = _mm512_set1_ps(col_bias[jm + q]);
    }
  }
  const float* bk = b;
  for (int k = 0; k < kc; ++k, bk += b_ks) {
    const float* ak = a + k * MR;
    if (NB > 0) {
      __m512 bv[NBX];
      for (int blk = 0; blk < NB; ++blk) bv[blk] = _mm512_maskz_loadu_ps(mask[blk], bk + 16 * blk);
      for (int r = 0; r < MR; ++r) {
        const __m512 ar = _mm512_set1_ps(ak[r]);
        for (int blk = 0; blk < NB; ++blk) an[blk][r] = _mm512_fmadd_ps(bv[blk], ar, an[blk][r]);
      }
    }
    if (J > 0) {
      const __m512 av = _mm512_maskz_loadu_ps(rows, ak);
      for (int q = 0; q < J; ++q) am[q] = _mm512_fmadd_ps(_mm512_set1_ps(bk[jm + q]), av, am[q]);
    }
  }
  const __m512 lo = _mm512_set1_ps(clamp ? clamp[0] : 0.0f), hi = _mm512_set1_ps(clamp ? clamp[1] : 0.0f);
  for (int blk = 0; blk < NB; ++blk)
    for (int r = 0; r < MR; ++r) {
      __m512 v = an[blk][r];
      if (clamp) v = _mm512_min_ps(hi, _mm512_max_ps(lo, v));
      _mm512_mask_storeu_ps(c + r * c_rs + 16 * blk, mask[blk], v);
    }
  for (int q = 0; q < J; ++q) {
    __m512 v = am[q];
    if (clamp) v = _mm512_min_ps(hi, _mm512_max_ps(lo, v));
    _mm512_store_ps(t, v);
    for (int i = 0; i < MR; ++i) c[i * c_rs + jm + q] = t[i];
  }
}

}  // namespace

// The first n columns (1 <= n <= NR) of gemm_micro_avx512's tile, the same operations
// per element (`acc = a * b + acc` in k order, the clamp as max(lo, v) then min(hi, v)),
// reading only n columns of B and writing only those of C. A block of 16 columns goes
// along N (12 FMAs per k); up to 8 left over go along M, one FMA per column per k (more
// are a masked block along N), against the full tile's 24 FMAs per k for any width:
// MobileNetV2's 7 x 7 planes are 49 = 32 + 16 + 1 columns, its 14 x 14 ones 6 x 32 + 4.
void gemm_micro_cols_avx512(int n, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                            bool accumulate, const float* row_bias, const float* col_bias, const float* clamp) {
  const int rem = n % 16;
  const int nb = n / 16;
#define SEEDCORE_COLS(NB, J) cols_avx512<NB, J>(n, kc, a, b, b_ks, c, c_rs, accumulate, row_bias, col_bias, clamp)
  if (rem > 8 || (nb == 2 && rem == 0)) {  // along N only, the last block masked
    if (n > 16) SEEDCORE_COLS(2, 0); else SEEDCORE_COLS(1, 0);
  } else if (nb == 0) {
    switch (rem) {
      case 1: SEEDCORE_COLS(0, 1); break;
      case 2: SEEDCORE_COLS(0, 2); break;
      case 3: SEEDCORE_COLS(0, 3); break;
      case 4: SEEDCORE_COLS(0, 4); break;
      case 5: SEEDCORE_COLS(0, 5); break;
      case 6: SEEDCORE_COLS(0, 6); break;
      case 7: SEEDCORE_COLS(0, 7); break;
      case 8: SEEDCORE_COLS(0, 8); break;
      default: break;
    }
  } else {
    switch (rem) {
      case 0: SEEDCORE_COLS(1, 0); break;
      case 1: SEEDCORE_COLS(1, 1); break;
      case 2: SEEDCORE_COLS(1, 2); break;
      case 3: SEEDCORE_COLS(1, 3); break;
      case 4: SEEDCORE_COLS(1, 4); break;
      case 5: SEEDCORE_COLS(1, 5); break;
      case 6: SEEDCORE_COLS(1, 6); break;
      case 7: SEEDCORE_COLS(1, 7); break;
      case 8: SEEDCORE_COLS(1, 8); break;
      default: break;
    }
  }
#undef SEEDCORE_COLS
  _mm256_zeroupper();
}

}  // namespace seedcore

// AVX2+FMA depthwise 3x3. Dilation 1 (stride 1 or 2) computes a block of R output rows
// x V vectors of 8 columns at a time: R*V independent accumulators (at most 6, next to
// the nine weight registers), each fed its nine taps as FMAs in t = kh*3 + kw order.
// One output row alone makes the nine FMAs of a vector one dependent chain, latency-bound
// (measured: MobileNetV2's 7- and 14-wide planes about 3x slower); blocking rows keeps the
// chains independent whatever the width. Stride 1 reads the padded rows in place; stride
// 2 first splits each input row into even and odd columns (once per block of rows, in
// column strips), so every tap is a plain contiguous load. The last 1..8V-1 columns use
// full loads (the caller keeps the input readable 16 floats past the last tap) and a
// masked store. Other strides and dilations take the generic row-by-row path below.
// Every output is bias + the nine products as FMAs in t order, whatever the path.

#include <immintrin.h>

#include "depthwise_avx2_blocks.h"
#include "graph_kernel_decls.h"

namespace seedcore {
namespace {

using namespace dw_avx2;

void depthwise_stride1(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, const Params& p,
                       float* out) {
  const int rb = ow_count < 16 ? 6 : 3;
  for (int64_t oh = 0; oh < oh_count;) {
    const int rows = block_rows(oh_count - oh, rb);
    Stride1Taps t;
    for (int k = 0; k < rows + 2; ++k) t.row[k] = in + (oh + k) * in_w;
    rows_dispatch(rows, t, ow_count, p, out + oh * ow_count, ow_count);
    oh += rows;
  }
}

// Stride 2, dilation 1, over a padded plane.
void depthwise_stride2(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, const Params& p,
                       float* out) {
  stride2_loop(oh_count, ow_count, p, out, [&](int64_t i, int64_t c0, int64_t width, float* even, float* odd) {
    split_even_odd(in + i * in_w + 2 * c0, width, even, odd);
    return true;
  });
}

// Any stride and dilation, one output row at a time (four accumulators across the row).
void depthwise_generic(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, int stride, int dil,
                       const Params& p, float* out) {
  const __m256 bv = _mm256_set1_ps(p.bias), lo = _mm256_set1_ps(p.lo), hi = _mm256_set1_ps(p.hi);
  for (int64_t oh = 0; oh < oh_count; ++oh) {
    const float* tap[9];
    for (int kh = 0; kh < 3; ++kh)
      for (int kw = 0; kw < 3; ++kw) tap[kh * 3 + kw] = in + (oh * stride + kh * dil) * in_w + kw * dil;
    float* o = out + oh * ow_count;
    if (stride != 1) {
      for (int64_t i = 0; i < ow_count; ++i) {  // strided taps: scalar FMAs in t order
        float acc = p.bias;
        for (int t = 0; t < 9; ++t) acc = __builtin_fmaf(_mm256_cvtss_f32(p.w[t]), tap[t][i * stride], acc);
        acc = _mm256_cvtss_f32(clamp8(_mm256_set1_ps(acc), lo, hi));
        o[i] = acc;
      }
      continue;
    }
    int64_t i = 0;
    for (; i + 32 <= ow_count; i += 32) {
      __m256 a0 = bv, a1 = bv, a2 = bv, a3 = bv;
      for (int t = 0; t < 9; ++t) {
        const float* q = tap[t] + i;
        a0 = _mm256_fmadd_ps(p.w[t], _mm256_loadu_ps(q), a0);
        a1 = _mm256_fmadd_ps(p.w[t], _mm256_loadu_ps(q + 8), a1);
        a2 = _mm256_fmadd_ps(p.w[t], _mm256_loadu_ps(q + 16), a2);
        a3 = _mm256_fmadd_ps(p.w[t], _mm256_loadu_ps(q + 24), a3);
      }
      _mm256_storeu_ps(o + i, clamp8(a0, lo, hi));
      _mm256_storeu_ps(o + i + 8, clamp8(a1, lo, hi));
      _mm256_storeu_ps(o + i + 16, clamp8(a2, lo, hi));
      _mm256_storeu_ps(o + i + 24, clamp8(a3, lo, hi));
    }
    for (; i < ow_count; i += 8) {
      const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(ow_count - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      __m256 acc = bv;
      for (int t = 0; t < 9; ++t) acc = _mm256_fmadd_ps(p.w[t], _mm256_loadu_ps(tap[t] + i), acc);
      _mm256_maskstore_ps(o + i, mask, clamp8(acc, lo, hi));
    }
  }
}

}  // namespace

void depthwise3x3_avx2(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, int stride, int dil,
                       const float* w, float bias, float* out, const float* clamp) {
  const Params p = make_params(w, bias, clamp);
  if (dil == 1 && stride == 1)
    depthwise_stride1(in, in_w, oh_count, ow_count, p, out);
  else if (dil == 1 && stride == 2)
    depthwise_stride2(in, in_w, oh_count, ow_count, p, out);
  else
    depthwise_generic(in, in_w, oh_count, ow_count, stride, dil, p, out);
  // GCC leaves the upper halves dirty after calls taking __m256 by value; the SSE code
  // that runs next then pays an AVX-SSE transition (measured ~380 ns per call here).
  _mm256_zeroupper();
}

}  // namespace seedcore

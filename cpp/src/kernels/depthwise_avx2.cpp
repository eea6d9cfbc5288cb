// AVX2+FMA depthwise 3x3. Each output row is computed from nine "tap rows" (for tap
// t = kh*3 + kw, the input feeding output ow sits at tap[t][ow]), 32 outputs at a time
// in four independent accumulators, then 8 at a time, then the last 1..7 through masked
// loads and stores. Four chains matter:
// one accumulator makes the nine FMAs of a vector a dependent chain (latency-bound,
// about 4x slower). Stride 1 reads the padded rows in place; stride 2 (dilation 1)
// first splits each input row into even and odd columns, so every tap is a plain
// contiguous load instead of two loads and two shuffles. Other strides go scalar.
// Every output is bias + the nine products as FMAs in t order, whatever the path.
#include <immintrin.h>

#include "graph_kernel_decls.h"

namespace seedcore {
namespace {

constexpr int64_t kMaxSplitWidth = 2048;  // stride-2 rows up to this many outputs use the even/odd split

// Clamp in the scalar twin's terms: max(lo, v) gives lo for v < lo and v for NaN v;
// min(hi, .) likewise (lo / hi are -inf / +inf without a fused clamp).
inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); }

void row_from_taps(const float* const tap[9], int64_t n, const __m256 wv[9], __m256 bv, __m256 lo, __m256 hi,
                   float* out) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 a0 = bv, a1 = bv, a2 = bv, a3 = bv;
    for (int t = 0; t < 9; ++t) {
      const float* p = tap[t] + i;
      a0 = _mm256_fmadd_ps(wv[t], _mm256_loadu_ps(p), a0);
      a1 = _mm256_fmadd_ps(wv[t], _mm256_loadu_ps(p + 8), a1);
      a2 = _mm256_fmadd_ps(wv[t], _mm256_loadu_ps(p + 16), a2);
      a3 = _mm256_fmadd_ps(wv[t], _mm256_loadu_ps(p + 24), a3);
    }
    _mm256_storeu_ps(out + i, clamp8(a0, lo, hi));
    _mm256_storeu_ps(out + i + 8, clamp8(a1, lo, hi));
    _mm256_storeu_ps(out + i + 16, clamp8(a2, lo, hi));
    _mm256_storeu_ps(out + i + 24, clamp8(a3, lo, hi));
  }
  for (; i + 8 <= n; i += 8) {
    __m256 acc = bv;
    for (int t = 0; t < 9; ++t) acc = _mm256_fmadd_ps(wv[t], _mm256_loadu_ps(tap[t] + i), acc);
    _mm256_storeu_ps(out + i, clamp8(acc, lo, hi));
  }
  if (i < n) {  // the last 1..7 outputs: masked loads (no fault past the mask) and store
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 acc = bv;
    for (int t = 0; t < 9; ++t) acc = _mm256_fmadd_ps(wv[t], _mm256_maskload_ps(tap[t] + i, mask), acc);
    _mm256_maskstore_ps(out + i, mask, clamp8(acc, lo, hi));
  }
}

// even[i] = row[2i], odd[i] = row[2i + 1] for i <= count (16 floats at a time; the
// caller guarantees row is readable 16 floats past row[2 * count]).
void split_even_odd(const float* row, int64_t count, float* even, float* odd) {
  for (int64_t i = 0; i <= count; i += 8) {
    const __m256 lo = _mm256_loadu_ps(row + 2 * i), hi = _mm256_loadu_ps(row + 2 * i + 8);
    const __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // x0 x2 x8 x10 | x4 x6 x12 x14
    const __m256 od = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    _mm256_storeu_ps(even + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0))));
    _mm256_storeu_ps(odd + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), _MM_SHUFFLE(3, 1, 2, 0))));
  }
}

// Stride 2, dilation 1: even/odd halves of the three input rows (8 spare floats for
// the last block). A function of its own so that the 48 KiB scratch on its stack
// frame is not set up for stride-1 calls (measured: a fixed ~300 ns per plane).
__attribute__((noinline)) void depthwise3x3_split(const float* in, int64_t in_w, int64_t oh_count,
                                                  int64_t ow_count, const __m256 wv[9], __m256 bv,
                                                  __m256 lo, __m256 hi, float* out) {
  alignas(32) float halves[3][2][kMaxSplitWidth + 16];
  const float* tap[9];
  for (int64_t oh = 0; oh < oh_count; ++oh) {
    for (int kh = 0; kh < 3; ++kh) {
      float* even = halves[kh][0];
      float* odd = halves[kh][1];
      split_even_odd(in + (2 * oh + kh) * in_w, ow_count, even, odd);
      tap[kh * 3 + 0] = even;
      tap[kh * 3 + 1] = odd;
      tap[kh * 3 + 2] = even + 1;
    }
    row_from_taps(tap, ow_count, wv, bv, lo, hi, out + oh * ow_count);
  }
}

}  // namespace

void depthwise3x3_avx2(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, int stride, int dil,
                       const float* w, float bias, float* out, const float* clamp) {
  const bool split = stride == 2 && dil == 1 && ow_count < kMaxSplitWidth;
  if (stride != 1 && !split) {
    depthwise3x3_scalar(in, in_w, oh_count, ow_count, stride, dil, w, bias, out, clamp);
    return;
  }
  __m256 wv[9];
  for (int t = 0; t < 9; ++t) wv[t] = _mm256_set1_ps(w[t]);
  const __m256 bv = _mm256_set1_ps(bias);
  const __m256 lo = _mm256_set1_ps(clamp ? clamp[0] : -__builtin_inff());
  const __m256 hi = _mm256_set1_ps(clamp ? clamp[1] : __builtin_inff());
  if (split) {
    depthwise3x3_split(in, in_w, oh_count, ow_count, wv, bv, lo, hi, out);
  } else {
    const float* tap[9];
    for (int64_t oh = 0; oh < oh_count; ++oh) {
      for (int kh = 0; kh < 3; ++kh)
        for (int kw = 0; kw < 3; ++kw) tap[kh * 3 + kw] = in + (oh + kh * dil) * in_w + kw * dil;
      row_from_taps(tap, ow_count, wv, bv, lo, hi, out + oh * ow_count);
    }
  }
  // GCC leaves the upper halves dirty after calls taking __m256 by value; the SSE code
  // that runs next then pays an AVX-SSE transition (measured ~380 ns per call here).
  _mm256_zeroupper();
}

}  // namespace seedcore

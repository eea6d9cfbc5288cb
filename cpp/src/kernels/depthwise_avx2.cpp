// AVX2+FMA depthwise 3x3: 8 outputs of a row at a time; stride 1 loads directly,
// stride 2 de-interleaves two loads; other strides and the row tail go scalar.
#include <immintrin.h>

#include "graph_kernel_decls.h"

namespace seedcore {
namespace {

inline __m256 load_strided(const float* p, int stride) {
  if (stride == 1) return _mm256_loadu_ps(p);
  const __m256 lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
  const __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // x0 x2 x8 x10 | x4 x6 x12 x14
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
}

}  // namespace

void depthwise3x3_avx2(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, int stride, int dil,
                       const float* w, float bias, float* out) {
  if (stride != 1 && stride != 2) {
    depthwise3x3_scalar(in, in_w, oh_count, ow_count, stride, dil, w, bias, out);
    return;
  }
  __m256 wv[9];
  for (int t = 0; t < 9; ++t) wv[t] = _mm256_set1_ps(w[t]);
  const __m256 bv = _mm256_set1_ps(bias);
  for (int64_t oh = 0; oh < oh_count; ++oh) {
    const float* r0 = in + (oh * stride) * in_w;
    const float* rows[3] = {r0, r0 + dil * in_w, r0 + 2 * dil * in_w};
    int64_t ow = 0;
    for (; ow + 8 <= ow_count; ow += 8) {
      __m256 acc = bv;
      for (int kh = 0; kh < 3; ++kh)
        for (int kw = 0; kw < 3; ++kw)
          acc = _mm256_fmadd_ps(wv[kh * 3 + kw], load_strided(rows[kh] + ow * stride + kw * dil, stride), acc);
      _mm256_storeu_ps(out + oh * ow_count + ow, acc);
    }
    for (; ow < ow_count; ++ow) {
      float acc = bias;
      for (int kh = 0; kh < 3; ++kh)
        for (int kw = 0; kw < 3; ++kw) acc += w[kh * 3 + kw] * rows[kh][ow * stride + kw * dil];
      out[oh * ow_count + ow] = acc;
    }
  }
}

}  // namespace seedcore

// AVX2+FMA GELU (erf form), row softmax and layer norm (below), 8 floats at a time, the tails through the
// same vector code on a zero-padded copy (so every element sees the same operations).
//   exp: Cephes' range reduction x = n ln2 + r (ln2 in two parts), a degree-5
//        polynomial for e^r, 2^n built in the exponent bits; x < -87.33 gives 0 (libm
//        gives a subnormal there), x is clamped at 88 (never reached: softmax and
//        GELU only take exp of values <= 0). Relative error about 2 ulp.
//   erf: the rational minimax approximation erf(x) ~ x P(x^2) / Q(x^2) on [-4, 4] that
//        Eigen and XLA use (degree 13 / 8), constant +-1 beyond; absolute error about
//        1e-7. No exp needed, so GELU costs one division per element.
// NaN inputs give NaN, as the scalar twins do. Tolerances against the scalar twins are
// stated and tested in cpp/tests/test_graph.cpp.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "graph_kernel_decls.h"

namespace seedcore {
namespace {

inline __m256 set1(float v) { return _mm256_set1_ps(v); }

inline __m256 exp_avx2(__m256 x) {
  const __m256 lo = set1(-87.33654f), hi = set1(88.0f);
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, set1(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, set1(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, set1(-2.12194440e-4f), r);
  __m256 p = set1(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, set1(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, set1(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, set1(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, set1(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, set1(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
  p = _mm256_add_ps(p, set1(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  y = _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), y);         // underflow: 0
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN stays NaN
}

inline __m256 erf_avx2(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, set1(-4.0f)), set1(4.0f));
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_fmadd_ps(x2, set1(-2.72614225801306e-10f), set1(2.77068142495902e-08f));
  p = _mm256_fmadd_ps(x2, p, set1(-2.10102402082508e-06f));
  p = _mm256_fmadd_ps(x2, p, set1(-5.69250639462346e-05f));
  p = _mm256_fmadd_ps(x2, p, set1(-7.34990630326855e-04f));
  p = _mm256_fmadd_ps(x2, p, set1(-2.95459980854025e-03f));
  p = _mm256_fmadd_ps(x2, p, set1(-1.60960333262415e-02f));
  p = _mm256_mul_ps(x, p);
  __m256 q = _mm256_fmadd_ps(x2, set1(-1.45660718464996e-05f), set1(-2.13374055278905e-04f));
  q = _mm256_fmadd_ps(x2, q, set1(-1.68282697438203e-03f));
  q = _mm256_fmadd_ps(x2, q, set1(-7.37332916720468e-03f));
  q = _mm256_fmadd_ps(x2, q, set1(-1.42647390514189e-02f));
  return _mm256_div_ps(p, q);
}

inline __m256 gelu_avx2(__m256 v) {  // 0.5 v (1 + erf(v / sqrt 2)), in the scalar twin's order
  const __m256 e = erf_avx2(_mm256_mul_ps(v, set1(0.7071067811865476f)));
  return _mm256_mul_ps(_mm256_mul_ps(set1(0.5f), v), _mm256_add_ps(set1(1.0f), e));
}

float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

}  // namespace

void gelu_erf_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, gelu_avx2(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float tail[8] = {};
    std::memcpy(tail, x + i, size_t(n - i) * sizeof(float));
    _mm256_store_ps(tail, gelu_avx2(_mm256_load_ps(tail)));
    std::memcpy(y + i, tail, size_t(n - i) * sizeof(float));
  }
  _mm256_zeroupper();  // clean upper state for the SSE code that follows (see depthwise_avx2.cpp)
}

// max, then e = exp(x - max) stored and summed in 8 float lanes (lane sums added in a
// fixed order at the end), then y = e * (1 / sum).
void softmax_row_avx2(const float* x, float* y, int64_t n) {
  if (n <= 0) return;
  const int64_t n8 = n / 8 * 8;
  const __m256 neg_inf = set1(-__builtin_inff());
  __m256 mv = neg_inf;
  for (int64_t i = 0; i < n8; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
  float m = hmax(mv);
  for (int64_t i = n8; i < n; ++i) m = std::max(m, x[i]);
  const __m256 mb = set1(m);
  __m256 sv = _mm256_setzero_ps();
  for (int64_t i = 0; i < n8; i += 8) {
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), mb));
    _mm256_storeu_ps(y + i, e);
    sv = _mm256_add_ps(sv, e);
  }
  if (n8 < n) {
    alignas(32) float tail[8];
    for (int k = 0; k < 8; ++k) tail[k] = n8 + k < n ? x[n8 + k] : -__builtin_inff();  // exp(-inf) = 0
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_load_ps(tail), mb));
    _mm256_store_ps(tail, e);
    sv = _mm256_add_ps(sv, e);
    std::memcpy(y + n8, tail, size_t(n - n8) * sizeof(float));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sv);
  const float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  const __m256 inv = set1(1.0f / sum);
  int64_t i = 0;
  for (; i < n8; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), inv));
  for (; i < n; ++i) y[i] *= 1.0f / sum;
  _mm256_zeroupper();
}

// Layer norm: the moments in double as the scalar twin, four lanes at a time (two
// accumulators), so only the order of the double sums differs; the float step is the
// scalar twin's (x - m) * inv [* w] [+ b] as separate multiplies and adds.
void layer_norm_row_avx2(const float* s, float* d, int64_t D, const float* w, const float* b, double eps) {
  const int64_t D8 = D / 8 * 8;
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (int64_t i = 0; i < D8; i += 8) {
    const __m256 x = _mm256_loadu_ps(s + i);
    s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(x)));
    s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(s0, s1));
  double mean = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (int64_t i = D8; i < D; ++i) mean += s[i];
  mean /= double(D);
  const __m256d mv = _mm256_set1_pd(mean);
  s0 = _mm256_setzero_pd();
  s1 = _mm256_setzero_pd();
  for (int64_t i = 0; i < D8; i += 8) {
    const __m256 x = _mm256_loadu_ps(s + i);
    const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), mv);
    const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), mv);
    s0 = _mm256_add_pd(s0, _mm256_mul_pd(d0, d0));
    s1 = _mm256_add_pd(s1, _mm256_mul_pd(d1, d1));
  }
  _mm256_store_pd(lanes, _mm256_add_pd(s0, s1));
  double var = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (int64_t i = D8; i < D; ++i) var += (s[i] - mean) * (s[i] - mean);
  var /= double(D);
  const float m = float(mean);
  const float inv = float(1.0 / std::sqrt(var + eps));
  const __m256 m8 = _mm256_set1_ps(m), inv8 = _mm256_set1_ps(inv);
  int64_t i = 0;
  for (; i < D8; i += 8) {
    __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(s + i), m8), inv8);
    if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
    if (b) v = _mm256_add_ps(v, _mm256_loadu_ps(b + i));
    _mm256_storeu_ps(d + i, v);
  }
  for (; i < D; ++i) {
    float v = (s[i] - m) * inv;
    if (w) v *= w[i];
    if (b) v += b[i];
    d[i] = v;
  }
  _mm256_zeroupper();
}

}  // namespace seedcore

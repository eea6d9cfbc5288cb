// NEON GELU (erf form), row softmax and layer norm (below), 4 floats at a time: the same algorithms and
// constants as activation_avx2.cpp (Cephes exp, Eigen/XLA rational erf; see there),
// the tails through the same vector code on a padded copy.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "graph_kernel_decls.h"

namespace seedcore {
namespace {

inline float32x4_t dup(float v) { return vdupq_n_f32(v); }

inline float32x4_t exp_neon(float32x4_t x) {
  const float32x4_t lo = dup(-87.33654f), hi = dup(88.0f);
  const float32x4_t xc = vminq_f32(vmaxq_f32(x, lo), hi);
  const float32x4_t n = vrndnq_f32(vmulq_f32(xc, dup(1.44269504088896341f)));
  float32x4_t r = vfmsq_f32(xc, n, dup(0.693359375f));  // xc - n * c
  r = vfmsq_f32(r, n, dup(-2.12194440e-4f));
  float32x4_t p = dup(1.9875691500e-4f);
  p = vfmaq_f32(dup(1.3981999507e-3f), p, r);
  p = vfmaq_f32(dup(8.3334519073e-3f), p, r);
  p = vfmaq_f32(dup(4.1665795894e-2f), p, r);
  p = vfmaq_f32(dup(1.6666665459e-1f), p, r);
  p = vfmaq_f32(dup(5.0000001201e-1f), p, r);
  p = vfmaq_f32(r, p, vmulq_f32(r, r));
  p = vaddq_f32(p, dup(1.0f));
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
  const uint32x4_t under = vcltq_f32(x, lo);
  y = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), under));  // underflow: 0
  const uint32x4_t is_num = vceqq_f32(x, x);
  return vbslq_f32(is_num, y, x);  // NaN stays NaN
}

inline float32x4_t erf_neon(float32x4_t x) {
  x = vminq_f32(vmaxq_f32(x, dup(-4.0f)), dup(4.0f));
  const float32x4_t x2 = vmulq_f32(x, x);
  float32x4_t p = vfmaq_f32(dup(2.77068142495902e-08f), x2, dup(-2.72614225801306e-10f));
  p = vfmaq_f32(dup(-2.10102402082508e-06f), x2, p);
  p = vfmaq_f32(dup(-5.69250639462346e-05f), x2, p);
  p = vfmaq_f32(dup(-7.34990630326855e-04f), x2, p);
  p = vfmaq_f32(dup(-2.95459980854025e-03f), x2, p);
  p = vfmaq_f32(dup(-1.60960333262415e-02f), x2, p);
  p = vmulq_f32(x, p);
  float32x4_t q = vfmaq_f32(dup(-2.13374055278905e-04f), x2, dup(-1.45660718464996e-05f));
  q = vfmaq_f32(dup(-1.68282697438203e-03f), x2, q);
  q = vfmaq_f32(dup(-7.37332916720468e-03f), x2, q);
  q = vfmaq_f32(dup(-1.42647390514189e-02f), x2, q);
  return vdivq_f32(p, q);
}

inline float32x4_t gelu_neon(float32x4_t v) {
  const float32x4_t e = erf_neon(vmulq_f32(v, dup(0.7071067811865476f)));
  return vmulq_f32(vmulq_f32(dup(0.5f), v), vaddq_f32(dup(1.0f), e));
}

}  // namespace

void gelu_erf_neon(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, gelu_neon(vld1q_f32(x + i)));
  if (i < n) {
    float tail[4] = {};
    std::memcpy(tail, x + i, size_t(n - i) * sizeof(float));
    vst1q_f32(tail, gelu_neon(vld1q_f32(tail)));
    std::memcpy(y + i, tail, size_t(n - i) * sizeof(float));
  }
}

void softmax_row_neon(const float* x, float* y, int64_t n) {
  if (n <= 0) return;
  const int64_t n4 = n / 4 * 4;
  float32x4_t mv = dup(-__builtin_inff());
  for (int64_t i = 0; i < n4; i += 4) mv = vmaxq_f32(mv, vld1q_f32(x + i));
  float m = vmaxvq_f32(mv);
  for (int64_t i = n4; i < n; ++i) m = std::max(m, x[i]);
  const float32x4_t mb = dup(m);
  float32x4_t sv = dup(0.0f);
  for (int64_t i = 0; i < n4; i += 4) {
    const float32x4_t e = exp_neon(vsubq_f32(vld1q_f32(x + i), mb));
    vst1q_f32(y + i, e);
    sv = vaddq_f32(sv, e);
  }
  if (n4 < n) {
    float tail[4];
    for (int k = 0; k < 4; ++k) tail[k] = n4 + k < n ? x[n4 + k] : -__builtin_inff();  // exp(-inf) = 0
    const float32x4_t e = exp_neon(vsubq_f32(vld1q_f32(tail), mb));
    vst1q_f32(tail, e);
    sv = vaddq_f32(sv, e);
    std::memcpy(y + n4, tail, size_t(n - n4) * sizeof(float));
  }
  float lanes[4];
  vst1q_f32(lanes, sv);
  const float sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  const float32x4_t inv = dup(1.0f / sum);
  int64_t i = 0;
  for (; i < n4; i += 4) vst1q_f32(y + i, vmulq_f32(vld1q_f32(y + i), inv));
  for (; i < n; ++i) y[i] *= 1.0f / sum;
}

// Layer norm: the moments in double as the scalar twin, two lanes at a time (two
// accumulators), so only the order of the double sums differs; the float step is the
// scalar twin's (x - m) * inv [* w] [+ b] as separate multiplies and adds.
void layer_norm_row_neon(const float* s, float* d, int64_t D, const float* w, const float* b, double eps) {
  const int64_t D4 = D / 4 * 4;
  float64x2_t s0 = vdupq_n_f64(0.0), s1 = vdupq_n_f64(0.0);
  for (int64_t i = 0; i < D4; i += 4) {
    const float32x4_t x = vld1q_f32(s + i);
    s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(x)));
    s1 = vaddq_f64(s1, vcvt_high_f64_f32(x));
  }
  float64x2_t t = vaddq_f64(s0, s1);
  double mean = vgetq_lane_f64(t, 0) + vgetq_lane_f64(t, 1);
  for (int64_t i = D4; i < D; ++i) mean += s[i];
  mean /= double(D);
  const float64x2_t mv = vdupq_n_f64(mean);
  s0 = vdupq_n_f64(0.0);
  s1 = vdupq_n_f64(0.0);
  for (int64_t i = 0; i < D4; i += 4) {
    const float32x4_t x = vld1q_f32(s + i);
    const float64x2_t d0 = vsubq_f64(vcvt_f64_f32(vget_low_f32(x)), mv);
    const float64x2_t d1 = vsubq_f64(vcvt_high_f64_f32(x), mv);
    s0 = vaddq_f64(s0, vmulq_f64(d0, d0));
    s1 = vaddq_f64(s1, vmulq_f64(d1, d1));
  }
  t = vaddq_f64(s0, s1);
  double var = vgetq_lane_f64(t, 0) + vgetq_lane_f64(t, 1);
  for (int64_t i = D4; i < D; ++i) var += (s[i] - mean) * (s[i] - mean);
  var /= double(D);
  const float m = float(mean);
  const float inv = float(1.0 / std::sqrt(var + eps));
  const float32x4_t m4 = vdupq_n_f32(m), inv4 = vdupq_n_f32(inv);
  int64_t i = 0;
  for (; i < D4; i += 4) {
    float32x4_t v = vmulq_f32(vsubq_f32(vld1q_f32(s + i), m4), inv4);
    if (w) v = vmulq_f32(v, vld1q_f32(w + i));
    if (b) v = vaddq_f32(v, vld1q_f32(b + i));
    vst1q_f32(d + i, v);
  }
  for (; i < D; ++i) {
    float v = (s[i] - m) * inv;
    if (w) v *= w[i];
    if (b) v += b[i];
    d[i] = v;
  }
}

}  // namespace seedcore

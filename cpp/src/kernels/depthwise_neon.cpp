// NEON depthwise 3x3: 4 outputs of a row at a time; stride 1 loads directly, stride 2
// uses the de-interleaving vld2q; other strides and the row tail go scalar.
#include <arm_neon.h>

#include "graph_kernel_decls.h"

namespace seedcore {

void depthwise3x3_neon(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, int stride, int dil,
                       const float* w, float bias, float* out, const float* clamp) {
  if (stride != 1 && stride != 2) {
    depthwise3x3_scalar(in, in_w, oh_count, ow_count, stride, dil, w, bias, out, clamp);
    return;
  }
  float32x4_t wv[9];
  for (int t = 0; t < 9; ++t) wv[t] = vdupq_n_f32(w[t]);
  const float32x4_t bv = vdupq_n_f32(bias);
  for (int64_t oh = 0; oh < oh_count; ++oh) {
    const float* r0 = in + (oh * stride) * in_w;
    const float* rows[3] = {r0, r0 + dil * in_w, r0 + 2 * dil * in_w};
    int64_t ow = 0;
    for (; ow + 4 <= ow_count; ow += 4) {
      float32x4_t acc = bv;
      for (int kh = 0; kh < 3; ++kh)
        for (int kw = 0; kw < 3; ++kw) {
          const float* p = rows[kh] + ow * stride + kw * dil;
          const float32x4_t x = stride == 1 ? vld1q_f32(p) : vld2q_f32(p).val[0];
          acc = vfmaq_f32(acc, wv[kh * 3 + kw], x);
        }
      if (clamp) {  // v < lo -> lo, v > hi -> hi, NaN kept
        const float32x4_t lo = vdupq_n_f32(clamp[0]), hi = vdupq_n_f32(clamp[1]);
        acc = vbslq_f32(vcltq_f32(acc, lo), lo, acc);
        acc = vbslq_f32(vcgtq_f32(acc, hi), hi, acc);
      }
      vst1q_f32(out + oh * ow_count + ow, acc);
    }
    for (; ow < ow_count; ++ow) {
      float acc = bias;
      for (int kh = 0; kh < 3; ++kh)
        for (int kw = 0; kw < 3; ++kw) acc += w[kh * 3 + kw] * rows[kh][ow * stride + kw * dil];
      if (clamp) {
        if (acc < clamp[0]) acc = clamp[0];
        if (acc > clamp[1]) acc = clamp[1];
      }
      out[oh * ow_count + ow] = acc;
    }
  }
}

}  // namespace seedcore

// Scalar depthwise 3x3 convolution over a zero-padded plane (twin of the SIMD ones).
#include "graph_kernel_decls.h"

namespace seedcore {

void depthwise3x3_scalar(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, int stride, int dil,
                         const float* w, float bias, float* out, const float* clamp) {
  for (int64_t oh = 0; oh < oh_count; ++oh) {
    for (int64_t ow = 0; ow < ow_count; ++ow) {
      float acc = bias;
      for (int kh = 0; kh < 3; ++kh) {
        const float* row = in + (oh * stride + kh * dil) * in_w + ow * stride;
        for (int kw = 0; kw < 3; ++kw) acc += w[kh * 3 + kw] * row[kw * dil];
      }
      if (clamp) {
        if (acc < clamp[0]) acc = clamp[0];
        if (acc > clamp[1]) acc = clamp[1];
      }
      out[oh * ow_count + ow] = acc;
    }
  }
}

}  // namespace seedcore

// Scalar GELU (erf form), softmax and layer norm over a contiguous row: the reference
// twins of the SIMD ones, and exactly what the executor computed before those existed
// (libm erf and exp, the softmax sum and the layer norm's moments in double).
#include <algorithm>
#include <cmath>
#include <limits>

#include "graph_kernel_decls.h"

namespace seedcore {

void gelu_erf_scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::erf(v * 0.7071067811865476f));
  }
}

void softmax_row_scalar(const float* x, float* y, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t k = 0; k < n; ++k) m = std::max(m, x[k]);
  double sum = 0.0;
  for (int64_t k = 0; k < n; ++k) {
    const float e = std::exp(x[k] - m);
    y[k] = e;
    sum += e;
  }
  const float inv = float(1.0 / sum);
  for (int64_t k = 0; k < n; ++k) y[k] *= inv;
}

void layer_norm_row_scalar(const float* s, float* d, int64_t D, const float* w, const float* b, double eps) {
  double mean = 0.0;
  for (int64_t i = 0; i < D; ++i) mean += s[i];
  mean /= double(D);
  double var = 0.0;
  for (int64_t i = 0; i < D; ++i) var += (s[i] - mean) * (s[i] - mean);
  var /= double(D);
  const float m = float(mean);
  const float inv = float(1.0 / std::sqrt(var + eps));
  for (int64_t i = 0; i < D; ++i) {
    float v = (s[i] - m) * inv;
    if (w) v *= w[i];
    if (b) v += b[i];
    d[i] = v;
  }
}

}  // namespace seedcore

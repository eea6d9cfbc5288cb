// Scalar GEMM micro-kernel: the twin of the SIMD ones (same tile contract), and the
// kernel used when SIMD is off. Accumulates each C element in k order.
#include "graph_kernel_decls.h"

namespace seedcore {

void gemm_micro_scalar(int mr, int kc, const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float* b,
                       ptrdiff_t b_ks, float* c, ptrdiff_t c_rs, bool accumulate) {
  constexpr int NR = kScalarNr;
  float acc[kScalarMr][NR];
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = accumulate ? c[i * c_rs + j] : 0.0f;
  for (int k = 0; k < kc; ++k) {
    const float* bk = b + k * b_ks;
    for (int i = 0; i < mr; ++i) {
      const float av = a[i * a_rs + k * a_cs];
      for (int j = 0; j < NR; ++j) acc[i][j] += av * bk[j];
    }
  }
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < NR; ++j) c[i * c_rs + j] = acc[i][j];
}

}  // namespace seedcore

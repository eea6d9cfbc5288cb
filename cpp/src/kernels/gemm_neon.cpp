// NEON GEMM micro-kernel: 6 x 16 tile, 24 q-register accumulators; per k four loads
// of the B row and six broadcast loads of A (A is never packed).
#include <arm_neon.h>

#include "graph_kernel_decls.h"

namespace seedcore {
namespace {

template <int MR>
void micro(int kc, const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float* b, ptrdiff_t b_ks, float* c,
           ptrdiff_t c_rs, bool accumulate) {
  float32x4_t acc[MR][4];
  const float* ar[MR];
  for (int i = 0; i < MR; ++i) {
    ar[i] = a + i * a_rs;
    for (int q = 0; q < 4; ++q) acc[i][q] = accumulate ? vld1q_f32(c + i * c_rs + 4 * q) : vdupq_n_f32(0.0f);
  }
  for (int k = 0; k < kc; ++k) {
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8), b3 = vld1q_f32(b + 12);
    b += b_ks;
    for (int i = 0; i < MR; ++i) {
      const float32x4_t av = vld1q_dup_f32(ar[i] + k * a_cs);
      acc[i][0] = vfmaq_f32(acc[i][0], av, b0);
      acc[i][1] = vfmaq_f32(acc[i][1], av, b1);
      acc[i][2] = vfmaq_f32(acc[i][2], av, b2);
      acc[i][3] = vfmaq_f32(acc[i][3], av, b3);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int q = 0; q < 4; ++q) vst1q_f32(c + i * c_rs + 4 * q, acc[i][q]);
}

}  // namespace

void gemm_micro_neon(int mr, int kc, const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float* b,
                     ptrdiff_t b_ks, float* c, ptrdiff_t c_rs, bool accumulate) {
  switch (mr) {
    case 6: micro<6>(kc, a, a_rs, a_cs, b, b_ks, c, c_rs, accumulate); break;
    case 5: micro<5>(kc, a, a_rs, a_cs, b, b_ks, c, c_rs, accumulate); break;
    case 4: micro<4>(kc, a, a_rs, a_cs, b, b_ks, c, c_rs, accumulate); break;
    case 3: micro<3>(kc, a, a_rs, a_cs, b, b_ks, c, c_rs, accumulate); break;
    case 2: micro<2>(kc, a, a_rs, a_cs, b, b_ks, c, c_rs, accumulate); break;
    default: micro<1>(kc, a, a_rs, a_cs, b, b_ks, c, c_rs, accumulate); break;
  }
}

}  // namespace seedcore

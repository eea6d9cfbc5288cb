// AVX2+FMA GEMM micro-kernel: 6 x 16 tile, 12 ymm accumulators; per k two loads of
// the B row and six broadcasts of A (A is never packed, so any strides work).
#include <immintrin.h>

#include "graph_kernel_decls.h"

namespace seedcore {
namespace {

template <int MR>
void micro(int kc, const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float* b, ptrdiff_t b_ks, float* c,
           ptrdiff_t c_rs, bool accumulate) {
  __m256 lo[MR], hi[MR];
  const float* ar[MR];
  for (int i = 0; i < MR; ++i) {
    ar[i] = a + i * a_rs;
    if (accumulate) {
      lo[i] = _mm256_loadu_ps(c + i * c_rs);
      hi[i] = _mm256_loadu_ps(c + i * c_rs + 8);
    } else {
      lo[i] = _mm256_setzero_ps();
      hi[i] = _mm256_setzero_ps();
    }
  }
  if (a_cs == 1) {
    for (int k = 0; k < kc; ++k) {
      const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
      b += b_ks;
      for (int i = 0; i < MR; ++i) {
        const __m256 av = _mm256_broadcast_ss(ar[i] + k);
        lo[i] = _mm256_fmadd_ps(av, b0, lo[i]);
        hi[i] = _mm256_fmadd_ps(av, b1, hi[i]);
      }
    }
  } else {
    for (int k = 0; k < kc; ++k) {
      const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
      b += b_ks;
      for (int i = 0; i < MR; ++i) {
        const __m256 av = _mm256_broadcast_ss(ar[i] + k * a_cs);
        lo[i] = _mm256_fmadd_ps(av, b0, lo[i]);
        hi[i] = _mm256_fmadd_ps(av, b1, hi[i]);
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(c + i * c_rs, lo[i]);
    _mm256_storeu_ps(c + i * c_rs + 8, hi[i]);
  }
}

}  // namespace

void gemm_micro_avx2(int mr, int kc, const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float* b,
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

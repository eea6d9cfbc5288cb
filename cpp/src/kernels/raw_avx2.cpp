// AVX2/F16C: binary16 / bfloat16 → binary32 and the non-temporal stream copy.
#include <immintrin.h>

#include <cstring>

#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {

// vcvtph2ps converts every finite value and infinity exactly, but turns signalling
// NaNs into quiet ones; the scalar twin keeps NaN bits as they are, so NaN lanes are
// rebuilt from the integer bits: sign | 0x7F800000 | mantissa << 13.
void convert_f16_to_f32_avx2(const uint8_t* src, size_t n, float* dst) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFF);
  const __m256i inf_bits = _mm256_set1_epi32(0x7C00);
  const __m256i nan_rebias = _mm256_set1_epi32(0x70000000);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    const __m256 f = _mm256_cvtph_ps(h);
    const __m256i hw = _mm256_cvtepu16_epi32(h);
    const __m256i em = _mm256_and_si256(hw, abs_mask);
    const __m256i is_nan = _mm256_cmpgt_epi32(em, inf_bits);
    const __m256i sign = _mm256_slli_epi32(_mm256_andnot_si256(abs_mask, hw), 16);
    const __m256i nan = _mm256_or_si256(sign, _mm256_add_epi32(_mm256_slli_epi32(em, 13), nan_rebias));
    _mm256_storeu_ps(dst + i, _mm256_blendv_ps(f, _mm256_castsi256_ps(nan), _mm256_castsi256_ps(is_nan)));
  }
  convert_f16_to_f32_scalar(src + 2 * i, n - i, dst + i);
}

void convert_bf16_to_f32_avx2(const uint8_t* src, size_t n, float* dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(w));
  }
  convert_bf16_to_f32_scalar(src + 2 * i, n - i, dst + i);
}

void stream_copy_f32_avx2(float* dst, const float* src, size_t n) {
  if ((reinterpret_cast<uintptr_t>(dst) & 3) != 0 || n < 64) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  size_t i = 0;
  while (i < n && (reinterpret_cast<uintptr_t>(dst + i) & 31) != 0) { dst[i] = src[i]; ++i; }
  for (; i + 16 <= n; i += 16) {
    _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
    _mm256_stream_ps(dst + i + 8, _mm256_loadu_ps(src + i + 8));
  }
  for (; i < n; ++i) dst[i] = src[i];
  // Non-temporal stores are weakly ordered: fence so that later ordinary stores and
  // other threads (after their own synchronisation) see these first.
  _mm_sfence();
}

}  // namespace seedcore

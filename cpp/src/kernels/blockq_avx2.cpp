// AVX2/F16C q8 / q4 dequantisation. The binary16 scale goes through vcvtph2ps (exact
// for every finite value; a signalling-NaN scale becomes quiet, which the following
// multiply would do anyway, so the bits match the scalar twin).
#include <immintrin.h>

#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {
namespace {

inline __m256 broadcast_f16_scale(const uint8_t* p) {
  const __m128 d = _mm_cvtph_ps(_mm_cvtsi32_si128(load_u16_le(p)));
  return _mm256_broadcastss_ps(d);
}

inline void store_scaled_i8x8(float* dst, __m128i q8_lo64, __m256 d) {
  const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8_lo64));
  _mm256_storeu_ps(dst, _mm256_mul_ps(d, q));
}

}  // namespace

void dequantize_q8_blocks_avx2(const uint8_t* scales, const uint8_t* quants, size_t nblocks,
                               float* dst) {
  for (size_t b = 0; b < nblocks; ++b) {
    const __m256 d = broadcast_f16_scale(scales + 2 * b);
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(quants + 32 * b));
    const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(quants + 32 * b + 16));
    float* out = dst + 32 * b;
    store_scaled_i8x8(out, q0, d);
    store_scaled_i8x8(out + 8, _mm_unpackhi_epi64(q0, q0), d);
    store_scaled_i8x8(out + 16, q1, d);
    store_scaled_i8x8(out + 24, _mm_unpackhi_epi64(q1, q1), d);
  }
}

void dequantize_q4_blocks_avx2(const uint8_t* scales, const uint8_t* nibbles, size_t nblocks,
                               float* dst) {
  const __m128i low4 = _mm_set1_epi8(0x0F);
  const __m128i eight = _mm_set1_epi8(8);
  for (size_t b = 0; b < nblocks; ++b) {
    const __m256 d = broadcast_f16_scale(scales + 2 * b);
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(nibbles + 16 * b));
    // Elements j (low nibbles) and j + 16 (high nibbles), as int8 in −8…7.
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, low4), eight);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), low4), eight);
    float* out = dst + 32 * b;
    store_scaled_i8x8(out, lo, d);
    store_scaled_i8x8(out + 8, _mm_unpackhi_epi64(lo, lo), d);
    store_scaled_i8x8(out + 16, hi, d);
    store_scaled_i8x8(out + 24, _mm_unpackhi_epi64(hi, hi), d);
  }
}

}  // namespace seedcore

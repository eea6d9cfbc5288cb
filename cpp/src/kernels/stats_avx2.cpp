// AVX2 stats generation: the u32 hash runs 8 lanes wide (_mm256_mullo_epi32), the
// byte sum is two multiply-adds (maddubs → pairs, madd → quads), and the element
// formula is the same sequence of separate binary32 mul/add as the scalar twin
// (never FMA: the build uses -ffp-contract=off so the compiler cannot fuse them).
#include <immintrin.h>

#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {
namespace {

inline __m256i fmix32_x8(__m256i h) {
  h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
  h = _mm256_mullo_epi32(h, _mm256_set1_epi32(int32_t(0x85EBCA6Bu)));
  h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
  h = _mm256_mullo_epi32(h, _mm256_set1_epi32(int32_t(0xC2B2AE35u)));
  h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
  return h;
}

inline __m256 gauss_x8(__m256i h) {
  const __m256i pairs = _mm256_maddubs_epi16(h, _mm256_set1_epi8(1));  // b0+b1, b2+b3
  const __m256i quads = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
  const __m256i centred = _mm256_sub_epi32(quads, _mm256_set1_epi32(510));
  return _mm256_mul_ps(_mm256_cvtepi32_ps(centred), _mm256_set1_ps(stats_gauss_scale()));
}

// A function, not a namespace-scope constant: a global __m256i could need a dynamic
// initialiser, which would run AVX2 code at load time even on CPUs without it.
inline __m256i lane_index() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }

}  // namespace

void stats_gauss_run_avx2(uint32_t key, uint32_t first_idx, size_t count, float* dst) {
  const __m256i k = _mm256_set1_epi32(int32_t(key));
  size_t t = 0;
  for (; t + 8 <= count; t += 8) {
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(int32_t(first_idx + uint32_t(t))), lane_index());
    _mm256_storeu_ps(dst + t, gauss_x8(fmix32_x8(_mm256_xor_si256(k, idx))));
  }
  stats_gauss_run_scalar(key, first_idx + uint32_t(t), count - t, dst + t);
}

void generate_stats_tile_avx2(const StatsPlan& plan, const float* col_gauss, uint64_t c0,
                              uint64_t width, uint64_t r0, uint64_t r1, float* out) {
  const __m256i key_noise = _mm256_set1_epi32(int32_t(stats_key_of(plan.seed, 0)));
  const __m256i key_zero = _mm256_set1_epi32(int32_t(stats_key_of(plan.seed, 1)));
  const __m256i threshold = _mm256_set1_epi32(int32_t(plan.zero_threshold));
  const __m256 noise = _mm256_set1_ps(plan.noise);
  const __m256 mean = _mm256_set1_ps(plan.mean);
  const size_t vec_width = size_t(width) / 8 * 8;
  float row_term[64];
  for (uint64_t r = r0; r < r1; ++r) {
    for (uint32_t i = 0; i < plan.k; ++i)
      row_term[i] = plan.c[i] * gauss_from_hash(fmix32(stats_key_of(plan.seed, 2 + 2 * i) ^ uint32_t(r)));
    float* row_out = out + (r - r0) * plan.cols;
    const uint32_t row_idx = uint32_t(r * plan.cols + c0);
    for (size_t t = 0; t < vec_width; t += 8) {
      const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(int32_t(row_idx + uint32_t(t))), lane_index());
      __m256 v = _mm256_mul_ps(noise, gauss_x8(fmix32_x8(_mm256_xor_si256(key_noise, idx))));
      for (uint32_t i = 0; i < plan.k; ++i)
        v = _mm256_add_ps(v, _mm256_mul_ps(_mm256_set1_ps(row_term[i]),
                                           _mm256_loadu_ps(col_gauss + i * width + t)));
      v = _mm256_add_ps(v, mean);
      // Keep v where hash ≥ T (unsigned): max_epu32(h, T) == h.
      const __m256i h = fmix32_x8(_mm256_xor_si256(key_zero, idx));
      const __m256i keep = _mm256_cmpeq_epi32(_mm256_max_epu32(h, threshold), h);
      _mm256_storeu_ps(row_out + t, _mm256_and_ps(v, _mm256_castsi256_ps(keep)));
    }
    if (vec_width < width) {
      // Tail columns: the scalar twin on a one-row, narrower tile. col_gauss rows keep
      // their stride, so pass a shifted pointer per i through a small copy.
      float tail_gauss[64 * 8];
      const size_t tail = size_t(width - vec_width);
      for (uint32_t i = 0; i < plan.k; ++i)
        for (size_t c = 0; c < tail; ++c) tail_gauss[i * tail + c] = col_gauss[i * width + vec_width + c];
      generate_stats_tile_scalar(plan, tail_gauss, c0 + vec_width, tail, r, r + 1, row_out + vec_width);
    }
  }
}

}  // namespace seedcore

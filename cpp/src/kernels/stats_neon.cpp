// NEON stats generation: 4-lane u32 hash (vmulq_u32), byte sums by pairwise widening
// adds, and the same separate binary32 mul/add sequence as the scalar twin (the
// build's -ffp-contract=off keeps the compiler from fusing them into FMLA).
#include <arm_neon.h>

#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {
namespace {

inline uint32x4_t fmix32_x4(uint32x4_t h) {
  h = veorq_u32(h, vshrq_n_u32(h, 16));
  h = vmulq_u32(h, vdupq_n_u32(0x85EBCA6Bu));
  h = veorq_u32(h, vshrq_n_u32(h, 13));
  h = vmulq_u32(h, vdupq_n_u32(0xC2B2AE35u));
  h = veorq_u32(h, vshrq_n_u32(h, 16));
  return h;
}

inline float32x4_t gauss_x4(uint32x4_t h) {
  const uint32x4_t sum = vpaddlq_u16(vpaddlq_u8(vreinterpretq_u8_u32(h)));
  const int32x4_t centred = vsubq_s32(vreinterpretq_s32_u32(sum), vdupq_n_s32(510));
  return vmulq_f32(vcvtq_f32_s32(centred), vdupq_n_f32(stats_gauss_scale()));
}

inline uint32x4_t lane_index() {
  static const uint32_t kLanes[4] = {0, 1, 2, 3};
  return vld1q_u32(kLanes);
}

}  // namespace

void stats_gauss_run_neon(uint32_t key, uint32_t first_idx, size_t count, float* dst) {
  const uint32x4_t k = vdupq_n_u32(key);
  size_t t = 0;
  for (; t + 4 <= count; t += 4) {
    const uint32x4_t idx = vaddq_u32(vdupq_n_u32(first_idx + uint32_t(t)), lane_index());
    vst1q_f32(dst + t, gauss_x4(fmix32_x4(veorq_u32(k, idx))));
  }
  stats_gauss_run_scalar(key, first_idx + uint32_t(t), count - t, dst + t);
}

void generate_stats_tile_neon(const StatsPlan& plan, const float* col_gauss, uint64_t c0, uint64_t width,
                              uint64_t r0, uint64_t r1, float* out) {
  const uint32x4_t key_noise = vdupq_n_u32(stats_key_of(plan.seed, 0));
  const uint32x4_t key_zero = vdupq_n_u32(stats_key_of(plan.seed, 1));
  const uint32x4_t threshold = vdupq_n_u32(plan.zero_threshold);
  const float32x4_t noise = vdupq_n_f32(plan.noise);
  const float32x4_t mean = vdupq_n_f32(plan.mean);
  const size_t vec_width = size_t(width) / 4 * 4;
  float row_term[64];
  for (uint64_t r = r0; r < r1; ++r) {
    for (uint32_t i = 0; i < plan.k; ++i)
      row_term[i] = plan.c[i] * gauss_from_hash(fmix32(stats_key_of(plan.seed, 2 + 2 * i) ^ uint32_t(r)));
    float* row_out = out + (r - r0) * plan.cols;
    const uint32_t row_idx = uint32_t(r * plan.cols + c0);
    for (size_t t = 0; t < vec_width; t += 4) {
      const uint32x4_t idx = vaddq_u32(vdupq_n_u32(row_idx + uint32_t(t)), lane_index());
      float32x4_t v = vmulq_f32(noise, gauss_x4(fmix32_x4(veorq_u32(key_noise, idx))));
      for (uint32_t i = 0; i < plan.k; ++i)
        v = vaddq_f32(v, vmulq_f32(vdupq_n_f32(row_term[i]), vld1q_f32(col_gauss + i * width + t)));
      v = vaddq_f32(v, mean);
      const uint32x4_t keep = vcgeq_u32(fmix32_x4(veorq_u32(key_zero, idx)), threshold);
      vst1q_f32(row_out + t, vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), keep)));
    }
    if (vec_width < width) {
      float tail_gauss[64 * 4];
      const size_t tail = size_t(width - vec_width);
      for (uint32_t i = 0; i < plan.k; ++i)
        for (size_t c = 0; c < tail; ++c) tail_gauss[i * tail + c] = col_gauss[i * width + vec_width + c];
      generate_stats_tile_scalar(plan, tail_gauss, c0 + vec_width, tail, r, r + 1, row_out + vec_width);
    }
  }
}

}  // namespace seedcore

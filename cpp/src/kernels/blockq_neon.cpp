// NEON q8 / q4 dequantisation: widen int8 → int32, convert, one multiply.
#include <arm_neon.h>

#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {
namespace {

inline void store_scaled_i8x16(float* dst, int8x16_t q, float32x4_t d) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(q));
  const int16x8_t hi = vmovl_high_s8(q);
  vst1q_f32(dst + 0, vmulq_f32(d, vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)))));
  vst1q_f32(dst + 4, vmulq_f32(d, vcvtq_f32_s32(vmovl_high_s16(lo))));
  vst1q_f32(dst + 8, vmulq_f32(d, vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)))));
  vst1q_f32(dst + 12, vmulq_f32(d, vcvtq_f32_s32(vmovl_high_s16(hi))));
}

}  // namespace

void dequantize_q8_blocks_neon(const uint8_t* scales, const uint8_t* quants, size_t nblocks, float* dst) {
  for (size_t b = 0; b < nblocks; ++b) {
    const float32x4_t d = vdupq_n_f32(f16_bits_to_f32(load_u16_le(scales + 2 * b)));
    const int8_t* q = reinterpret_cast<const int8_t*>(quants + 32 * b);
    store_scaled_i8x16(dst + 32 * b, vld1q_s8(q), d);
    store_scaled_i8x16(dst + 32 * b + 16, vld1q_s8(q + 16), d);
  }
}

void dequantize_q4_blocks_neon(const uint8_t* scales, const uint8_t* nibbles, size_t nblocks, float* dst) {
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  const int8x16_t eight = vdupq_n_s8(8);
  for (size_t b = 0; b < nblocks; ++b) {
    const float32x4_t d = vdupq_n_f32(f16_bits_to_f32(load_u16_le(scales + 2 * b)));
    const uint8x16_t q = vld1q_u8(nibbles + 16 * b);
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, low4)), eight);
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
    store_scaled_i8x16(dst + 32 * b, lo, d);
    store_scaled_i8x16(dst + 32 * b + 16, hi, d);
  }
}

}  // namespace seedcore

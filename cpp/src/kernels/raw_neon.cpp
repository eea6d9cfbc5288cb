// NEON: binary16 / bfloat16 → binary32 and the stream copy.
#include <arm_neon.h>

#include <cstring>

#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {

// FCVTL converts every finite value and infinity exactly but quiets signalling
// NaNs; NaN lanes are rebuilt from the integer bits to match the scalar twin.
void convert_f16_to_f32_neon(const uint8_t* src, size_t n, float* dst) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint16x4_t h = vld1_u16(reinterpret_cast<const uint16_t*>(src + 2 * i));
    const float32x4_t f = vcvt_f32_f16(vreinterpret_f16_u16(h));
    const uint32x4_t hw = vmovl_u16(h);
    const uint32x4_t em = vandq_u32(hw, vdupq_n_u32(0x7FFF));
    const uint32x4_t is_nan = vcgtq_u32(em, vdupq_n_u32(0x7C00));
    const uint32x4_t sign = vshlq_n_u32(vandq_u32(hw, vdupq_n_u32(0x8000)), 16);
    const uint32x4_t nan = vorrq_u32(sign, vaddq_u32(vshlq_n_u32(em, 13), vdupq_n_u32(0x70000000)));
    vst1q_f32(dst + i, vbslq_f32(is_nan, vreinterpretq_f32_u32(nan), f));
  }
  convert_f16_to_f32_scalar(src + 2 * i, n - i, dst + i);
}

void convert_bf16_to_f32_neon(const uint8_t* src, size_t n, float* dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint16x8_t h = vld1q_u16(reinterpret_cast<const uint16_t*>(src + 2 * i));
    vst1q_f32(dst + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
    vst1q_f32(dst + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)));
  }
  convert_bf16_to_f32_scalar(src + 2 * i, n - i, dst + i);
}

// Cortex-A57/A72 have no cheap non-temporal store for this pattern (STNP is a hint
// the cores largely ignore), so a plain copy it is.
void stream_copy_f32_neon(float* dst, const float* src, size_t n) {
  std::memcpy(dst, src, n * sizeof(float));
}

}  // namespace seedcore

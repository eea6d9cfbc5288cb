// Scalar reference: binary16 / bfloat16 → binary32, and the plain stream copy.
#include <cstring>

#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {

void convert_f16_to_f32_scalar(const uint8_t* src, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = f16_bits_to_f32(load_u16_le(src + 2 * i));
}

// bfloat16 is the upper half of a binary32: a shift, exact for every bit pattern.
void convert_bf16_to_f32_scalar(const uint8_t* src, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = f32_from_bits(uint32_t(load_u16_le(src + 2 * i)) << 16);
}

void stream_copy_f32_scalar(float* dst, const float* src, size_t n) {
  std::memcpy(dst, src, n * sizeof(float));
}

}  // namespace seedcore

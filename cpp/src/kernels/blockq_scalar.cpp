// Scalar reference for q8 / q4 (ggml Q8_0 / Q4_0 layouts): x = f32(d) × f32(q),
// one binary32 multiply per element.
#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {

void dequantize_q8_blocks_scalar(const uint8_t* scales, const uint8_t* quants, size_t nblocks,
                                 float* dst) {
  for (size_t b = 0; b < nblocks; ++b) {
    const float d = f16_bits_to_f32(load_u16_le(scales + 2 * b));
    const int8_t* q = reinterpret_cast<const int8_t*>(quants + 32 * b);
    for (int i = 0; i < 32; ++i) dst[32 * b + i] = d * float(q[i]);
  }
}

void dequantize_q4_blocks_scalar(const uint8_t* scales, const uint8_t* nibbles, size_t nblocks,
                                 float* dst) {
  for (size_t b = 0; b < nblocks; ++b) {
    const float d = f16_bits_to_f32(load_u16_le(scales + 2 * b));
    const uint8_t* q = nibbles + 16 * b;
    for (int j = 0; j < 16; ++j) {
      dst[32 * b + j] = d * float(int32_t(q[j] & 15) - 8);
      dst[32 * b + j + 16] = d * float(int32_t(q[j] >> 4) - 8);
    }
  }
}

}  // namespace seedcore

// NEON prng decoding with the split basis tables (PrngBasisLayout::columns).
// Per block and per group of 8 rows: for each column j, one 16-byte load from each
// table, U = (lo ^ hi) − 2^(K−1), then two widening multiply-accumulates
// (vmlal_n_s16 / vmlal_high_n_s16) by the mantissa m_j into exact int32 sums.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {
namespace {

constexpr size_t kChunkBlocks = 256;

template <int kGroups, int kCols>  // 0 = run-time value
void decode_chunk(const PrngBasisTables& t, uint32_t C, uint32_t P, const uint16_t* seeds, const int16_t* mant,
                  const float* scales, size_t count, float* dst) {
  const int groups = kGroups ? kGroups : int(t.c_pad / 8);
  const int cols = kCols ? kCols : int(P);
  const size_t entry_len = t.entry_len;
  const int16x8_t bias = vdupq_n_s16(t.bias);
  float tail[8];
  const size_t out_end = count * C;  // a full 8-row store must end by here
  for (size_t b = 0; b < count; ++b) {
    const uint32_t s = seeds[b];
    const int16_t* lo = t.lo.data() + (s & 0xFFu) * entry_len;
    const int16_t* hi = t.hi.data() + (s >> 8) * entry_len;
    const int16_t* m = mant + b * P;
    const float32x4_t scale = vdupq_n_f32(scales[b]);
    float* out = dst + b * C;
    for (int g = 0; g < groups; ++g) {
      int32x4_t acc_lo = vdupq_n_s32(0), acc_hi = vdupq_n_s32(0);
      for (int j = 0; j < cols; ++j) {
        const size_t off = (size_t(g) * t.p_pad + j) * 8;
        const int16x8_t u = vsubq_s16(veorq_s16(vld1q_s16(lo + off), vld1q_s16(hi + off)), bias);
        acc_lo = vmlal_n_s16(acc_lo, vget_low_s16(u), m[j]);
        acc_hi = vmlal_high_n_s16(acc_hi, u, m[j]);
      }
      const float32x4_t x0 = vmulq_f32(vcvtq_f32_s32(acc_lo), scale);
      const float32x4_t x1 = vmulq_f32(vcvtq_f32_s32(acc_hi), scale);
      const int rows = std::min(8, int(C) - 8 * g);
      if (b * C + size_t(8 * g + 8) <= out_end) {  // may spill into later blocks' slots
        vst1q_f32(out + 8 * g, x0);
        vst1q_f32(out + 8 * g + 4, x1);
      } else {
        vst1q_f32(tail, x0);
        vst1q_f32(tail + 4, x1);
        std::memcpy(out + 8 * g, tail, size_t(rows) * sizeof(float));
      }
    }
  }
}

}  // namespace

void decode_prng_blocks_neon(const PrngPayloadView& pv, const PrngBasisTables* tables, uint64_t first_block,
                             uint64_t count, float* dst) {
  if (tables == nullptr || tables->layout != PrngBasisLayout::columns) {
    decode_prng_blocks_scalar(pv, nullptr, first_block, count, dst);
    return;
  }
  const PrngBasisTables& t = *tables;
  const uint32_t C = pv.params.C, P = pv.params.P, K = pv.params.K;
  const int32_t biased_offset = pv.params.exp_bias - int32_t(K - 1) + 127;
  int16_t mant[kChunkBlocks * 8];
  float scales[kChunkBlocks];
  uint16_t seed_buf[kChunkBlocks];
  for (uint64_t done = 0; done < count;) {
    const size_t n = size_t(std::min<uint64_t>(kChunkBlocks, count - done));
    const uint64_t b0 = first_block + done;
    for (size_t i = 0; i < n * P; ++i) {
      const uint64_t idx = b0 * P + i;
      mant[i] = int16_t(nibble_to_int(pv.mantissas[idx >> 1] >> (4 * (idx & 1))));
    }
    for (size_t i = 0; i < n; ++i) {
      const uint64_t b = b0 + i;
      const int32_t e = (pv.exponents[b >> 1] >> (4 * (b & 1))) & 15;
      scales[i] = f32_from_bits(uint32_t(e + biased_offset) << 23);
    }
    if (K == 16) std::memcpy(seed_buf, pv.seeds + 2 * b0, 2 * n);
    else
      for (size_t i = 0; i < n; ++i) seed_buf[i] = uint16_t(read_bits_lsb_first(pv.seeds, b0 + i, K));
    float* out = dst + done * C;
    if (t.c_pad == 8 && P == 4) decode_chunk<1, 4>(t, C, P, seed_buf, mant, scales, n, out);
    else if (t.c_pad == 8 && P == 3) decode_chunk<1, 3>(t, C, P, seed_buf, mant, scales, n, out);
    else if (t.c_pad == 16 && P == 4) decode_chunk<2, 4>(t, C, P, seed_buf, mant, scales, n, out);
    else decode_chunk<0, 0>(t, C, P, seed_buf, mant, scales, n, out);
    done += n;
  }
}

}  // namespace seedcore

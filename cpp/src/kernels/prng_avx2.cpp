// AVX2 prng decoding with the split basis tables (PrngBasisLayout::madd_pairs).
//
// Per chunk of blocks, the nibble streams are first unpacked into small L1-resident
// arrays (mantissas → int16, exponents → binary32 powers of two, seeds → u16 when
// K < 16). Then per block and per group of 8 rows:
//   U    = (lo[s & 0xFF] ^ hi[s >> 8]) − bias              int16, 2 columns per 32 bytes
//          (bias = 2^(K−1); for K = 16 it is folded into lo and the subtraction skipped)
//   acc += _mm256_madd_epi16(U, (m_2j, m_2j+1) broadcast)  exact int32
//   x    = f32(acc) × 2^(E + e0 − (K − 1))                 one exact binary32 multiply
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {
namespace {

constexpr size_t kChunkBlocks = 256;

// Nibbles [first, first + count) of a low-nibble-first stream, as bytes 0…15.
void unpack_nibbles(const uint8_t* stream, uint64_t first, size_t count, uint8_t* out) {
  size_t t = 0;
  if ((first & 1) && count > 0) { out[t++] = stream[first >> 1] >> 4; }
  const uint8_t* p = stream + ((first + t) >> 1);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  for (; t + 32 <= count; t += 32, p += 16) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i lo = _mm_and_si128(b, low4);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + t), _mm_unpacklo_epi8(lo, hi));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + t + 16), _mm_unpackhi_epi8(lo, hi));
  }
  for (size_t k = 0; t < count; ++t, ++k) out[t] = (p[k >> 1] >> (4 * (k & 1))) & 15;
}

// Mantissa nibbles [first, first + count) of a low-nibble-first stream → sign-extended
// int16, in one pass (32 nibbles per 16-byte load).
void mantissas_to_int16(const uint8_t* stream, uint64_t first, size_t count, int16_t* out) {
  size_t t = 0;
  if ((first & 1) && count > 0) { out[t++] = int16_t(nibble_to_int(stream[first >> 1] >> 4)); }
  const uint8_t* p = stream + ((first + t) >> 1);
  const __m128i low4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  for (; t + 32 <= count; t += 32, p += 16) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i lo = _mm_and_si128(b, low4);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
    // (v ^ 8) − 8 sign-extends a 4-bit two's complement value within a byte.
    const __m128i v0 = _mm_sub_epi8(_mm_xor_si128(_mm_unpacklo_epi8(lo, hi), eight), eight);
    const __m128i v1 = _mm_sub_epi8(_mm_xor_si128(_mm_unpackhi_epi8(lo, hi), eight), eight);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + t), _mm256_cvtepi8_epi16(v0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + t + 16), _mm256_cvtepi8_epi16(v1));
  }
  for (size_t k = 0; t < count; ++t, ++k) out[t] = int16_t(nibble_to_int(p[k >> 1] >> (4 * (k & 1))));
}

// Exponent nibbles → 2^(E + e0 − (K − 1)) as binary32 bit patterns.
void exponents_to_scales(const uint8_t* nib, size_t count, int32_t biased_offset, float* out) {
  const __m256i off = _mm256_set1_epi32(biased_offset);
  size_t t = 0;
  for (; t + 8 <= count; t += 8) {
    const __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(nib + t)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + t), _mm256_slli_epi32(_mm256_add_epi32(e, off), 23));
  }
  for (; t < count; ++t) out[t] = f32_from_bits(uint32_t(int32_t(nib[t]) + biased_offset) << 23);
}

inline int32_t load_i32(const int16_t* p) { int32_t v; std::memcpy(&v, p, 4); return v; }

// kGroups / kPairs: compile-time row groups (c_pad/8) and column pairs (p_pad/2), or
// 0 for "use the run-time values" (known, the table entry size is a constant and the
// block's offsets are shifts). kBias: whether U needs the subtraction of t.bias (for
// K = 16 the table builder folds it into the lo table and sets bias to 0).
// When C is not a multiple of 8, a block's last group is still stored as 8 floats,
// spilling into the next blocks' slots (which are written afterwards), as long as the
// store ends inside this call's output; near the end a masked store writes only the
// block's own rows.
template <int kGroups, int kPairs, bool kBias>
void decode_chunk(const PrngBasisTables& t, uint32_t C, uint32_t P, const uint8_t* seeds,
                  const int16_t* mant, const float* scales, size_t count, float* dst) {
  const int groups = kGroups ? kGroups : int(t.c_pad / 8);
  const int pairs = kPairs ? kPairs : int(t.p_pad / 2);
  const size_t entry_len = kGroups && kPairs ? size_t(kGroups * kPairs * 16) : t.entry_len;
  const __m256i bias = _mm256_set1_epi16(t.bias);
  const int16_t* lo_tab = t.lo.data();
  const int16_t* hi_tab = t.hi.data();
  const int last_group_rows = int(C) - 8 * (groups - 1);
  const __m256i tail_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(last_group_rows),
                                               _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  // Blocks [0, full_end) store every group whole: their last store, at b·C + 8·groups,
  // ends inside the output (count·C floats). Only the few blocks after need the check.
  const size_t span = size_t(8 * groups);
  const size_t full_end = count * C < span ? 0 : std::min(count, (count * C - span) / C + 1);
  auto block = [&](size_t b, bool check) {
    uint16_t s;
    std::memcpy(&s, seeds + 2 * b, 2);  // little-endian u16 seeds
    const int16_t* lo = lo_tab + (s & 0xFFu) * entry_len;
    const int16_t* hi = hi_tab + (s >> 8) * entry_len;
    const int16_t* m = mant + b * P;
    const __m256 scale = _mm256_broadcast_ss(scales + b);
    float* out = dst + b * C;
    for (int g = 0; g < groups; ++g) {
      __m256i acc = _mm256_setzero_si256();
      for (int jp = 0; jp < pairs; ++jp) {
        const size_t off = size_t(g * pairs + jp) * 16;
        const __m256i l = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo + off));
        const __m256i h = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi + off));
        __m256i u = _mm256_xor_si256(l, h);
        if (kBias) u = _mm256_sub_epi16(u, bias);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(u, _mm256_set1_epi32(load_i32(m + 2 * jp))));
      }
      const __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
      if (!check || b * C + size_t(8 * g + 8) <= count * C)
        _mm256_storeu_ps(out + 8 * g, x);
      else
        _mm256_maskstore_ps(out + 8 * g, tail_mask, x);
    }
  };
  for (size_t b = 0; b < full_end; ++b) block(b, false);
  for (size_t b = full_end; b < count; ++b) block(b, true);
}

template <int kGroups, int kPairs>
void decode_chunk(const PrngBasisTables& t, uint32_t C, uint32_t P, const uint8_t* seeds,
                  const int16_t* mant, const float* scales, size_t count, float* dst) {
  if (t.bias == 0)
    decode_chunk<kGroups, kPairs, false>(t, C, P, seeds, mant, scales, count, dst);
  else
    decode_chunk<kGroups, kPairs, true>(t, C, P, seeds, mant, scales, count, dst);
}

}  // namespace

void decode_prng_blocks_avx2(const PrngPayloadView& pv, const PrngBasisTables* tables,
                             uint64_t first_block, uint64_t count, float* dst) {
  if (tables == nullptr || tables->layout != PrngBasisLayout::madd_pairs) {
    decode_prng_blocks_scalar(pv, nullptr, first_block, count, dst);
    return;
  }
  const PrngBasisTables& t = *tables;
  const uint32_t C = pv.params.C, P = pv.params.P, K = pv.params.K;
  const int32_t biased_offset = pv.params.exp_bias - int32_t(K - 1) + 127;
  alignas(64) uint8_t nib[kChunkBlocks * 8 + 32];
  alignas(64) int16_t mant[kChunkBlocks * 8 + 2];  // +2: a pair read past the last block
  alignas(64) float scales[kChunkBlocks];
  alignas(64) uint16_t seed_buf[kChunkBlocks];
  for (uint64_t done = 0; done < count;) {
    const size_t n = size_t(std::min<uint64_t>(kChunkBlocks, count - done));
    const uint64_t b0 = first_block + done;
    mantissas_to_int16(pv.mantissas, b0 * P, n * P, mant);
    mant[n * P] = 0;
    mant[n * P + 1] = 0;
    unpack_nibbles(pv.exponents, b0, n, nib);
    exponents_to_scales(nib, n, biased_offset, scales);
    // K = 16 seeds are read in place (a plain u16 array, little-endian host).
    const uint8_t* seeds = pv.seeds + 2 * b0;
    if (K != 16) {
      for (size_t i = 0; i < n; ++i) seed_buf[i] = uint16_t(read_bits_lsb_first(pv.seeds, b0 + i, K));
      seeds = reinterpret_cast<const uint8_t*>(seed_buf);
    }
    float* out = dst + done * C;
    if (t.c_pad == 8 && t.p_pad == 4)
      decode_chunk<1, 2>(t, C, P, seeds, mant, scales, n, out);
    else if (t.c_pad == 16 && t.p_pad == 4)
      decode_chunk<2, 2>(t, C, P, seeds, mant, scales, n, out);
    else if (t.c_pad == 8 && t.p_pad == 2)
      decode_chunk<1, 1>(t, C, P, seeds, mant, scales, n, out);
    else
      decode_chunk<0, 0>(t, C, P, seeds, mant, scales, n, out);
    done += n;
  }
}

}  // namespace seedcore

// Small exact helpers shared by the kernel files. Everything here has internal
// linkage (anonymous namespace): these headers are included by TUs compiled with
// different ISA flags (-mavx2 ...), and an inline function with external linkage
// could let the linker pick an AVX2-compiled copy for the scalar path.
#pragma once
#include <cstdint>
#include <cstring>

namespace seedcore {
namespace {

inline uint16_t load_u16_le(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t load_u32_le_bytes(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline float f32_from_bits(uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; }
inline uint32_t bits_from_f32(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }

// IEEE binary16 → binary32, exact, by bit manipulation (no FPU involvement, so it is
// independent of FTZ/DAZ and keeps NaN payloads, including signalling NaNs).
inline float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return f32_from_bits(sign | 0x7F800000u | (mant << 13));
  if (exp != 0) return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return f32_from_bits(sign);
  // Subnormal half: normalise. mant·2^-24 with mant < 2^10 is a normal binary32.
  exp = 113;
  while ((mant & 0x400u) == 0) { mant <<= 1; --exp; }
  return f32_from_bits(sign | (exp << 23) | ((mant & 0x3FFu) << 13));
}

// Sign-extends a 4-bit two's complement value.
inline int32_t nibble_to_int(uint32_t v) { return int32_t((v & 15u) ^ 8u) - 8; }

// Value `index` of a LSB-first stream of `bits`-bit values (bits ≤ 16). Reads only
// the bytes that hold the value.
inline uint32_t read_bits_lsb_first(const uint8_t* stream, uint64_t index, uint32_t bits) {
  const uint64_t bit = index * bits;
  const uint8_t* p = stream + (bit >> 3);
  const uint32_t shift = uint32_t(bit & 7);
  const uint32_t nbytes = (shift + bits + 7) / 8;  // ≤ 3
  uint32_t v = 0;
  for (uint32_t i = 0; i < nbytes; ++i) v |= uint32_t(p[i]) << (8 * i);
  return (v >> shift) & ((1u << bits) - 1u);
}

// 2^e as a binary32 for −126 ≤ e ≤ 127 (callers guarantee the range).
inline float pow2_f32(int32_t e) { return f32_from_bits(uint32_t(e + 127) << 23); }

constexpr uint16_t kLfsrTaps[17] = {0, 0, 0, 0, 0, 0, 0, 0, 0xB8, 0x110, 0x240, 0x500,
                                    0xE08, 0x1C80, 0x3802, 0x6000, 0xB400};

inline uint32_t lfsr_step(uint32_t v, uint32_t taps) {
  const uint32_t lsb = v & 1u;
  v >>= 1;
  return lsb ? v ^ taps : v;
}

// --- stats hashing (format.md 3.5) ---
inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16;
  return h;
}
inline uint32_t stats_key_of(uint32_t seed, uint32_t stream) {
  return fmix32(seed + 0x9E3779B9u * (stream + 1u));
}
// Z = f32(1 / sqrt(21845)) with 1/sqrt computed in binary64, then rounded:
// 0x3BDDB446. (stats_plan.cpp asserts it equals the computed value at run time.)
inline float stats_gauss_scale() { return 0x1.bb688cp-8f; }
inline float gauss_from_hash(uint32_t h) {
  const int32_t sum = int32_t(h & 0xFF) + int32_t((h >> 8) & 0xFF) + int32_t((h >> 16) & 0xFF) +
                      int32_t(h >> 24) - 510;
  return float(sum) * stats_gauss_scale();
}

}  // namespace
}  // namespace seedcore

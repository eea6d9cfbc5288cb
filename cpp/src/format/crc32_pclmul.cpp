// CRC-32 (zlib polynomial) by carry-less multiplication: Intel's "Fast CRC Computation
// for Generic Polynomials Using PCLMULQDQ Instruction" (Gopal et al., 2009), in the
// bit-reflected form zlib/Chromium (crc32_sse42_simd_) and Linux (crc32_pclmul_le)
// use. Built for x86-64 only, with -mpclmul -msse4.1 (the *_pclmul.cpp rule of the
// top-level CMakeLists.txt); crc32.cpp calls it only when cpuid reports both.
//
// Four 128-bit accumulators fold 64 input bytes per iteration: the folds of one
// accumulator depend on each other (PCLMULQDQ latency ~3-7 cycles), so four
// independent chains keep the multiplier busy. Then the four fold into one, 16-byte
// steps consume what is left of the 16-byte-aligned length, and a Barrett reduction
// turns the 128-bit remainder into the 32-bit CRC. The last size % 16 bytes (and
// inputs under 64 bytes) go through the table implementation.
//
// Constants (reflected domain, each the 32-bit remainder shifted left by one):
//   k1 = x^(4·128+32) mod P, k2 = x^(4·128−32) mod P   (fold by 512 bits)
//   k3 = x^(128+32)   mod P, k4 = x^(128−32)   mod P   (fold by 128 bits)
//   k5 = x^64 mod P                                     (128 → 64 bits)
//   mu = floor(x^64 / P) (33 bits), P' = reflected P (33 bits)   (Barrett)
// They were derived from P = 0x104C11DB7 with exact GF(2) arithmetic and match
// zlib/Chromium/Linux; test_crc32 checks this file against the table on every length
// 0..1024 at random alignments and on large buffers.
#include <immintrin.h>

#include <cpuid.h>

#include "crc32_impl.h"

namespace seedcore {
namespace {

alignas(16) const uint64_t kK1K2[2] = {0x0154442bd4ull, 0x01c6e41596ull};
alignas(16) const uint64_t kK3K4[2] = {0x01751997d0ull, 0x00ccaa009eull};
alignas(16) const uint64_t kK5K0[2] = {0x0163cd6124ull, 0x0000000000ull};
alignas(16) const uint64_t kPolyMu[2] = {0x01db710641ull, 0x01f7011641ull};  // P', mu

// x·k_lo(x) + x·k_hi(x) folded onto `next`: the high and low 64-bit halves of x are
// multiplied by the constants that move them 128 (or 512) bits further.
inline __m128i fold(__m128i x, __m128i k, __m128i next) {
  const __m128i lo = _mm_clmulepi64_si128(x, k, 0x00);
  const __m128i hi = _mm_clmulepi64_si128(x, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(hi, lo), next);
}

inline __m128i load(const unsigned char* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// The CRC register (not inverted) after `len` bytes; len >= 64 and a multiple of 16.
uint32_t fold_blocks(const unsigned char* p, size_t len, uint32_t state) {
  __m128i x1 = _mm_xor_si128(load(p), _mm_cvtsi32_si128(int(state)));
  __m128i x2 = load(p + 16), x3 = load(p + 32), x4 = load(p + 48);
  p += 64;
  len -= 64;
  __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kK1K2));
  while (len >= 64) {
    x1 = fold(x1, k, load(p));
    x2 = fold(x2, k, load(p + 16));
    x3 = fold(x3, k, load(p + 32));
    x4 = fold(x4, k, load(p + 48));
    p += 64;
    len -= 64;
  }
  k = _mm_load_si128(reinterpret_cast<const __m128i*>(kK3K4));
  x1 = fold(x1, k, x2);
  x1 = fold(x1, k, x3);
  x1 = fold(x1, k, x4);
  while (len >= 16) {
    x1 = fold(x1, k, load(p));
    p += 16;
    len -= 16;
  }
  // 128 → 64 bits: the low half times k4 onto the high half, then the low 32 bits
  // of that times k5 onto the rest.
  const __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), _mm_clmulepi64_si128(x1, k, 0x10));
  k = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(kK5K0));
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 4), _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x00));
  // Barrett reduction of the 64-bit remainder to 32 bits.
  k = _mm_load_si128(reinterpret_cast<const __m128i*>(kPolyMu));
  __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x10);  // · mu
  t = _mm_clmulepi64_si128(_mm_and_si128(t, mask32), k, 0x00);            // · P'
  return uint32_t(_mm_extract_epi32(_mm_xor_si128(x1, t), 1));
}

uint32_t crc32_pclmul(const void* data, size_t size, uint32_t crc) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  if (size < 64) return crc32_table(p, size, crc);
  const size_t bulk = size & ~size_t(15);
  crc = ~fold_blocks(p, bulk, ~crc);
  return crc32_table(p + bulk, size - bulk, crc);
}

}  // namespace

Crc32Fn crc32_pclmul_if_supported() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return nullptr;
  const bool pclmul = (c & bit_PCLMUL) != 0, sse41 = (c & bit_SSE4_1) != 0;
  return pclmul && sse41 ? crc32_pclmul : nullptr;
}

}  // namespace seedcore

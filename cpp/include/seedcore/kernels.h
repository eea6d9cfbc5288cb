// Decode kernels: pure functions over raw spans, one family per file per ISA
// (cpp/src/kernels/{raw,blockq,prng,stats}_{scalar,avx2,neon}.cpp). Every SIMD
// kernel has a scalar twin that is its test oracle; all produce identical bits.
// DecodeKernels ties one ISA's kernels together (ggml-style traits table); the codec
// drivers in cpp/src/codecs/ pick a table with decode_kernels(isa).
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "seedcore/cpu.h"
#include "seedcore/tensor_spec.h"

namespace seedcore {

// One prng tensor's payload sections (format.md 3.4), pointers into the payload.
struct PrngPayloadView {
  const uint8_t* seeds = nullptr;      // nb K-bit values, LSB-first bit stream
  const uint8_t* exponents = nullptr;  // nb nibbles
  const uint8_t* mantissas = nullptr;  // nb·P nibbles
  uint64_t nb = 0;
  PrngParams params;
};

// The LFSR is linear over GF(2), so the states started from seed s are the XOR of
// the states started from (s & 0xFF) and from (s & ~0xFF). Two small tables (256 and
// 2^(K-8) entries, 32 KiB for C=8,P=4) therefore replace a 2^K-entry table (4 MiB):
// they build in microseconds and stay in L1/L2 while decoding.
// Entry e holds the C×P basis states of seed e (lo) or e<<8 (hi) as int16, padded to
// c_pad rows (multiple of 8) and p_pad columns (multiple of 2); U = (lo ^ hi) - bias.
// For K = 16 the lo entries hold the states with bit 15 flipped, which is subtracting
// 2^15 modulo 2^16, and bias is 0 (kernels may then skip the subtraction).
// Padding cells hold lo = bias, hi = 0, so that their U is exactly 0.
enum class PrngBasisLayout {
  madd_pairs,  // [row group of 8][column pair][row][2]: one 32-byte load per _mm256_madd_epi16
  columns,     // [row group of 8][column][row]: one 16-byte column per vmlal_s16 pair
};
// Storage aligned to 64-byte cache lines. A basis-table entry is 64 bytes for the
// default C=8, P=3/4; in a malloc'ed (16-byte aligned) table every entry straddled two
// lines, so half the kernel's 32-byte table loads were split loads.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};

struct PrngBasisTables {
  std::vector<int16_t, CacheLineAllocator<int16_t>> lo, hi;
  uint32_t entry_len = 0;  // int16 per entry (c_pad · p_pad)
  uint32_t c_pad = 0, p_pad = 0;
  int16_t bias = 0;        // 2^(K-1) for K < 16; 0 for K = 16 (folded into lo)
  PrngBasisLayout layout = PrngBasisLayout::madd_pairs;
};
PrngBasisTables build_prng_basis_tables(const PrngParams& params, PrngBasisLayout layout);

// Everything the stats kernels need, with the binary64-derived constants already
// rounded to binary32 (format.md 3.5), so every ISA shares them.
struct StatsPlan {
  uint64_t rows = 0, cols = 0;
  uint32_t k = 0, seed = 0;
  float noise = 0.0f, mean = 0.0f;
  uint32_t zero_threshold = 0;  // T; an element is zeroed when hash(s,1,idx) < T
  float c[64] = {};             // c_i = f32(σ_i / sqrt(n))
};

uint32_t stats_key(uint32_t seed, uint32_t stream);  // key(s, stream)

struct DecodeKernels {
  Isa isa;
  // raw: n little-endian binary16 / bfloat16 values → binary32, exactly (NaN payloads kept).
  void (*convert_f16_to_f32)(const uint8_t* src, size_t n, float* dst);
  void (*convert_bf16_to_f32)(const uint8_t* src, size_t n, float* dst);
  // q8 / q4: `nblocks` full blocks of 32 → 32·nblocks floats. `scales` points at the
  // first block's binary16 scale, `quants` at its values (int8 or nibble bytes).
  void (*dequantize_q8_blocks)(const uint8_t* scales, const uint8_t* quants, size_t nblocks, float* dst);
  void (*dequantize_q4_blocks)(const uint8_t* scales, const uint8_t* nibbles, size_t nblocks, float* dst);
  // prng: decodes full blocks [first, first+count) into dst (count·C floats). Table
  // kernels need `tables` built with `prng_layout`; nullptr makes them step the LFSR.
  void (*decode_prng_blocks)(const PrngPayloadView& payload, const PrngBasisTables* tables,
                             uint64_t first_block, uint64_t count, float* dst);
  bool prng_uses_tables;
  PrngBasisLayout prng_layout;
  // stats: dst[t] = gauss(key, first_idx + t) for t < count.
  void (*stats_gauss_run)(uint32_t key, uint32_t first_idx, size_t count, float* dst);
  // stats: rows [r0, r1) × columns [c0, c0 + width). col_gauss holds k rows of
  // `width` values gauss(s, 3+2i, c). out points at element (r0, c0); row stride cols.
  void (*generate_stats_tile)(const StatsPlan& plan, const float* col_gauss, uint64_t c0,
                              uint64_t width, uint64_t r0, uint64_t r1, float* out);
  // Copies n floats; SIMD versions use non-temporal stores (for outputs far larger
  // than the caches, where not reading the destination lines first doubles bandwidth).
  void (*stream_copy_f32)(float* dst, const float* src, size_t n);
};

// The kernel table of `isa`; throws SeedError when this build lacks it. Does not
// check that the CPU can run it (resolve_impl does).
const DecodeKernels& decode_kernels(Isa isa);

}  // namespace seedcore

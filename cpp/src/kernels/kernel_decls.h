// Declarations of every ISA's kernels, for the dispatch table and the tests' use via
// decode_kernels(). Not a public header.
#pragma once
#include "seedcore/kernels.h"

namespace seedcore {

#define SEEDCORE_DECLARE_KERNELS(isa)                                                          \
  void convert_f16_to_f32_##isa(const uint8_t* src, size_t n, float* dst);                    \
  void convert_bf16_to_f32_##isa(const uint8_t* src, size_t n, float* dst);                   \
  void dequantize_q8_blocks_##isa(const uint8_t* scales, const uint8_t* quants, size_t nblocks, \
                                  float* dst);                                                 \
  void dequantize_q4_blocks_##isa(const uint8_t* scales, const uint8_t* nibbles,              \
                                  size_t nblocks, float* dst);                                 \
  void decode_prng_blocks_##isa(const PrngPayloadView& payload, const PrngBasisTables* tables, \
                                uint64_t first_block, uint64_t count, float* dst);             \
  void stats_gauss_run_##isa(uint32_t key, uint32_t first_idx, size_t count, float* dst);     \
  void generate_stats_tile_##isa(const StatsPlan& plan, const float* col_gauss, uint64_t c0,   \
                                 uint64_t width, uint64_t r0, uint64_t r1, float* out);        \
  void stream_copy_f32_##isa(float* dst, const float* src, size_t n);

SEEDCORE_DECLARE_KERNELS(scalar)
#if defined(__x86_64__)
SEEDCORE_DECLARE_KERNELS(avx2)
#endif
#if defined(__aarch64__)
SEEDCORE_DECLARE_KERNELS(neon)
#endif
#undef SEEDCORE_DECLARE_KERNELS

}  // namespace seedcore

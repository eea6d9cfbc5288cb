// Scalar reference for prng: steps the Galois LFSR exactly as format.md 3.4 writes
// it, block by block. Slow (C·P steps per block) but obviously right: it is the
// oracle the table-driven SIMD kernels are tested against, and the fast path for
// tensors too small to amortise a table build.
#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {

void decode_prng_blocks_scalar(const PrngPayloadView& pv, const PrngBasisTables* /*tables*/,
                               uint64_t first_block, uint64_t count, float* dst) {
  const uint32_t C = pv.params.C, P = pv.params.P, K = pv.params.K;
  const uint32_t taps = kLfsrTaps[K];
  const int32_t half = int32_t(1) << (K - 1);
  int32_t states[64 * 8];  // C·P ≤ 512
  int32_t m[8];
  for (uint64_t b = first_block; b < first_block + count; ++b) {
    uint32_t v = read_bits_lsb_first(pv.seeds, b, K);
    for (uint32_t k = 0; k < C * P; ++k) {
      states[k] = int32_t(v) - half;  // U[i][j] = v_{j·C+i} − 2^(K−1)
      v = lfsr_step(v, taps);
    }
    const uint32_t E = (pv.exponents[b >> 1] >> (4 * (b & 1))) & 15u;
    for (uint32_t j = 0; j < P; ++j) {
      const uint64_t t = b * P + j;
      m[j] = nibble_to_int(pv.mantissas[t >> 1] >> (4 * (t & 1)));
    }
    const float scale = pow2_f32(int32_t(E) + pv.params.exp_bias - int32_t(K - 1));
    float* out = dst + (b - first_block) * C;
    for (uint32_t i = 0; i < C; ++i) {
      int32_t acc = 0;
      for (uint32_t j = 0; j < P; ++j) acc += states[j * C + i] * m[j];
      out[i] = float(acc) * scale;
    }
  }
}

}  // namespace seedcore

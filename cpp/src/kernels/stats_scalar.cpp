// Scalar reference for stats (format.md 3.5): every element is an exact sequence of
// binary32 operations on hash-derived gaussians, in the order the spec writes.
#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {

uint32_t stats_key(uint32_t seed, uint32_t stream) { return stats_key_of(seed, stream); }

void stats_gauss_run_scalar(uint32_t key, uint32_t first_idx, size_t count, float* dst) {
  for (size_t t = 0; t < count; ++t) dst[t] = gauss_from_hash(fmix32(key ^ (first_idx + uint32_t(t))));
}

void generate_stats_tile_scalar(const StatsPlan& plan, const float* col_gauss, uint64_t c0,
                                uint64_t width, uint64_t r0, uint64_t r1, float* out) {
  const uint32_t key_noise = stats_key_of(plan.seed, 0);
  const uint32_t key_zero = stats_key_of(plan.seed, 1);
  float row_term[64];
  for (uint64_t r = r0; r < r1; ++r) {
    // a_i = c_i × gauss(s, 2+2i, r): the parenthesised product of the spec.
    for (uint32_t i = 0; i < plan.k; ++i)
      row_term[i] = plan.c[i] * gauss_from_hash(fmix32(stats_key_of(plan.seed, 2 + 2 * i) ^ uint32_t(r)));
    float* row_out = out + (r - r0) * plan.cols;
    for (uint64_t t = 0; t < width; ++t) {
      const uint32_t idx = uint32_t(r * plan.cols + c0 + t);  // < n < 2^32
      float v = plan.noise * gauss_from_hash(fmix32(key_noise ^ idx));
      for (uint32_t i = 0; i < plan.k; ++i) v = v + row_term[i] * col_gauss[i * width + t];
      v = v + plan.mean;
      if (fmix32(key_zero ^ idx) < plan.zero_threshold) v = 0.0f;
      row_out[t] = v;
    }
  }
}

}  // namespace seedcore

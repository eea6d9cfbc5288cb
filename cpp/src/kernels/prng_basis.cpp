// Builds the split LFSR basis tables (see PrngBasisTables in kernels.h). Plain C++,
// shared by the AVX2 and NEON kernels, which only differ in the entry layout.
#include "kernel_decls.h"
#include "scalar_helpers.h"

namespace seedcore {
namespace {

size_t cell_index(PrngBasisLayout layout, uint32_t p_pad, uint32_t i, uint32_t j) {
  const uint32_t g = i / 8, r = i % 8;
  if (layout == PrngBasisLayout::madd_pairs)
    return ((size_t(g) * (p_pad / 2) + j / 2) * 8 + r) * 2 + (j % 2);
  return (size_t(g) * p_pad + j) * 8 + r;
}

// Fills `count` entries, entry e holding the states started from seed e << shift.
void fill_entries(std::vector<int16_t, CacheLineAllocator<int16_t>>& table, uint32_t count, uint32_t shift,
                  const PrngParams& pp, const PrngBasisTables& t, bool is_lo) {
  const uint32_t taps = kLfsrTaps[pp.K];
  // For K = 16, v − 2^15 modulo 2^16 is v with bit 15 flipped: the lo table holds the
  // flip and bias is 0 (see PrngBasisTables), so the kernels skip a subtraction.
  const uint32_t flip = is_lo && pp.K == 16 ? 0x8000u : 0u;
  table.assign(size_t(count) * t.entry_len, 0);
  for (uint32_t e = 0; e < count; ++e) {
    int16_t* entry = table.data() + size_t(e) * t.entry_len;
    // Padding cells: lo = bias, hi = 0, so (lo ^ hi) − bias = 0.
    if (is_lo)
      for (uint32_t c = 0; c < t.entry_len; ++c) entry[c] = t.bias;
    uint32_t v = e << shift;
    for (uint32_t k = 0; k < pp.C * pp.P; ++k) {
      const uint32_t j = k / pp.C, i = k % pp.C;  // state k is U[i][j] with k = j·C + i
      entry[cell_index(t.layout, t.p_pad, i, j)] = int16_t(uint16_t(v ^ flip));
      v = lfsr_step(v, taps);
    }
  }
}

}  // namespace

PrngBasisTables build_prng_basis_tables(const PrngParams& pp, PrngBasisLayout layout) {
  PrngBasisTables t;
  t.layout = layout;
  t.c_pad = (pp.C + 7) / 8 * 8;
  t.p_pad = (pp.P + 1) / 2 * 2;
  t.entry_len = t.c_pad * t.p_pad;
  t.bias = pp.K == 16 ? int16_t(0) : int16_t(1 << (pp.K - 1));
  fill_entries(t.lo, 256, 0, pp, t, true);
  fill_entries(t.hi, 1u << (pp.K - 8), 8, pp, t, false);
  return t;
}

}  // namespace seedcore

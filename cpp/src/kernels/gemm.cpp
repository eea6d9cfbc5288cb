// The ISA-independent GEMM driver (GotoBLAS / BLIS loop order). Per call, B is packed
// once into KC x NR micro-panels (all of K per panel, chunk pc starting at pc*NR),
// unless it is row-major and may be read in place. Per task (an MC-row block of A
// times a range of B panels) and per K chunk, the MC x KC block of A is packed into
// MR-row micro-panels in a per-worker buffer (L2); the micro-kernel then sweeps every
// A micro-panel against one B micro-panel (KC x NR, L1) before moving to the next.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "seedcore/error.h"
#include "seedcore/graph_kernels.h"

namespace seedcore {
namespace {

constexpr int kMaxMr = 16, kMaxNr = 32;
constexpr int64_t kMcTarget = 144;
constexpr int64_t kBGroupBytes = 24 * 1024;  // B micro-panels swept together: half of a 48 KiB L1
constexpr int kMaxGroup = 64;  // rows of A per block: MC x KC floats (~144 KiB) stay in L2
// Software prefetches of the next B chunk issued back to back: more than the core has
// line-fill buffers for stall until lines arrive, so a micro-panel's share is issued
// this many lines at a time between slices of its K chunk (see the task loop).
constexpr int64_t kPrefetchBurst = 12;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void run_tasks(TaskRunner* runner, size_t n, const std::function<void(size_t, unsigned)>& fn) {
  if (runner == nullptr || n <= 1) {
    for (size_t t = 0; t < n; ++t) fn(t, 0);
  } else {
    runner->run(n, fn);
  }
}

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using AlignedFloats = std::unique_ptr<float[], AlignedFree>;
AlignedFloats alloc_floats(int64_t n) {
  if (n <= 0) return AlignedFloats(nullptr);
  const size_t bytes = (size_t(n) * sizeof(float) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw SeedError("gemm: out of memory for packing buffers");
  return AlignedFloats(static_cast<float*>(p));
}

// Rows [i0, i0 + rows) x columns [k0, k0 + kc) of A as MR-row micro-panels:
// dst[(r / MR) * kc * MR + k * MR + r % MR], rows past `rows` zero. MR is a template
// argument so the row loop unrolls into MR streams and one contiguous MR-float write.
// Rows contiguous in k (a linear layer's activations) go through the table's transposing
// packer, the same copy as B's panels with MR in place of NR (in registers under AVX2:
// measured 5% of MiniLM's 1536-deep layer as the scalar MR-stream loop).
template <int MR>
void pack_a_block_mr(const GemmArgs& g, const GraphKernels& kern, int64_t i0, int64_t rows, int64_t k0, int kc, float* dst) {
  const ptrdiff_t a_rs = g.a_rs, a_cs = g.a_cs;
  for (int64_t r0 = 0; r0 < rows; r0 += MR, dst += int64_t(kc) * MR) {
    const int mr = int(std::min<int64_t>(MR, rows - r0));
    const float* src = g.a + (i0 + r0) * a_rs + k0 * a_cs;
    if (mr == MR && a_cs == 1) {
      kern.gemm_pack_bt(src, a_rs, kc, MR, MR, dst);
    } else if (mr == MR && a_rs == 1) {  // columns contiguous: a copy of MR floats per k
      for (int k = 0; k < kc; ++k)
        for (int r = 0; r < MR; ++r) dst[k * MR + r] = src[k * a_cs + r];
    } else {
      for (int k = 0; k < kc; ++k)
        for (int r = 0; r < MR; ++r) dst[k * MR + r] = r < mr ? src[r * a_rs + k * a_cs] : 0.0f;
    }
  }
}

void pack_a_block(const GemmArgs& g, const GraphKernels& kern, int64_t i0, int64_t rows, int64_t k0, int kc, float* dst) {
  switch (kern.mr) {
    case 4: return pack_a_block_mr<4>(g, kern, i0, rows, k0, kc, dst);
    case 6: return pack_a_block_mr<6>(g, kern, i0, rows, k0, kc, dst);
    case 8: return pack_a_block_mr<8>(g, kern, i0, rows, k0, kc, dst);
    case 12: return pack_a_block_mr<12>(g, kern, i0, rows, k0, kc, dst);
    default: throw SeedError("gemm: no A packing for this micro-kernel height");
  }
}

// Columns [col0, col0 + NR) x rows [k0, k0 + kc) of B: dst[k * NR + j], columns past N zero.
void pack_b_panel(const GemmArgs& g, const GraphKernels& kern, int64_t col0, int64_t k0, int64_t kc, float* dst) {
  const int NR = kern.nr;
  const int nr = int(std::min<int64_t>(NR, g.N - col0));
  if (g.b_ks == 1) {  // B columns are contiguous rows (a linear layer's weight): transpose
    kern.gemm_pack_bt(g.b + col0 * g.b_ns + k0, g.b_ns, kc, nr, NR, dst);
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    const float* src = g.b + (k0 + k) * g.b_ks + col0 * g.b_ns;
    float* d = dst + k * NR;
    if (g.b_ns == 1)
      for (int j = 0; j < nr; ++j) d[j] = src[j];
    else
      for (int j = 0; j < nr; ++j) d[j] = src[j * g.b_ns];
    for (int j = nr; j < NR; ++j) d[j] = 0.0f;
  }
}

// Before a tile's first K chunk: t[i*rs + j] = [t[i*rs + j]] + [bias_m] + [bias_n]
// (the old value only when accumulating), in the order gemm_reference adds them.
void start_tile(const GemmArgs& g, int64_t i0, int64_t j0, int mr, int nr, float* t, ptrdiff_t rs) {
  const float* bn = g.bias_n ? g.bias_n + j0 : nullptr;
  for (int i = 0; i < mr; ++i) {
    float* row = t + i * rs;
    const float bm = g.bias_m ? g.bias_m[i0 + i] : 0.0f;
    if (!g.accumulate && !g.bias_m && bn) {
      for (int j = 0; j < nr; ++j) row[j] = bn[j];
      continue;
    }
    for (int j = 0; j < nr; ++j) {
      float v = g.accumulate ? row[j] : 0.0f;
      if (g.bias_m) v += bm;
      if (bn) v += bn[j];
      row[j] = v;
    }
  }
}

}  // namespace

void gemm_reference(const GemmArgs& g) {
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      float acc = g.accumulate ? g.c[i * g.c_rs + j * g.c_cs] : 0.0f;
      if (g.bias_m) acc += g.bias_m[i];
      if (g.bias_n) acc += g.bias_n[j];
      for (int64_t k = 0; k < g.K; ++k) acc += g.a[i * g.a_rs + k * g.a_cs] * g.b[k * g.b_ks + j * g.b_ns];
      gemm_clamp_row(g, &acc, 1);
      if (g.row_epilogue) g.row_epilogue(&acc, &acc, 1);
      if (g.residual) acc = acc + g.residual[i * g.c_rs + j * g.c_cs];
      g.c[i * g.c_rs + j * g.c_cs] = acc;
    }
}

void gemm(const GemmArgs& g, const GraphKernels& kern, TaskRunner* runner) {
  if (g.M <= 0 || g.N <= 0) return;
  if (g.K <= 0) {
    for (int64_t i = 0; i < g.M; ++i)
      for (int64_t j = 0; j < g.N; ++j) {
        float& c = g.c[i * g.c_rs + j * g.c_cs];
        float v = g.accumulate ? c : 0.0f;
        if (g.bias_m) v += g.bias_m[i];
        if (g.bias_n) v += g.bias_n[j];
        gemm_clamp_row(g, &v, 1);
        if (g.row_epilogue) g.row_epilogue(&v, &v, 1);
        if (g.residual) v = v + g.residual[i * g.c_rs + j * g.c_cs];
        c = v;
      }
    return;
  }
  const int MR = kern.mr, NR = kern.nr;
  // K chunks keep a B micro-panel in L1 while several A micro-panels sweep it. With one
  // micro-panel of rows (a batch-1 linear) nothing is reused: all of K in one chunk, so
  // each B panel streams once from start to end (a chunk boundary only stores and reloads
  // C exactly, so results are the same bits). A packed ahead keeps the table's chunks.
  const int64_t KC = g.a_packed == nullptr && g.M <= MR ? std::max<int64_t>(g.K, 1) : kern.kc;
  if (MR > kMaxMr || NR > kMaxNr) throw SeedError("gemm: micro-kernel tile too large");
  const int64_t n_panels = ceil_div(g.N, NR);
  // Blocking: MC rows of A per task; single-threaded every task spans all of N (A is
  // packed once per K chunk), with workers the N range is cut so there are about
  // four tasks per worker. Blocking never changes any element's operations.
  const int64_t mc = int64_t(MR) * std::max<int64_t>(1, kMcTarget / MR);
  const int64_t m_blocks = ceil_div(g.M, mc);
  const unsigned workers = runner ? std::max(1u, runner->workers()) : 1u;
  int64_t n_blocks = 1;
  if (workers > 1 && m_blocks < int64_t(workers) * 4)
    n_blocks = std::min(n_panels, ceil_div(int64_t(workers) * 4, m_blocks));
  const int64_t panels_per_block = ceil_div(n_panels, n_blocks);
  n_blocks = ceil_div(n_panels, panels_per_block);

  // B read in place: row-major, and rows not a multiple of 4 KiB apart (such strides map
  // every row of a micro-panel onto the same L1 sets); whole panels only, unless the
  // table has a columns kernel for the ragged last one.
  const bool b_in_place = g.b_packed == nullptr && g.b_ns == 1 && (g.b_ks * int64_t(sizeof(float))) % 4096 != 0;
  const bool c_direct = g.c_cs == 1;
  // A ragged last panel goes through the table's columns kernel, which reads only its nr
  // columns of B: then it may be read in place too.
  const bool cols_kernel = kern.gemm_micro_cols != nullptr;
  const int64_t direct_panels = b_in_place ? (cols_kernel ? n_panels : g.N / NR) : 0;
  const int64_t packed_panels = n_panels - direct_panels;
  // With one or two row blocks each B panel is used once or twice: pack each KC x NR
  // micro-panel just before use into a per-worker buffer that stays in L1, instead of
  // writing all of packed B out to L3 and reading it back. With more row blocks, pack
  // B once up front (all of K per panel, chunk pc at offset pc*NR).
  const bool b_on_the_fly = g.b_packed == nullptr && m_blocks <= 2;
  const int64_t panel_floats = g.K * NR;
  AlignedFloats packed_b = alloc_floats(b_on_the_fly || g.b_packed ? 0 : packed_panels * panel_floats);
  const float* packed_b_base = g.b_packed ? g.b_packed : packed_b.get();
  if (!b_on_the_fly && !g.b_packed)
    run_tasks(packed_panels >= 4 ? runner : nullptr, size_t(packed_panels), [&](size_t p, unsigned) {
      pack_b_panel(g, kern, (direct_panels + int64_t(p)) * NR, 0, g.K, packed_b.get() + int64_t(p) * panel_floats);
    });
  // B micro-panels per group (see the task loop): as many as fit in kBGroupBytes.
  const int64_t group = std::max<int64_t>(
      1, std::min<int64_t>(kMaxGroup, kBGroupBytes / (int64_t(sizeof(float)) * NR * std::min<int64_t>(KC, g.K))));
  const int64_t b_chunk_floats = b_on_the_fly ? int64_t(NR) * std::min<int64_t>(KC, g.K) * group : 0;
  AlignedFloats b_chunks = alloc_floats(b_chunk_floats * workers);

  const int64_t a_block_floats = g.a_packed ? 0 : std::min(mc, ceil_div(g.M, MR) * MR) * std::min<int64_t>(KC, g.K);
  AlignedFloats packed_a = alloc_floats(a_block_floats * workers);
  const int64_t m_padded = ceil_div(g.M, MR) * MR;
  // A per-row bias alone (a convolution's) starts the tile inside the micro-kernel (one
  // broadcast per row); other bias/accumulate combinations are written into C first.
  // Likewise a per-column bias alone (a linear layer's), NR floats per panel.
  const bool kernel_bias = g.bias_m != nullptr && g.bias_n == nullptr && !g.accumulate;
  const bool kernel_col_bias = g.bias_n != nullptr && g.bias_m == nullptr && !g.accumulate;
  const bool tile_start = (g.bias_m != nullptr || g.bias_n != nullptr) && !kernel_bias && !kernel_col_bias;
  const bool has_clamp = g.clamp_has_min || g.clamp_has_max;
  const float clamp_bounds[2] = {g.clamp_has_min ? g.clamp_min : -std::numeric_limits<float>::infinity(),
                                 g.clamp_has_max ? g.clamp_max : std::numeric_limits<float>::infinity()};

  // A row epilogue (GELU) on C in place, without a residual to add after it, runs once
  // per task over each of its rows after the last K chunk, not per tile row: called per
  // 32 floats it cost ~60% more than the GELU itself (MiniLM's 128 x 1536: 0.117 vs
  // 0.072 ms). The rows are still in L2; each element gets the same function.
  const bool epilogue_after = g.row_epilogue != nullptr && c_direct && g.residual == nullptr;
  auto task = [&](size_t t, unsigned worker) {
    const int64_t im = int64_t(t) / n_blocks, jn = int64_t(t) % n_blocks;
    const int64_t i_begin = im * mc, i_end = std::min(g.M, i_begin + mc);
    const int64_t p_begin = jn * panels_per_block, p_end = std::min(n_panels, p_begin + panels_per_block);
    float* abuf = packed_a.get() + int64_t(worker % workers) * a_block_floats;
    alignas(64) float tile[kMaxMr * kMaxNr] = {};
    float edge_bias[kMaxMr] = {};      // the row bias of a ragged row block, zero-padded to MR
    float edge_col_bias[kMaxNr] = {};  // the column bias of a ragged panel, zero-padded to NR
    for (int64_t pc = 0; pc < g.K; pc += KC) {
      const int kc = int(std::min<int64_t>(KC, g.K - pc));
      const bool first = pc == 0;
      const bool acc = g.accumulate || !first || tile_start;
      const bool last = pc + kc >= g.K;
      const float* clamp = has_clamp && last ? clamp_bounds : nullptr;
      const bool epilogue = last && g.row_epilogue != nullptr && !epilogue_after;
      const bool add_residual = last && g.residual != nullptr;
      const float* a_block = abuf;
      if (g.a_packed)
        a_block = g.a_packed + pc * m_padded + i_begin * kc;  // gemm_pack_a's layout
      else
        pack_a_block(g, kern, i_begin, i_end - i_begin, pc, kc, abuf);
      // Panels go in groups whose B micro-panels fit in L1 together; each A micro-panel
      // sweeps the whole group before the next one. With a small K (1x1 convolutions
      // over few channels) a group spans many panels, so C is written as MR rows of
      // group * NR contiguous floats at a time instead of M interleaved streams of NR
      // (measured: MobileNetV2's 16 -> 96 channel 1x1 convolution at 112x112, 1.26 -> 0.53 ms).
      // With kc = KC a group is one panel, the classic order.
      for (int64_t g0 = p_begin; g0 < p_end; g0 += group) {
        const int64_t g1 = std::min(p_end, g0 + group);
        const float* bps[kMaxGroup];
        ptrdiff_t bks[kMaxGroup];
        for (int64_t p = g0; p < g1; ++p) {
          const int64_t col0 = p * NR;
          if (p < direct_panels) {
            bps[p - g0] = g.b + pc * g.b_ks + col0;
            bks[p - g0] = g.b_ks;
          } else if (b_on_the_fly) {
            float* buf = b_chunks.get() + int64_t(worker % workers) * b_chunk_floats + (p - g0) * NR * kc;
            pack_b_panel(g, kern, col0, pc, kc, buf);
            bps[p - g0] = buf;
            bks[p - g0] = NR;
          } else {
            bps[p - g0] = packed_b_base + (p - direct_panels) * panel_floats + pc * NR;
            bks[p - g0] = NR;
          }
        }
        // Packed B (a weight) that is not in cache streams from L3 at the first A
        // micro-panel of each group, and that one then waits on it (measured: MiniLM's
        // linear layers ~30% slower than with B hot). While this group runs, the next
        // group's micro-panels (or the next K chunk's first) are fetched into L2, a slice
        // per A micro-panel.
        const float* next_b = nullptr;
        int64_t next_lines = 0;
        {
          int64_t np0 = g1, npc = pc;
          if (np0 >= p_end) {
            np0 = p_begin;
            npc = pc + KC;
          }
          if (npc < g.K && np0 >= direct_panels && !b_on_the_fly && ceil_div(i_end - i_begin, MR) > 1) {
            const int64_t nkc = std::min<int64_t>(KC, g.K - npc);
            // One panel's chunk is contiguous; a group's chunks are panel_floats apart, so
            // only the first panel of the next group is fetched as one run (with kc == KC
            // a group is one panel anyway).
            next_b = packed_b_base + (np0 - direct_panels) * panel_floats + npc * NR;
            next_lines = nkc * NR * int64_t(sizeof(float)) / 64;
          }
        }
        const int64_t micro_panels = ceil_div(i_end - i_begin, MR);
        auto fetch_next = [next_b](int64_t l0, int64_t l1) {  // lines [l0, l1) of the next chunk, into L2
          for (int64_t l = l0; l < l1; ++l) __builtin_prefetch(reinterpret_cast<const char*>(next_b) + l * 64, 0, 2);
        };
        const float* ap = a_block;
        for (int64_t i0 = i_begin; i0 < i_end; i0 += MR, ap += int64_t(kc) * MR) {
          const int mr = int(std::min<int64_t>(MR, i_end - i0));
          // This micro-panel's slice [pf0, pf1) of the next chunk's lines. A full tile
          // against a single full panel, straight into C, takes it in bursts of
          // kPrefetchBurst lines between K slices (measured: MiniLM batch 1 against
          // onnxruntime 0.94-0.97x -> 1.01-1.04x; all 47 lines per micro-panel of its
          // 1536-deep layer at once stalled ~5% of that layer); otherwise it is issued here.
          int64_t pf0 = 0, pf1 = 0;
          if (next_b != nullptr) {
            const int64_t idx = (i0 - i_begin) / MR;
            pf0 = next_lines * idx / micro_panels;
            pf1 = next_lines * (idx + 1) / micro_panels;
          }
          const bool sliced = pf1 - pf0 > kPrefetchBurst && mr == MR && c_direct && g1 - g0 == 1 && g.N - g0 * NR >= NR;
          if (!sliced) fetch_next(pf0, pf1);
          const float* row_bias = nullptr;
          if (first && kernel_bias) {
            if (mr == MR) {
              row_bias = g.bias_m + i0;
            } else {
              for (int i = 0; i < MR; ++i) edge_bias[i] = i < mr ? g.bias_m[i0 + i] : 0.0f;
              row_bias = edge_bias;
            }
          }
          // A ragged row block of at most 8 rows (batch-1 layers, the last 8 of MiniLM's
          // 128 tokens or of a 32-channel convolution under the 12-row AVX-512 kernel) takes
          // the rows kernel, straight into C: the full tile would do MR / mr times the work
          // and go through the tile buffer, for the same results.
          const bool few_rows = mr < MR && mr <= 8;
          for (int64_t p = g0; p < g1; ++p) {
            const int64_t col0 = p * NR;
            const int nr = int(std::min<int64_t>(NR, g.N - col0));
            const float* bp = bps[p - g0];
            const ptrdiff_t b_ks = bks[p - g0];
            float* cp = g.c + i0 * g.c_rs + col0 * g.c_cs;
            const float* col_bias = nullptr;
            if (first && kernel_col_bias) {
              if (nr == NR) {
                col_bias = g.bias_n + col0;
              } else {
                for (int j = 0; j < NR; ++j) edge_col_bias[j] = j < nr ? g.bias_n[col0 + j] : 0.0f;
                col_bias = edge_col_bias;
              }
            }
            // A ragged panel takes the columns kernel (MobileNetV2's 7 x 7 planes: 49 = 32 + 17
            // columns; 17 as a full 32-wide tile through the buffer cost a third of those convs).
            const bool cols = cols_kernel && nr < NR;
            if (c_direct && (nr == NR || cols) && (mr == MR || (few_rows && !cols))) {
              if (first && tile_start) start_tile(g, i0, col0, mr, nr, cp, g.c_rs);
              if (cols) {
                kern.gemm_micro_cols(nr, kc, ap, bp, b_ks, cp, g.c_rs, acc, row_bias, col_bias, clamp);
              } else if (sliced) {
                // The same FMAs in the same k order: each slice after the first continues
                // from the C it stored (exact), the bias starts the first, the clamp ends the last.
                const int64_t slices = std::min<int64_t>(kc, ceil_div(pf1 - pf0, kPrefetchBurst));
                int k0 = 0;
                for (int64_t s = 0; s < slices; ++s) {
                  const int k1 = int(int64_t(kc) * (s + 1) / slices);
                  fetch_next(pf0 + (pf1 - pf0) * s / slices, pf0 + (pf1 - pf0) * (s + 1) / slices);
                  const bool head = s == 0;
                  kern.gemm_micro(k1 - k0, ap + int64_t(k0) * MR, bp + int64_t(k0) * b_ks, b_ks, cp, g.c_rs, head ? acc : true,
                                  head ? row_bias : nullptr, head ? col_bias : nullptr, s == slices - 1 ? clamp : nullptr);
                  k0 = k1;
                }
              } else if (mr == MR) {
                kern.gemm_micro(kc, ap, bp, b_ks, cp, g.c_rs, acc, row_bias, col_bias, clamp);
              } else {
                kern.gemm_micro_rows(mr, kc, ap, bp, b_ks, cp, g.c_rs, acc, row_bias, col_bias, clamp);
              }
              if (epilogue)
                for (int i = 0; i < mr; ++i) g.row_epilogue(cp + i * g.c_rs, cp + i * g.c_rs, nr);
              if (add_residual)
                for (int i = 0; i < mr; ++i) {
                  float* row = cp + i * g.c_rs;
                  const float* r = g.residual + (i0 + i) * g.c_rs + col0;
                  for (int j = 0; j < nr; ++j) row[j] = row[j] + r[j];
                }
              continue;
            }
            if (acc) {  // the tile's rows/columns past mr/nr are never stored: any value will do
              if (!first || g.accumulate)
                for (int i = 0; i < mr; ++i)
                  for (int j = 0; j < nr; ++j) tile[i * NR + j] = cp[i * g.c_rs + j * g.c_cs];
              if (first) start_tile(g, i0, col0, mr, nr, tile, NR);
            }
            if (cols)  // all MR rows into the tile (A's rows past mr are zero), mr of them stored
              kern.gemm_micro_cols(nr, kc, ap, bp, b_ks, tile, NR, acc, row_bias, col_bias, clamp);
            else if (few_rows)
              kern.gemm_micro_rows(mr, kc, ap, bp, b_ks, tile, NR, acc, row_bias, col_bias, clamp);
            else
              kern.gemm_micro(kc, ap, bp, b_ks, tile, NR, acc, row_bias, col_bias, clamp);
            if (epilogue)
              for (int i = 0; i < mr; ++i) g.row_epilogue(tile + i * NR, tile + i * NR, nr);
            if (add_residual)
              for (int i = 0; i < mr; ++i)
                for (int j = 0; j < nr; ++j)
                  tile[i * NR + j] = tile[i * NR + j] + g.residual[(i0 + i) * g.c_rs + (col0 + j) * g.c_cs];
            for (int i = 0; i < mr; ++i)
              for (int j = 0; j < nr; ++j) cp[i * g.c_rs + j * g.c_cs] = tile[i * NR + j];
          }
        }
      }
    }
    if (epilogue_after) {
      const int64_t col_begin = p_begin * NR, cols = std::min(g.N, p_end * NR) - col_begin;
      for (int64_t i = i_begin; i < i_end; ++i) {
        float* row = g.c + i * g.c_rs + col_begin;
        g.row_epilogue(row, row, cols);
      }
    }
  };
  run_tasks(runner, size_t(m_blocks * n_blocks), task);
}

std::vector<float> gemm_pack_a(const GemmArgs& g, const GraphKernels& kern) {
  const int64_t MR = kern.mr, KC = kern.kc;
  const int64_t m_padded = g.M > 0 ? ceil_div(g.M, MR) * MR : 0;
  std::vector<float> out(size_t(m_padded * std::max<int64_t>(g.K, 0)));
  for (int64_t pc = 0; pc < g.K; pc += KC) {
    const int kc = int(std::min<int64_t>(KC, g.K - pc));
    pack_a_block(g, kern, 0, g.M, pc, kc, out.data() + pc * m_padded);
  }
  return out;
}

std::vector<float> gemm_pack_b(const GemmArgs& g, const GraphKernels& kern) {
  const int64_t n_panels = g.N > 0 ? ceil_div(g.N, kern.nr) : 0;
  std::vector<float> out(size_t(n_panels * std::max<int64_t>(g.K, 0) * kern.nr));
  for (int64_t p = 0; p < n_panels && g.K > 0; ++p)
    pack_b_panel(g, kern, p * kern.nr, 0, g.K, out.data() + p * g.K * kern.nr);
  return out;
}

}  // namespace seedcore

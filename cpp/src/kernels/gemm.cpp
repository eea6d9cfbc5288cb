// The ISA-independent GEMM driver: blocks M (kMc rows of A per task), N (kNc columns
// per task) and K (kGemmKc, fixed), feeds the per-ISA micro-kernel, and packs B only
// where its panels are not already NR contiguous floats per k.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "seedcore/error.h"
#include "seedcore/graph_kernels.h"

namespace seedcore {
namespace {

constexpr int kMaxMr = 8, kMaxNr = 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void run_tasks(TaskRunner* runner, size_t n, const std::function<void(size_t, unsigned)>& fn) {
  if (runner == nullptr || n <= 1) {
    for (size_t t = 0; t < n; ++t) fn(t, 0);
  } else {
    runner->run(n, fn);
  }
}

}  // namespace

void gemm_reference(const GemmArgs& g) {
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      float acc = g.accumulate ? g.c[i * g.c_rs + j * g.c_cs] : 0.0f;
      for (int64_t k = 0; k < g.K; ++k) acc += g.a[i * g.a_rs + k * g.a_cs] * g.b[k * g.b_ks + j * g.b_ns];
      g.c[i * g.c_rs + j * g.c_cs] = acc;
    }
}

void gemm(const GemmArgs& g, const GraphKernels& kern, TaskRunner* runner) {
  if (g.M <= 0 || g.N <= 0) return;
  if (g.K <= 0) {
    if (!g.accumulate)
      for (int64_t i = 0; i < g.M; ++i)
        for (int64_t j = 0; j < g.N; ++j) g.c[i * g.c_rs + j * g.c_cs] = 0.0f;
    return;
  }
  const int MR = kern.mr, NR = kern.nr;
  if (MR > kMaxMr || NR > kMaxNr) throw SeedError("gemm: micro-kernel tile too large");
  const int64_t n_panels = ceil_div(g.N, NR);
  // Panels [0, direct_panels) are read straight from B; the others are packed.
  const int64_t direct_panels = g.b_ns == 1 ? g.N / NR : 0;
  const int64_t packed_panels = n_panels - direct_panels;
  const int64_t panel_floats = g.K * NR;
  std::unique_ptr<float[]> packed(packed_panels > 0 ? new float[size_t(packed_panels * panel_floats)] : nullptr);
  auto pack_panel = [&](size_t p, unsigned) {
    const int64_t col0 = (direct_panels + int64_t(p)) * NR;
    const int64_t nr = std::min<int64_t>(NR, g.N - col0);
    float* dst = packed.get() + int64_t(p) * panel_floats;
    if (g.b_ns == 1) {
      for (int64_t k = 0; k < g.K; ++k) {
        const float* src = g.b + k * g.b_ks + col0;
        for (int64_t j = 0; j < nr; ++j) dst[k * NR + j] = src[j];
        for (int64_t j = nr; j < NR; ++j) dst[k * NR + j] = 0.0f;
      }
    } else {
      for (int64_t k = 0; k < g.K; ++k)
        for (int64_t j = nr; j < NR; ++j) dst[k * NR + j] = 0.0f;
      for (int64_t j = 0; j < nr; ++j) {  // B columns are strided: walk each one in k
        const float* src = g.b + (col0 + j) * g.b_ns;
        for (int64_t k = 0; k < g.K; ++k) dst[k * NR + j] = src[k * g.b_ks];
      }
    }
  };
  run_tasks(packed_panels >= 4 ? runner : nullptr, size_t(packed_panels), pack_panel);

  const int64_t mc = int64_t(MR) * 16;  // rows of A per task (stay in L2 across panels)
  const int64_t nc = int64_t(NR) * 16;  // columns of C per task
  const int64_t m_blocks = ceil_div(g.M, mc), n_blocks = ceil_div(g.N, nc);
  const bool c_direct = g.c_cs == 1;

  auto task = [&](size_t t, unsigned) {
    const int64_t im = int64_t(t) / n_blocks, jn = int64_t(t) % n_blocks;
    const int64_t i_end = std::min(g.M, (im + 1) * mc);
    const int64_t p_begin = jn * (nc / NR), p_end = std::min(n_panels, (jn + 1) * (nc / NR));
    float tile[kMaxMr * kMaxNr];
    for (int64_t pc = 0; pc < g.K; pc += kGemmKc) {
      const int kc = int(std::min<int64_t>(kGemmKc, g.K - pc));
      const bool acc = g.accumulate || pc > 0;
      for (int64_t p = p_begin; p < p_end; ++p) {
        const int64_t col0 = p * NR;
        const int nr = int(std::min<int64_t>(NR, g.N - col0));
        const float* bp;
        ptrdiff_t b_ks;
        if (p < direct_panels) {
          bp = g.b + pc * g.b_ks + col0;
          b_ks = g.b_ks;
        } else {
          bp = packed.get() + (p - direct_panels) * panel_floats + pc * NR;
          b_ks = NR;
        }
        for (int64_t i0 = im * mc; i0 < i_end; i0 += MR) {
          const int mr = int(std::min<int64_t>(MR, i_end - i0));
          const float* ap = g.a + i0 * g.a_rs + pc * g.a_cs;
          float* cp = g.c + i0 * g.c_rs + col0 * g.c_cs;
          if (c_direct && nr == NR) {
            kern.gemm_micro(mr, kc, ap, g.a_rs, g.a_cs, bp, b_ks, cp, g.c_rs, acc);
            continue;
          }
          if (acc) {
            for (int i = 0; i < mr; ++i)
              for (int j = 0; j < nr; ++j) tile[i * NR + j] = cp[i * g.c_rs + j * g.c_cs];
          }
          kern.gemm_micro(mr, kc, ap, g.a_rs, g.a_cs, bp, b_ks, tile, NR, acc);
          for (int i = 0; i < mr; ++i)
            for (int j = 0; j < nr; ++j) cp[i * g.c_rs + j * g.c_cs] = tile[i * NR + j];
        }
      }
    }
  };
  run_tasks(runner, size_t(m_blocks * n_blocks), task);
}

}  // namespace seedcore

// Forward pass: every SIMD kernel against its scalar twin (GEMM over odd sizes and
// strides, depthwise 3x3 over strides/dilations/tails), small graphs end to end
// against hand-computed results, thread-count independence, and bad graphs/inputs
// refused with SeedError.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "seedcore/cpu.h"
#include "seedcore/graph.h"
#include "seedcore/graph_kernels.h"
#include "test_util.h"

using namespace seedcore;

namespace {

std::mt19937 rng(1234);
std::vector<float> randn(size_t n) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<Isa> simd_isas() {
  std::vector<Isa> out;
  for (Isa i : {Isa::avx2, Isa::neon})
    if (isa_available(i)) {
      try { graph_kernels(i); out.push_back(i); } catch (const SeedError&) {}
    }
  return out;
}

class InlineRunner : public TaskRunner {
 public:
  explicit InlineRunner(unsigned w) : w_(w) {}
  unsigned workers() const override { return w_; }
  void run(size_t n, const std::function<void(size_t, unsigned)>& fn) override {
    for (size_t t = n; t-- > 0;) fn(t, unsigned(t % w_));  // reverse order: any order must do
  }
 private:
  unsigned w_;
};

// Every GEMM kernel table this build/CPU has: scalar, then AVX2 and (where the CPU
// has it) AVX-512 on x86, NEON on aarch64.
std::vector<const GraphKernels*> gemm_tables() {
  std::vector<const GraphKernels*> out{&graph_kernels(Isa::scalar)};
  for (Isa isa : simd_isas())
    for (bool avx512 : {false, true}) {
      const GraphKernels* k = &graph_kernels(isa, avx512);
      if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
    }
  return out;
}

void test_gemm() {
  const int sizes[][3] = {{1, 1, 1},    {1, 7, 3},      {5, 1, 17},    {6, 16, 16},  {7, 33, 17},
                          {13, 300, 31}, {97, 65, 260}, {2, 513, 5},   {31, 257, 16}, {100, 20, 1},
                          {1, 384, 1536}, {130, 17, 300}, {12, 256, 32}, {160, 600, 70}, {16, 32, 1024}, {300, 40, 50},
                          {13, 2, 2500}};  // the last: more B panels per group than kMaxGroup
  InlineRunner many(3);
  for (const GraphKernels* kp : gemm_tables()) {
    const GraphKernels& k = *kp;
    const Isa isa = k.isa;
    for (auto& s : sizes) {
      for (int layout = 0; layout < 16; ++layout) {
        const int64_t M = s[0], K = s[1], N = s[2];
        std::vector<float> A = randn(size_t(M * K)), B = randn(size_t(K * N)), C0 = randn(size_t(M * N));
        std::vector<float> bm = randn(size_t(M)), bn = randn(size_t(N));
        std::vector<float> res = randn(size_t(M * N)), res_t(size_t(M * N));  // a residual, and as transposed C
        for (int64_t i = 0; i < M; ++i) for (int64_t j = 0; j < N; ++j) res_t[size_t(j * M + i)] = res[size_t(i * N + j)];
        GemmArgs g;
        g.M = M; g.N = N; g.K = K;
        g.a = A.data(); g.b = B.data();
        const bool at = layout & 1, bt = layout & 2, bias = layout & 4;
        g.a_rs = at ? 1 : K; g.a_cs = at ? M : 1;
        g.b_ks = bt ? 1 : N; g.b_ns = bt ? K : 1;
        if (bias) {  // both biases, or the column one alone (a linear layer's, in the micro-kernel)
          g.bias_m = bt ? bm.data() : nullptr;
          g.bias_n = bn.data();
        }
        if (layout & 8) {  // a convolution's epilogue: row bias (in the micro-kernel unless accumulating) + clamp
          g.bias_n = nullptr;
          g.bias_m = bm.data();
          g.clamp_has_min = true;
          g.clamp_min = -0.5f;
          g.clamp_has_max = !bias;  // with and without an upper bound
          g.clamp_max = 1.5f;
          if (!at) g.residual = res.data();  // a fused residual add, after the clamp
        }
        std::vector<float> ref = C0, got = C0, got2 = C0;
        for (bool acc : {false, true}) {
          g.accumulate = acc;
          g.c_rs = N; g.c_cs = 1;
          g.c = ref.data(); gemm_reference(g);
          g.c = got.data(); gemm(g, k, nullptr);
          g.c = got2.data(); gemm(g, k, &many);
          // transposed C
          std::vector<float> gt(size_t(M * N));
          for (int64_t i = 0; i < M; ++i) for (int64_t j = 0; j < N; ++j) gt[size_t(j * M + i)] = C0[size_t(i * N + j)];
          if (!acc) std::fill(gt.begin(), gt.end(), 0.0f);
          GemmArgs gt_args = g; gt_args.c = gt.data(); gt_args.c_rs = 1; gt_args.c_cs = M;
          if (g.residual) gt_args.residual = res_t.data();
          gemm(gt_args, k, &many);
          // B packed ahead (gemm_pack_b), single- and multi-task
          std::vector<float> pre = C0, pre2 = C0;
          const std::vector<float> bpk = gemm_pack_b(g, k);
          GemmArgs gp = g; gp.b_packed = bpk.data(); gp.b = nullptr;
          gp.c = pre.data(); gemm(gp, k, nullptr);
          gp.c = pre2.data(); gemm(gp, k, &many);
          // A packed ahead (gemm_pack_a), alone and with B packed ahead
          std::vector<float> pa = C0, pa2 = C0;
          const std::vector<float> apk = gemm_pack_a(g, k);
          GemmArgs ga = g; ga.a_packed = apk.data(); ga.a = nullptr;
          ga.c = pa.data(); gemm(ga, k, &many);
          ga.b_packed = bpk.data(); ga.b = nullptr;
          ga.c = pa2.data(); gemm(ga, k, nullptr);
          double worst = 0;
          bool same_threads = true;
          for (int64_t i = 0; i < M * N; ++i) {
            const double tol = 1e-5 * (std::sqrt(double(K)) * 4 + 4);
            worst = std::max(worst, std::abs(double(got[size_t(i)]) - ref[size_t(i)]) / tol);
            same_threads &= got[size_t(i)] == got2[size_t(i)];
            same_threads &= pre[size_t(i)] == got[size_t(i)] && pre2[size_t(i)] == got[size_t(i)];
            same_threads &= pa[size_t(i)] == got[size_t(i)] && pa2[size_t(i)] == got[size_t(i)];
            const int64_t r = i / N, c = i % N;
            same_threads &= gt[size_t(c * M + r)] == got[size_t(i)];
          }
          CHECK_MSG(worst <= 1.0, "%s(mr=%d) gemm M=%lld K=%lld N=%lld layout=%d acc=%d: error %.3g x tol",
                    isa_name(isa), k.mr, (long long)M, (long long)K, (long long)N, layout, int(acc), worst);
          CHECK_MSG(same_threads, "%s(mr=%d) gemm M=%lld K=%lld N=%lld: result depends on tasks/threads/C layout",
                    isa_name(isa), k.mr, (long long)M, (long long)K, (long long)N);
          ref = C0; got = C0; got2 = C0;
        }
      }
    }
  }
}

// Each SIMD micro-kernel against the scalar one on the same packed panels, tile by
// tile (the scalar kernel's tile is smaller, so it covers the SIMD tile in pieces).
void test_gemm_micro_twins() {
  const GraphKernels& sk = graph_kernels(Isa::scalar);
  for (const GraphKernels* kp : gemm_tables()) {
    const GraphKernels& k = *kp;
    if (&k == &sk) continue;
    for (int kc : {1, 3, 4, 7, 256}) {
      for (int mode = 0; mode < 10; ++mode) {
        // mode: accumulate or not x (plain | row bias | row bias + clamp | column bias |
        // column bias + clamp); the biases only count without accumulate
        const bool acc = mode & 1;
        const int MR = k.mr, NR = k.nr;
        // b is padded: the scalar tile reading the last columns may run past NR
        std::vector<float> a = randn(size_t(kc * MR)), b = randn(size_t(kc * NR + sk.nr)), c0 = randn(size_t(MR * NR));
        std::vector<float> rb = randn(size_t(MR + sk.mr)), cb = randn(size_t(NR + sk.nr));
        const float bounds[2] = {-0.25f, 0.75f};
        const float* row_bias = mode >= 2 && mode < 6 ? rb.data() : nullptr;
        const float* col_bias = mode >= 6 ? cb.data() : nullptr;
        const float* clamp = (mode >= 4 && mode < 6) || mode >= 8 ? bounds : nullptr;
        std::vector<float> got = c0, want = c0;
        k.gemm_micro(kc, a.data(), b.data(), NR, got.data(), NR, acc, row_bias, col_bias, clamp);
        for (int i0 = 0; i0 < MR; i0 += sk.mr)
          for (int j0 = 0; j0 < NR; j0 += sk.nr) {
            std::vector<float> as(size_t(kc * sk.mr), 0.0f);
            for (int kk = 0; kk < kc; ++kk)
              for (int i = 0; i < sk.mr && i0 + i < MR; ++i) as[size_t(kk * sk.mr + i)] = a[size_t(kk * MR + i0 + i)];
            std::vector<float> ct(size_t(sk.mr * sk.nr), 0.0f);
            for (int i = 0; i < sk.mr && i0 + i < MR; ++i)
              for (int j = 0; j < sk.nr && j0 + j < NR; ++j) ct[size_t(i * sk.nr + j)] = c0[size_t((i0 + i) * NR + j0 + j)];
            sk.gemm_micro(kc, as.data(), b.data() + j0, NR, ct.data(), sk.nr, acc, row_bias ? row_bias + i0 : nullptr,
                          col_bias ? col_bias + j0 : nullptr, clamp);
            for (int i = 0; i < sk.mr && i0 + i < MR; ++i)
              for (int j = 0; j < sk.nr && j0 + j < NR; ++j) want[size_t((i0 + i) * NR + j0 + j)] = ct[size_t(i * sk.nr + j)];
          }
        double worst = 0;
        for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::abs(got[i] - want[i])));
        CHECK_MSG(worst <= 1e-5 * (std::sqrt(double(kc)) * 4 + 4), "%s(mr=%d) gemm micro-kernel kc=%d mode=%d: error %.3g",
                  isa_name(k.isa), k.mr, kc, mode, worst);
        if (clamp)
          for (float v : got) CHECK_MSG(v >= bounds[0] && v <= bounds[1], "%s clamp: %g out of bounds", isa_name(k.isa), double(v));
        // the rows kernel: the first m rows, bit for bit the full kernel's (scalar table too)
        for (const GraphKernels* rk : {&k, &sk}) {
          std::vector<float> full = c0, a_rk = randn(size_t(kc * rk->mr)), b_rk = randn(size_t(kc * rk->nr));
          std::vector<float> c_rk(size_t(rk->mr * rk->nr));
          for (size_t i = 0; i < c_rk.size(); ++i) c_rk[i] = c0[i % c0.size()];
          std::vector<float> full_rk = c_rk;
          rk->gemm_micro(kc, a_rk.data(), b_rk.data(), rk->nr, full_rk.data(), rk->nr, acc, row_bias, col_bias, clamp);
          for (int m = 1; m < rk->mr; ++m) {
            std::vector<float> part = c_rk;
            rk->gemm_micro_rows(m, kc, a_rk.data(), b_rk.data(), rk->nr, part.data(), rk->nr, acc, row_bias, col_bias,
                                clamp);
            bool same = true;
            for (int i = 0; i < rk->mr * rk->nr; ++i)
              same &= i < m * rk->nr ? part[size_t(i)] == full_rk[size_t(i)] : part[size_t(i)] == c_rk[size_t(i)];
            CHECK_MSG(same, "%s(mr=%d) gemm_micro_rows m=%d kc=%d mode=%d differs from the full kernel",
                      isa_name(rk->isa), rk->mr, m, kc, mode);
          }
          // the columns kernel: the first n columns, bit for bit the full kernel's, the
          // others untouched, with B as a panel (b_ks = NR) and as n columns in place at the
          // very end of its buffer (b_ks = n + 3, NaN between the rows)
          for (int n = 1; n <= rk->nr; ++n) {
            const ptrdiff_t tight_ks = n + 3;
            std::vector<float> b_tight(size_t((kc - 1) * tight_ks + n), std::nanf(""));
            for (int kk = 0; kk < kc; ++kk)
              for (int j = 0; j < n; ++j) b_tight[size_t(kk * tight_ks + j)] = b_rk[size_t(kk * rk->nr + j)];
            for (const bool tight : {false, true}) {
              std::vector<float> part = c_rk;
              rk->gemm_micro_cols(n, kc, a_rk.data(), tight ? b_tight.data() : b_rk.data(), tight ? tight_ks : rk->nr,
                                  part.data(), rk->nr, acc, row_bias, col_bias, clamp);
              bool same = true;
              for (int i = 0; i < rk->mr * rk->nr; ++i)
                same &= i % rk->nr < n ? part[size_t(i)] == full_rk[size_t(i)] : part[size_t(i)] == c_rk[size_t(i)];
              CHECK_MSG(same, "%s(mr=%d) gemm_micro_cols n=%d kc=%d mode=%d tight=%d differs from the full kernel",
                        isa_name(rk->isa), rk->mr, n, kc, mode, int(tight));
            }
          }
        }
      }
    }
  }
}

// Each transposing packer against the scalar one (ragged rows and k included), at the
// width of B's panels (NR) and of A's micro-panels (MR: gemm.cpp packs row-major A with it).
void test_gemm_pack_bt_twins() {
  const GraphKernels& sk = graph_kernels(Isa::scalar);
  for (const GraphKernels* kp : gemm_tables()) {
    for (const int width : {kp->nr, kp->mr}) {
      for (int64_t K : {1, 7, 8, 19, 256}) {
        for (int nr = 1; nr <= width; nr += (width == kp->nr ? 5 : 1)) {
          const ptrdiff_t w_rs = K + 3;
          std::vector<float> w = randn(size_t(width * w_rs));
          std::vector<float> got(size_t(K * width), -1.0f), want(size_t(K * width), -2.0f);
          kp->gemm_pack_bt(w.data(), w_rs, K, nr, width, got.data());
          sk.gemm_pack_bt(w.data(), w_rs, K, nr, width, want.data());
          CHECK_MSG(got == want, "%s(mr=%d) gemm_pack_bt K=%lld nr=%d width=%d differs from the scalar packer",
                    isa_name(kp->isa), kp->mr, (long long)K, nr, width);
        }
      }
    }
  }
}

void test_depthwise() {
  const GraphKernels& sk = graph_kernels(Isa::scalar);
  for (const GraphKernels* kp : gemm_tables()) {  // every SIMD table
    if (kp == &sk) continue;
    const Isa isa = kp->isa;
    const GraphKernels& k = *kp;
    for (int stride : {1, 2, 3})
      for (int dil : {1, 2})
        for (int64_t oh : {1, 3, 7, 13})  // row blocks of 3 and 6 with every remainder
          for (int64_t ow : {1, 4, 7, 8, 9, 14, 15, 16, 17, 28, 33, 56, 71, 112, 300}) {
            const int64_t in_w = (ow - 1) * stride + 2 * dil + 1 + 3, in_h = (oh - 1) * stride + 2 * dil + 1;
            std::vector<float> in = randn(size_t(in_w * in_h + 32)), w = randn(9);
            std::vector<float> a(size_t(oh * ow)), b(size_t(oh * ow));
            // every other case with a fused clamp
            const float bounds[2] = {-0.5f, 1.0f};
            const float* clamp = (ow + stride) % 2 ? bounds : nullptr;
            sk.depthwise3x3(in.data(), in_w, oh, ow, stride, dil, w.data(), 0.5f, a.data(), clamp);
            k.depthwise3x3(in.data(), in_w, oh, ow, stride, dil, w.data(), 0.5f, b.data(), clamp);
            double worst = 0;
            for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
            if (clamp)
              for (float v : b) CHECK(v >= bounds[0] && v <= bounds[1]);
            CHECK_MSG(worst < 1e-5, "%s depthwise stride=%d dil=%d ow=%lld: error %g", isa_name(isa), stride, dil,
                      (long long)ow, worst);
          }
  }
}

// depthwise3x3_plane of every table that has one (AVX2) against the scalar padded kernel
// over a zero-padded copy (within the depthwise tolerance), and bit for bit against its
// own table's padded kernel: the same products. The plane sits between NaN guard bands,
// so a read outside it would make outputs NaN. Strides (2 runs in place, the others pad
// a copy), dilations, paddings 0..2, and widths that reach every column block, edge and
// tail.
void test_depthwise_plane() {
  const GraphKernels& sk = graph_kernels(Isa::scalar);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  int cases = 0, avx512_cases = 0;
  for (const GraphKernels* kp : gemm_tables()) {
    const GraphKernels& k = *kp;
    if (k.depthwise3x3_plane == nullptr) continue;
    for (int stride : {1, 2, 3})
      for (int dil : {1, 2})
        for (int64_t pad : {0, 1, 2})
          for (int64_t h : {1, 2, 5, 14, 15})
            for (int64_t w : {1, 3, 7, 8, 9, 14, 15, 16, 17, 28, 33, 56, 71, 112, 300}) {
              const int64_t span = 2 * dil + 1;
              if (h + 2 * pad < span || w + 2 * pad < span) continue;
              const int64_t oh = (h + 2 * pad - span) / stride + 1, ow = (w + 2 * pad - span) / stride + 1;
              const size_t guard = 64, n = size_t(h * w);
              std::vector<float> buf(n + 2 * guard, nan), wt = randn(9), plane = randn(n);
              std::copy(plane.begin(), plane.end(), buf.begin() + ptrdiff_t(guard));
              // the padded copy for the padded kernels, readable 16 floats past its end
              const int64_t hp = h + 2 * pad, wp = w + 2 * pad;
              std::vector<float> padded(size_t(hp * wp + 32), 0.0f);
              for (int64_t i = 0; i < h; ++i)
                std::copy(plane.begin() + i * w, plane.begin() + (i + 1) * w, padded.begin() + (i + pad) * wp + pad);
              const float bounds[2] = {-0.5f, 1.0f};
              const float* clamp = (w + stride) % 2 ? bounds : nullptr;
              std::vector<float> want(size_t(oh * ow)), twin(size_t(oh * ow)), got(size_t(oh * ow));
              sk.depthwise3x3(padded.data(), wp, oh, ow, stride, dil, wt.data(), 0.5f, want.data(), clamp);
              k.depthwise3x3(padded.data(), wp, oh, ow, stride, dil, wt.data(), 0.5f, twin.data(), clamp);
              k.depthwise3x3_plane(buf.data() + guard, h, w, pad, pad, oh, ow, stride, dil, wt.data(), 0.5f, got.data(),
                                   clamp);
              double worst = 0;
              for (size_t i = 0; i < got.size(); ++i) {
                CHECK_MSG(got[i] == got[i], "%s depthwise plane h=%lld w=%lld stride=%d dil=%d pad=%lld: NaN (read outside)",
                          isa_name(k.isa), (long long)h, (long long)w, stride, dil, (long long)pad);
                worst = std::max(worst, double(std::abs(got[i] - want[i])));
              }
              CHECK_MSG(worst < 1e-5, "%s depthwise plane h=%lld w=%lld stride=%d dil=%d pad=%lld: error %g",
                        isa_name(k.isa), (long long)h, (long long)w, stride, dil, (long long)pad, worst);
              // in place and over the padded copy: the same products in the same order
              CHECK_MSG(std::memcmp(got.data(), twin.data(), got.size() * sizeof(float)) == 0,
                        "%s depthwise plane h=%lld w=%lld stride=%d dil=%d pad=%lld: not the padded kernel's bits",
                        isa_name(k.isa), (long long)h, (long long)w, stride, dil, (long long)pad);
#if defined(__x86_64__)
              // the AVX-512 table's kernels (stride 1 and 2 in place): the AVX2 kernel's bits too
              if (k.isa == Isa::avx2 && &k != &graph_kernels(Isa::avx2, false)) {
                std::vector<float> avx2(size_t(oh * ow));
                graph_kernels(Isa::avx2, false).depthwise3x3(padded.data(), wp, oh, ow, stride, dil, wt.data(), 0.5f,
                                                             avx2.data(), clamp);
                CHECK_MSG(std::memcmp(got.data(), avx2.data(), got.size() * sizeof(float)) == 0,
                          "%s(mr=%d) depthwise plane h=%lld w=%lld stride=%d dil=%d pad=%lld: not the AVX2 kernel's bits",
                          isa_name(k.isa), k.mr, (long long)h, (long long)w, stride, dil, (long long)pad);
                ++avx512_cases;
              }
#endif
              ++cases;
            }
  }
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    CHECK(cases > 1000);  // the AVX2 table ran
    if (&graph_kernels(Isa::avx2, true) != &graph_kernels(Isa::avx2, false))
      CHECK(avx512_cases > 1000);  // and the AVX-512 one, where the dispatch gives it
  }
#endif
}

// GELU (erf), row softmax and layer norm: each SIMD kernel against its scalar twin (libm erf/exp,
// double sum). Stated tolerances: GELU |simd - scalar| <= 4e-7 * max(1, |x|) (the
// polynomial erf is good to about 1e-7 absolute); softmax |simd - scalar| <= 2e-6 *
// max(y) per row (polynomial exp, float lane sums). Also NaN in, NaN out; -inf gives 0.
void test_activations() {
  const GraphKernels& sk = graph_kernels(Isa::scalar);
  for (Isa isa : simd_isas()) {
    const GraphKernels& k = graph_kernels(isa);
    for (int64_t n : {1, 3, 7, 8, 9, 31, 128, 1000}) {
      std::vector<float> x = randn(size_t(n));
      for (size_t i = 0; i < x.size(); ++i) x[i] *= (i % 3 == 0) ? 6.0f : 1.5f;
      if (n > 8) { x[1] = 0.0f; x[2] = -30.0f; x[3] = 30.0f; x[4] = -4.0f; x[5] = 1e-20f; }
      std::vector<float> a(x.size()), b(x.size());
      sk.gelu_erf(x.data(), a.data(), n);
      k.gelu_erf(x.data(), b.data(), n);
      double worst = 0;
      for (size_t i = 0; i < a.size(); ++i)
        worst = std::max(worst, std::abs(double(a[i]) - b[i]) / std::max(1.0, std::abs(double(x[i]))));
      CHECK_MSG(worst <= 4e-7, "%s gelu n=%lld: error %g", isa_name(isa), (long long)n, worst);
      for (float scale : {1.0f, 8.0f}) {
        std::vector<float> s = x;
        for (auto& v : s) v *= scale;
        if (n > 4) s[size_t(n) / 2] = -10000.0f;  // a masked position
        if (n > 5) s[size_t(n) / 3] = -std::numeric_limits<float>::infinity();
        sk.softmax_row(s.data(), a.data(), n);
        k.softmax_row(s.data(), b.data(), n);
        double top = 0, err = 0;
        for (size_t i = 0; i < a.size(); ++i) {
          top = std::max(top, double(a[i]));
          err = std::max(err, std::abs(double(a[i]) - b[i]));
        }
        CHECK_MSG(err <= 2e-6 * top, "%s softmax n=%lld scale=%g: error %g (max %g)", isa_name(isa), (long long)n,
                  double(scale), err, top);
        if (n > 5) CHECK(b[size_t(n) / 3] == 0.0f);
      }
    }
    // layer norm: moments in double in another order than the scalar twin's; tolerance
    // |simd - scalar| <= 2e-6 * max(1, max |y|) (in practice float(mean) and the scale agree)
    for (int64_t d : {1, 3, 8, 31, 384, 1000}) {
      for (int variant = 0; variant < 3; ++variant) {
        std::vector<float> x = randn(size_t(d)), w = randn(size_t(d)), b = randn(size_t(d));
        for (auto& v : x) v = 5.0f + 3.0f * v;  // an offset mean, as after a residual add
        const float* wp = variant == 1 ? nullptr : w.data();
        const float* bp = variant == 2 ? nullptr : b.data();
        std::vector<float> a(x.size()), c(x.size());
        sk.layer_norm_row(x.data(), a.data(), d, wp, bp, 1e-12);
        k.layer_norm_row(x.data(), c.data(), d, wp, bp, 1e-12);
        double top = 1.0, err = 0;
        for (size_t i = 0; i < a.size(); ++i) {
          top = std::max(top, std::abs(double(a[i])));
          err = std::max(err, std::abs(double(a[i]) - c[i]));
        }
        CHECK_MSG(err <= 2e-6 * top, "%s layer_norm d=%lld variant=%d: error %g", isa_name(isa), (long long)d, variant, err);
      }
    }
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> x = {1.0f, nan, -2.0f, 0.5f, 3.0f, -1.0f, 2.0f, 0.25f, nan};
    std::vector<float> y(x.size());
    k.gelu_erf(x.data(), y.data(), int64_t(x.size()));
    CHECK(std::isnan(y[1]) && std::isnan(y[8]) && !std::isnan(y[0]));
    k.softmax_row(x.data(), y.data(), int64_t(x.size()));
    CHECK(std::isnan(y[0]));
  }
}

struct W {
  std::vector<float> data;
  std::vector<int64_t> shape;
};

std::unordered_map<std::string, TensorRef> refs(const std::unordered_map<std::string, W>& ws) {
  std::unordered_map<std::string, TensorRef> r;
  for (auto& kv : ws) r[kv.first] = TensorRef{ElemType::f32, kv.second.shape, kv.second.data.data()};
  return r;
}

// Naive NCHW conv2d.
std::vector<float> conv_ref(const std::vector<float>& x, int64_t N, int64_t C, int64_t H, int64_t Wd,
                            const std::vector<float>& w, int64_t OC, int64_t KH, int64_t KW, const std::vector<float>& b,
                            int s, int p, int d, int G, int64_t& OH, int64_t& OW) {
  OH = (H + 2 * p - d * (KH - 1) - 1) / s + 1;
  OW = (Wd + 2 * p - d * (KW - 1) - 1) / s + 1;
  const int64_t Cg = C / G, OCg = OC / G;
  std::vector<float> y(size_t(N * OC * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < OC; ++oc)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = b[size_t(oc)];
          const int64_t g = oc / OCg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t ih = oh * s - p + kh * d, iw = ow * s - p + kw * d;
                if (ih < 0 || ih >= H || iw < 0 || iw >= Wd) continue;
                acc += double(w[size_t(((oc * Cg + c) * KH + kh) * KW + kw)]) *
                       x[size_t(((n * C + g * Cg + c) * H + ih) * Wd + iw)];
              }
          y[size_t(((n * OC + oc) * OH + oh) * OW + ow)] = float(acc);
        }
  return y;
}

void test_conv_graph() {
  struct Case { int64_t N, C, H, Wd, OC, KH, KW; int s, p, d, G; };
  const Case cases[] = {{1, 3, 9, 11, 4, 3, 3, 1, 1, 1, 1}, {2, 8, 13, 10, 8, 3, 3, 2, 1, 1, 8},
                        {1, 6, 7, 7, 6, 3, 3, 1, 2, 2, 6}, {2, 4, 5, 6, 8, 1, 1, 1, 0, 1, 1},
                        {1, 4, 10, 9, 6, 3, 2, 2, 1, 2, 2}, {1, 5, 17, 19, 10, 5, 5, 3, 2, 1, 5},
                        {1, 16, 20, 20, 16, 3, 3, 2, 1, 1, 16}, {3, 2, 6, 6, 5, 2, 3, 1, 0, 1, 1}};
  std::vector<Isa> isas = simd_isas();
  isas.insert(isas.begin(), Isa::scalar);
  for (const Case& c : cases) {
    std::unordered_map<std::string, W> ws;
    ws["w"] = {randn(size_t(c.OC * (c.C / c.G) * c.KH * c.KW)), {c.OC, c.C / c.G, c.KH, c.KW}};
    ws["b"] = {randn(size_t(c.OC)), {c.OC}};
    const std::string json = R"({"version": 1, "inputs": [{"name": "x", "dtype": "float32", "shape": ["n", )" +
        std::to_string(c.C) + R"(, "h", "w"]}], "outputs": [{"name": "y", "dtype": "float32", "shape": ["n", )" +
        std::to_string(c.OC) + R"(, "oh", "ow"]}], "nodes": [{"op": "conv2d", "in": ["x", "w", "b"], "out": ["y"],
        "attrs": {"stride": [)" + std::to_string(c.s) + "," + std::to_string(c.s) + R"(], "padding": [)" +
        std::to_string(c.p) + "," + std::to_string(c.p) + R"(], "dilation": [)" + std::to_string(c.d) + "," +
        std::to_string(c.d) + R"(], "groups": )" + std::to_string(c.G) + R"(}, "path": "conv"}]})";
    Graph g(json, refs(ws));
    std::vector<float> x = randn(size_t(c.N * c.C * c.H * c.Wd));
    int64_t OH, OW;
    const std::vector<float> ref = conv_ref(x, c.N, c.C, c.H, c.Wd, ws["w"].data, c.OC, c.KH, c.KW, ws["b"].data,
                                            c.s, c.p, c.d, c.G, OH, OW);
    std::vector<float> first;
    for (Isa isa : isas)
      for (unsigned threads : {1u, 3u}) {
        auto out = g.run({TensorRef{ElemType::f32, {c.N, c.C, c.H, c.Wd}, x.data()}}, threads, isa);
        CHECK(out[0].shape == (std::vector<int64_t>{c.N, c.OC, OH, OW}));
        const float* y = static_cast<const float*>(out[0].data());
        double worst = 0;
        for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, double(std::abs(y[i] - ref[i])));
        CHECK_MSG(worst < 1e-4, "conv %s threads=%u C=%lld G=%d: error %g", isa_name(isa), threads, (long long)c.C, c.G, worst);
        if (threads == 1) first.assign(y, y + ref.size());
        else CHECK_MSG(std::equal(first.begin(), first.end(), y), "conv result depends on thread count");
      }
  }
}

const char* kMlp = R"({"version": 1,
  "inputs": [{"name": "ids", "dtype": "int64", "shape": ["batch", "seq"]}],
  "outputs": [{"name": "out", "dtype": "float32", "shape": ["batch", 3]}],
  "nodes": [
    {"op": "embedding", "in": ["ids", "emb"], "out": ["e"], "attrs": {}, "path": "emb"},
    {"op": "layer_norm", "in": ["e", "ln_w", null], "out": ["n"], "attrs": {"eps": 1e-5}, "path": "ln"},
    {"op": "linear", "in": ["n", "fc_w", "fc_b"], "out": ["h"], "attrs": {}, "path": "fc"},
    {"op": "gelu", "in": ["h"], "out": ["g"], "attrs": {"approximate": "tanh"}, "path": "act"},
    {"op": "mean", "in": ["g"], "out": ["m"], "attrs": {"axes": [1], "keepdim": false}, "path": "pool"},
    {"op": "softmax", "in": ["m"], "out": ["s"], "attrs": {"axis": -1}, "path": "sm"},
    {"op": "mul_scalar", "in": ["s"], "out": ["out"], "attrs": {"value": 2.5}, "path": "scale"}
  ]})";

void test_mlp_graph() {
  std::unordered_map<std::string, W> ws;
  ws["emb"] = {randn(10 * 4), {10, 4}};
  ws["ln_w"] = {randn(4), {4}};
  ws["fc_w"] = {randn(3 * 4), {3, 4}};
  ws["fc_b"] = {randn(3), {3}};
  Graph g(kMlp, refs(ws));
  CHECK(g.inputs().size() == 1 && g.inputs()[0].shape[1].symbol == "seq");
  std::vector<int64_t> ids = {1, 2, 3, 9, 0, 5};  // batch 2, seq 3
  auto out = g.run({TensorRef{ElemType::i64, {2, 3}, ids.data()}});
  CHECK(out.size() == 1 && out[0].shape == (std::vector<int64_t>{2, 3}));
  const float* y = static_cast<const float*>(out[0].data());
  for (int b = 0; b < 2; ++b) {
    double acc[3] = {0, 0, 0};
    for (int t = 0; t < 3; ++t) {
      const float* e = &ws["emb"].data[size_t(ids[size_t(b * 3 + t)] * 4)];
      double mu = 0, var = 0;
      for (int i = 0; i < 4; ++i) mu += e[i];
      mu /= 4;
      for (int i = 0; i < 4; ++i) var += (e[i] - mu) * (e[i] - mu);
      var /= 4;
      double nrm[4];
      for (int i = 0; i < 4; ++i) nrm[i] = (e[i] - mu) / std::sqrt(var + 1e-5) * ws["ln_w"].data[size_t(i)];
      for (int o = 0; o < 3; ++o) {
        double h = ws["fc_b"].data[size_t(o)];
        for (int i = 0; i < 4; ++i) h += nrm[i] * ws["fc_w"].data[size_t(o * 4 + i)];
        acc[o] += 0.5 * h * (1 + std::tanh(std::sqrt(2 / M_PI) * (h + 0.044715 * h * h * h))) / 3;
      }
    }
    const double mx = std::max(acc[0], std::max(acc[1], acc[2]));
    double s = 0;
    for (double v : acc) s += std::exp(v - mx);
    for (int o = 0; o < 3; ++o)
      CHECK_MSG(std::abs(y[b * 3 + o] - 2.5 * std::exp(acc[o] - mx) / s) < 1e-5, "mlp output %d,%d", b, o);
  }
  // bad inputs at run time
  std::vector<int64_t> bad = {1, 10};
  CHECK_THROWS_SEED("id out of range", g.run({TensorRef{ElemType::i64, {1, 2}, bad.data()}}));
  std::vector<float> fl(6);
  CHECK_THROWS_SEED("float ids", g.run({TensorRef{ElemType::f32, {2, 3}, fl.data()}}));
  CHECK_THROWS_SEED("rank", g.run({TensorRef{ElemType::i64, {6}, ids.data()}}));
  CHECK_THROWS_SEED("count", g.run({}));
}

void test_bad_graphs() {
  std::unordered_map<std::string, W> ws;
  ws["emb"] = {randn(10 * 4), {10, 4}};
  ws["ln_w"] = {randn(4), {4}};
  ws["fc_w"] = {randn(3 * 4), {3, 4}};
  ws["fc_b"] = {randn(3), {3}};
  const std::string good = kMlp;
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    CHECK_MSG(at != std::string::npos, "pattern %s", from.c_str());
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
  };
  const std::pair<const char*, std::string> bad[] = {
      {"unknown op", with("\"gelu\"", "\"swish\"")},
      {"missing weight", with("\"fc_w\"", "\"fc_x\"")},
      {"bias shape", with("\"fc_b\"", "\"ln_w\"")},
      {"unknown attr", with("{\"eps\": 1e-5}", "{\"eps\": 1e-5, \"axis\": 1}")},
      {"missing attr", with("{\"approximate\": \"tanh\"}", "{}")},
      {"attr type", with("{\"axis\": -1}", "{\"axis\": \"last\"}")},
      {"gelu mode", with("\"tanh\"", "\"fast\"")},
      {"use before def", with("[\"m\"], \"out\": [\"s\"]", "[\"zz\"], \"out\": [\"s\"]")},
      {"duplicate out", with("\"out\": [\"s\"]", "\"out\": [\"g\"]")},
      {"out is weight", with("\"out\": [\"s\"]", "\"out\": [\"emb\"]")},
      {"output dtype", with("\"shape\": [\"batch\", 3]", "\"shape\": [\"batch\", 3], \"x\": 1")},
      {"dtype mismatch", with("[\"ids\", \"emb\"]", "[\"emb\", \"emb\"]")},
      {"too many inputs", with("[\"g\"]", "[\"g\", \"g\"]")},
      {"extra node key", with("\"path\": \"act\"", "\"path\": \"act\", \"name\": \"x\"")},
      {"version", with("\"version\": 1", "\"version\": 2")},
      {"null required", with("[\"n\", \"fc_w\", \"fc_b\"]", "[\"n\", null, \"fc_b\"]")},
      {"graph output missing", with("\"name\": \"out\", \"dtype\"", "\"name\": \"nothing\", \"dtype\"")},
      {"not json", "{"},
  };
  for (auto& b : bad) {
    bool threw = false;
    try {
      Graph g(b.second, refs(ws));
    } catch (const SeedError& e) {
      threw = true;
      if (std::string(b.first) == "unknown op")
        CHECK_MSG(std::string(e.what()).find("node 3 (swish, path 'act')") != std::string::npos, "%s", e.what());
    }
    CHECK_MSG(threw, "bad graph accepted: %s", b.first);
  }
  // A weight whose shape does not fit the op is named at load.
  ws["fc_w"] = {randn(12), {12}};
  CHECK_THROWS_SEED("1-D linear weight", Graph(good, refs(ws)));
}

}  // namespace

int main() {
  test_gemm();
  test_gemm_micro_twins();
  test_gemm_pack_bt_twins();
  test_depthwise();
  test_depthwise_plane();
  test_activations();
  test_conv_graph();
  test_mlp_graph();
  test_bad_graphs();
  return seedtest::finish("test_graph");
}

// The backward pass of every op of the graph op set (docs/format.md section 4), from
// the forward values the trainer kept. Each function adds into the gradients of the
// inputs that need one (ctx.needs), in a fixed order: the result never depends on the
// thread count. Dense work (linear, matmul, conv2d) goes through the executor's GEMM.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "train/trainer_internal.h"

namespace seedcore::train {

using graph::Node;
using graph::Op;
using graph::Value;

namespace {

constexpr double kPi = 3.14159265358979323846;

struct NodeIO {
  const Node& n;
  BackwardContext& ctx;
  const Value& in(size_t i) const { return ctx.values[size_t(n.in[i])]; }
  bool has(size_t i) const { return i < n.in.size() && n.in[i] >= 0; }
  bool want(size_t i) const {
    return has(i) && ctx.needs[size_t(n.in[i])] && in(i).dtype == ElemType::f32;
  }
  float* grad(size_t i) { return ctx.grads.at(n.in[i], in(i).numel()); }
  const Value& out() const { return ctx.values[size_t(n.out)]; }
  const float* dy() const { return ctx.grads.g[size_t(n.out)].data(); }
};

void split_axis(const std::vector<int64_t>& shape, int64_t axis, int64_t& outer, int64_t& len, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= shape[size_t(d)];
  len = shape[size_t(axis)];
  for (size_t d = size_t(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
}

int64_t norm_axis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

// Σ x[i], i < n: 16 float partial sums (vectorised; each sees a fixed set of i, so the
// result depends on nothing but x), then added in double.
double row_sum(const float* x, int64_t n) {
  float part[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) part[k] += x[i + k];
  double s = 0.0;
  for (int k = 0; k < 16; ++k) s += part[k];
  for (; i < n; ++i) s += x[i];
  return s;
}

// ---- dense -------------------------------------------------------------------

void linear_backward(NodeIO& io) {
  const Value& x = io.in(0);
  const Value& w = io.in(1);
  const int64_t N = w.shape[0], K = w.shape[1];
  const int64_t M = K > 0 ? x.numel() / K : io.out().numel() / std::max<int64_t>(N, 1);
  const float* dy = io.dy();
  if (io.want(0) && M > 0 && K > 0) {  // dx[M,K] += dy[M,N] · W[N,K]
    GemmArgs g;
    g.M = M; g.N = K; g.K = N;
    g.a = dy; g.a_rs = N; g.a_cs = 1;
    g.b = w.f32(); g.b_ks = K; g.b_ns = 1;
    g.c = io.grad(0); g.c_rs = K; g.c_cs = 1;
    g.accumulate = true;
    gemm(g, io.ctx.kernels, io.ctx.runner);
  }
  if (io.want(1) && M > 0) {  // dW[N,K] += dyᵀ[N,M] · x[M,K]
    GemmArgs g;
    g.M = N; g.N = K; g.K = M;
    g.a = dy; g.a_rs = 1; g.a_cs = N;
    g.b = x.f32(); g.b_ks = K; g.b_ns = 1;
    g.c = io.grad(1); g.c_rs = K; g.c_cs = 1;
    g.accumulate = true;
    gemm(g, io.ctx.kernels, io.ctx.runner);
  }
  if (io.want(2)) {
    float* db = io.grad(2);
    std::vector<double> acc(size_t(N), 0.0);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) acc[size_t(j)] += dy[i * N + j];
    for (int64_t j = 0; j < N; ++j) db[j] += float(acc[size_t(j)]);
  }
}

void matmul_backward(NodeIO& io) {
  const Value& a = io.in(0);
  const Value& b = io.in(1);
  const size_t ra = a.shape.size(), rb = b.shape.size();
  const int64_t M = a.shape[ra - 2], K = a.shape[ra - 1], N = b.shape[rb - 1];
  const size_t rbatch = std::max(ra, rb) - 2;
  std::vector<int64_t> batch(rbatch), sa(rbatch, 0), sb(rbatch, 0);
  for (size_t d = 0; d < rbatch; ++d) {
    const int64_t ia = int64_t(d) - int64_t(rbatch - (ra - 2)), ib = int64_t(d) - int64_t(rbatch - (rb - 2));
    const int64_t da = ia >= 0 ? a.shape[size_t(ia)] : 1, db = ib >= 0 ? b.shape[size_t(ib)] : 1;
    batch[d] = (da == 0 || db == 0) ? 0 : std::max(da, db);
  }
  int64_t s = M * K;
  for (size_t d = rbatch; d-- > 0;) {
    const int64_t ia = int64_t(d) - int64_t(rbatch - (ra - 2));
    if (ia >= 0) { sa[d] = a.shape[size_t(ia)] == 1 ? 0 : s; s *= a.shape[size_t(ia)]; }
  }
  s = K * N;
  for (size_t d = rbatch; d-- > 0;) {
    const int64_t ib = int64_t(d) - int64_t(rbatch - (rb - 2));
    if (ib >= 0) { sb[d] = b.shape[size_t(ib)] == 1 ? 0 : s; s *= b.shape[size_t(ib)]; }
  }
  int64_t nb = 1;
  for (int64_t d : batch) nb *= d;
  const bool wa = io.want(0), wb = io.want(1);
  float* ga = wa ? io.grad(0) : nullptr;
  float* gb = wb ? io.grad(1) : nullptr;
  const float* dy = io.dy();
  for (int64_t t = 0; t < nb; ++t) {
    int64_t rem = t, oa = 0, ob = 0;
    for (size_t d = rbatch; d-- > 0;) {
      const int64_t i = rem % batch[d];
      rem /= batch[d];
      oa += i * sa[d];
      ob += i * sb[d];
    }
    const float* dyt = dy + t * M * N;
    if (wa && M > 0 && K > 0) {  // dA[M,K] += dY[M,N] · Bᵀ
      GemmArgs g;
      g.M = M; g.N = K; g.K = N;
      g.a = dyt; g.a_rs = N; g.a_cs = 1;
      g.b = b.f32() + ob; g.b_ks = 1; g.b_ns = N;
      g.c = ga + oa; g.c_rs = K; g.c_cs = 1;
      g.accumulate = true;
      gemm(g, io.ctx.kernels, io.ctx.runner);
    }
    if (wb && K > 0 && N > 0) {  // dB[K,N] += Aᵀ · dY
      GemmArgs g;
      g.M = K; g.N = N; g.K = M;
      g.a = a.f32() + oa; g.a_rs = 1; g.a_cs = K;
      g.b = dyt; g.b_ks = N; g.b_ns = 1;
      g.c = gb + ob; g.c_rs = N; g.c_cs = 1;
      g.accumulate = true;
      gemm(g, io.ctx.kernels, io.ctx.runner);
    }
  }
}

// ---- convolution and pools ---------------------------------------------------

struct ConvGeom {
  int64_t N, C, H, W, OC, Cg, KH, KW, G, OH, OW, P, OCg, Kg;
  int64_t sh, sw, ph, pw, dh, dw;
};

ConvGeom conv_geom(const Node& n, const Value& x, const Value& w, const Value& y) {
  ConvGeom c;
  c.N = x.shape[0]; c.C = x.shape[1]; c.H = x.shape[2]; c.W = x.shape[3];
  c.OC = w.shape[0]; c.Cg = w.shape[1]; c.KH = w.shape[2]; c.KW = w.shape[3];
  c.G = n.attrs.groups;
  c.OH = y.shape[2]; c.OW = y.shape[3];
  c.P = c.OH * c.OW; c.OCg = c.OC / c.G; c.Kg = c.Cg * c.KH * c.KW;
  c.sh = n.attrs.stride[0]; c.sw = n.attrs.stride[1];
  c.ph = n.attrs.padding[0]; c.pw = n.attrs.padding[1];
  c.dh = n.attrs.dilation[0]; c.dw = n.attrs.dilation[1];
  return c;
}

// col[r, p] for r = (c, kh, kw) of one group's Cg channels starting at xg.
void im2col(const ConvGeom& g, const float* xg, float* col, TaskRunner* runner) {
  runner->run(size_t(g.Kg), [&](size_t r, unsigned) {
    const int64_t kw = int64_t(r) % g.KW, kh = (int64_t(r) / g.KW) % g.KH, c = int64_t(r) / (g.KW * g.KH);
    float* dst = col + int64_t(r) * g.P;
    const float* plane = xg + c * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
      float* drow = dst + oh * g.OW;
      if (ih < 0 || ih >= g.H) {
        std::fill(drow, drow + g.OW, 0.0f);
        continue;
      }
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t iw = ow * g.sw - g.pw + kw * g.dw;
        drow[ow] = (iw >= 0 && iw < g.W) ? plane[ih * g.W + iw] : 0.0f;
      }
    }
  });
}

// dx (one group's Cg channels) += col2im(dcol): each input channel gathers from its
// own rows of dcol, in a fixed (kh, kw, oh, ow) order.
void col2im_add(const ConvGeom& g, const float* dcol, float* dxg, TaskRunner* runner) {
  runner->run(size_t(g.Cg), [&](size_t cc, unsigned) {
    const int64_t c = int64_t(cc);
    float* plane = dxg + c * g.H * g.W;
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const float* src = dcol + ((c * g.KH + kh) * g.KW + kw) * g.P;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          const float* srow = src + oh * g.OW;
          float* prow = plane + ih * g.W;
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            const int64_t iw = ow * g.sw - g.pw + kw * g.dw;
            if (iw >= 0 && iw < g.W) prow[iw] += srow[ow];
          }
        }
      }
  });
}

// plane (one input channel, H x W) += col2im of its KH * KW rows of dcols (P floats
// each), in (kh, kw, oh, ow) order for every element. Geometry by value: in the
// thread pool's lambda every bound was reloaded through a reference on each add.
void col2im_plane_add(const ConvGeom g, const float* rows, float* plane) {
  if (g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1) {
    // stride 1: through a zero-bordered copy of the plane, so that no tap needs bounds
    const int64_t Wp = g.W + 2 * g.pw;
    thread_local std::vector<float> buf;
    float* pp = padded_plane(buf, plane, g.H, g.W, g.ph, g.pw, 0);
    const int64_t OH = g.OH, OW = g.OW;
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw, rows += g.P) {
        float* dst = pp + kh * Wp + kw;
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) dst[oh * Wp + ow] += rows[oh * OW + ow];
      }
    for (int64_t h = 0; h < g.H; ++h)
      for (int64_t w = 0; w < g.W; ++w) plane[h * g.W + w] = pp[(h + g.ph) * Wp + g.pw + w];
    return;
  }
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw, rows += g.P) {
      const int64_t off = kw * g.dw - g.pw;
      const int64_t lo = std::min<int64_t>(g.OW, off >= 0 ? 0 : (-off + g.sw - 1) / g.sw);
      const int64_t hi = std::max<int64_t>(lo, std::min<int64_t>(g.OW, g.W - off > 0 ? (g.W - off + g.sw - 1) / g.sw : 0));
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        const float* srow = rows + oh * g.OW;
        float* prow = plane + ih * g.W + off;
        if (g.sw == 1)
          for (int64_t ow = lo; ow < hi; ++ow) prow[ow] += srow[ow];
        else
          for (int64_t ow = lo; ow < hi; ++ow) prow[ow * g.sw] += srow[ow];
      }
    }
}

// One output row of im2col_t_s1 (its OW rows of colsT). A function with its bounds by
// value: in the lambda they were members of the closure, reloaded after every memcpy
// (char-typed stores may alias them), which doubled the loop.
void im2col_t_row(const float* src, const int64_t* runs, int64_t n_runs, int64_t KW, int64_t OW, int64_t Kg,
                  int64_t ldc, float* dst) {
  for (int64_t ow = 0; ow < OW; ++ow, dst += ldc) {
    const float* s = src + ow;
    if (KW > 4 && KW <= 8) {  // LeNet's 5x5: two pieces per run, no inner loop
      for (int64_t j = 0; j < n_runs; ++j) {
        std::memcpy(dst + j * KW, s + runs[j], 16);
        std::memcpy(dst + j * KW + 4, s + runs[j] + 4, 16);
      }
    } else {
      const int64_t pieces = (KW + 3) / 4;
      for (int64_t j = 0; j < n_runs; ++j)
        for (int64_t q = 0; q < pieces; ++q) std::memcpy(dst + j * KW + 4 * q, s + runs[j] + 4 * q, 16);
    }
    for (int64_t r = Kg; r < ldc; ++r) dst[r] = 0.0f;
  }
}

// Stride 1, dilation 1: the transposed im2col of one image, colsT[p, r] (row stride
// ldc >= Kg + 3, columns past Kg zero) for p = (oh, ow), r = (c, kh, kw), from
// zero-bordered copies of its planes. Each (c, kh) run of KW floats is copied in whole
// 4-float pieces: the overrun lands on the next run of the row (written after it) or on
// the row's zero columns (written last). One output row oh per task.
void im2col_t_s1(const ConvGeom g, const float* ximg, int64_t ldc, float* dst, TaskRunner* runner) {
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, plane = Hp * Wp;
  thread_local std::vector<float> pad;
  if (pad.size() < size_t(g.C * plane + 4)) pad.resize(size_t(g.C * plane + 4));
  for (int64_t c = 0; c < g.C; ++c) pad_plane_into(ximg + c * g.H * g.W, g.H, g.W, g.ph, g.pw, pad.data() + c * plane);
  std::fill(pad.data() + g.C * plane, pad.data() + g.C * plane + 4, 0.0f);
  thread_local std::vector<int64_t> run_src;  // per (c, kh) run: its offset in pad
  run_src.resize(size_t(g.C * g.KH));
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh) run_src[size_t(c * g.KH + kh)] = c * plane + kh * Wp;
  const float* src = pad.data();
  const int64_t* runs = run_src.data();
  const int64_t n_runs = g.C * g.KH, KW = g.KW, OW = g.OW, Kg = g.Kg;
  runner->run(size_t(g.OH), [=](size_t t, unsigned) {
    im2col_t_row(src + int64_t(t) * Wp, runs, n_runs, KW, OW, Kg, ldc, dst + int64_t(t) * OW * ldc);
  });
}

// conv2d after the trainer's forward (groups 1, im2col image by image).
void conv2d_backward_batched(NodeIO& io, const ConvGeom& g, NodeAux& aux) {
  const float* dy = io.dy();
  const int64_t KgP = g.Kg * g.P;
  if (io.want(2)) {
    float* db = io.grad(2);
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      double s = 0.0;
      for (int64_t img = 0; img < g.N; ++img) s += row_sum(dy + (img * g.OC + oc) * g.P, g.P);
      db[oc] += float(s);
    }
  }
  if (io.want(1)) {  // dW[OC, Kg] += Σ_img dy_img[OC, P] · cols_imgᵀ
    float* dw = io.grad(1);
    const Value& x = io.in(0);
    const graph::Attrs& a = io.n.attrs;
    const int64_t NR = io.ctx.kernels.nr;
    const int64_t ldc = (g.Kg + 3 + NR - 1) / NR * NR;  // whole B panels, room for im2col_t_s1's overrun
    if (g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1) {
      // colsᵀ [P, ldc] built directly (KW floats per copy), read in place as the GEMM's
      // B: no transposing pack. The images accumulate into a zeroed [OC, ldc] block
      // (the columns past Kg are zero), added to dW at the end.
      aux.cols.resize(size_t(g.P * ldc));
      std::vector<float>& acc = io.ctx.scratch1;
      acc.assign(size_t(g.OC * ldc), 0.0f);
      for (int64_t img = 0; img < g.N; ++img) {
        im2col_t_s1(g, x.f32() + img * g.C * g.H * g.W, ldc, aux.cols.data(), io.ctx.runner);
        GemmArgs ga;
        ga.M = g.OC; ga.N = ldc; ga.K = g.P;
        ga.a = dy + img * g.OC * g.P; ga.a_rs = g.P; ga.a_cs = 1;
        ga.b = aux.cols.data(); ga.b_ks = ldc; ga.b_ns = 1;
        ga.c = acc.data(); ga.c_rs = ldc; ga.c_cs = 1;
        ga.accumulate = true;
        gemm(ga, io.ctx.kernels, io.ctx.runner);
      }
      for (int64_t oc = 0; oc < g.OC; ++oc)
        for (int64_t r = 0; r < g.Kg; ++r) dw[oc * g.Kg + r] += acc[size_t(oc * ldc + r)];
    } else {  // each image's im2col rebuilt, read transposed (the GEMM packs it)
      aux.cols.resize(size_t(KgP));
      for (int64_t img = 0; img < g.N; ++img) {
        im2col_batch(x.f32() + img * g.C * g.H * g.W, 1, g.C, g.H, g.W, g.KH, g.KW, g.OH, g.OW, a.stride, a.padding,
                     a.dilation, aux.cols.data(), io.ctx.runner);
        GemmArgs ga;
        ga.M = g.OC; ga.N = g.Kg; ga.K = g.P;
        ga.a = dy + img * g.OC * g.P; ga.a_rs = g.P; ga.a_cs = 1;
        ga.b = aux.cols.data(); ga.b_ks = 1; ga.b_ns = g.P;
        ga.c = dw; ga.c_rs = g.Kg; ga.c_cs = 1;
        ga.accumulate = true;
        gemm(ga, io.ctx.kernels, io.ctx.runner);
      }
    }
  }
  if (io.want(0)) {  // per image: dcols[Kg, P] = Wᵀ · dy_img, then scattered back onto dx_img (in cache)
    std::vector<float>& dcols = io.ctx.scratch2;
    if (dcols.size() < size_t(KgP)) dcols.resize(size_t(KgP));
    float* dx = io.grad(0);
    const float* dc = dcols.data();
    GemmArgs wt;  // Wᵀ, packed once for all the images
    wt.M = g.Kg; wt.K = g.OC;
    wt.a = io.in(1).f32(); wt.a_rs = 1; wt.a_cs = g.Kg;
    const std::vector<float> wt_packed = gemm_pack_a(wt, io.ctx.kernels);
    for (int64_t img = 0; img < g.N; ++img) {
      GemmArgs ga;
      ga.M = g.Kg; ga.N = g.P; ga.K = g.OC;
      ga.a = io.in(1).f32(); ga.a_rs = 1; ga.a_cs = g.Kg;
      ga.a_packed = wt_packed.data();
      ga.b = dy + img * g.OC * g.P; ga.b_ks = g.P; ga.b_ns = 1;
      ga.c = dcols.data(); ga.c_rs = g.P; ga.c_cs = 1;
      gemm(ga, io.ctx.kernels, io.ctx.runner);
      io.ctx.runner->run(size_t(g.C), [&](size_t t, unsigned) {  // one input plane per task: disjoint writes
        const int64_t c = int64_t(t);
        col2im_plane_add(g, dc + c * g.KH * g.KW * g.P, dx + (img * g.C + c) * g.H * g.W);
      });
    }
  }
}

void conv2d_backward(NodeIO& io) {
  const Value& x = io.in(0);
  const Value& w = io.in(1);
  const ConvGeom g = conv_geom(io.n, x, w, io.out());
  NodeAux& aux = io.ctx.aux[io.n.index];
  if (aux.used) return conv2d_backward_batched(io, g, aux);
  const float* dy = io.dy();
  const float* xp = x.f32();
  const float* wp = w.f32();
  const bool wx = io.want(0), ww = io.want(1), wbias = io.want(2);
  float* dx = wx ? io.grad(0) : nullptr;
  float* dw = ww ? io.grad(1) : nullptr;
  TaskRunner* runner = io.ctx.runner;
  if (wbias) {
    float* db = io.grad(2);
    std::vector<double> acc(size_t(g.OC), 0.0);
    for (int64_t img = 0; img < g.N; ++img)
      for (int64_t oc = 0; oc < g.OC; ++oc) {
        const float* row = dy + (img * g.OC + oc) * g.P;
        double s = 0.0;
        for (int64_t p = 0; p < g.P; ++p) s += row[p];
        acc[size_t(oc)] += s;
      }
    for (int64_t oc = 0; oc < g.OC; ++oc) db[oc] += float(acc[size_t(oc)]);
  }
  if (!wx && !ww) return;
  if (g.Cg == 1 && g.OCg == 1) {  // depthwise: direct loops, one channel per task
    const int64_t KK = g.KH * g.KW;
    std::vector<float>& dw_part = io.ctx.scratch1;
    if (ww) dw_part.resize(size_t(g.N * g.C * KK));
    runner->run(size_t(g.C), [&](size_t cc, unsigned) {
      const int64_t c = int64_t(cc);
      for (int64_t img = 0; img < g.N; ++img) {
        const float* xpl = xp + (img * g.C + c) * g.H * g.W;
        const float* dpl = dy + (img * g.C + c) * g.P;
        float* dxpl = dx ? dx + (img * g.C + c) * g.H * g.W : nullptr;
        float* dwp = ww ? dw_part.data() + (img * g.C + c) * KK : nullptr;
        for (int64_t kh = 0; kh < g.KH; ++kh)
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            const float wv = wp[c * KK + kh * g.KW + kw];
            double acc = 0.0;
            for (int64_t oh = 0; oh < g.OH; ++oh) {
              const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
              if (ih < 0 || ih >= g.H) continue;
              for (int64_t ow = 0; ow < g.OW; ++ow) {
                const int64_t iw = ow * g.sw - g.pw + kw * g.dw;
                if (iw < 0 || iw >= g.W) continue;
                const float d = dpl[oh * g.OW + ow];
                if (dxpl) dxpl[ih * g.W + iw] += d * wv;
                acc += double(d) * xpl[ih * g.W + iw];
              }
            }
            if (dwp) dwp[kh * g.KW + kw] = float(acc);
          }
      }
    });
    if (ww)
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t img = 0; img < g.N; ++img)
          for (int64_t k = 0; k < KK; ++k) dw[c * KK + k] += dw_part[size_t((img * g.C + c) * KK + k)];
    return;
  }
  const bool pointwise = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
  std::vector<float>& col = io.ctx.scratch1;
  std::vector<float>& dcol = io.ctx.scratch2;
  if (!pointwise && ww && col.size() < size_t(g.Kg * g.P)) col.resize(size_t(g.Kg * g.P));
  if (!pointwise && wx && dcol.size() < size_t(g.Kg * g.P)) dcol.resize(size_t(g.Kg * g.P));
  for (int64_t img = 0; img < g.N; ++img)
    for (int64_t gi = 0; gi < g.G; ++gi) {
      const float* xg = xp + (img * g.C + gi * g.Cg) * g.H * g.W;
      const float* dyg = dy + (img * g.OC + gi * g.OCg) * g.P;
      if (ww) {  // dW_g[OCg, Kg] += dy_g[OCg, P] · colᵀ[P, Kg]
        const float* B = xg;
        if (!pointwise) {
          im2col(g, xg, col.data(), runner);
          B = col.data();
        }
        GemmArgs ga;
        ga.M = g.OCg; ga.N = g.Kg; ga.K = g.P;
        ga.a = dyg; ga.a_rs = g.P; ga.a_cs = 1;
        ga.b = B; ga.b_ks = 1; ga.b_ns = g.P;
        ga.c = dw + gi * g.OCg * g.Kg; ga.c_rs = g.Kg; ga.c_cs = 1;
        ga.accumulate = true;
        gemm(ga, io.ctx.kernels, runner);
      }
      if (wx) {  // dcol[Kg, P] = W_gᵀ[Kg, OCg] · dy_g[OCg, P], then col2im into dx
        float* dxg = dx + (img * g.C + gi * g.Cg) * g.H * g.W;
        GemmArgs ga;
        ga.M = g.Kg; ga.N = g.P; ga.K = g.OCg;
        ga.a = wp + gi * g.OCg * g.Kg; ga.a_rs = 1; ga.a_cs = g.Kg;
        ga.b = dyg; ga.b_ks = g.P; ga.b_ns = 1;
        if (pointwise) {
          ga.c = dxg; ga.accumulate = true;
        } else {
          ga.c = dcol.data();
        }
        ga.c_rs = g.P; ga.c_cs = 1;
        gemm(ga, io.ctx.kernels, runner);
        if (!pointwise) col2im_add(g, dcol.data(), dxg, runner);
      }
    }
}

void max_pool_backward(NodeIO& io) {
  if (!io.want(0)) return;
  const Value& x = io.in(0);
  const Value& y = io.out();
  const NodeAux& aux = io.ctx.aux[io.n.index];
  if (aux.used) {  // the trainer's forward kept where each maximum is
    const int64_t HW = x.shape[2] * x.shape[3], OHW = y.shape[2] * y.shape[3];
    const int64_t planes = x.shape[0] * x.shape[1];
    const float* dy = io.dy();
    // relu -> max_pool2d with the relu's output read only here: the gradient goes
    // straight to the relu's input (where it is > 0) and the relu's backward is skipped
    // (a pass over memory fewer, and no zeroed buffer for the relu's output).
    const int xs = io.n.in[0];
    const int pi = io.ctx.producer[size_t(xs)];
    if (pi >= 0 && io.ctx.consumers[size_t(xs)] == 1 && io.ctx.nodes[size_t(pi)].op == Op::relu) {
      const int rs = io.ctx.nodes[size_t(pi)].in[0];
      if (rs >= 0 && io.ctx.needs[size_t(rs)] && io.ctx.values[size_t(rs)].dtype == ElemType::f32) {
        const float* xin = io.ctx.values[size_t(rs)].f32();
        float* dx = io.ctx.grads.at(rs, x.numel());
        for (int64_t t = 0; t < planes; ++t) {
          const int32_t* arg = aux.arg.data() + t * OHW;
          const float* d = dy + t * OHW;
          float* dst = dx + t * HW;
          const float* xi = xin + t * HW;
          for (int64_t o = 0; o < OHW; ++o) {  // a select, not a branch (random signs mispredict)
            const float v = dst[arg[o]];
            dst[arg[o]] = xi[arg[o]] > 0 ? v + d[o] : v;
          }
        }
        return;
      }
    }
    float* dx = io.grad(0);
    for (int64_t t = 0; t < planes; ++t) {
      const int32_t* arg = aux.arg.data() + t * OHW;
      const float* d = dy + t * OHW;
      float* dst = dx + t * HW;
      for (int64_t o = 0; o < OHW; ++o) dst[arg[o]] += d[o];
    }
    return;
  }
  const graph::Attrs& a = io.n.attrs;
  const int64_t H = x.shape[2], W = x.shape[3], OH = y.shape[2], OW = y.shape[3];
  const int64_t planes = x.shape[0] * x.shape[1];
  const float* xp = x.f32();
  const float* dy = io.dy();
  float* dx = io.grad(0);
  io.ctx.runner->run(size_t(planes), [&](size_t t, unsigned) {
    const float* src = xp + int64_t(t) * H * W;
    const float* d = dy + int64_t(t) * OH * OW;
    float* dst = dx + int64_t(t) * H * W;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        float m = -std::numeric_limits<float>::infinity();
        int64_t arg = -1;
        for (int64_t kh = 0; kh < a.kernel[0]; ++kh) {
          const int64_t ih = oh * a.stride[0] - a.padding[0] + kh;
          if (ih < 0 || ih >= H) continue;
          for (int64_t kw = 0; kw < a.kernel[1]; ++kw) {
            const int64_t iw = ow * a.stride[1] - a.padding[1] + kw;
            if (iw < 0 || iw >= W) continue;
            const float v = src[ih * W + iw];
            if (arg < 0 || v > m || v != v) { m = v; arg = ih * W + iw; }  // first maximum, as torch
          }
        }
        if (arg >= 0) dst[arg] += d[oh * OW + ow];
      }
  });
}

void avg_pool_global_backward(NodeIO& io) {
  if (!io.want(0)) return;
  const Value& x = io.in(0);
  const int64_t NC = x.shape[0] * x.shape[1], HW = x.shape[2] * x.shape[3];
  const float* dy = io.dy();
  float* dx = io.grad(0);
  const float inv = float(1.0 / double(HW));
  for (int64_t t = 0; t < NC; ++t) {
    const float v = dy[t] * inv;
    for (int64_t i = 0; i < HW; ++i) dx[t * HW + i] += v;
  }
}

// ---- norms -----------------------------------------------------------------------

void batch_norm_backward(NodeIO& io) {
  const Value& x = io.in(0);
  const int64_t C = x.shape[1];
  int64_t outer, len, inner;
  split_axis(x.shape, 1, outer, len, inner);
  const float *xp = x.f32(), *w = io.in(1).f32(), *mu = io.in(3).f32(), *var = io.in(4).f32();
  const float eps = float(io.n.attrs.eps);
  const float* dy = io.dy();
  float* dx = io.want(0) ? io.grad(0) : nullptr;
  std::vector<double> sdy(size_t(C), 0.0), sdyx(size_t(C), 0.0);  // Σ dy, Σ dy (x - mean)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < C; ++c) {
      const float inv = 1.0f / std::sqrt(var[c] + eps);
      const int64_t base = (o * C + c) * inner;
      double s0 = 0.0, s1 = 0.0;
      for (int64_t i = 0; i < inner; ++i) {
        const float d = dy[base + i];
        s0 += d;
        s1 += double(d) * (xp[base + i] - mu[c]);
        if (dx) dx[base + i] += d * inv * w[c];
      }
      sdy[size_t(c)] += s0;
      sdyx[size_t(c)] += s1;
    }
  for (int64_t c = 0; c < C; ++c) {
    const double inv = 1.0 / std::sqrt(double(var[c]) + double(eps));
    if (io.want(1)) io.grad(1)[c] += float(sdyx[size_t(c)] * inv);
    if (io.want(2)) io.grad(2)[c] += float(sdy[size_t(c)]);
    if (io.want(3)) io.grad(3)[c] += float(-sdy[size_t(c)] * w[c] * inv);
    if (io.want(4)) io.grad(4)[c] += float(-0.5 * sdyx[size_t(c)] * w[c] * inv * inv * inv);
  }
}

void layer_norm_backward(NodeIO& io) {
  const Value& x = io.in(0);
  const int64_t D = x.shape.back();
  const int64_t rows = D > 0 ? x.numel() / D : 0;
  const float* xp = x.f32();
  const float* w = io.has(1) ? io.in(1).f32() : nullptr;
  const double eps = io.n.attrs.eps;
  const float* dy = io.dy();
  float* dx = io.want(0) ? io.grad(0) : nullptr;
  std::vector<double> gw(io.want(1) ? size_t(D) : 0, 0.0), gb(io.want(2) ? size_t(D) : 0, 0.0);
  std::vector<double> xhat(static_cast<size_t>(D)), g(static_cast<size_t>(D));
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = xp + r * D;
    const float* dr = dy + r * D;
    double mean = 0.0;
    for (int64_t k = 0; k < D; ++k) mean += xr[k];
    mean /= double(D);
    double var = 0.0;
    for (int64_t k = 0; k < D; ++k) var += (xr[k] - mean) * (xr[k] - mean);
    var /= double(D);
    const double rstd = 1.0 / std::sqrt(var + eps);
    double m1 = 0.0, m2 = 0.0;
    for (int64_t k = 0; k < D; ++k) {
      xhat[size_t(k)] = (xr[k] - mean) * rstd;
      g[size_t(k)] = double(dr[k]) * (w ? w[k] : 1.0f);
      m1 += g[size_t(k)];
      m2 += g[size_t(k)] * xhat[size_t(k)];
      if (!gw.empty()) gw[size_t(k)] += double(dr[k]) * xhat[size_t(k)];
      if (!gb.empty()) gb[size_t(k)] += dr[k];
    }
    m1 /= double(D);
    m2 /= double(D);
    if (dx)
      for (int64_t k = 0; k < D; ++k) dx[r * D + k] += float(rstd * (g[size_t(k)] - m1 - xhat[size_t(k)] * m2));
  }
  if (!gw.empty()) { float* d = io.grad(1); for (int64_t k = 0; k < D; ++k) d[k] += float(gw[size_t(k)]); }
  if (!gb.empty()) { float* d = io.grad(2); for (int64_t k = 0; k < D; ++k) d[k] += float(gb[size_t(k)]); }
}

void softmax_backward(NodeIO& io) {
  if (!io.want(0)) return;
  const Value& y = io.out();
  const int64_t axis = norm_axis(io.n.attrs.axis, int64_t(y.shape.size()));
  int64_t outer, len, inner;
  split_axis(y.shape, axis, outer, len, inner);
  const float* yp = y.f32();
  const float* dy = io.dy();
  float* dx = io.grad(0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * len * inner + i;
      double s = 0.0;
      for (int64_t k = 0; k < len; ++k) s += double(dy[base + k * inner]) * yp[base + k * inner];
      const float fs = float(s);
      for (int64_t k = 0; k < len; ++k) dx[base + k * inner] += yp[base + k * inner] * (dy[base + k * inner] - fs);
    }
}

void normalize_backward(NodeIO& io) {
  if (!io.want(0)) return;
  const Value& x = io.in(0);
  const int64_t axis = norm_axis(io.n.attrs.axis, int64_t(x.shape.size()));
  int64_t outer, len, inner;
  split_axis(x.shape, axis, outer, len, inner);
  const float* xp = x.f32();
  const float* dy = io.dy();
  float* dx = io.grad(0);
  const double eps = io.n.attrs.eps;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * len * inner + i;
      double ss = 0.0, dot = 0.0;
      for (int64_t k = 0; k < len; ++k) {
        const double v = xp[base + k * inner];
        ss += v * v;
        dot += v * dy[base + k * inner];
      }
      const double norm = std::sqrt(ss);
      if (norm > eps) {  // y = x / |x|: dx = (dy - x (x·dy) / |x|²) / |x|
        for (int64_t k = 0; k < len; ++k)
          dx[base + k * inner] += float((dy[base + k * inner] - xp[base + k * inner] * dot / ss) / norm);
      } else {  // y = x / eps
        for (int64_t k = 0; k < len; ++k) dx[base + k * inner] += float(dy[base + k * inner] / eps);
      }
    }
}

void reduce_backward(NodeIO& io) {
  if (!io.want(0)) return;
  const Value& x = io.in(0);
  const Value& y = io.out();
  const int64_t rank = int64_t(x.shape.size());
  std::vector<char> reduced(size_t(rank), 0);
  for (int64_t ax : io.n.attrs.axes) reduced[size_t(norm_axis(ax, rank))] = 1;
  std::vector<int64_t> ostride(size_t(rank), 0);
  int64_t count = 1, s = 1;
  for (int64_t d = rank; d-- > 0;) {
    if (reduced[size_t(d)]) count *= x.shape[size_t(d)];
    else { ostride[size_t(d)] = s; s *= x.shape[size_t(d)]; }
  }
  const float* dy = io.dy();
  const float* xp = x.f32();
  const float* yp = y.f32();
  float* dx = io.grad(0);
  const int64_t total = x.numel();
  std::vector<int64_t> ties;
  if (io.n.op == Op::max) {  // amax: the gradient is shared among the maxima (as torch.amax)
    ties.assign(size_t(y.numel()), 0);
    std::vector<int64_t> idx(size_t(rank), 0);
    int64_t o = 0;
    for (int64_t i = 0; i < total; ++i) {
      if (xp[i] == yp[o]) ++ties[size_t(o)];
      for (int64_t d = rank; d-- > 0;) {
        ++idx[size_t(d)];
        o += ostride[size_t(d)];
        if (idx[size_t(d)] < x.shape[size_t(d)]) break;
        o -= ostride[size_t(d)] * x.shape[size_t(d)];
        idx[size_t(d)] = 0;
      }
    }
  }
  std::vector<int64_t> idx(size_t(rank), 0);
  int64_t o = 0;
  const float scale = io.n.op == Op::mean ? float(1.0 / double(count)) : 1.0f;
  for (int64_t i = 0; i < total; ++i) {
    if (io.n.op == Op::max) {
      if (xp[i] == yp[o]) dx[i] += dy[o] / float(ties[size_t(o)]);
    } else {
      dx[i] += dy[o] * scale;
    }
    for (int64_t d = rank; d-- > 0;) {
      ++idx[size_t(d)];
      o += ostride[size_t(d)];
      if (idx[size_t(d)] < x.shape[size_t(d)]) break;
      o -= ostride[size_t(d)] * x.shape[size_t(d)];
      idx[size_t(d)] = 0;
    }
  }
}

// ---- elementwise -------------------------------------------------------------------

double gelu_grad(double x, bool tanh_approx) {
  if (tanh_approx) {
    const double c = std::sqrt(2.0 / kPi);
    const double u = c * (x + 0.044715 * x * x * x);
    const double t = std::tanh(u);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x);
  }
  const double cdf = 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
  const double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * kPi);
  return cdf + x * pdf;
}

void unary_backward(NodeIO& io) {
  if (!io.want(0)) return;
  if (io.n.op == Op::relu) {  // the hot one: written, not added, when it is the first contribution
    bool fresh = false;
    float* dx = io.ctx.grads.at_fresh(io.n.in[0], io.in(0).numel(), fresh);
    const float* xp = io.in(0).f32();
    const float* dy = io.dy();
    const int64_t n = io.in(0).numel();
    if (fresh) for (int64_t i = 0; i < n; ++i) dx[i] = xp[i] > 0 ? dy[i] : 0.0f;
    else for (int64_t i = 0; i < n; ++i) dx[i] += xp[i] > 0 ? dy[i] : 0.0f;
    return;
  }
  const Value& x = io.in(0);
  const Value& y = io.out();
  const int64_t n = x.numel();
  const float* xp = x.f32();
  const float* yp = y.f32();
  const float* dy = io.dy();
  float* dx = io.grad(0);
  const graph::Attrs& a = io.n.attrs;
  switch (io.n.op) {
    case Op::relu: for (int64_t i = 0; i < n; ++i) dx[i] += xp[i] > 0 ? dy[i] : 0.0f; break;  // (fresh: above)
    case Op::tanh: for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * (1.0f - yp[i] * yp[i]); break;
    case Op::sigmoid: for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * yp[i] * (1.0f - yp[i]); break;
    case Op::exp: for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * yp[i]; break;
    case Op::sqrt: for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * 0.5f / yp[i]; break;
    case Op::neg: for (int64_t i = 0; i < n; ++i) dx[i] -= dy[i]; break;
    case Op::gelu:
      for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * float(gelu_grad(xp[i], a.gelu_tanh));
      break;
    case Op::clamp: {  // as torch.clamp: the gradient passes where min <= x <= max
      const float lo = a.has_min ? float(a.min) : -std::numeric_limits<float>::infinity();
      const float hi = a.has_max ? float(a.max) : std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < n; ++i) dx[i] += (xp[i] >= lo && xp[i] <= hi) ? dy[i] : 0.0f;
      break;
    }
    case Op::add_scalar: for (int64_t i = 0; i < n; ++i) dx[i] += dy[i]; break;
    case Op::sub_scalar: {
      const float sgn = a.reverse ? -1.0f : 1.0f;
      for (int64_t i = 0; i < n; ++i) dx[i] += sgn * dy[i];
      break;
    }
    case Op::mul_scalar: {
      const float c = float(a.value);
      for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * c;
      break;
    }
    case Op::div_scalar: {
      const float c = float(a.value);
      if (a.reverse) for (int64_t i = 0; i < n; ++i) dx[i] -= dy[i] * yp[i] / xp[i];  // c / x: -c / x²
      else for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] / c;
      break;
    }
    case Op::pow_scalar: {
      const double c = a.value;
      if (a.reverse) {  // c^x: c^x ln c
        const float lc = c > 0 ? float(std::log(c)) : 0.0f;
        for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * yp[i] * lc;
      } else {  // x^c: c x^(c-1)
        for (int64_t i = 0; i < n; ++i)
          dx[i] += c == 0.0 ? 0.0f : dy[i] * float(c * std::pow(double(xp[i]), c - 1.0));
      }
      break;
    }
    default: break;
  }
}

void binary_backward(NodeIO& io) {
  const bool wa = io.want(0), wb = io.want(1);
  if (!wa && !wb) return;
  const Value& a = io.in(0);
  const Value& b = io.in(1);
  const Value& y = io.out();
  const size_t r = y.shape.size();
  std::vector<int64_t> sa(r, 0), sb(r, 0);
  {
    int64_t s = 1;
    for (size_t d = a.shape.size(); d-- > 0;) {
      const size_t od = d + (r - a.shape.size());
      sa[od] = a.shape[d] == 1 ? 0 : s;
      s *= a.shape[d];
    }
    s = 1;
    for (size_t d = b.shape.size(); d-- > 0;) {
      const size_t od = d + (r - b.shape.size());
      sb[od] = b.shape[d] == 1 ? 0 : s;
      s *= b.shape[d];
    }
  }
  const float* ap = a.f32();
  const float* bp = b.f32();
  const float* yp = y.f32();
  const float* dy = io.dy();
  float* ga = wa ? io.grad(0) : nullptr;
  float* gb = wb ? io.grad(1) : nullptr;
  const int64_t total = y.numel();
  std::vector<int64_t> idx(r, 0);
  int64_t ia = 0, ib = 0;
  const Op op = io.n.op;
  for (int64_t i = 0; i < total; ++i) {
    const float d = dy[i], u = ap[ia], v = bp[ib];
    switch (op) {
      case Op::add: if (ga) ga[ia] += d; if (gb) gb[ib] += d; break;
      case Op::sub: if (ga) ga[ia] += d; if (gb) gb[ib] -= d; break;
      case Op::mul: if (ga) ga[ia] += d * v; if (gb) gb[ib] += d * u; break;
      case Op::div: if (ga) ga[ia] += d / v; if (gb) gb[ib] -= d * u / (v * v); break;
      default:  // pow
        if (ga) ga[ia] += v == 0.0f ? 0.0f : d * float(double(v) * std::pow(double(u), double(v) - 1.0));
        if (gb) gb[ib] += u > 0.0f ? d * yp[i] * std::log(u) : 0.0f;
        break;
    }
    for (size_t k = r; k-- > 0;) {
      ++idx[k];
      ia += sa[k];
      ib += sb[k];
      if (idx[k] < y.shape[k]) break;
      ia -= sa[k] * y.shape[k];
      ib -= sb[k] * y.shape[k];
      idx[k] = 0;
    }
  }
}

// ---- shapes and gathers ------------------------------------------------------------

void same_layout_backward(NodeIO& io) {  // reshape, flatten, unsqueeze, identity, float cast
  if (!io.want(0)) return;
  const int64_t n = io.in(0).numel();
  const float* dy = io.dy();
  float* dx = io.grad(0);
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i];
}

void transpose_backward(NodeIO& io) {
  if (!io.want(0)) return;
  const Value& x = io.in(0);
  const size_t r = x.shape.size();
  const std::vector<int64_t>& perm = io.n.attrs.perm;
  // y[i] = x[j] where y's axis k walks x's axis perm[k]: iterate y in order
  std::vector<int64_t> xs(r), ys(r);
  int64_t s = 1;
  for (size_t d = r; d-- > 0;) { xs[d] = s; s *= x.shape[d]; }
  std::vector<int64_t> step(r), yshape(r);
  for (size_t k = 0; k < r; ++k) {
    const size_t p = size_t(norm_axis(perm[k], int64_t(r)));
    step[k] = xs[p];
    yshape[k] = x.shape[p];
  }
  const float* dy = io.dy();
  float* dx = io.grad(0);
  const int64_t total = x.numel();
  std::vector<int64_t> idx(r, 0);
  int64_t j = 0;
  for (int64_t i = 0; i < total; ++i) {
    dx[j] += dy[i];
    for (size_t k = r; k-- > 0;) {
      ++idx[k];
      j += step[k];
      if (idx[k] < yshape[k]) break;
      j -= step[k] * yshape[k];
      idx[k] = 0;
    }
  }
}

void select_backward(NodeIO& io) {
  if (!io.want(0)) return;
  const Value& x = io.in(0);
  const int64_t axis = norm_axis(io.n.attrs.axis, int64_t(x.shape.size()));
  int64_t outer, len, inner;
  split_axis(x.shape, axis, outer, len, inner);
  const int64_t index = io.n.attrs.index < 0 ? io.n.attrs.index + len : io.n.attrs.index;
  const float* dy = io.dy();
  float* dx = io.grad(0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) dx[(o * len + index) * inner + i] += dy[o * inner + i];
}

void embedding_backward(NodeIO& io) {
  if (!io.want(1)) return;
  const Value& ids = io.in(0);
  const int64_t D = io.in(1).shape[1];
  const float* dy = io.dy();
  float* dw = io.grad(1);
  const int64_t n = ids.numel();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = ids.i64()[i];
    for (int64_t k = 0; k < D; ++k) dw[row * D + k] += dy[i * D + k];
  }
}

}  // namespace

void backward_node(const Node& n, BackwardContext& ctx) {
  NodeIO io{n, ctx};
  switch (n.op) {
    case Op::linear: linear_backward(io); break;
    case Op::matmul: matmul_backward(io); break;
    case Op::conv2d: conv2d_backward(io); break;
    case Op::max_pool2d: max_pool_backward(io); break;
    case Op::avg_pool_global: avg_pool_global_backward(io); break;
    case Op::batch_norm: batch_norm_backward(io); break;
    case Op::layer_norm: layer_norm_backward(io); break;
    case Op::softmax: softmax_backward(io); break;
    case Op::normalize: normalize_backward(io); break;
    case Op::sum: case Op::mean: case Op::max: reduce_backward(io); break;
    case Op::embedding: embedding_backward(io); break;
    case Op::select: select_backward(io); break;
    case Op::transpose: transpose_backward(io); break;
    case Op::reshape: case Op::flatten: case Op::unsqueeze: case Op::identity: same_layout_backward(io); break;
    case Op::cast:  // float -> float only carries a gradient
      if (io.in(0).dtype == ElemType::f32 && io.out().dtype == ElemType::f32) same_layout_backward(io);
      break;
    case Op::arange_like: break;
    case Op::add: case Op::sub: case Op::mul: case Op::div: case Op::pow: binary_backward(io); break;
    default: unary_backward(io); break;  // relu, tanh, sigmoid, exp, sqrt, neg, gelu, clamp, *_scalar
  }
}

}  // namespace seedcore::train

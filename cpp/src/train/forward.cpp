// The trainer's own forward of the ops whose backward needs more than their inputs:
// conv2d with groups 1 (im2col of the whole batch, kept for the weight gradient; a relu
// that alone reads the output runs in the GEMM's epilogue) and max_pool2d (the position
// of each maximum, so the backward pass is a scatter). Same results as the executor's
// ops up to float summation order (the GEMM's K order is the same: c, kh, kw).
#include <algorithm>
#include <cstring>
#include <limits>

#include "train/trainer_internal.h"

namespace seedcore::train {

using graph::Node;
using graph::Op;
using graph::Value;

namespace {

constexpr int64_t kMaxColFloats = int64_t(1) << 26;  // 256 MiB of im2col: above, the executor's per-image path

bool out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int64_t& out) {
  const int64_t span = d * (k - 1) + 1;
  if (in + 2 * p < span) return false;
  out = (in + 2 * p - span) / s + 1;
  return true;
}

}  // namespace

void im2col_batch(const float* xp, int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t OH,
                  int64_t OW, const int64_t* stride, const int64_t* padding, const int64_t* dilation, float* cols,
                  TaskRunner* runner) {
  const int64_t P = OH * OW, NP = N * P, Kg = C * KH * KW;
  const int64_t sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1], dh = dilation[0], dw = dilation[1];
  runner->run(size_t(Kg), [&](size_t r, unsigned) {
    const int64_t kw = int64_t(r) % KW, kh = (int64_t(r) / KW) % KH, c = int64_t(r) / (KW * KH);
    const int64_t off = kw * dw - pw;
    // ow in [lo, hi) reads inside the row
    const int64_t lo = std::min<int64_t>(OW, off >= 0 ? 0 : (-off + sw - 1) / sw);
    const int64_t hi = std::max<int64_t>(lo, std::min<int64_t>(OW, W - off > 0 ? (W - off + sw - 1) / sw : 0));
    for (int64_t img = 0; img < N; ++img) {
      const float* plane = xp + (img * C + c) * H * W;
      float* dst = cols + int64_t(r) * NP + img * P;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t ih = oh * sh - ph + kh * dh;
        float* drow = dst + oh * OW;
        if (ih < 0 || ih >= H) {
          std::fill(drow, drow + OW, 0.0f);
          continue;
        }
        const float* srow = plane + ih * W + off;
        std::fill(drow, drow + lo, 0.0f);
        if (sw == 1)
          for (int64_t ow = lo; ow < hi; ++ow) drow[ow] = srow[ow];
        else
          for (int64_t ow = lo; ow < hi; ++ow) drow[ow] = srow[ow * sw];
        std::fill(drow + hi, drow + OW, 0.0f);
      }
    }
  });
}

namespace {

bool conv_forward(const Node& n, const std::vector<const Value*>& in, graph::RunContext& ctx, NodeAux& aux,
                  Value& out) {
  const Value& x = *in[0];
  const Value& w = *in[1];
  const Value* b = in.size() > 2 ? in[2] : nullptr;
  const graph::Attrs& a = n.attrs;
  if (a.groups != 1 || x.shape.size() != 4 || w.shape.size() != 4 || x.dtype != ElemType::f32) return false;
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OC = w.shape[0], KH = w.shape[2], KW = w.shape[3];
  if (w.shape[1] != C || (b && (b->shape.size() != 1 || b->shape[0] != OC))) return false;
  if (KH == 1 && KW == 1 && a.stride[0] == 1 && a.stride[1] == 1 && a.padding[0] == 0 && a.padding[1] == 0)
    return false;  // pointwise: the executor's straight GEMM, no im2col
  int64_t OH, OW;
  if (!out_size(H, KH, a.stride[0], a.padding[0], a.dilation[0], OH) ||
      !out_size(W, KW, a.stride[1], a.padding[1], a.dilation[1], OW))
    return false;
  const int64_t P = OH * OW, Kg = C * KH * KW, NP = N * P;
  if (NP * Kg > kMaxColFloats || NP == 0 || Kg == 0 || OC == 0) return false;
  aux.cols.resize(size_t(NP * Kg));
  im2col_batch(x.f32(), N, C, H, W, KH, KW, OH, OW, a.stride, a.padding, a.dilation, aux.cols.data(), ctx.runner);
  // y_img[OC, P] = W[OC, Kg] · cols[:, img's P columns] + b (cols read in place), a
  // following relu applied in the GEMM's epilogue (NaN kept, as the executor's relu)
  out = graph::new_value(ElemType::f32, {N, OC, OH, OW});
  float* yp = graph::mut_f32(out);
  for (int64_t img = 0; img < N; ++img) {
    GemmArgs g;
    g.M = OC; g.N = P; g.K = Kg;
    g.a = w.f32(); g.a_rs = Kg; g.a_cs = 1;
    g.b = aux.cols.data() + img * P; g.b_ks = NP; g.b_ns = 1;
    g.c = yp + img * OC * P; g.c_rs = P; g.c_cs = 1;
    g.bias_m = b ? b->f32() : nullptr;
    if (aux.relu_after) {
      g.clamp_has_min = true;
      g.clamp_min = 0.0f;
    }
    gemm(g, ctx.kernels, ctx.runner);
  }
  aux.used = true;
  return true;
}

bool max_pool_forward(const Node& n, const Value& x, graph::RunContext& ctx, NodeAux& aux, Value& out) {
  if (x.shape.size() != 4 || x.dtype != ElemType::f32) return false;
  const graph::Attrs& a = n.attrs;
  const int64_t H = x.shape[2], W = x.shape[3];
  int64_t OH, OW;
  if (!out_size(H, a.kernel[0], a.stride[0], a.padding[0], 1, OH) || !out_size(W, a.kernel[1], a.stride[1], a.padding[1], 1, OW))
    return false;
  if (H * W > INT32_MAX) return false;
  const int64_t planes = x.shape[0] * x.shape[1];
  out = graph::new_value(ElemType::f32, {x.shape[0], x.shape[1], OH, OW});
  aux.arg.resize(size_t(planes * OH * OW));
  float* yp = graph::mut_f32(out);
  const float* xp = x.f32();
  const int64_t KH = a.kernel[0], KW = a.kernel[1], sh = a.stride[0], sw = a.stride[1];
  const int64_t ph = a.padding[0], pw = a.padding[1];
  ctx.runner->run(size_t(planes), [&](size_t t, unsigned) {
    const float* src = xp + int64_t(t) * H * W;
    float* dst = yp + int64_t(t) * OH * OW;
    int32_t* arg = aux.arg.data() + int64_t(t) * OH * OW;
    if (KH == 2 && KW == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0) {  // the common 2x2 / 2, same rule
      for (int64_t oh = 0; oh < OH; ++oh) {
        const float* r0 = src + 2 * oh * W;
        const float* r1 = r0 + W;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t i = 2 * ow;
          float m = r0[i];
          int64_t best = 2 * oh * W + i;
          if (r0[i + 1] > m || (r0[i + 1] != r0[i + 1] && m == m)) { m = r0[i + 1]; best = 2 * oh * W + i + 1; }
          if (r1[i] > m || (r1[i] != r1[i] && m == m)) { m = r1[i]; best = (2 * oh + 1) * W + i; }
          if (r1[i + 1] > m || (r1[i + 1] != r1[i + 1] && m == m)) { m = r1[i + 1]; best = (2 * oh + 1) * W + i + 1; }
          dst[oh * OW + ow] = m;
          arg[oh * OW + ow] = int32_t(best);
        }
      }
      return;
    }
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = std::max<int64_t>(0, oh * sh - ph), h1 = std::min<int64_t>(H, oh * sh - ph + KH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = std::max<int64_t>(0, ow * sw - pw), w1 = std::min<int64_t>(W, ow * sw - pw + KW);
        float m = -std::numeric_limits<float>::infinity();
        int64_t best = h0 * W + w0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const float v = src[ih * W + iw];
            if (v > m || v != v) {  // first maximum; NaN propagates, as torch
              m = v;
              best = ih * W + iw;
            }
          }
        dst[oh * OW + ow] = m;
        arg[oh * OW + ow] = int32_t(best);
      }
    }
  });
  aux.used = true;
  return true;
}

}  // namespace

bool forward_special(const Node& n, const std::vector<const Value*>& in, graph::RunContext& ctx,
                     std::vector<NodeAux>& all, Value& out) {
  NodeAux& aux = all[n.index];
  aux.used = false;
  if (n.op == Op::conv2d) return conv_forward(n, in, ctx, aux, out);
  if (n.op == Op::max_pool2d) return max_pool_forward(n, *in[0], ctx, aux, out);
  if (n.op == Op::relu && aux.relu_of >= 0 && all[size_t(aux.relu_of)].used) {
    out = *in[0];  // the conv already applied it: the same storage
    aux.used = true;
    return true;
  }
  return false;
}

}  // namespace seedcore::train

// Normalisations, softmax and reductions. Sums run in double, in index order, so a
// result never depends on anything but the input.
#include <algorithm>
#include <cmath>
#include <limits>

#include "graph/internal.h"

namespace seedcore {
namespace graph {
namespace {

// Splits x's shape at `axis` into outer x len x inner.
void split_axis(const Value& x, int64_t axis, int64_t& outer, int64_t& len, int64_t& inner) {
  outer = 1; inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[size_t(d)];
  len = x.shape[size_t(axis)];
  for (size_t d = size_t(axis) + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
}

Value run_batch_norm(const Node& n, const std::vector<const Value*>& in) {
  const Value& x = *in[0];
  if (x.shape.size() < 2) node_error(n, "input '" + n.in_names[0] + "' must be at least 2-D, has shape " + shape_string(x.shape));
  const int64_t C = x.shape[1];
  for (size_t i = 1; i < 5; ++i)
    if (in[i]->shape.size() != 1 || in[i]->shape[0] != C)
      node_error(n, "parameter '" + n.in_names[i] + "' has shape " + shape_string(in[i]->shape) + ", expected [" +
                        std::to_string(C) + "] (the channels of '" + n.in_names[0] + "')");
  int64_t outer, len, inner;
  split_axis(x, 1, outer, len, inner);
  Value y = new_value(ElemType::f32, x.shape);
  const float *xp = x.f32(), *w = in[1]->f32(), *b = in[2]->f32(), *mu = in[3]->f32(), *var = in[4]->f32();
  float* yp = mut_f32(y);
  const float eps = float(n.attrs.eps);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < C; ++c) {
      const float inv = 1.0f / std::sqrt(var[c] + eps);
      const int64_t base = (o * C + c) * inner;
      for (int64_t i = 0; i < inner; ++i) yp[base + i] = (xp[base + i] - mu[c]) * inv * w[c] + b[c];
    }
  return y;
}

Value run_layer_norm(const Node& n, const std::vector<const Value*>& in, const GraphKernels& kernels) {
  const Value* x = in[0];
  Value sum;  // a fused residual add whose operands differ in shape: formed first, as the add node would
  if (n.fused_add && in[3]->shape != x->shape) {
    sum = add_broadcast(n, *x, *in[3]);
    x = &sum;
  }
  const Value* r = n.fused_add && x != &sum ? in[3] : nullptr;  // added row by row below
  if (x->shape.empty()) node_error(n, "input '" + n.in_names[0] + "' must be at least 1-D");
  const int64_t D = x->shape.back();
  const Value* w = in.size() > 1 ? in[1] : nullptr;
  const Value* b = in.size() > 2 ? in[2] : nullptr;
  for (size_t i = 1; i < std::min<size_t>(in.size(), 3); ++i)
    if (in[i] && (in[i]->shape.size() != 1 || in[i]->shape[0] != D))
      node_error(n, "parameter '" + n.in_names[i] + "' has shape " + shape_string(in[i]->shape) + ", expected [" +
                        std::to_string(D) + "] (the last axis of '" + n.in_names[0] + "')");
  Value y = new_value(ElemType::f32, x->shape);
  const int64_t rows = D > 0 ? x->numel() / D : 0;
  const float* xp = x->f32();
  const float* rp = r ? r->f32() : nullptr;
  float* yp = mut_f32(y);
  const float* wp = w ? w->f32() : nullptr;
  const float* bp = b ? b->f32() : nullptr;
  for (int64_t row = 0; row < rows; ++row) {
    const float* src = xp + row * D;
    float* dst = yp + row * D;
    if (rp) {  // x + r in float, as the add node computes it
      const float* rr = rp + row * D;
      for (int64_t i = 0; i < D; ++i) dst[i] = src[i] + rr[i];
      src = dst;
    }
    kernels.layer_norm_row(src, dst, D, wp, bp, n.attrs.eps);
  }
  return y;
}

Value run_softmax_or_normalize(const Node& n, const Value& x, const GraphKernels& kernels) {
  const int64_t axis = norm_axis(n, n.attrs.axis, int64_t(x.shape.size()), "axis");
  int64_t outer, len, inner;
  split_axis(x, axis, outer, len, inner);
  Value y = new_value(ElemType::f32, x.shape);
  const float* xp = x.f32();
  float* yp = mut_f32(y);
  const bool softmax = n.op == Op::softmax;
  const double eps = n.attrs.eps;
  if (softmax && inner == 1) {  // contiguous rows (attention scores): the ISA's row kernel
    for (int64_t o = 0; o < outer; ++o) kernels.softmax_row(xp + o * len, yp + o * len, len);
    return y;
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const float* s = xp + o * len * inner + i;
      float* d = yp + o * len * inner + i;
      if (softmax) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t k = 0; k < len; ++k) m = std::max(m, s[k * inner]);
        double sum = 0.0;
        for (int64_t k = 0; k < len; ++k) {
          const float e = std::exp(s[k * inner] - m);
          d[k * inner] = e;
          sum += e;
        }
        const float inv = float(1.0 / sum);
        for (int64_t k = 0; k < len; ++k) d[k * inner] *= inv;
      } else {
        double ss = 0.0;
        for (int64_t k = 0; k < len; ++k) ss += double(s[k * inner]) * s[k * inner];
        const float denom = float(std::max(std::sqrt(ss), eps));
        for (int64_t k = 0; k < len; ++k) d[k * inner] = s[k * inner] / denom;
      }
    }
  return y;
}

// softmax(x [* c] + m) over the last axis (a fused mul_scalar / add / softmax). Each
// element is computed as the unfused nodes would: (x * c) + m in float, then the row
// softmax, so the result is bit-identical.
Value run_fused_softmax(const Node& n, const Value& x, const Value& m, const GraphKernels& kernels) {
  const float c = float(n.attrs.value);
  const size_t r = x.shape.size();
  bool fast = r >= 1 && m.shape.size() <= r && x.numel() > 0;
  std::vector<int64_t> ms(r, 0);  // m's element strides over x's dims (0: broadcast)
  if (fast) {
    int64_t s = 1;
    for (size_t k = 0; k < m.shape.size(); ++k) {
      const size_t dm = m.shape.size() - 1 - k, dx = r - 1 - k;
      if (m.shape[dm] == x.shape[dx]) ms[dx] = x.shape[dx] == 1 ? 0 : s;
      else if (m.shape[dm] != 1) fast = false;
      s *= m.shape[dm];
    }
  }
  if (!fast) {  // x does not have the output's shape (or is empty): the nodes one by one
    Value scaled;
    const Value* a = &x;
    if (n.fused_scale) {
      scaled = new_value(ElemType::f32, x.shape);
      for (int64_t i = 0; i < x.numel(); ++i) mut_f32(scaled)[i] = x.f32()[i] * c;
      a = &scaled;
    }
    const Value sum = add_broadcast(n, *a, m);
    Node plain = n;
    plain.fused_add = plain.fused_scale = false;
    return run_softmax_or_normalize(plain, sum, kernels);
  }
  const int64_t len = x.shape[r - 1], rows = x.numel() / len, m_last = ms[r - 1];
  Value y = new_value(ElemType::f32, x.shape);
  const float* xp = x.f32();
  const float* mp = m.f32();
  float* yp = mut_f32(y);
  std::vector<int64_t> idx(r, 0);
  int64_t mo = 0;
  for (int64_t row = 0; row < rows; ++row) {
    const float* s = xp + row * len;
    const float* mr = mp + mo;
    float* d = yp + row * len;
    for (int64_t k = 0; k < len; ++k) {
      float v = s[k];
      if (n.fused_scale) v = v * c;
      d[k] = v + mr[k * m_last];
    }
    kernels.softmax_row(d, d, len);
    for (size_t dim = r - 1; dim-- > 0;) {  // odometer over the outer axes
      ++idx[dim];
      mo += ms[dim];
      if (idx[dim] < x.shape[dim]) break;
      mo -= ms[dim] * x.shape[dim];
      idx[dim] = 0;
    }
  }
  return y;
}

Value run_reduce(const Node& n, const Value& x) {
  const int64_t rank = int64_t(x.shape.size());
  std::vector<char> reduced(size_t(rank), 0);
  for (int64_t ax : n.attrs.axes) {
    const int64_t a = norm_axis(n, ax, rank, "axis");
    if (reduced[size_t(a)]) node_error(n, "axis " + std::to_string(ax) + " is listed twice");
    reduced[size_t(a)] = 1;
  }
  std::vector<int64_t> shape, ostride(size_t(rank), 0);
  int64_t count = 1;
  for (int64_t d = 0; d < rank; ++d) {
    if (reduced[size_t(d)]) {
      count *= x.shape[size_t(d)];
      if (n.attrs.keepdim) shape.push_back(1);
    } else {
      shape.push_back(x.shape[size_t(d)]);
    }
  }
  int64_t s = 1;
  for (int64_t d = rank; d-- > 0;)
    if (!reduced[size_t(d)]) { ostride[size_t(d)] = s; s *= x.shape[size_t(d)]; }
  if (count == 0 && n.op != Op::sum) node_error(n, "reduces over an empty axis");
  Value y = new_value(x.dtype, shape);
  const int64_t out_n = y.numel();
  std::vector<double> acc(size_t(out_n), n.op == Op::max ? -std::numeric_limits<double>::infinity() : 0.0);
  const bool ints = x.dtype == ElemType::i64;
  std::vector<int64_t> iacc(ints ? size_t(out_n) : 0, n.op == Op::max ? INT64_MIN : 0);
  const int64_t total = x.numel();
  std::vector<int64_t> idx(size_t(rank), 0);
  int64_t o = 0;
  for (int64_t i = 0; i < total; ++i) {
    if (ints) {
      const int64_t v = x.i64()[i];
      int64_t& t = iacc[size_t(o)];
      t = n.op == Op::max ? std::max(t, v) : int64_t(uint64_t(t) + uint64_t(v));
    } else {
      const double v = x.f32()[i];
      if (n.op == Op::max) { if (v > acc[size_t(o)] || v != v) acc[size_t(o)] = v; }
      else acc[size_t(o)] += v;
    }
    for (int64_t d = rank; d-- > 0;) {
      ++idx[size_t(d)];
      o += ostride[size_t(d)];
      if (idx[size_t(d)] < x.shape[size_t(d)]) break;
      o -= ostride[size_t(d)] * x.shape[size_t(d)];
      idx[size_t(d)] = 0;
    }
  }
  if (ints) {
    std::copy(iacc.begin(), iacc.end(), mut_i64(y));
    return y;
  }
  float* yp = mut_f32(y);
  for (int64_t k = 0; k < out_n; ++k)
    yp[k] = float(n.op == Op::mean ? acc[size_t(k)] / double(count) : acc[size_t(k)]);
  return y;
}

}  // namespace

Value run_norm(const Node& n, const std::vector<const Value*>& in, RunContext& ctx) {
  switch (n.op) {
    case Op::batch_norm: return run_batch_norm(n, in);
    case Op::layer_norm: return run_layer_norm(n, in, ctx.kernels);
    case Op::softmax:
      if (n.fused_add) return run_fused_softmax(n, *in[0], *in[1], ctx.kernels);
      return run_softmax_or_normalize(n, *in[0], ctx.kernels);
    case Op::normalize: return run_softmax_or_normalize(n, *in[0], ctx.kernels);
    default: return run_reduce(n, *in[0]);
  }
}

}  // namespace graph
}  // namespace seedcore

// Elementwise ops: unary math, gelu, clamp, the *_scalar ops and binary ops with
// numpy broadcasting.
#include <algorithm>
#include <cmath>

#include "graph/internal.h"

namespace seedcore {
namespace graph {
namespace {

template <typename F>
Value map_unary(const Value& x, F f) {
  Value y = new_value(ElemType::f32, x.shape);
  const float* s = x.f32();
  float* d = mut_f32(y);
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) d[i] = f(s[i]);
  return y;
}

template <typename F>
Value map_int(const Value& x, F f) {
  Value y = new_value(ElemType::i64, x.shape);
  const int64_t* s = x.i64();
  int64_t* d = mut_i64(y);
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) d[i] = f(s[i]);
  return y;
}

// Integer arithmetic wraps (two's complement) instead of overflowing.
int64_t wrap_add(int64_t u, int64_t v) { return int64_t(uint64_t(u) + uint64_t(v)); }
int64_t wrap_sub(int64_t u, int64_t v) { return int64_t(uint64_t(u) - uint64_t(v)); }
int64_t wrap_mul(int64_t u, int64_t v) { return int64_t(uint64_t(u) * uint64_t(v)); }

Value run_unary_int(const Node& n, const Value& x) {
  const Attrs& a = n.attrs;
  const int64_t c = int64_t(a.value);
  const bool r = a.reverse;
  switch (n.op) {
    case Op::neg: return map_int(x, [](int64_t v) { return wrap_sub(0, v); });
    case Op::clamp: {
      const double lo = a.min, hi = a.max;
      const bool has_lo = a.has_min, has_hi = a.has_max;
      return map_int(x, [=](int64_t v) {
        if (has_lo && double(v) < lo) v = int64_t(std::ceil(lo));
        if (has_hi && double(v) > hi) v = int64_t(std::floor(hi));
        return v;
      });
    }
    case Op::add_scalar: return map_int(x, [=](int64_t v) { return wrap_add(v, c); });
    case Op::sub_scalar: return map_int(x, [=](int64_t v) { return r ? wrap_sub(c, v) : wrap_sub(v, c); });
    default: return map_int(x, [=](int64_t v) { return wrap_mul(v, c); });  // mul_scalar
  }
}

Value run_unary(const Node& n, const Value& x, const GraphKernels& kernels) {
  const Attrs& a = n.attrs;
  if (x.dtype == ElemType::i64) return run_unary_int(n, x);
  switch (n.op) {
    case Op::relu: return map_unary(x, [](float v) { return v > 0.0f ? v : (v != v ? v : 0.0f); });
    case Op::tanh: return map_unary(x, [](float v) { return std::tanh(v); });
    case Op::sigmoid: return map_unary(x, [](float v) { return 1.0f / (1.0f + std::exp(-v)); });
    case Op::exp: return map_unary(x, [](float v) { return std::exp(v); });
    case Op::sqrt: return map_unary(x, [](float v) { return std::sqrt(v); });
    case Op::neg: return map_unary(x, [](float v) { return -v; });
    case Op::gelu:
      if (a.gelu_tanh)
        return map_unary(x, [](float v) {
          const float k = 0.7978845608028654f;  // sqrt(2/pi)
          return 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
        });
      {
        Value y = new_value(ElemType::f32, x.shape);
        kernels.gelu_erf(x.f32(), mut_f32(y), x.numel());
        return y;
      }
    case Op::clamp: {
      const float lo = float(a.min), hi = float(a.max);
      const bool has_lo = a.has_min, has_hi = a.has_max;
      return map_unary(x, [=](float v) {
        if (has_lo && v < lo) v = lo;  // NaN passes through, as in torch
        if (has_hi && v > hi) v = hi;
        return v;
      });
    }
    default: break;
  }
  // *_scalar
  const float c = float(a.value);
  const bool r = a.reverse;
  switch (n.op) {
    case Op::add_scalar: return map_unary(x, [=](float v) { return r ? c + v : v + c; });
    case Op::sub_scalar: return map_unary(x, [=](float v) { return r ? c - v : v - c; });
    case Op::mul_scalar: return map_unary(x, [=](float v) { return r ? c * v : v * c; });
    case Op::div_scalar: return map_unary(x, [=](float v) { return r ? c / v : v / c; });
    default: return map_unary(x, [=](float v) { return r ? std::pow(c, v) : std::pow(v, c); });
  }
}

template <typename T, typename F>
void broadcast_loop(const std::vector<int64_t>& shape, const std::vector<int64_t>& sa, const std::vector<int64_t>& sb,
                    const T* a, const T* b, T* out, F f) {
  const size_t r = shape.size();
  if (r == 0) {
    out[0] = f(a[0], b[0]);
    return;
  }
  const int64_t inner = shape[r - 1], ia = sa[r - 1], ib = sb[r - 1];
  int64_t outer = 1;
  for (size_t d = 0; d + 1 < r; ++d) outer *= shape[d];
  std::vector<int64_t> idx(r, 0);
  int64_t oa = 0, ob = 0;
  for (int64_t o = 0; o < outer; ++o) {
    T* dst = out + o * inner;
    if (ia == 1 && ib == 1)
      for (int64_t i = 0; i < inner; ++i) dst[i] = f(a[oa + i], b[ob + i]);
    else if (ia == 1 && ib == 0)
      for (int64_t i = 0; i < inner; ++i) dst[i] = f(a[oa + i], b[ob]);
    else if (ia == 0 && ib == 1)
      for (int64_t i = 0; i < inner; ++i) dst[i] = f(a[oa], b[ob + i]);
    else
      for (int64_t i = 0; i < inner; ++i) dst[i] = f(a[oa + i * ia], b[ob + i * ib]);
    for (size_t d = r - 1; d-- > 0;) {  // odometer over the outer axes
      ++idx[d];
      oa += sa[d];
      ob += sb[d];
      if (idx[d] < shape[d]) break;
      oa -= sa[d] * shape[d];
      ob -= sb[d] * shape[d];
      idx[d] = 0;
    }
  }
}

Value run_binary(const Node& n, const Value& a, const Value& b) {
  const size_t r = std::max(a.shape.size(), b.shape.size());
  std::vector<int64_t> shape(r), sa(r, 0), sb(r, 0);
  int64_t ea = 1, eb = 1;
  for (size_t k = 0; k < r; ++k) {
    const size_t d = r - 1 - k;
    const int64_t da = k < a.shape.size() ? a.shape[a.shape.size() - 1 - k] : 1;
    const int64_t db = k < b.shape.size() ? b.shape[b.shape.size() - 1 - k] : 1;
    if (da != db && da != 1 && db != 1)
      node_error(n, "inputs '" + n.in_names[0] + "' " + shape_string(a.shape) + " and '" + n.in_names[1] + "' " +
                        shape_string(b.shape) + " do not broadcast");
    shape[d] = da == 1 ? db : da;
    sa[d] = da == 1 ? 0 : ea;
    sb[d] = db == 1 ? 0 : eb;
    ea *= da;
    eb *= db;
  }
  Value y = new_value(a.dtype, shape);
  if (y.numel() == 0) return y;
  if (a.dtype == ElemType::i64) {
    const int64_t* ap = a.i64();
    const int64_t* bp = b.i64();
    int64_t* yp = mut_i64(y);
    switch (n.op) {
      case Op::add: broadcast_loop(shape, sa, sb, ap, bp, yp, wrap_add); break;
      case Op::sub: broadcast_loop(shape, sa, sb, ap, bp, yp, wrap_sub); break;
      default: broadcast_loop(shape, sa, sb, ap, bp, yp, wrap_mul); break;
    }
    return y;
  }
  const float* ap = a.f32();
  const float* bp = b.f32();
  float* yp = mut_f32(y);
  switch (n.op) {
    case Op::add: broadcast_loop(shape, sa, sb, ap, bp, yp, [](float u, float v) { return u + v; }); break;
    case Op::sub: broadcast_loop(shape, sa, sb, ap, bp, yp, [](float u, float v) { return u - v; }); break;
    case Op::mul: broadcast_loop(shape, sa, sb, ap, bp, yp, [](float u, float v) { return u * v; }); break;
    case Op::div: broadcast_loop(shape, sa, sb, ap, bp, yp, [](float u, float v) { return u / v; }); break;
    default: broadcast_loop(shape, sa, sb, ap, bp, yp, [](float u, float v) { return std::pow(u, v); }); break;
  }
  return y;
}

}  // namespace

Value add_broadcast(const Node& n, const Value& a, const Value& b) {
  Node add = n;
  add.op = Op::add;
  return run_binary(add, a, b);
}

Value run_elementwise(const Node& n, const std::vector<const Value*>& in, RunContext& ctx) {
  switch (n.op) {
    case Op::add: case Op::sub: case Op::mul: case Op::div: case Op::pow: return run_binary(n, *in[0], *in[1]);
    default: return run_unary(n, *in[0], ctx.kernels);
  }
}

}  // namespace graph
}  // namespace seedcore

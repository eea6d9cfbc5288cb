// Views (reshape, flatten, unsqueeze, identity share the input's memory), copies
// (transpose, select), gathers (embedding), arange_like and cast.
#include <cmath>
#include <cstring>

#include "graph/internal.h"

namespace seedcore {
namespace graph {
namespace {

Value view(const Value& x, std::vector<int64_t> shape) {
  Value y = x;
  y.shape = std::move(shape);
  return y;
}

Value run_embedding(const Node& n, const Value& ids, const Value& w) {
  if (w.shape.size() != 2) node_error(n, "weight '" + n.in_names[1] + "' must be 2-D");
  const int64_t rows = w.shape[0], D = w.shape[1];
  std::vector<int64_t> shape = ids.shape;
  shape.push_back(D);
  Value y = new_value(ElemType::f32, shape);
  const int64_t* ip = ids.i64();
  float* yp = mut_f32(y);
  const int64_t count = ids.numel();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t id = ip[i];
    if (id < 0 || id >= rows)
      node_error(n, "id " + std::to_string(id) + " at flat position " + std::to_string(i) + " of '" + n.in_names[0] +
                        "' is outside [0, " + std::to_string(rows) + ")");
    std::memcpy(yp + i * D, w.f32() + id * D, size_t(D) * 4);
  }
  return y;
}

Value run_reshape(const Node& n, const Value& x) {
  const std::vector<int64_t>& spec = n.attrs.shape;
  std::vector<int64_t> shape(spec.size());
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < spec.size(); ++i) {
    if (spec[i] == 0) {
      if (i >= x.shape.size())
        node_error(n, "shape item " + std::to_string(i) + " is 0 but input '" + n.in_names[0] + "' " +
                          shape_string(x.shape) + " has no axis " + std::to_string(i));
      shape[i] = x.shape[i];
    } else {
      shape[i] = spec[i];
    }
    if (shape[i] == -1) infer = int64_t(i);
    else known *= shape[i];
  }
  const int64_t total = x.numel();
  if (infer >= 0) {
    if (known == 0 || total % known != 0)
      node_error(n, "cannot reshape '" + n.in_names[0] + "' " + shape_string(x.shape) + " to " + shape_string(spec));
    shape[size_t(infer)] = total / known;
  } else if (known != total) {
    node_error(n, "cannot reshape '" + n.in_names[0] + "' " + shape_string(x.shape) + " (" + std::to_string(total) +
                      " elements) to " + shape_string(spec));
  }
  return view(x, shape);
}

Value run_flatten(const Node& n, const Value& x) {
  std::vector<int64_t> src = x.shape.empty() ? std::vector<int64_t>{1} : x.shape;
  const int64_t r = int64_t(src.size());
  const int64_t s = norm_axis(n, n.attrs.start, r, "start"), e = norm_axis(n, n.attrs.end, r, "end");
  if (s > e) node_error(n, "start axis comes after end axis");
  std::vector<int64_t> shape(src.begin(), src.begin() + s);
  int64_t m = 1;
  for (int64_t d = s; d <= e; ++d) m *= src[size_t(d)];
  shape.push_back(m);
  shape.insert(shape.end(), src.begin() + e + 1, src.end());
  return view(x, shape);
}

Value run_transpose(const Node& n, const Value& x) {
  const std::vector<int64_t>& perm = n.attrs.perm;
  const size_t r = x.shape.size();
  if (perm.size() != r)
    node_error(n, "perm has " + std::to_string(perm.size()) + " axes but '" + n.in_names[0] + "' has shape " +
                      shape_string(x.shape));
  std::vector<int64_t> in_stride(r, 1), shape(r), stride(r);
  for (size_t d = r; d-- > 1;) in_stride[d - 1] = in_stride[d] * x.shape[d];
  for (size_t d = 0; d < r; ++d) {
    shape[d] = x.shape[size_t(perm[d])];
    stride[d] = in_stride[size_t(perm[d])];
  }
  Value y = new_value(x.dtype, shape);
  const int64_t total = x.numel();
  if (total == 0) return y;
  if (r == 0) {
    std::memcpy(mut_f32(y), x.data, elem_size(x.dtype));
    return y;
  }
  const size_t es = elem_size(x.dtype);
  const char* src = static_cast<const char*>(x.data);
  char* dst = static_cast<char*>(const_cast<void*>(y.data));
  const int64_t inner = shape[r - 1], is = stride[r - 1];
  std::vector<int64_t> idx(r, 0);
  int64_t off = 0;
  for (int64_t o = 0; o < total / inner; ++o) {
    char* drow = dst + size_t(o * inner) * es;
    if (is == 1) {
      std::memcpy(drow, src + size_t(off) * es, size_t(inner) * es);
    } else if (es == 4) {
      const float* s = reinterpret_cast<const float*>(src) + off;
      float* d = reinterpret_cast<float*>(drow);
      for (int64_t i = 0; i < inner; ++i) d[i] = s[i * is];
    } else {
      const int64_t* s = reinterpret_cast<const int64_t*>(src) + off;
      int64_t* d = reinterpret_cast<int64_t*>(drow);
      for (int64_t i = 0; i < inner; ++i) d[i] = s[i * is];
    }
    for (size_t d = r - 1; d-- > 0;) {
      ++idx[d];
      off += stride[d];
      if (idx[d] < shape[d]) break;
      off -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return y;
}

Value run_select(const Node& n, const Value& x) {
  const int64_t r = int64_t(x.shape.size());
  const int64_t axis = norm_axis(n, n.attrs.axis, r, "axis");
  const int64_t len = x.shape[size_t(axis)];
  const int64_t index = n.attrs.index < 0 ? n.attrs.index + len : n.attrs.index;
  if (index < 0 || index >= len)
    node_error(n, "index " + std::to_string(n.attrs.index) + " is out of range for axis " + std::to_string(axis) +
                      " of size " + std::to_string(len));
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[size_t(d)];
  for (int64_t d = axis + 1; d < r; ++d) inner *= x.shape[size_t(d)];
  std::vector<int64_t> shape = x.shape;
  shape.erase(shape.begin() + axis);
  Value y = new_value(x.dtype, shape);
  const size_t es = elem_size(x.dtype);
  const char* src = static_cast<const char*>(x.data);
  char* dst = static_cast<char*>(const_cast<void*>(y.data));
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + size_t(o * inner) * es, src + size_t((o * len + index) * inner) * es, size_t(inner) * es);
  return y;
}

Value run_cast(const Node& n, const Value& x) {
  const ElemType to = n.attrs.dtype;
  if (to == x.dtype) return x;
  Value y = new_value(to, x.shape);
  const int64_t total = x.numel();
  if (to == ElemType::f32) {
    const int64_t* s = x.i64();
    float* d = mut_f32(y);
    for (int64_t i = 0; i < total; ++i) d[i] = float(s[i]);
  } else {
    const float* s = x.f32();
    int64_t* d = mut_i64(y);
    for (int64_t i = 0; i < total; ++i) {
      if (!(s[i] > -9.2233720368547758e18f && s[i] < 9.2233720368547758e18f))
        node_error(n, "value " + std::to_string(s[i]) + " of '" + n.in_names[0] + "' does not fit in int64");
      d[i] = int64_t(s[i]);  // truncates toward zero
    }
  }
  return y;
}

}  // namespace

Value run_shape(const Node& n, const std::vector<const Value*>& in, RunContext&) {
  const Value& x = *in[0];
  switch (n.op) {
    case Op::embedding: return run_embedding(n, x, *in[1]);
    case Op::arange_like: {
      const int64_t axis = norm_axis(n, n.attrs.axis, int64_t(x.shape.size()), "axis");
      const int64_t len = x.shape[size_t(axis)];
      Value y = new_value(ElemType::i64, {len});
      for (int64_t i = 0; i < len; ++i) mut_i64(y)[i] = i;
      return y;
    }
    case Op::select: return run_select(n, x);
    case Op::reshape: return run_reshape(n, x);
    case Op::flatten: return run_flatten(n, x);
    case Op::transpose: return run_transpose(n, x);
    case Op::unsqueeze: {
      const int64_t r = int64_t(x.shape.size());
      const int64_t axis = norm_axis(n, n.attrs.axis, r + 1, "axis");
      std::vector<int64_t> shape = x.shape;
      shape.insert(shape.begin() + axis, 1);
      return view(x, shape);
    }
    case Op::cast: return run_cast(n, x);
    default: return x;  // identity
  }
}

}  // namespace graph
}  // namespace seedcore

// linear and matmul: shape checks, then the GEMM driver.
#include <algorithm>

#include "graph/internal.h"

namespace seedcore {
namespace graph {
namespace {

Value run_linear(const Node& n, const std::vector<const Value*>& in, RunContext& ctx) {
  const Value& x = *in[0];
  const Value& w = *in[1];
  const Value* b = in.size() > 2 ? in[2] : nullptr;
  if (w.shape.size() != 2) node_error(n, "weight '" + n.in_names[1] + "' must be 2-D, has shape " + shape_string(w.shape));
  const int64_t N = w.shape[0], K = w.shape[1];
  if (x.shape.empty() || x.shape.back() != K)
    node_error(n, "input '" + n.in_names[0] + "' has shape " + shape_string(x.shape) + ", its last axis must be " +
                      std::to_string(K) + " (the weight is " + shape_string(w.shape) + ")");
  if (b && (b->shape.size() != 1 || b->shape[0] != N))
    node_error(n, "bias '" + n.in_names[2] + "' has shape " + shape_string(b->shape) + ", expected [" + std::to_string(N) + "]");
  std::vector<int64_t> shape = x.shape;
  shape.back() = N;
  Value y = new_value(ElemType::f32, shape);
  const int64_t M = K > 0 ? x.numel() / K : y.numel() / std::max<int64_t>(N, 1);
  float* yp = mut_f32(y);
  // y = x · Wᵀ + b: x is the packed A side (MC x KC blocks), Wᵀ the B panels (packed
  // at load for file weights, else once per call), y rows stored in place, the bias written into each tile up front.
  GemmArgs g;
  g.M = M; g.N = N; g.K = K;
  g.a = x.f32(); g.a_rs = K; g.a_cs = 1;
  g.b = w.f32(); g.b_ks = 1; g.b_ns = K;
  g.c = yp; g.c_rs = N; g.c_cs = 1;
  g.bias_n = b ? b->f32() : nullptr;
  if (n.packed_weight && n.packed_for == &ctx.kernels) g.b_packed = n.packed_weight->data();
  if (n.fused_gelu) g.row_epilogue = ctx.kernels.gelu_erf;
  gemm(g, ctx.kernels, ctx.runner);
  return y;
}

Value run_matmul(const Node& n, const std::vector<const Value*>& in, RunContext& ctx) {
  const Value& a = *in[0];
  const Value& b = *in[1];
  for (int i = 0; i < 2; ++i)
    if (in[size_t(i)]->shape.size() < 2)
      node_error(n, "operand '" + n.in_names[size_t(i)] + "' must be at least 2-D, has shape " +
                        shape_string(in[size_t(i)]->shape));
  const size_t ra = a.shape.size(), rb = b.shape.size();
  const int64_t M = a.shape[ra - 2], K = a.shape[ra - 1], N = b.shape[rb - 1];
  if (b.shape[rb - 2] != K)
    node_error(n, "operands '" + n.in_names[0] + "' " + shape_string(a.shape) + " and '" + n.in_names[1] + "' " +
                      shape_string(b.shape) + " do not multiply");
  const size_t rbatch = std::max(ra, rb) - 2;
  std::vector<int64_t> batch(rbatch), sa(rbatch, 0), sb(rbatch, 0);
  for (size_t d = 0; d < rbatch; ++d) {
    const int64_t ia = int64_t(d) - int64_t(rbatch - (ra - 2)), ib = int64_t(d) - int64_t(rbatch - (rb - 2));
    const int64_t da = ia >= 0 ? a.shape[size_t(ia)] : 1, db = ib >= 0 ? b.shape[size_t(ib)] : 1;
    if (da != db && da != 1 && db != 1)
      node_error(n, "batch dimensions of '" + n.in_names[0] + "' " + shape_string(a.shape) + " and '" + n.in_names[1] +
                        "' " + shape_string(b.shape) + " do not broadcast");
    batch[d] = std::max(da, db);
    if (da == 0 || db == 0) batch[d] = 0;
  }
  // element strides of each operand's batch dims (0 where broadcast)
  {
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
  }
  std::vector<int64_t> shape = batch;
  shape.push_back(M);
  shape.push_back(N);
  Value y = new_value(ElemType::f32, shape);
  int64_t nb = 1;
  for (int64_t d : batch) nb *= d;
  float* yp = mut_f32(y);
  auto one = [&](size_t t, TaskRunner* runner) {
    int64_t rem = int64_t(t), oa = 0, ob = 0;
    for (size_t d = rbatch; d-- > 0;) {
      const int64_t i = rem % batch[d];
      rem /= batch[d];
      oa += i * sa[d];
      ob += i * sb[d];
    }
    GemmArgs g;
    g.M = M; g.N = N; g.K = K;
    g.a = a.f32() + oa; g.a_rs = K; g.a_cs = 1;
    g.b = b.f32() + ob; g.b_ks = N; g.b_ns = 1;
    g.c = yp + int64_t(t) * M * N; g.c_rs = N; g.c_cs = 1;
    gemm(g, ctx.kernels, runner);
  };
  if (nb >= int64_t(ctx.runner->workers()) && nb > 1)
    ctx.runner->run(size_t(nb), [&](size_t t, unsigned) { one(t, nullptr); });
  else
    for (int64_t t = 0; t < nb; ++t) one(size_t(t), ctx.runner);
  return y;
}

}  // namespace

Value run_dense(const Node& n, const std::vector<const Value*>& in, RunContext& ctx) {
  return n.op == Op::linear ? run_linear(n, in, ctx) : run_matmul(n, in, ctx);
}

}  // namespace graph
}  // namespace seedcore

// Shared by the executor's files: the parsed graph, run-time values and the op
// functions. Not a public header.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "seedcore/error.h"
#include "seedcore/graph.h"
#include "seedcore/graph_kernels.h"

namespace seedcore {
namespace graph {

#define SEEDCORE_GRAPH_OPS(X)                                                                 \
  X(linear) X(matmul) X(conv2d) X(max_pool2d) X(avg_pool_global) X(batch_norm) X(layer_norm) \
  X(embedding) X(arange_like) X(select) X(relu) X(tanh) X(sigmoid) X(exp) X(sqrt) X(neg)     \
  X(gelu) X(clamp) X(add) X(sub) X(mul) X(div) X(pow) X(add_scalar) X(sub_scalar)            \
  X(mul_scalar) X(div_scalar) X(pow_scalar) X(softmax) X(sum) X(mean) X(max) X(normalize)    \
  X(reshape) X(flatten) X(transpose) X(unsqueeze) X(cast) X(identity)

enum class Op : uint8_t {
#define SEEDCORE_OP_ENUM(name) name,
  SEEDCORE_GRAPH_OPS(SEEDCORE_OP_ENUM)
#undef SEEDCORE_OP_ENUM
};

// Every attribute any op has; each op reads its own.
struct Attrs {
  int64_t stride[2] = {1, 1}, padding[2] = {0, 0}, dilation[2] = {1, 1}, kernel[2] = {1, 1};
  int64_t groups = 1;
  double eps = 0.0;
  int64_t axis = 0, index = 0, start = 0, end = -1;
  bool gelu_tanh = false;
  bool has_min = false, has_max = false;
  double min = 0.0, max = 0.0, value = 0.0;
  bool reverse = false, keepdim = false;
  std::vector<int64_t> axes, shape, perm;
  ElemType dtype = ElemType::f32;
};

struct Node {
  Op op;
  std::string op_name, path;
  size_t index = 0;
  std::vector<int> in;                // value slots; -1 for an absent optional input
  std::vector<std::string> in_names;  // for messages ("" when absent)
  int out = -1;                       // every op has one output
  std::string out_name;
  Attrs attrs;
  std::vector<int> release;           // slots whose last use is this node
  // conv2d only: the clamp that was its output's sole consumer, applied in the conv's
  // epilogue (attrs has_min/min/has_max/max); that clamp node became an identity.
  bool fused_clamp = false;
  // conv2d only: in = {x, w, b, r}, the add that was its output's sole consumer (a
  // residual connection): r is added to each output in the GEMM's epilogue, after the
  // clamp (GemmArgs::residual); that add node became an identity.
  bool fused_residual = false;
  // conv2d (depthwise 3x3) only: in = {x, w_e, b_e, w, b}, the 1x1 expansion conv2d
  // (weight w_e, bias b_e, groups 1, stride 1, no padding) [+ clamp] that was its input's
  // sole producer, run a block of channels at a time just before their depthwise planes
  // (run_expand_depthwise); the expansion's clamp is expand_clamp / expand_min/max, and
  // that conv node (and its clamp) became identities.
  bool fused_expand = false;
  bool expand_has_min = false, expand_has_max = false;
  double expand_min = 0.0, expand_max = 0.0;
  // linear only: the gelu (erf) that was its output's sole consumer, run on each GEMM
  // tile (GemmArgs::row_epilogue); that gelu node became an identity.
  bool fused_gelu = false;
  // softmax: in = {x, m}, computing softmax(x [* attrs.value] + m) row by row, from a
  // mul_scalar (fused_scale) and an add that fed only it (they became identities).
  // layer_norm: in = {x, w, b, r}, normalising x + r (a residual add that fed only it).
  bool fused_add = false, fused_scale = false;
  // A file weight packed once at load for the kernel table `packed_for`: a linear's Wᵀ
  // as the GEMM's B panels (gemm_pack_b), a groups-1 conv2d's weight as its A panels
  // (gemm_pack_a). Per call these packs cost ~10% of MiniLM and of MobileNetV2.
  std::shared_ptr<const std::vector<float>> packed_weight;
  const GraphKernels* packed_for = nullptr;
};

// "graph node 3 (linear, path 'encoder.0.fc'): <what>"
[[noreturn]] void node_error(const Node& node, const std::string& what);
std::string shape_string(const std::vector<int64_t>& shape);

// A value during a run: shared storage (views such as reshape alias it) or borrowed.
struct Value {
  ElemType dtype = ElemType::f32;
  std::vector<int64_t> shape;
  std::shared_ptr<void> owner;  // null when borrowed
  const void* data = nullptr;
  int64_t numel() const;
  const float* f32() const { return static_cast<const float*>(data); }
  const int64_t* i64() const { return static_cast<const int64_t*>(data); }
};

// Recycling of large value blocks (graph.cpp) for executors other than Graph (the
// trainer): a fresh cache, and making one current for new_value on this thread (returns
// the previous one, which the caller restores; null = none).
class BlockCache;
std::shared_ptr<BlockCache> new_block_cache();
std::shared_ptr<BlockCache>* swap_current_block_cache(std::shared_ptr<BlockCache>* cache);

// A fresh owned value (64-byte aligned, uninitialised) and a writable pointer to it.
Value new_value(ElemType dtype, std::vector<int64_t> shape);
inline float* mut_f32(Value& v) { return static_cast<float*>(const_cast<void*>(v.data)); }
inline int64_t* mut_i64(Value& v) { return static_cast<int64_t*>(const_cast<void*>(v.data)); }

struct RunContext {
  const GraphKernels& kernels;
  TaskRunner* runner;  // never null
};

// Normalises a possibly negative axis against `rank`, or node_error.
int64_t norm_axis(const Node& node, int64_t axis, int64_t rank, const char* what);

// Op families (ops_*.cpp). `in[i]` is null for an absent optional input.
Value run_dense(const Node& n, const std::vector<const Value*>& in, RunContext& ctx);        // linear, matmul
Value run_conv(const Node& n, const std::vector<const Value*>& in, RunContext& ctx);         // conv2d, pools
Value run_elementwise(const Node& n, const std::vector<const Value*>& in, RunContext& ctx);  // unary, binary, scalar
Value run_norm(const Node& n, const std::vector<const Value*>& in, RunContext& ctx);         // norms, softmax, reductions
Value run_shape(const Node& n, const std::vector<const Value*>& in, RunContext& ctx);        // views, gathers, casts
// a + b with numpy broadcasting (the add op), for fused nodes' general fallbacks.
Value add_broadcast(const Node& n, const Value& a, const Value& b);

}  // namespace graph
}  // namespace seedcore

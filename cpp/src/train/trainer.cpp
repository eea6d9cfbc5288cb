// The trainer: the graph (validated by seedcore::Graph, then re-read here without the
// executor's fusions so that every node's input is at hand for its backward pass), the
// forward pass through the executor's op functions keeping every value, the backward
// pass (backward.cpp), the optimisers and the seeded mini-batch walk.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>

#include "seedcore/error.h"
#include "seedcore/json.h"
#include "train/trainer_internal.h"

namespace seedcore::train {

using graph::Node;
using graph::Op;
using graph::Value;

OptimizerKind parse_optimizer(std::string_view name) {
  if (name == "sgd") return OptimizerKind::sgd;
  if (name == "adam") return OptimizerKind::adam;
  throw SeedError("unknown optimizer '" + std::string(name) + "' (one of: sgd, adam)");
}

// ---------------------------------------------------------------------------
// PRNG

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

BatchRng::BatchRng(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}
uint64_t BatchRng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}
uint64_t BatchRng::below(uint64_t n) {
  if (n <= 1) return 0;
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // reject the biased tail
  uint64_t r;
  do r = next();
  while (r >= limit);
  return r % n;
}
double BatchRng::uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }

// ---------------------------------------------------------------------------
// Impl

namespace {

// No inf / NaN in x: an exponent-bits test OR-ed over the array (vectorises; an
// early-exit isfinite loop did not, ~3% of a LeNet step).
bool all_finite(const float* x, int64_t n) {
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, x + i, sizeof b);
    bad |= uint32_t((b & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

// torch.optim.SGD with momentum, element by element (restrict: the loop vectorises,
// the same operations in every lane): d = g + wd w; buf = first ? d : mom buf + d;
// w -= lr buf.
void sgd_momentum(float* __restrict p, float* __restrict buf, const float* __restrict gr, int64_t n, float lr,
                  float wd, float mom, bool first) {
  if (first) {
    for (int64_t i = 0; i < n; ++i) {
      buf[i] = gr[i] + wd * p[i];
      p[i] -= lr * buf[i];
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    buf[i] = mom * buf[i] + (gr[i] + wd * p[i]);
    p[i] -= lr * buf[i];
  }
}

struct WeightBuf {
  std::string name;
  int slot = -1;
  ElemType dtype = ElemType::f32;
  std::vector<int64_t> shape;
  std::shared_ptr<void> data;
  int64_t numel = 0;
  bool trainable = false;
  std::vector<float> grad, m, v;  // trainable only: gradient, momentum / first moment, second moment
  float* f32() const { return static_cast<float*>(data.get()); }
};

std::shared_ptr<void> aligned_copy(const void* src, size_t bytes) {
  const size_t alloc = std::max<size_t>(64, (bytes + 63) & ~size_t(63));
  void* p = std::aligned_alloc(64, alloc);
  if (p == nullptr) throw std::bad_alloc();
  if (bytes) std::memcpy(p, src, bytes);
  return std::shared_ptr<void>(p, std::free);
}

int64_t numel_of(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::vector<uint32_t> children(const JsonDocument& d, uint32_t i) {
  std::vector<uint32_t> out;
  for (uint32_t c = d.node(i).first; c != JsonDocument::kNone; c = d.node(c).next) out.push_back(c);
  return out;
}

const std::unordered_map<std::string, Op>& op_names() {
  static const std::unordered_map<std::string, Op> m = {
#define SEEDCORE_OP_NAME(name) {#name, Op::name},
      SEEDCORE_GRAPH_OPS(SEEDCORE_OP_NAME)
#undef SEEDCORE_OP_NAME
  };
  return m;
}

// Reads a node's attributes (the graph is already validated by seedcore::Graph).
void read_attrs(const JsonDocument& doc, uint32_t attrs, graph::Attrs& a) {
  for (uint32_t c : children(doc, attrs)) {
    const std::string k(doc.key(c));
    const auto kind = doc.kind(c);
    auto integer = [&](uint32_t i) {
      int64_t v = 0;
      doc.integer_in(i, INT64_MIN, INT64_MAX, v);
      return v;
    };
    auto list = [&]() {
      std::vector<int64_t> out;
      for (uint32_t e : children(doc, c)) out.push_back(integer(e));
      return out;
    };
    if (k == "stride" || k == "padding" || k == "dilation" || k == "kernel") {
      const auto l = list();
      int64_t* dst = k == "stride" ? a.stride : k == "padding" ? a.padding : k == "dilation" ? a.dilation : a.kernel;
      for (size_t d = 0; d < 2 && d < l.size(); ++d) dst[d] = l[d];
    } else if (k == "groups") {
      a.groups = integer(c);
    } else if (k == "axis") {
      a.axis = integer(c);
    } else if (k == "index") {
      a.index = integer(c);
    } else if (k == "start") {
      a.start = integer(c);
    } else if (k == "end") {
      a.end = integer(c);
    } else if (k == "eps") {
      a.eps = doc.number_value(c);
    } else if (k == "value") {
      a.value = doc.number_value(c);
    } else if (k == "min" || k == "max") {
      const bool present = kind != JsonDocument::Kind::null;
      const double x = present ? doc.number_value(c) : 0.0;
      if (k == "min") { a.has_min = present; a.min = x; } else { a.has_max = present; a.max = x; }
    } else if (k == "reverse") {
      a.reverse = doc.node(c).bool_value;
    } else if (k == "keepdim") {
      a.keepdim = doc.node(c).bool_value;
    } else if (k == "axes") {
      a.axes = list();
    } else if (k == "shape") {
      a.shape = list();
    } else if (k == "perm") {
      a.perm = list();
    } else if (k == "approximate") {
      a.gelu_tanh = doc.string_value(c) == "tanh";
    } else if (k == "dtype") {
      a.dtype = doc.string_value(c) == "float32" ? ElemType::f32 : ElemType::i64;
    }
  }
}

}  // namespace

struct Trainer::Impl {
  std::vector<ValueSpec> inputs, outputs;
  std::vector<Node> nodes;
  size_t n_slots = 0;
  std::vector<int> input_slots, output_slots;
  std::vector<WeightBuf> weights;
  std::unordered_map<std::string, size_t> weight_index;
  std::vector<std::string> trainable;
  std::vector<char> needs;  // per slot
  bool input_grads = false;
  std::unique_ptr<ThreadPool> pool;
  const GraphKernels* kernels = nullptr;
  std::vector<Value> values;
  Grads grads;
  std::vector<float> scratch1, scratch2;
  std::vector<NodeAux> aux;
  std::vector<int> producer, consumers;
  std::shared_ptr<graph::BlockCache> cache = graph::new_block_cache();
  int64_t steps = 0;
  // the mini-batch walk
  BatchRng rng{0};
  std::vector<int64_t> order;
  size_t pos = 0;

  void check_inputs(const std::vector<TensorRef>& in) const;
  void run_forward(const std::vector<TensorRef>& in);
  void run_backward();
  std::vector<Tensor> collect_outputs() const;
};

void Trainer::Impl::check_inputs(const std::vector<TensorRef>& in) const {
  if (in.size() != inputs.size())
    throw SeedError("the graph takes " + std::to_string(inputs.size()) + " input(s), got " + std::to_string(in.size()));
  std::map<std::string, int64_t> sym;
  for (size_t i = 0; i < in.size(); ++i) {
    const ValueSpec& s = inputs[i];
    if (in[i].dtype != s.dtype)
      throw SeedError("input '" + s.name + "' must be " + elem_type_name(s.dtype) + ", got " + elem_type_name(in[i].dtype));
    if (in[i].shape.size() != s.shape.size())
      throw SeedError("input '" + s.name + "' must have " + std::to_string(s.shape.size()) + " dimensions, has shape " +
                      graph::shape_string(in[i].shape));
    for (size_t d = 0; d < s.shape.size(); ++d) {
      const int64_t got = in[i].shape[d];
      if (got < 0) throw SeedError("input '" + s.name + "' has a negative dimension");
      if (s.shape[d].symbol.empty()) {
        if (got != s.shape[d].size)
          throw SeedError("input '" + s.name + "' has shape " + graph::shape_string(in[i].shape) + ": axis " +
                          std::to_string(d) + " must be " + std::to_string(s.shape[d].size));
      } else {
        auto it = sym.find(s.shape[d].symbol);
        if (it != sym.end() && it->second != got)
          throw SeedError("input '" + s.name + "' axis " + std::to_string(d) + " ('" + s.shape[d].symbol + "') is " +
                          std::to_string(got) + ", but '" + s.shape[d].symbol + "' is " + std::to_string(it->second) +
                          " elsewhere");
        sym[s.shape[d].symbol] = got;
      }
    }
  }
}

void Trainer::Impl::run_forward(const std::vector<TensorRef>& in) {
  check_inputs(in);
  values.assign(n_slots, Value{});
  for (size_t i = 0; i < in.size(); ++i) {
    Value& v = values[size_t(input_slots[i])];
    v.dtype = in[i].dtype;
    v.shape = in[i].shape;
    v.data = in[i].data;
  }
  for (const WeightBuf& w : weights) {
    Value& v = values[size_t(w.slot)];
    v.dtype = w.dtype;
    v.shape = w.shape;
    v.data = w.data.get();
  }
  graph::RunContext ctx{*kernels, pool.get()};
  struct Scope {  // values come from (and go back to) this trainer's block cache
    std::shared_ptr<graph::BlockCache>* saved;
    ~Scope() { graph::swap_current_block_cache(saved); }
  } scope{graph::swap_current_block_cache(&cache)};
  std::vector<const Value*> args;
  for (const Node& n : nodes) {
    args.clear();
    for (int s : n.in) args.push_back(s >= 0 ? &values[size_t(s)] : nullptr);
    Value out;
    if (forward_special(n, args, ctx, aux, out)) {
      values[size_t(n.out)] = std::move(out);
      continue;
    }
    switch (n.op) {
      case Op::linear: case Op::matmul: out = graph::run_dense(n, args, ctx); break;
      case Op::conv2d: case Op::max_pool2d: case Op::avg_pool_global: out = graph::run_conv(n, args, ctx); break;
      case Op::batch_norm: case Op::layer_norm: case Op::softmax: case Op::normalize:
      case Op::sum: case Op::mean: case Op::max: out = graph::run_norm(n, args, ctx); break;
      case Op::embedding: case Op::arange_like: case Op::select: case Op::reshape: case Op::flatten:
      case Op::transpose: case Op::unsqueeze: case Op::cast: case Op::identity: out = graph::run_shape(n, args, ctx); break;
      default: out = graph::run_elementwise(n, args, ctx); break;
    }
    values[size_t(n.out)] = std::move(out);
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Value& v = values[size_t(output_slots[i])];
    if (v.dtype != outputs[i].dtype)
      throw SeedError("output '" + outputs[i].name + "' is " + elem_type_name(v.dtype) + ", declared " +
                      elem_type_name(outputs[i].dtype));
  }
}

void Trainer::Impl::run_backward() {
  BackwardContext ctx{*kernels, pool.get(), values, needs, grads, scratch1, scratch2, aux, nodes, producer, consumers};
  for (size_t i = nodes.size(); i-- > 0;) {
    const Node& n = nodes[i];
    if (!grads.has(n.out)) continue;
    if (values[size_t(n.out)].dtype != ElemType::f32) continue;
    backward_node(n, ctx);
  }
  for (WeightBuf& w : weights) {
    if (!w.trainable) continue;
    if (grads.has(w.slot)) w.grad.swap(grads.g[size_t(w.slot)]);
    else w.grad.assign(size_t(w.numel), 0.0f);  // the loss does not depend on it
    grads.on[size_t(w.slot)] = 0;
  }
}

std::vector<Tensor> Trainer::Impl::collect_outputs() const {
  std::vector<Tensor> result;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Value& v = values[size_t(output_slots[i])];
    Tensor t;
    t.dtype = v.dtype;
    t.shape = v.shape;
    t.storage = aligned_copy(v.data, size_t(v.numel()) * elem_size(v.dtype));
    result.push_back(std::move(t));
  }
  return result;
}

// ---------------------------------------------------------------------------
// Trainer

Trainer::Trainer(std::string_view graph_json, const std::unordered_map<std::string, TensorRef>& weights,
                 const std::vector<std::string>& trainable, unsigned threads, Isa isa, bool input_grads)
    : impl_(new Impl) {
  // Full validation (ops, attributes, names, dtypes, weight shapes) by the executor.
  const Graph checked(graph_json, weights);
  Impl& g = *impl_;
  g.inputs = checked.inputs();
  g.outputs = checked.outputs();
  g.input_grads = input_grads;
  g.kernels = &graph_kernels(isa);
  g.pool.reset(new ThreadPool(std::max(1u, threads)));

  const JsonDocument doc = JsonDocument::parse(graph_json, "graph");
  std::unordered_map<std::string, int> slot_of;
  std::vector<ElemType> slot_dtype;
  auto add_slot = [&](const std::string& name, ElemType dt) {
    slot_of[name] = int(g.n_slots);
    slot_dtype.push_back(dt);
    return int(g.n_slots++);
  };
  for (const ValueSpec& s : g.inputs) g.input_slots.push_back(add_slot(s.name, s.dtype));
  const auto& ops = op_names();
  const uint32_t nodes = doc.find(doc.root(), "nodes");
  for (uint32_t ni : children(doc, nodes)) {
    Node n;
    n.index = g.nodes.size();
    n.op_name = std::string(doc.string_value(doc.find(ni, "op")));
    n.path = std::string(doc.string_value(doc.find(ni, "path")));
    n.op = ops.at(n.op_name);
    for (uint32_t item : children(doc, doc.find(ni, "in"))) {
      if (doc.kind(item) == JsonDocument::Kind::null) {
        n.in.push_back(-1);
        n.in_names.emplace_back();
        continue;
      }
      const std::string name(doc.string_value(item));
      auto it = slot_of.find(name);
      int slot;
      if (it != slot_of.end()) {
        slot = it->second;
      } else {  // a tensor of the file (validated above)
        const TensorRef& r = weights.at(name);
        slot = add_slot(name, r.dtype);
        WeightBuf w;
        w.name = name;
        w.slot = slot;
        w.dtype = r.dtype;
        w.shape = r.shape;
        w.numel = numel_of(r.shape);
        w.data = aligned_copy(r.data, size_t(w.numel) * elem_size(r.dtype));
        g.weight_index[name] = g.weights.size();
        g.weights.push_back(std::move(w));
      }
      n.in.push_back(slot);
      n.in_names.push_back(name);
    }
    read_attrs(doc, doc.find(ni, "attrs"), n.attrs);
    const std::string out(doc.string_value(doc.node(doc.find(ni, "out")).first));
    n.out_name = out;
    // the output dtype as the validator derives it
    ElemType dt = ElemType::f32;
    switch (n.op) {
      case Op::arange_like: dt = ElemType::i64; break;
      case Op::cast: dt = n.attrs.dtype; break;
      case Op::select: case Op::clamp: case Op::reshape: case Op::flatten: case Op::transpose: case Op::unsqueeze:
      case Op::identity: case Op::neg: case Op::add: case Op::sub: case Op::mul: case Op::add_scalar:
      case Op::sub_scalar: case Op::mul_scalar: case Op::sum: case Op::max:
        dt = n.in[0] >= 0 ? slot_dtype[size_t(n.in[0])] : ElemType::f32; break;
      default: break;
    }
    n.out = add_slot(out, dt);
    g.nodes.push_back(std::move(n));
  }
  for (const ValueSpec& s : g.outputs) g.output_slots.push_back(slot_of.at(s.name));

  // What trains.
  if (trainable.empty()) throw SeedError("nothing to train: the trainable set is empty");
  for (const std::string& name : trainable) {
    auto it = g.weight_index.find(name);
    if (it == g.weight_index.end()) {
      if (weights.count(name)) throw SeedError("trainable tensor '" + name + "' is not read by the graph");
      throw SeedError("trainable tensor '" + name + "' is not a tensor of the model");
    }
    WeightBuf& w = g.weights[it->second];
    if (w.dtype != ElemType::f32) throw SeedError("trainable tensor '" + name + "' is not float32");
    if (w.trainable) throw SeedError("trainable tensor '" + name + "' is listed twice");
    w.trainable = true;
    g.trainable.push_back(name);
  }
  // Which values need a gradient: those that depend on a trainable tensor (or a float
  // input, with input_grads), through ops that are differentiable.
  g.needs.assign(g.n_slots, 0);
  for (const WeightBuf& w : g.weights) g.needs[size_t(w.slot)] = w.trainable;
  if (input_grads)
    for (size_t i = 0; i < g.inputs.size(); ++i) g.needs[size_t(g.input_slots[i])] = g.inputs[i].dtype == ElemType::f32;
  for (const Node& n : g.nodes) {
    if (slot_dtype[size_t(n.out)] != ElemType::f32) continue;
    if (n.op == Op::cast || n.op == Op::arange_like) continue;
    bool any = false;
    for (int s : n.in) any |= s >= 0 && g.needs[size_t(s)];
    g.needs[size_t(n.out)] = any;
  }
  bool reaches = false;
  for (int s : g.output_slots) reaches |= g.needs[size_t(s)] != 0;
  if (!reaches) throw SeedError("no output of the graph depends on the trainable tensors");
  g.grads.resize(g.n_slots);
  g.producer.assign(g.n_slots, -1);
  g.consumers.assign(g.n_slots, 0);
  for (const Node& n : g.nodes) {
    g.producer[size_t(n.out)] = int(n.index);
    for (int s : n.in)
      if (s >= 0) ++g.consumers[size_t(s)];
  }
  for (int s : g.output_slots) ++g.consumers[size_t(s)];
  g.aux.resize(g.nodes.size());
  for (const Node& n : g.nodes) {  // conv2d -> relu pairs (see NodeAux)
    if (n.op != Op::relu || n.in[0] < 0) continue;
    const int pi = g.producer[size_t(n.in[0])];
    if (pi >= 0 && g.nodes[size_t(pi)].op == Op::conv2d && g.consumers[size_t(n.in[0])] == 1) {
      g.aux[size_t(pi)].relu_after = true;
      g.aux[n.index].relu_of = pi;
    }
  }
}

Trainer::~Trainer() = default;
Trainer::Trainer(Trainer&&) noexcept = default;
Trainer& Trainer::operator=(Trainer&&) noexcept = default;

const std::vector<ValueSpec>& Trainer::inputs() const { return impl_->inputs; }
const std::vector<ValueSpec>& Trainer::outputs() const { return impl_->outputs; }
const std::vector<std::string>& Trainer::trainable() const { return impl_->trainable; }
int64_t Trainer::steps_done() const { return impl_->steps; }

std::vector<Tensor> Trainer::forward(const std::vector<TensorRef>& inputs) {
  impl_->run_forward(inputs);
  std::vector<Tensor> out = impl_->collect_outputs();
  impl_->values.clear();
  return out;
}

double Trainer::compute_gradients(const std::vector<TensorRef>& inputs, LossKind loss, const TensorRef& target,
                                  size_t output) {
  Impl& g = *impl_;
  if (output >= g.outputs.size()) throw SeedError("output index " + std::to_string(output) + " is out of range");
  g.run_forward(inputs);
  const int slot = g.output_slots[output];
  const Value& out = g.values[size_t(slot)];
  if (out.dtype != ElemType::f32) throw SeedError("output '" + g.outputs[output].name + "' is not float32");
  if (!g.needs[size_t(slot)]) throw SeedError("output '" + g.outputs[output].name + "' does not depend on the trainable tensors");
  const int64_t n = out.shape.empty() ? 1 : out.shape[0];
  const int64_t total = out.numel();
  const int64_t d = n > 0 ? total / n : 0;
  if (n == 0) throw SeedError("empty batch");
  {  // a non-finite output (a diverging model) is a non-finite loss: the caller decides
    const float* o = out.f32();
    for (int64_t i = 0; i < total; ++i)
      if (!std::isfinite(o[i])) {
        g.values.clear();
        return std::numeric_limits<double>::quiet_NaN();
      }
  }
  g.grads.clear();
  float* gout = g.grads.at(slot, total);
  double value;
  if (loss == LossKind::cross_entropy) {
    if (target.dtype != ElemType::i64) throw SeedError("cross_entropy needs integer class labels");
    if (numel_of(target.shape) != n)
      throw SeedError("the labels have shape " + graph::shape_string(target.shape) + ", expected " + std::to_string(n) +
                      " (one per sample of output " + graph::shape_string(out.shape) + ")");
    value = train::loss(loss, out.f32(), n, d, static_cast<const int64_t*>(target.data), nullptr, gout);
  } else {
    if (target.dtype != ElemType::f32) throw SeedError(std::string(loss_name(loss)) + " needs float targets");
    if (numel_of(target.shape) != total)
      throw SeedError("the targets have shape " + graph::shape_string(target.shape) + ", but the output has shape " +
                      graph::shape_string(out.shape));
    value = train::loss(loss, out.f32(), n, d, nullptr, static_cast<const float*>(target.data), gout);
  }
  if (!std::isfinite(value)) {
    g.values.clear();
    return value;  // the caller decides (fit stops with a SeedError)
  }
  g.run_backward();
  g.values.clear();
  return value;
}

void Trainer::backward_from(const std::vector<TensorRef>& inputs, const std::vector<TensorRef>& output_grads) {
  Impl& g = *impl_;
  if (output_grads.size() != g.outputs.size())
    throw SeedError("expected " + std::to_string(g.outputs.size()) + " output gradients, got " +
                    std::to_string(output_grads.size()));
  g.run_forward(inputs);
  g.grads.clear();
  for (size_t i = 0; i < output_grads.size(); ++i) {
    const TensorRef& r = output_grads[i];
    if (r.data == nullptr) continue;
    const int slot = g.output_slots[i];
    const Value& out = g.values[size_t(slot)];
    if (out.dtype != ElemType::f32 || r.dtype != ElemType::f32 || numel_of(r.shape) != out.numel())
      throw SeedError("the gradient of output '" + g.outputs[i].name + "' must be float32 of shape " +
                      graph::shape_string(out.shape));
    if (!g.needs[size_t(slot)]) continue;
    float* dst = g.grads.at(slot, out.numel());
    const float* src = static_cast<const float*>(r.data);
    for (int64_t k = 0; k < out.numel(); ++k) dst[k] += src[k];
  }
  g.run_backward();
  // keep the inputs' gradients (input_gradient), drop the values
  g.values.clear();
}

void Trainer::step(const OptimizerConfig& opt) {
  Impl& g = *impl_;
  if (!(opt.lr > 0) || !std::isfinite(opt.lr)) throw SeedError("the learning rate must be a finite number > 0");
  if (opt.momentum < 0 || opt.momentum >= 1 || !std::isfinite(opt.momentum))
    throw SeedError("momentum must be in [0, 1)");
  if (opt.weight_decay < 0 || !std::isfinite(opt.weight_decay)) throw SeedError("weight decay must be >= 0");
  for (const WeightBuf& w : g.weights) {
    if (!w.trainable) continue;
    if (w.grad.size() != size_t(w.numel)) throw SeedError("step() before any gradient was computed");
    if (!all_finite(w.grad.data(), int64_t(w.grad.size())))
      throw SeedError("training diverged at step " + std::to_string(g.steps + 1) + ": the gradient of '" + w.name +
                      "' is not finite (try a lower learning rate)");
  }
  ++g.steps;
  const float lr = float(opt.lr), wd = float(opt.weight_decay), mom = float(opt.momentum);
  const double b1 = opt.beta1, b2 = opt.beta2;
  const float bc1 = float(1.0 - std::pow(b1, double(g.steps))), bc2 = float(1.0 - std::pow(b2, double(g.steps)));
  const float eps = float(opt.eps);
  for (WeightBuf& w : g.weights) {
    if (!w.trainable) continue;
    float* p = w.f32();
    const float* gr = w.grad.data();
    const int64_t n = w.numel;
    if (opt.kind == OptimizerKind::sgd) {
      if (mom > 0) {
        const bool first = w.m.empty();
        if (first) w.m.assign(size_t(n), 0.0f);
        float* buf = w.m.data();
        sgd_momentum(p, buf, gr, n, lr, wd, mom, first);
      } else {
        for (int64_t i = 0; i < n; ++i) p[i] -= lr * (gr[i] + wd * p[i]);
      }
    } else {
      if (w.m.empty()) w.m.assign(size_t(n), 0.0f);
      if (w.v.empty()) w.v.assign(size_t(n), 0.0f);
      float* m = w.m.data();
      float* v = w.v.data();
      const float fb1 = float(b1), fb2 = float(b2);
      const float sq_bc2 = std::sqrt(bc2);
      for (int64_t i = 0; i < n; ++i) {
        const float d = gr[i] + wd * p[i];
        m[i] = fb1 * m[i] + (1.0f - fb1) * d;
        v[i] = fb2 * v[i] + (1.0f - fb2) * d * d;
        const float denom = std::sqrt(v[i]) / sq_bc2 + eps;
        p[i] -= (lr / bc1) * m[i] / denom;
      }
    }
  }
}

void Trainer::set_seed(uint64_t seed) {
  impl_->rng = BatchRng(seed);
  impl_->order.clear();
  impl_->pos = 0;
}

std::vector<double> Trainer::fit(const std::vector<TensorRef>& data, const TensorRef& target, int64_t steps,
                                 int64_t batch_size, LossKind loss, const OptimizerConfig& opt,
                                 const std::function<bool(int64_t, double)>& callback) {
  Impl& g = *impl_;
  if (steps < 0) throw SeedError("steps must be >= 0");
  if (batch_size < 1) throw SeedError("batch_size must be >= 1");
  if (data.size() != g.inputs.size())
    throw SeedError("the graph takes " + std::to_string(g.inputs.size()) + " input(s), got " + std::to_string(data.size()));
  if (target.shape.empty()) throw SeedError("the targets need a sample axis");
  const int64_t n = target.shape[0];
  if (n < 1) throw SeedError("no samples to train on");
  for (size_t i = 0; i < data.size(); ++i)
    if (data[i].shape.empty() || data[i].shape[0] != n)
      throw SeedError("input '" + g.inputs[i].name + "' has shape " + graph::shape_string(data[i].shape) + ", but there are " +
                      std::to_string(n) + " targets (axis 0 is the sample)");
  const int64_t b = std::min(batch_size, n);
  // batch buffers
  std::vector<std::vector<unsigned char>> bufs(data.size() + 1);
  std::vector<TensorRef> batch(data.size());
  std::vector<int64_t> row_bytes(data.size() + 1);
  for (size_t i = 0; i <= data.size(); ++i) {
    const TensorRef& src = i < data.size() ? data[i] : target;
    row_bytes[i] = numel_of(src.shape) / n * int64_t(elem_size(src.dtype));
    bufs[i].resize(size_t(row_bytes[i] * b) + 64);
  }
  TensorRef tbatch;
  tbatch.dtype = target.dtype;
  tbatch.shape = target.shape;
  tbatch.shape[0] = b;
  tbatch.data = bufs[data.size()].data();
  for (size_t i = 0; i < data.size(); ++i) {
    batch[i].dtype = data[i].dtype;
    batch[i].shape = data[i].shape;
    batch[i].shape[0] = b;
    batch[i].data = bufs[i].data();
  }
  if (g.order.size() != size_t(n)) {
    g.order.resize(size_t(n));
    g.pos = size_t(n);  // shuffle first
  }
  std::vector<int64_t> idx(static_cast<size_t>(b));
  std::vector<double> losses;
  double first_loss = 0.0;
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t k = 0; k < b; ++k) {
      if (g.pos >= size_t(n)) {  // a new epoch: Fisher-Yates over 0..n-1
        for (int64_t i = 0; i < n; ++i) g.order[size_t(i)] = i;
        for (int64_t i = n - 1; i > 0; --i) std::swap(g.order[size_t(i)], g.order[size_t(g.rng.below(uint64_t(i + 1)))]);
        g.pos = 0;
      }
      idx[size_t(k)] = g.order[g.pos++];
    }
    for (size_t i = 0; i <= data.size(); ++i) {
      const TensorRef& src = i < data.size() ? data[i] : target;
      const unsigned char* sp = static_cast<const unsigned char*>(src.data);
      for (int64_t k = 0; k < b; ++k)
        std::memcpy(bufs[i].data() + k * row_bytes[i], sp + idx[size_t(k)] * row_bytes[i], size_t(row_bytes[i]));
    }
    const double v = compute_gradients(batch, loss, tbatch, 0);
    if (!std::isfinite(v)) {
      if (s == 0 && g.steps == 0)
        throw SeedError("the model's output (or loss) is not finite on the first batch, before any update");
      throw SeedError("training diverged at step " + std::to_string(g.steps + 1) + ": the loss is " +
                      (std::isnan(v) ? "nan" : "inf") + " (try a lower learning rate)");
    }
    if (losses.empty()) first_loss = v;
    if (v > std::max(1e4, 1e3 * first_loss))
      throw SeedError("training diverged at step " + std::to_string(g.steps + 1) + ": the loss grew from " +
                      std::to_string(first_loss) + " to " + std::to_string(v) + " (try a lower learning rate)");
    step(opt);
    losses.push_back(v);
    if (callback && !callback(g.steps, v)) break;
  }
  return losses;
}

Tensor Trainer::weight(const std::string& name) const {
  auto it = impl_->weight_index.find(name);
  if (it == impl_->weight_index.end()) throw SeedError("no tensor '" + name + "' in the graph");
  const WeightBuf& w = impl_->weights[it->second];
  Tensor t;
  t.dtype = w.dtype;
  t.shape = w.shape;
  t.storage = aligned_copy(w.data.get(), size_t(w.numel) * elem_size(w.dtype));
  return t;
}

Tensor Trainer::gradient(const std::string& name) const {
  auto it = impl_->weight_index.find(name);
  if (it == impl_->weight_index.end() || !impl_->weights[it->second].trainable)
    throw SeedError("no trainable tensor '" + name + "'");
  const WeightBuf& w = impl_->weights[it->second];
  Tensor t;
  t.shape = w.shape;
  std::vector<float> zero;
  if (w.grad.size() != size_t(w.numel)) zero.assign(size_t(w.numel), 0.0f);
  t.storage = aligned_copy(w.grad.size() == size_t(w.numel) ? w.grad.data() : zero.data(), size_t(w.numel) * 4);
  return t;
}

Tensor Trainer::input_gradient(size_t input) const {
  const Impl& g = *impl_;
  if (input >= g.inputs.size()) throw SeedError("input index out of range");
  if (!g.input_grads || g.inputs[input].dtype != ElemType::f32)
    throw SeedError("no gradient for input '" + g.inputs[input].name + "' (float32 inputs, with input_grads)");
  static const std::vector<float> none;
  const int slot = g.input_slots[input];
  const auto& buf = g.grads.has(slot) ? g.grads.g[size_t(slot)] : none;
  Tensor t;
  t.shape = {int64_t(buf.size())};
  t.storage = aligned_copy(buf.data(), buf.size() * 4);
  return t;
}

void Trainer::set_weight(const std::string& name, const TensorRef& value) {
  auto it = impl_->weight_index.find(name);
  if (it == impl_->weight_index.end()) throw SeedError("no tensor '" + name + "' in the graph");
  WeightBuf& w = impl_->weights[it->second];
  if (value.dtype != w.dtype || value.shape != w.shape)
    throw SeedError("set_weight '" + name + "': expected " + elem_type_name(w.dtype) + " " + graph::shape_string(w.shape));
  std::memcpy(w.data.get(), value.data, size_t(w.numel) * elem_size(w.dtype));
}

}  // namespace seedcore::train

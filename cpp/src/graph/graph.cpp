// The executor: parses and validates metadata.graph completely (ops, attributes,
// names, dtypes, static weight shapes), then runs nodes in order, freeing each
// intermediate after its last consumer.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "graph/internal.h"
#include "graph/thread_pool.h"
#include "seedcore/json.h"

namespace seedcore {

const char* elem_type_name(ElemType t) { return t == ElemType::f32 ? "float32" : "int64"; }
size_t elem_size(ElemType t) { return t == ElemType::f32 ? 4 : 8; }

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace graph {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void node_error(const Node& node, const std::string& what) {
  throw SeedError("graph node " + std::to_string(node.index) + " (" + node.op_name + ", path '" + node.path +
                  "'): " + what);
}

int64_t Value::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Large values are recycled instead of handed back to the C library. Blocks above
// glibc's mmap threshold (up to 32 MiB) come fresh from the kernel on every
// allocation, and the page faults that zero them cost about a third of a batch-32
// MobileNetV2 run. Each Graph owns a cache of freed blocks; run() makes it current for
// its thread, and a value freed after its graph is gone goes to std::free.
class BlockCache {
 public:
  ~BlockCache() {
    for (auto& b : free_) std::free(b.second);
  }
  // A cached block of at least `bytes` and at most 5/4 of it (the smallest such, the
  // most recently freed among equals), or null.
  std::pair<void*, size_t> take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.lower_bound(bytes);
    if (it == free_.end() || it->first > bytes + bytes / 4) return {nullptr, 0};
    const std::pair<void*, size_t> got{it->second, it->first};
    cached_ -= it->first;
    free_.erase(it);
    return got;
  }
  void give(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + bytes <= kMaxCachedBytes) {
        // Newest first among equal sizes (take() picks the first): the block freed last
        // is the one most likely still in cache, and the next node writes all of it.
        free_.emplace_hint(free_.lower_bound(bytes), bytes, p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }
  static constexpr size_t kMinBytes = size_t(1) << 17;           // smaller ones: malloc's bins are fast
  static constexpr size_t kMaxCachedBytes = size_t(1) << 30;     // bounds what an idle Graph holds

 private:
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;
};

namespace {
thread_local std::shared_ptr<BlockCache>* current_cache = nullptr;
}  // namespace

// For executors other than Graph (the trainer, cpp/src/train): see internal.h.
std::shared_ptr<BlockCache> new_block_cache() { return std::make_shared<BlockCache>(); }
std::shared_ptr<BlockCache>* swap_current_block_cache(std::shared_ptr<BlockCache>* cache) {
  std::shared_ptr<BlockCache>* old = current_cache;
  current_cache = cache;
  return old;
}

Value new_value(ElemType dtype, std::vector<int64_t> shape) {
  Value v;
  v.dtype = dtype;
  v.shape = std::move(shape);
  const size_t bytes = std::max<size_t>(64, (size_t(v.numel()) * elem_size(dtype) + 63) & ~size_t(63));
  if (current_cache != nullptr && bytes >= BlockCache::kMinBytes) {
    const std::shared_ptr<BlockCache>& cache = *current_cache;
    std::pair<void*, size_t> block = cache->take(bytes);
    if (block.first == nullptr) {
      block = {std::aligned_alloc(64, bytes), bytes};
      if (block.first == nullptr) throw std::bad_alloc();
    }
    const std::weak_ptr<BlockCache> home = cache;
    const size_t size = block.second;
    v.owner = std::shared_ptr<void>(block.first, [home, size](void* p) {
      if (const std::shared_ptr<BlockCache> c = home.lock()) c->give(p, size);
      else std::free(p);
    });
    v.data = block.first;
    return v;
  }
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  v.owner = std::shared_ptr<void>(p, std::free);
  v.data = p;
  return v;
}

// Makes a graph's block cache current on this thread for the scope.
class CacheScope {
 public:
  explicit CacheScope(std::shared_ptr<BlockCache>& cache) : saved_(current_cache) { current_cache = &cache; }
  ~CacheScope() { current_cache = saved_; }
  CacheScope(const CacheScope&) = delete;
  CacheScope& operator=(const CacheScope&) = delete;

 private:
  std::shared_ptr<BlockCache>* saved_;
};

int64_t norm_axis(const Node& node, int64_t axis, int64_t rank, const char* what) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    node_error(node, std::string(what) + " " + std::to_string(axis) + " is out of range for rank " +
                         std::to_string(rank));
  return a;
}

namespace {

using Kind = JsonDocument::Kind;

enum class AttrKind { pair_pos, pair_nonneg, integer, int_pos, number, number_nonneg, number_or_null, boolean,
                      int_list, gelu_mode, dtype };
struct AttrSchema {
  const char* name;
  AttrKind kind;
  bool has_default;
};
enum class In : uint8_t { f32, i64, any };
struct OpSchema {
  Op op;
  const char* name;
  std::vector<In> inputs;
  int required;  // leading inputs that must be present; the rest are optional
  std::vector<AttrSchema> attrs;
  int out_rule;  // 0: float32, 1: int64, 2: same as input 0, 3: attr dtype
};

const std::vector<OpSchema>& op_schemas() {
  static const std::vector<OpSchema> table = [] {
    using A = AttrKind;
    std::vector<OpSchema> t = {
        {Op::linear, "linear", {In::f32, In::f32, In::f32}, 2, {}, 0},
        {Op::matmul, "matmul", {In::f32, In::f32}, 2, {}, 0},
        {Op::conv2d, "conv2d", {In::f32, In::f32, In::f32}, 2,
         {{"stride", A::pair_pos, false}, {"padding", A::pair_nonneg, false},
          {"dilation", A::pair_pos, false}, {"groups", A::int_pos, false}}, 0},
        {Op::max_pool2d, "max_pool2d", {In::f32}, 1,
         {{"kernel", A::pair_pos, false}, {"stride", A::pair_pos, false}, {"padding", A::pair_nonneg, false}}, 0},
        {Op::avg_pool_global, "avg_pool_global", {In::f32}, 1, {}, 0},
        {Op::batch_norm, "batch_norm", {In::f32, In::f32, In::f32, In::f32, In::f32}, 5,
         {{"eps", A::number_nonneg, false}}, 0},
        {Op::layer_norm, "layer_norm", {In::f32, In::f32, In::f32}, 1, {{"eps", A::number_nonneg, false}}, 0},
        {Op::embedding, "embedding", {In::i64, In::f32}, 2, {}, 0},
        {Op::arange_like, "arange_like", {In::any}, 1, {{"axis", A::integer, false}}, 1},
        {Op::select, "select", {In::any}, 1, {{"axis", A::integer, false}, {"index", A::integer, false}}, 2},
        {Op::gelu, "gelu", {In::f32}, 1, {{"approximate", A::gelu_mode, false}}, 0},
        {Op::clamp, "clamp", {In::any}, 1, {{"min", A::number_or_null, false}, {"max", A::number_or_null, false}}, 2},
        {Op::softmax, "softmax", {In::f32}, 1, {{"axis", A::integer, false}}, 0},
        {Op::normalize, "normalize", {In::f32}, 1, {{"axis", A::integer, false}, {"eps", A::number_nonneg, false}}, 0},
        {Op::reshape, "reshape", {In::any}, 1, {{"shape", A::int_list, false}}, 2},
        {Op::flatten, "flatten", {In::any}, 1, {{"start", A::integer, false}, {"end", A::integer, false}}, 2},
        {Op::transpose, "transpose", {In::any}, 1, {{"perm", A::int_list, false}}, 2},
        {Op::unsqueeze, "unsqueeze", {In::any}, 1, {{"axis", A::integer, false}}, 2},
        {Op::cast, "cast", {In::any}, 1, {{"dtype", A::dtype, false}}, 3},
        {Op::identity, "identity", {In::any}, 1, {}, 2},
    };
    const std::pair<Op, const char*> unary[] = {{Op::relu, "relu"}, {Op::tanh, "tanh"}, {Op::sigmoid, "sigmoid"},
                                                {Op::exp, "exp"}, {Op::sqrt, "sqrt"}, {Op::neg, "neg"}};
    for (auto& u : unary)
      t.push_back({u.first, u.second, {u.first == Op::neg ? In::any : In::f32}, 1, {}, u.first == Op::neg ? 2 : 0});
    const std::pair<Op, const char*> binary[] = {
        {Op::add, "add"}, {Op::sub, "sub"}, {Op::mul, "mul"}, {Op::div, "div"}, {Op::pow, "pow"}};
    for (auto& b : binary) {  // add, sub, mul also on two int64 tensors
      const bool ints = b.first == Op::add || b.first == Op::sub || b.first == Op::mul;
      t.push_back({b.first, b.second, {ints ? In::any : In::f32, ints ? In::any : In::f32}, 2, {}, ints ? 2 : 0});
    }
    const std::pair<Op, const char*> scalar[] = {{Op::add_scalar, "add_scalar"}, {Op::sub_scalar, "sub_scalar"},
                                                 {Op::mul_scalar, "mul_scalar"}, {Op::div_scalar, "div_scalar"},
                                                 {Op::pow_scalar, "pow_scalar"}};
    for (auto& s : scalar)
      t.push_back({s.first, s.second, {s.first == Op::div_scalar || s.first == Op::pow_scalar ? In::f32 : In::any}, 1,
                   {{"value", A::number, false}, {"reverse", A::boolean, true}}, 2});
    const std::pair<Op, const char*> reduce[] = {{Op::sum, "sum"}, {Op::mean, "mean"}, {Op::max, "max"}};
    for (auto& r : reduce)
      t.push_back({r.first, r.second, {r.first == Op::mean ? In::f32 : In::any}, 1,
                   {{"axes", A::int_list, false}, {"keepdim", A::boolean, false}}, 2});
    return t;
  }();
  return table;
}

std::string str(const JsonDocument& d, uint32_t i) { return std::string(d.string_value(i)); }

std::vector<uint32_t> children(const JsonDocument& d, uint32_t i) {
  std::vector<uint32_t> out;
  for (uint32_t c = d.node(i).first; c != JsonDocument::kNone; c = d.node(c).next) out.push_back(c);
  return out;
}

struct Parser {
  const JsonDocument& doc;

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw SeedError("graph: " + where + ": " + what);
  }
  uint32_t member(uint32_t obj, const char* key, const std::string& where) const {
    const uint32_t m = doc.find(obj, key);
    if (m == JsonDocument::kNone) fail(where, std::string("missing key '") + key + "'");
    return m;
  }
  void exact_keys(uint32_t obj, std::initializer_list<const char*> keys, const std::string& where) const {
    if (doc.kind(obj) != Kind::object) fail(where, std::string("must be an object, not ") + json_kind_name(doc.kind(obj)));
    for (uint32_t c : children(doc, obj)) {
      const std::string_view k = doc.key(c);
      if (std::none_of(keys.begin(), keys.end(), [&](const char* x) { return k == x; }))
        fail(where, "unknown key '" + std::string(k) + "'");
    }
    for (const char* k : keys) member(obj, k, where);
  }
  int64_t integer(uint32_t i, const std::string& where, int64_t lo = INT32_MIN, int64_t hi = INT32_MAX) const {
    int64_t v = 0;
    if (!doc.integer_in(i, lo, hi, v))
      fail(where, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v;
  }
  double number(uint32_t i, const std::string& where) const {
    if (doc.kind(i) != Kind::number) fail(where, "must be a number");
    const double v = doc.number_value(i);
    if (!std::isfinite(v)) fail(where, "must be a finite number");
    return v;
  }
  std::vector<int64_t> int_list(uint32_t i, const std::string& where) const {
    if (doc.kind(i) != Kind::array) fail(where, "must be a list of integers");
    std::vector<int64_t> out;
    for (uint32_t c : children(doc, i)) out.push_back(integer(c, where + " item"));
    return out;
  }
  std::string string(uint32_t i, const std::string& where) const {
    if (doc.kind(i) != Kind::string) fail(where, std::string("must be a string, not ") + json_kind_name(doc.kind(i)));
    return str(doc, i);
  }

  ValueSpec value_spec(uint32_t i, const std::string& where) const {
    exact_keys(i, {"name", "dtype", "shape"}, where);
    ValueSpec s;
    s.name = string(member(i, "name", where), where + ".name");
    if (s.name.empty()) fail(where, "name is empty");
    const std::string dt = string(member(i, "dtype", where), where + ".dtype");
    if (dt == "float32") s.dtype = ElemType::f32;
    else if (dt == "int64") s.dtype = ElemType::i64;
    else fail(where, "dtype '" + dt + "' is not float32 or int64");
    const uint32_t shape = member(i, "shape", where);
    if (doc.kind(shape) != Kind::array) fail(where, "shape must be a list");
    for (uint32_t d : children(doc, shape)) {
      DimSpec dim;
      if (doc.kind(d) == Kind::string) {
        dim.symbol = str(doc, d);
        if (dim.symbol.empty()) fail(where, "a symbolic dimension is an empty string");
      } else {
        dim.size = integer(d, where + ".shape item", 0, INT64_C(1) << 40);
      }
      s.shape.push_back(std::move(dim));
    }
    return s;
  }
};

}  // namespace

struct Slot {
  enum Kind { input, weight, node } kind;
  ElemType dtype;
  std::string name;
};

}  // namespace graph

struct Graph::Impl {
  std::vector<ValueSpec> inputs, outputs;
  std::vector<graph::Node> nodes;
  std::vector<graph::Slot> slots;
  std::vector<int> input_slots, output_slots;
  std::vector<std::pair<int, graph::Value>> weights;  // slot, borrowed value
  mutable std::mutex run_mutex;
  mutable std::unique_ptr<ThreadPool> pool;
  mutable std::shared_ptr<graph::BlockCache> cache = std::make_shared<graph::BlockCache>();
  // Every node treats the samples (axis 0 of every input and output, one symbolic size)
  // independently, with the same operations per sample whatever the batch: run() may
  // then go through the batch in chunks with the same bits (see Graph::run).
  bool batch_separable = false;
};

namespace graph {
namespace {

void check_weight_shapes(const Node& n, const std::vector<const TensorRef*>& w) {
  auto rank = [&](size_t i) { return w[i] ? int64_t(w[i]->shape.size()) : -1; };
  auto need_rank = [&](size_t i, int64_t r, const char* what) {
    if (w[i] && rank(i) != r)
      node_error(n, std::string(what) + " '" + n.in_names[i] + "' must be " + std::to_string(r) + "-D, has shape " +
                        shape_string(w[i]->shape));
  };
  auto need_len = [&](size_t i, int64_t len, const char* what) {
    if (w[i] && (rank(i) != 1 || w[i]->shape[0] != len))
      node_error(n, std::string(what) + " '" + n.in_names[i] + "' has shape " + shape_string(w[i]->shape) +
                        ", expected [" + std::to_string(len) + "]");
  };
  switch (n.op) {
    case Op::linear:
      need_rank(1, 2, "weight");
      if (n.in.size() > 2 && w[1]) need_len(2, w[1]->shape[0], "bias");
      break;
    case Op::conv2d:
      need_rank(1, 4, "weight");
      if (w[1]) {
        if (w[1]->shape[0] % n.attrs.groups != 0)
          node_error(n, "weight '" + n.in_names[1] + "' has " + std::to_string(w[1]->shape[0]) +
                            " output channels, not a multiple of groups " + std::to_string(n.attrs.groups));
        if (n.in.size() > 2) need_len(2, w[1]->shape[0], "bias");
      }
      break;
    case Op::embedding: need_rank(1, 2, "weight"); break;
    case Op::matmul:
      for (size_t i = 0; i < 2; ++i)
        if (w[i] && rank(i) < 2) node_error(n, "operand '" + n.in_names[i] + "' must be at least 2-D");
      break;
    case Op::batch_norm: {
      int64_t len = -1;
      for (size_t i = 1; i < 5; ++i)
        if (w[i]) { need_rank(i, 1, "parameter"); if (len < 0) len = w[i]->shape[0]; }
      for (size_t i = 1; i < 5; ++i) if (len >= 0) need_len(i, len, "parameter");
      break;
    }
    case Op::layer_norm:
      for (size_t i = 1; i < n.in.size(); ++i) need_rank(i, 1, "parameter");
      if (n.in.size() == 3 && w[1] && w[2]) need_len(2, w[1]->shape[0], "bias");
      break;
    default: break;
  }
}

}  // namespace
}  // namespace graph

Graph::Graph(std::string_view graph_json, const std::unordered_map<std::string, TensorRef>& weights)
    : impl_(new Impl) {
  using namespace graph;
  const JsonDocument doc = JsonDocument::parse(graph_json, "graph");
  const Parser p{doc};
  const uint32_t root = doc.root();
  p.exact_keys(root, {"version", "inputs", "outputs", "nodes"}, "graph");
  int64_t version = 0;
  if (!doc.integer_in(p.member(root, "version", "graph"), 1, 1, version))
    p.fail("version", "unsupported graph version (this reader knows 1)");

  Impl& g = *impl_;
  std::unordered_map<std::string, int> slot_of;
  auto add_slot = [&](Slot::Kind kind, ElemType dt, const std::string& name) {
    g.slots.push_back({kind, dt, name});
    slot_of[name] = int(g.slots.size() - 1);
    return int(g.slots.size() - 1);
  };

  const uint32_t ins = p.member(root, "inputs", "graph");
  if (doc.kind(ins) != Kind::array) p.fail("inputs", "must be a list");
  for (uint32_t i : children(doc, ins)) {
    const std::string where = "inputs[" + std::to_string(g.inputs.size()) + "]";
    ValueSpec s = p.value_spec(i, where);
    if (slot_of.count(s.name)) p.fail(where, "input name '" + s.name + "' is used twice");
    if (weights.count(s.name)) p.fail(where, "input name '" + s.name + "' is also a tensor of the file");
    g.input_slots.push_back(add_slot(Slot::input, s.dtype, s.name));
    g.inputs.push_back(std::move(s));
  }
  const uint32_t outs = p.member(root, "outputs", "graph");
  if (doc.kind(outs) != Kind::array) p.fail("outputs", "must be a list");
  for (uint32_t i : children(doc, outs)) g.outputs.push_back(p.value_spec(i, "outputs[" + std::to_string(g.outputs.size()) + "]"));
  if (g.outputs.empty()) p.fail("outputs", "the graph has no outputs");

  std::unordered_map<std::string, const OpSchema*> schemas;
  for (const OpSchema& s : op_schemas()) schemas[s.name] = &s;

  const uint32_t nodes = p.member(root, "nodes", "graph");
  if (doc.kind(nodes) != Kind::array) p.fail("nodes", "must be a list");
  for (uint32_t ni : children(doc, nodes)) {
    Node n;
    n.index = g.nodes.size();
    const std::string where = "nodes[" + std::to_string(n.index) + "]";
    p.exact_keys(ni, {"op", "in", "out", "attrs", "path"}, where);
    n.op_name = p.string(p.member(ni, "op", where), where + ".op");
    n.path = p.string(p.member(ni, "path", where), where + ".path");
    auto sit = schemas.find(n.op_name);
    if (sit == schemas.end()) node_error(n, "unknown op '" + n.op_name + "'");
    const OpSchema& schema = *sit->second;
    n.op = schema.op;

    // inputs
    const uint32_t in = p.member(ni, "in", where);
    if (doc.kind(in) != Kind::array) node_error(n, "'in' must be a list");
    const auto in_items = children(doc, in);
    // Exactly one item per input slot; an absent optional input is null (format.md 4).
    if (in_items.size() != schema.inputs.size())
      node_error(n, "takes " + std::to_string(schema.inputs.size()) + " inputs (null for an absent optional one), got " +
                        std::to_string(in_items.size()));
    std::vector<const TensorRef*> weight_refs;
    for (size_t k = 0; k < in_items.size(); ++k) {
      const uint32_t item = in_items[k];
      if (doc.kind(item) == Kind::null) {
        if (int(k) < schema.required) node_error(n, "input " + std::to_string(k) + " is required, got null");
        n.in.push_back(-1);
        n.in_names.emplace_back();
        weight_refs.push_back(nullptr);
        continue;
      }
      if (doc.kind(item) != Kind::string) node_error(n, "input " + std::to_string(k) + " must be a value name or null");
      const std::string name = str(doc, item);
      int slot;
      const TensorRef* wref = nullptr;
      auto it = slot_of.find(name);
      if (it != slot_of.end()) {
        slot = it->second;
        if (g.slots[size_t(slot)].kind == Slot::weight) wref = &weights.at(name);
      } else {
        auto wit = weights.find(name);
        if (wit == weights.end())
          node_error(n, "input '" + name + "' is not a graph input, an earlier node's output or a tensor of the file");
        wref = &wit->second;
        for (int64_t d : wref->shape)
          if (d < 0) node_error(n, "weight '" + name + "' has a negative dimension");
        if (wref->data == nullptr && !wref->shape.empty()) {
          int64_t ne = 1;
          for (int64_t d : wref->shape) ne *= d;
          if (ne > 0) node_error(n, "weight '" + name + "' has no data");
        }
        slot = add_slot(Slot::weight, wref->dtype, name);
        Value v;
        v.dtype = wref->dtype;
        v.shape = wref->shape;
        v.data = wref->data;
        g.weights.emplace_back(slot, std::move(v));
      }
      const In want = schema.inputs[k];
      const ElemType have = g.slots[size_t(slot)].dtype;
      if ((want == In::f32 && have != ElemType::f32) || (want == In::i64 && have != ElemType::i64))
        node_error(n, "input '" + name + "' is " + elem_type_name(have) + ", expected " +
                          (want == In::f32 ? "float32" : "int64"));
      n.in.push_back(slot);
      n.in_names.push_back(name);
      weight_refs.push_back(wref);
    }

    // attributes
    const uint32_t attrs = p.member(ni, "attrs", where);
    if (doc.kind(attrs) != Kind::object) node_error(n, "'attrs' must be an object");
    for (uint32_t c : children(doc, attrs)) {
      const std::string_view k = doc.key(c);
      if (std::none_of(schema.attrs.begin(), schema.attrs.end(), [&](const AttrSchema& a) { return k == a.name; }))
        node_error(n, "unknown attribute '" + std::string(k) + "'");
    }
    Attrs& a = n.attrs;
    for (const AttrSchema& as : schema.attrs) {
      const uint32_t v = doc.find(attrs, as.name);
      const std::string an = std::string("attribute '") + as.name + "'";
      if (v == JsonDocument::kNone) {
        if (!as.has_default) node_error(n, "missing " + an);
        continue;
      }
      auto pair = [&](int64_t lo, int64_t* dst) {
        std::vector<int64_t> l;
        try { l = p.int_list(v, an); } catch (const SeedError&) { node_error(n, an + " must be a list of 2 integers"); }
        if (l.size() != 2 || l[0] < lo || l[1] < lo)
          node_error(n, an + " must be a list of 2 integers >= " + std::to_string(lo));
        dst[0] = l[0];
        dst[1] = l[1];
      };
      auto integer = [&](int64_t lo) {
        int64_t x = 0;
        if (!doc.integer_in(v, lo, INT32_MAX, x)) node_error(n, an + " must be an integer >= " + std::to_string(lo));
        return x;
      };
      auto number = [&]() {
        if (doc.kind(v) != Kind::number || !std::isfinite(doc.number_value(v))) node_error(n, an + " must be a finite number");
        return doc.number_value(v);
      };
      const std::string name = as.name;
      switch (as.kind) {
        case AttrKind::pair_pos:
        case AttrKind::pair_nonneg: {
          const int64_t lo = as.kind == AttrKind::pair_pos ? 1 : 0;
          int64_t* dst = name == "stride" ? a.stride : name == "padding" ? a.padding
                       : name == "dilation" ? a.dilation : a.kernel;
          pair(lo, dst);
          break;
        }
        case AttrKind::integer: {
          const int64_t x = integer(INT32_MIN);
          if (name == "axis") a.axis = x;
          else if (name == "index") a.index = x;
          else if (name == "start") a.start = x;
          else a.end = x;
          break;
        }
        case AttrKind::int_pos: a.groups = integer(1); break;
        case AttrKind::number: a.value = number(); break;
        case AttrKind::number_nonneg:
          a.eps = number();
          if (a.eps < 0) node_error(n, an + " must be >= 0");
          break;
        case AttrKind::number_or_null: {
          const bool present = doc.kind(v) != Kind::null;
          const double x = present ? number() : 0.0;
          if (name == "min") { a.has_min = present; a.min = x; } else { a.has_max = present; a.max = x; }
          break;
        }
        case AttrKind::boolean:
          if (doc.kind(v) != Kind::boolean) node_error(n, an + " must be true or false");
          (name == "reverse" ? a.reverse : a.keepdim) = doc.node(v).bool_value;
          break;
        case AttrKind::int_list: {
          if (doc.kind(v) != Kind::array) node_error(n, an + " must be a list of integers");
          std::vector<int64_t> l;
          for (uint32_t c : children(doc, v)) {
            int64_t x = 0;
            if (!doc.integer_in(c, INT32_MIN, INT64_C(1) << 40, x)) node_error(n, an + " must be a list of integers");
            l.push_back(x);
          }
          (name == "axes" ? a.axes : name == "shape" ? a.shape : a.perm) = std::move(l);
          break;
        }
        case AttrKind::gelu_mode: {
          const std::string m = doc.kind(v) == Kind::string ? str(doc, v) : "";
          if (m != "none" && m != "tanh") node_error(n, an + " must be \"none\" or \"tanh\"");
          a.gelu_tanh = m == "tanh";
          break;
        }
        case AttrKind::dtype: {
          const std::string m = doc.kind(v) == Kind::string ? str(doc, v) : "";
          if (m != "float32" && m != "int64") node_error(n, an + " must be \"float32\" or \"int64\"");
          a.dtype = m == "float32" ? ElemType::f32 : ElemType::i64;
          break;
        }
      }
    }
    // Attribute checks that need more than one value.
    if (n.op == Op::max_pool2d)
      for (int d = 0; d < 2; ++d)
        if (a.padding[d] * 2 > a.kernel[d]) node_error(n, "padding must be at most half the kernel size");
    if (n.op == Op::transpose) {
      std::vector<int64_t> sorted = a.perm;
      std::sort(sorted.begin(), sorted.end());
      for (size_t i = 0; i < sorted.size(); ++i)
        if (sorted[i] != int64_t(i)) node_error(n, "attribute 'perm' is not a permutation of 0.." + std::to_string(sorted.size() - 1));
    }
    if (n.op == Op::reshape) {
      int infer = 0;
      for (int64_t d : a.shape) {
        if (d < -1) node_error(n, "attribute 'shape' has an item below -1");
        infer += d == -1;
      }
      if (infer > 1) node_error(n, "attribute 'shape' has more than one -1");
    }
    if (n.in.size() == 2 && (n.op == Op::add || n.op == Op::sub || n.op == Op::mul) &&
        g.slots[size_t(n.in[0])].dtype != g.slots[size_t(n.in[1])].dtype)
      node_error(n, "inputs '" + n.in_names[0] + "' and '" + n.in_names[1] + "' have different dtypes");
    if ((n.op == Op::add_scalar || n.op == Op::sub_scalar || n.op == Op::mul_scalar) &&
        g.slots[size_t(n.in[0])].dtype == ElemType::i64 && a.value != std::floor(a.value))
      node_error(n, "a non-integer value on int64 input '" + n.in_names[0] + "'; cast to float32 first");
    check_weight_shapes(n, weight_refs);

    // output
    const uint32_t out = p.member(ni, "out", where);
    if (doc.kind(out) != Kind::array || doc.node(out).count != 1)
      node_error(n, "'out' must be a list of exactly one value name");
    const uint32_t on = doc.node(out).first;
    if (doc.kind(on) != Kind::string || doc.string_value(on).empty()) node_error(n, "'out' must name a value");
    n.out_name = str(doc, on);
    if (slot_of.count(n.out_name) || weights.count(n.out_name))
      node_error(n, "output name '" + n.out_name + "' is already used");
    ElemType out_dt = ElemType::f32;
    switch (schema.out_rule) {
      case 1: out_dt = ElemType::i64; break;
      case 2: out_dt = g.slots[size_t(n.in[0])].dtype; break;
      case 3: out_dt = a.dtype; break;
      default: break;
    }
    n.out = add_slot(Slot::node, out_dt, n.out_name);
    g.nodes.push_back(std::move(n));
  }

  // Graph outputs: produced by a node or an input, dtypes as declared.
  std::vector<char> is_output(g.slots.size(), 0);
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const ValueSpec& s = g.outputs[i];
    const std::string where = "outputs[" + std::to_string(i) + "]";
    auto it = slot_of.find(s.name);
    if (it == slot_of.end() || g.slots[size_t(it->second)].kind == Slot::weight)
      p.fail(where, "'" + s.name + "' is not produced by any node nor a graph input");
    if (is_output[size_t(it->second)]) p.fail(where, "'" + s.name + "' is listed twice");
    if (g.slots[size_t(it->second)].dtype != s.dtype)
      p.fail(where, "'" + s.name + "' is declared " + elem_type_name(s.dtype) + " but the graph makes it " +
                        elem_type_name(g.slots[size_t(it->second)].dtype));
    is_output[size_t(it->second)] = 1;
    g.output_slots.push_back(it->second);
  }
  // Fusions (each bit-identical to the unfused nodes). A float conv2d whose output feeds
  // only a clamp (ReLU6 in MobileNetV2)
  // clamps in its own epilogue, while the data is in cache, instead of a separate pass
  // over memory; the clamp becomes an identity (a view of the conv's output).
  {
    std::vector<int> consumers(g.slots.size(), 0), producer(g.slots.size(), -1);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (int s : g.nodes[i].in)
        if (s >= 0) ++consumers[size_t(s)];
      producer[size_t(g.nodes[i].out)] = int(i);
    }
    for (Node& c : g.nodes) {
      if (c.op != Op::clamp || c.in.empty() || c.in[0] < 0) continue;
      const int s = c.in[0];
      if (producer[size_t(s)] < 0 || consumers[size_t(s)] != 1 || is_output[size_t(s)]) continue;
      Node& conv = g.nodes[size_t(producer[size_t(s)])];
      if (conv.op != Op::conv2d || conv.fused_clamp || g.slots[size_t(s)].dtype != ElemType::f32) continue;
      conv.fused_clamp = true;
      conv.attrs.has_min = c.attrs.has_min;
      conv.attrs.min = c.attrs.min;
      conv.attrs.has_max = c.attrs.has_max;
      conv.attrs.max = c.attrs.max;
      c.op = Op::identity;
    }
    // conv2d -> add (a residual connection: MobileNetV2's projections): the add's other
    // operand is added in the conv's epilogue, after any fused clamp, as the add node
    // would (u + v == v + u); it must be computed before the conv runs.
    for (size_t ai = 0; ai < g.nodes.size(); ++ai) {
      Node& add = g.nodes[ai];
      if (add.op != Op::add || add.in.size() != 2) continue;
      for (int side = 0; side < 2; ++side) {
        const int s = add.in[size_t(side)], r = add.in[size_t(1 - side)];
        if (s < 0 || r < 0 || s == r || producer[size_t(s)] < 0 || consumers[size_t(s)] != 1 || is_output[size_t(s)])
          continue;
        Node& conv = g.nodes[size_t(producer[size_t(s)])];
        if (conv.op != Op::conv2d || conv.fused_residual || g.slots[size_t(s)].dtype != ElemType::f32 ||
            g.slots[size_t(r)].dtype != ElemType::f32 || (producer[size_t(r)] >= 0 && producer[size_t(r)] > producer[size_t(s)]))
          continue;
        conv.in.resize(3, -1);
        conv.in_names.resize(3);
        conv.in.push_back(r);
        conv.in_names.push_back(add.in_names[size_t(1 - side)]);
        conv.fused_residual = true;
        add.op = Op::identity;
        add.in = {s};
        add.in_names = {add.in_names[size_t(side)]};
        break;
      }
    }
    // linear -> gelu (erf form): GELU on each GEMM tile while it is in L1.
    for (Node& ge : g.nodes) {
      if (ge.op != Op::gelu || ge.attrs.gelu_tanh || ge.in[0] < 0) continue;
      const int s = ge.in[0];
      if (producer[size_t(s)] < 0 || consumers[size_t(s)] != 1 || is_output[size_t(s)]) continue;
      Node& lin = g.nodes[size_t(producer[size_t(s)])];
      if (lin.op != Op::linear || lin.fused_gelu) continue;
      lin.fused_gelu = true;
      ge.op = Op::identity;
    }
    // [mul_scalar ->] add -> softmax over the last axis (attention scores: scale, additive
    // mask, softmax): one pass per row instead of three passes over the scores tensor.
    auto sole_use = [&](int s, Op op) -> Node* {
      if (s < 0 || producer[size_t(s)] < 0 || consumers[size_t(s)] != 1 || is_output[size_t(s)]) return nullptr;
      Node& p = g.nodes[size_t(producer[size_t(s)])];
      return p.op == op && g.slots[size_t(p.out)].dtype == ElemType::f32 ? &p : nullptr;
    };
    for (Node& sm : g.nodes) {
      if (sm.op != Op::softmax || sm.attrs.axis != -1) continue;
      Node* add = sole_use(sm.in[0], Op::add);
      if (add == nullptr || g.slots[size_t(add->in[0])].dtype != ElemType::f32 ||
          g.slots[size_t(add->in[1])].dtype != ElemType::f32)
        continue;
      int x = add->in[0], m = add->in[1];
      std::string x_name = add->in_names[0], m_name = add->in_names[1];
      Node* mul = sole_use(x, Op::mul_scalar);
      if (mul == nullptr) {
        if (Node* mul1 = sole_use(m, Op::mul_scalar)) {  // the scaled operand second: a + b == b + a
          mul = mul1;
          std::swap(x, m);
          std::swap(x_name, m_name);
        }
      }
      if (mul != nullptr && g.slots[size_t(mul->in[0])].dtype == ElemType::f32) {
        sm.fused_scale = true;
        sm.attrs.value = mul->attrs.value;  // v * c == c * v: `reverse` does not matter
        x = mul->in[0];
        x_name = mul->in_names[0];
        mul->op = Op::identity;
      }
      sm.fused_add = true;
      sm.in = {x, m};
      sm.in_names = {x_name, m_name};
      add->op = Op::identity;
      add->in.resize(1);
      add->in_names.resize(1);
    }
    // add -> layer_norm (the residual before each BERT layer norm): the sum is formed
    // row by row right before the row is normalised, not written out and read back.
    for (Node& ln : g.nodes) {
      if (ln.op != Op::layer_norm || ln.fused_add) continue;
      Node* add = sole_use(ln.in[0], Op::add);
      if (add == nullptr || g.slots[size_t(add->in[0])].dtype != ElemType::f32 ||
          g.slots[size_t(add->in[1])].dtype != ElemType::f32)
        continue;
      ln.in.resize(3, -1);
      ln.in_names.resize(3);
      ln.in[0] = add->in[0];
      ln.in_names[0] = add->in_names[0];
      ln.in.push_back(add->in[1]);
      ln.in_names.push_back(add->in_names[1]);
      ln.fused_add = true;
      add->op = Op::identity;
      add->in.resize(1);
      add->in_names.resize(1);
    }
  }
  // Constant linear and conv2d weights: pack them for the default kernels once, here.
  {
    const GraphKernels* kern = nullptr;
    try {
      kern = &graph_kernels(auto_isa());
    } catch (const SeedError&) {
      kern = nullptr;
    }
    std::unordered_map<int, const Value*> weight_of;
    for (const auto& w : g.weights) weight_of[w.first] = &w.second;
    for (Node& n : g.nodes) {
      if (kern == nullptr || (n.op != Op::linear && n.op != Op::conv2d) || n.in[1] < 0) continue;
      auto it = weight_of.find(n.in[1]);
      if (it == weight_of.end() || it->second->dtype != ElemType::f32) continue;
      const Value& w = *it->second;
      GemmArgs a;
      if (n.op == Op::linear && w.shape.size() == 2) {  // B = Wᵀ
        a.N = w.shape[0];
        a.K = w.shape[1];
        a.b = w.f32();
        a.b_ks = 1;
        a.b_ns = a.K;
        n.packed_weight = std::make_shared<const std::vector<float>>(gemm_pack_b(a, *kern));
      } else if (n.op == Op::conv2d && w.shape.size() == 4 && n.attrs.groups == 1) {  // A = W as OC x (C*KH*KW)
        a.M = w.shape[0];
        a.K = w.shape[1] * w.shape[2] * w.shape[3];
        a.a = w.f32();
        a.a_rs = a.K;
        a.a_cs = 1;
        n.packed_weight = std::make_shared<const std::vector<float>>(gemm_pack_a(a, *kern));
      } else {
        continue;
      }
      n.packed_for = kern;
    }
  }
  // 1x1 expansion conv2d [-> clamp fused into it, now an identity] -> depthwise 3x3
  // conv2d (MobileNetV2's inverted residual blocks): the depthwise node runs both, a block
  // of channels at a time (Node::fused_expand), so the expanded tensor stays in L2. After
  // the packing above: the expansion's packed weight moves to the depthwise node.
  {
    std::vector<int> consumers(g.slots.size(), 0), producer(g.slots.size(), -1);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      for (int s : g.nodes[i].in)
        if (s >= 0) ++consumers[size_t(s)];
      producer[size_t(g.nodes[i].out)] = int(i);
    }
    std::unordered_map<int, const Value*> weight_of;
    for (const auto& w : g.weights) weight_of[w.first] = &w.second;
    auto weight_shape = [&](int slot) -> const std::vector<int64_t>* {
      auto it = weight_of.find(slot);
      return slot >= 0 && it != weight_of.end() && it->second->dtype == ElemType::f32 ? &it->second->shape : nullptr;
    };
    auto private_value = [&](int s) {  // produced by a node, read by exactly one, not a graph output
      return s >= 0 && producer[size_t(s)] >= 0 && consumers[size_t(s)] == 1 && !is_output[size_t(s)];
    };
    for (Node& d : g.nodes) {
      if (d.op != Op::conv2d || d.fused_residual || d.fused_expand || d.in.size() != 3 || !private_value(d.in[0])) continue;
      const std::vector<int64_t>* wd = weight_shape(d.in[1]);
      if (wd == nullptr || wd->size() != 4 || (*wd)[1] != 1 || (*wd)[2] != 3 || (*wd)[3] != 3 || d.attrs.groups != (*wd)[0] ||
          d.attrs.stride[0] != d.attrs.stride[1] || d.attrs.dilation[0] != d.attrs.dilation[1])
        continue;
      Node* clamp = nullptr;  // the identity left by a clamp fused into the expansion
      Node* e = &g.nodes[size_t(producer[size_t(d.in[0])])];
      if (e->op == Op::identity && e->in.size() == 1 && private_value(e->in[0])) {
        clamp = e;
        e = &g.nodes[size_t(producer[size_t(e->in[0])])];
        if (!e->fused_clamp) continue;  // an identity of another kind
      }
      const std::vector<int64_t>* we = e->op == Op::conv2d && e->in.size() == 3 ? weight_shape(e->in[1]) : nullptr;
      const Attrs& ea = e->attrs;
      if (we == nullptr || we->size() != 4 || (*we)[0] != (*wd)[0] || (*we)[2] != 1 || (*we)[3] != 1 || ea.groups != 1 ||
          ea.stride[0] != 1 || ea.stride[1] != 1 || ea.padding[0] != 0 || ea.padding[1] != 0 || e->fused_residual ||
          e->fused_expand || (clamp == nullptr && e->fused_clamp) ||
          (e->in[2] >= 0 && weight_shape(e->in[2]) == nullptr) || (d.in[2] >= 0 && weight_shape(d.in[2]) == nullptr))
        continue;
      d.fused_expand = true;
      d.expand_has_min = e->fused_clamp && ea.has_min;
      d.expand_min = ea.min;
      d.expand_has_max = e->fused_clamp && ea.has_max;
      d.expand_max = ea.max;
      d.in = {e->in[0], e->in[1], e->in[2], d.in[1], d.in[2]};
      d.in_names = {e->in_names[0], e->in_names[1], e->in_names[2], d.in_names[1], d.in_names[2]};
      d.packed_weight = std::move(e->packed_weight);
      d.packed_for = e->packed_for;
      e->packed_for = nullptr;
      // The expansion becomes a view of its input (read by nobody now) and so does its clamp.
      e->op = Op::identity;
      e->in = {d.in[0]};
      e->in_names = {d.in_names[0]};
      e->fused_clamp = false;
    }
  }
  // Liveness: each intermediate is released after its last consumer (or at once).
  std::vector<int> last_use(g.slots.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (int s : g.nodes[i].in)
      if (s >= 0) last_use[size_t(s)] = int(i);
    last_use[size_t(g.nodes[i].out)] = std::max(last_use[size_t(g.nodes[i].out)], int(i));
  }
  for (size_t s = 0; s < g.slots.size(); ++s)
    if (g.slots[s].kind == Slot::node && !is_output[s] && last_use[s] >= 0)
      g.nodes[size_t(last_use[s])].release.push_back(int(s));

  // Batch separability: inputs and outputs share one symbolic leading dimension, and
  // every node that touches sample data (a value derived from an input) is one whose
  // result for a sample depends only on that sample, computed the same way at any
  // batch size: per-image convolutions and pools, row-wise linear and norms,
  // elementwise ops between two sample values (a weight operand could broadcast along
  // the batch), flatten from axis 1 on.
  {
    bool ok = !g.inputs.empty();
    const std::string* symbol = nullptr;
    auto leading = [&](const ValueSpec& v) {
      if (v.shape.empty() || v.shape[0].symbol.empty()) return false;
      if (symbol == nullptr) symbol = &v.shape[0].symbol;
      return v.shape[0].symbol == *symbol;
    };
    for (const ValueSpec& v : g.inputs) ok = ok && leading(v);
    for (const ValueSpec& v : g.outputs) ok = ok && leading(v);
    std::vector<char> sample(g.slots.size(), 0);
    for (int s : g.input_slots) sample[size_t(s)] = 1;
    for (const Node& n : g.nodes) {
      if (!ok) break;
      bool any = false;
      for (int s : n.in) any = any || (s >= 0 && sample[size_t(s)]);
      if (!any) continue;
      sample[size_t(n.out)] = 1;
      auto only_first = [&] {  // sample data in input 0 (and a fused residual), weights elsewhere
        for (size_t i = 1; i < n.in.size(); ++i)
          if (n.in[i] >= 0 && sample[size_t(n.in[i])] && !((n.op == Op::layer_norm || n.op == Op::conv2d) && i == 3))
            return false;
        return n.in[0] >= 0 && sample[size_t(n.in[0])];
      };
      switch (n.op) {
        case Op::conv2d: case Op::linear: case Op::batch_norm: case Op::layer_norm:
        case Op::max_pool2d: case Op::avg_pool_global:
          ok = only_first() && !(n.op == Op::layer_norm && n.fused_add && !sample[size_t(n.in[3])]) &&
               !(n.op == Op::conv2d && n.fused_residual && !sample[size_t(n.in[3])]);
          break;
        case Op::relu: case Op::tanh: case Op::sigmoid: case Op::exp: case Op::sqrt: case Op::neg: case Op::gelu:
        case Op::clamp: case Op::add_scalar: case Op::sub_scalar: case Op::mul_scalar: case Op::div_scalar:
        case Op::pow_scalar: case Op::identity:
          break;
        case Op::add: case Op::sub: case Op::mul: case Op::div: case Op::pow:
          ok = sample[size_t(n.in[0])] && sample[size_t(n.in[1])];
          break;
        case Op::flatten:
          ok = n.attrs.start >= 1;
          break;
        default:
          ok = false;
      }
    }
    g.batch_separable = ok;
  }
}

Graph::~Graph() = default;
Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&&) noexcept = default;
const std::vector<ValueSpec>& Graph::inputs() const { return impl_->inputs; }
const std::vector<ValueSpec>& Graph::outputs() const { return impl_->outputs; }
size_t Graph::node_count() const { return impl_->nodes.size(); }

namespace {

std::string spec_string(const ValueSpec& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.shape.size(); ++i)
    out += (i ? ", " : "") + (s.shape[i].symbol.empty() ? std::to_string(s.shape[i].size) : "'" + s.shape[i].symbol + "'");
  return out + "]";
}

// Binds symbolic dimensions; throws naming the value and the dimension.
void match_spec(const ValueSpec& spec, const char* role, ElemType dtype, const std::vector<int64_t>& shape,
                std::map<std::string, std::pair<int64_t, std::string>>& symbols) {
  const std::string who = std::string(role) + " '" + spec.name + "'";
  if (dtype != spec.dtype)
    throw SeedError(who + " has dtype " + elem_type_name(dtype) + ", expected " + elem_type_name(spec.dtype));
  if (shape.size() != spec.shape.size())
    throw SeedError(who + " has shape " + graph::shape_string(shape) + ", expected " + spec_string(spec));
  for (size_t d = 0; d < shape.size(); ++d) {
    const DimSpec& ds = spec.shape[d];
    if (ds.symbol.empty()) {
      if (shape[d] != ds.size)
        throw SeedError(who + " has shape " + graph::shape_string(shape) + ", expected " + spec_string(spec) +
                        " (dimension " + std::to_string(d) + ")");
    } else {
      auto it = symbols.find(ds.symbol);
      if (it == symbols.end()) {
        symbols[ds.symbol] = {shape[d], spec.name};
      } else if (it->second.first != shape[d]) {
        throw SeedError(who + " has " + std::to_string(shape[d]) + " at dimension " + std::to_string(d) + " ('" +
                        ds.symbol + "'), but '" + it->second.second + "' set '" + ds.symbol + "' to " +
                        std::to_string(it->second.first));
      }
    }
  }
}

}  // namespace

namespace {

// One pass of the nodes over `inputs` (Graph::run validates the count; the caller holds run_mutex).
std::vector<Tensor> run_nodes(const Graph::Impl& g, const std::vector<TensorRef>& inputs, unsigned threads, Isa isa);

}  // namespace

// A batch-separable graph (Impl::batch_separable) runs its batch in chunks of `threads`
// samples when the batch is larger: each chunk's activations stay in cache from one
// layer to the next, where a whole batch-32 MobileNetV2 layer (up to 150 MB) goes
// through memory (measured: 32 single-sample passes take about two thirds of the time
// of one batch-32 pass). Every sample gets the same operations either way, so the
// results are the same bits.
std::vector<Tensor> Graph::run(const std::vector<TensorRef>& inputs, unsigned threads, Isa isa) const {
  const Impl& g = *impl_;
  if (inputs.size() != g.inputs.size())
    throw SeedError("graph takes " + std::to_string(g.inputs.size()) + " inputs, got " + std::to_string(inputs.size()));
  std::lock_guard<std::mutex> lock(g.run_mutex);
  const int64_t chunk = std::max<int64_t>(1, threads);
  bool split = g.batch_separable;
  const int64_t batch = split && !inputs[0].shape.empty() ? inputs[0].shape[0] : 0;
  for (const TensorRef& t : inputs) split = split && !t.shape.empty() && t.shape[0] == batch;
  if (!split || batch <= chunk) return run_nodes(g, inputs, threads, isa);
  std::vector<Tensor> out;
  std::vector<TensorRef> part_in = inputs;
  for (int64_t s0 = 0; s0 < batch; s0 += chunk) {
    const int64_t len = std::min(chunk, batch - s0);
    for (size_t i = 0; i < inputs.size(); ++i) {
      int64_t per = 1;  // elements per sample
      for (size_t d = 1; d < inputs[i].shape.size(); ++d) per *= inputs[i].shape[d];
      part_in[i].shape[0] = len;
      part_in[i].data = static_cast<const char*>(inputs[i].data) + size_t(s0 * per) * elem_size(inputs[i].dtype);
    }
    std::vector<Tensor> part = run_nodes(g, part_in, threads, isa);
    for (size_t j = 0; j < part.size(); ++j) {
      if (part[j].shape.empty() || part[j].shape[0] != len) return run_nodes(g, inputs, threads, isa);  // not per sample after all
      if (s0 == 0) {
        Tensor t;
        t.dtype = part[j].dtype;
        t.shape = part[j].shape;
        t.shape[0] = batch;
        const graph::Value v = graph::new_value(t.dtype, t.shape);
        t.storage = v.owner;
        out.push_back(std::move(t));
      }
      const size_t bytes = size_t(part[j].numel()) * elem_size(part[j].dtype);
      std::memcpy(static_cast<char*>(out[j].data()) + size_t(s0) * (bytes / size_t(len)), part[j].data(), bytes);
    }
  }
  return out;
}

namespace {

std::vector<Tensor> run_nodes(const Graph::Impl& g, const std::vector<TensorRef>& inputs, unsigned threads, Isa isa) {
  using namespace graph;
  const GraphKernels& kernels = graph_kernels(isa);
  std::map<std::string, std::pair<int64_t, std::string>> symbols;
  std::vector<Value> values(g.slots.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    for (int64_t d : inputs[i].shape)
      if (d < 0) throw SeedError("input '" + g.inputs[i].name + "' has a negative dimension");
    match_spec(g.inputs[i], "input", inputs[i].dtype, inputs[i].shape, symbols);
    Value& v = values[size_t(g.input_slots[i])];
    v.dtype = inputs[i].dtype;
    v.shape = inputs[i].shape;
    v.data = inputs[i].data;
  }
  for (const auto& w : g.weights) values[size_t(w.first)] = w.second;

  if (threads < 1) threads = 1;
  if (!g.pool || g.pool->workers() != threads) {
    g.pool.reset();
    g.pool.reset(new ThreadPool(threads));
  }
  RunContext ctx{kernels, g.pool.get()};
  const CacheScope cache_scope(g.cache);
  std::vector<const Value*> in;
  for (const Node& n : g.nodes) {
    in.clear();
    for (int s : n.in) in.push_back(s >= 0 ? &values[size_t(s)] : nullptr);
    Value out;
    switch (n.op) {
      case Op::linear: case Op::matmul: out = run_dense(n, in, ctx); break;
      case Op::conv2d: case Op::max_pool2d: case Op::avg_pool_global: out = run_conv(n, in, ctx); break;
      case Op::batch_norm: case Op::layer_norm: case Op::softmax: case Op::normalize:
      case Op::sum: case Op::mean: case Op::max: out = run_norm(n, in, ctx); break;
      case Op::embedding: case Op::arange_like: case Op::select: case Op::reshape: case Op::flatten:
      case Op::transpose: case Op::unsqueeze: case Op::cast: case Op::identity: out = run_shape(n, in, ctx); break;
      default: out = run_elementwise(n, in, ctx); break;
    }
    values[size_t(n.out)] = std::move(out);
    for (int s : n.release) values[size_t(s)] = Value{};
  }

  std::vector<Tensor> result;
  std::vector<const void*> given;
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const Value& v = values[size_t(g.output_slots[i])];
    match_spec(g.outputs[i], "output", v.dtype, v.shape, symbols);
    Tensor t;
    t.dtype = v.dtype;
    t.shape = v.shape;
    const bool shared = std::find(given.begin(), given.end(), v.data) != given.end();
    if (v.owner && v.owner.get() == v.data && !shared) {
      t.storage = v.owner;
    } else {  // borrowed (an input) or aliased by another output: copy
      Value c = new_value(v.dtype, v.shape);
      std::memcpy(mut_f32(c), v.data, size_t(v.numel()) * elem_size(v.dtype));
      t.storage = c.owner;
    }
    given.push_back(t.storage.get());
    result.push_back(std::move(t));
  }
  return result;
}

}  // namespace

}  // namespace seedcore

// --- Graph::refresh_weights (issue 4: weights changed in place) -------------------
// The only load-time data derived from weight values is the packed GEMM panels of
// linear and groups-1 conv2d weights (the constructor's packing block); this repacks
// exactly those, with the same kernel table and the same GemmArgs, for the named
// weights only.
namespace seedcore {

void Graph::refresh_weights(const std::vector<std::string>& names) {
  using namespace graph;
  Impl& g = *impl_;
  std::lock_guard<std::mutex> lock(g.run_mutex);
  for (const std::string& name : names) {
    const Value* w = nullptr;
    int slot = -1;
    for (const auto& sw : g.weights)
      if (g.slots[size_t(sw.first)].name == name) {
        slot = sw.first;
        w = &sw.second;
        break;
      }
    if (w == nullptr) throw SeedError("refresh_weights: '" + name + "' is not a weight of the graph");
    for (Node& n : g.nodes) {
      if (!n.packed_weight || n.packed_for == nullptr || n.in.size() < 2 || n.in[1] != slot) continue;
      GemmArgs a;
      if (n.op == Op::linear) {
        a.N = w->shape[0];
        a.K = w->shape[1];
        a.b = w->f32();
        a.b_ks = 1;
        a.b_ns = a.K;
        n.packed_weight = std::make_shared<const std::vector<float>>(gemm_pack_b(a, *n.packed_for));
      } else {  // conv2d, groups 1
        a.M = w->shape[0];
        a.K = w->shape[1] * w->shape[2] * w->shape[3];
        a.a = w->f32();
        a.a_rs = a.K;
        a.a_cs = 1;
        n.packed_weight = std::make_shared<const std::vector<float>>(gemm_pack_a(a, *n.packed_for));
      }
    }
  }
}

}  // namespace seedcore

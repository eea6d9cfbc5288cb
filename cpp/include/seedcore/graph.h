// The native forward pass: a validated graph (docs/format.md section 4) run over
// borrowed float32/int64 weights.
//
//   Graph g(metadata_graph_json, weights);   // validates everything, or SeedError
//   auto outs = g.run({input0, input1}, /*threads=*/4, Isa::avx2);
//
// A Graph borrows the weights' memory (the caller keeps it alive and unchanged) and
// owns a thread pool; run() may be called from several threads (calls on one Graph
// are serialised). Results do not depend on the thread count.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "seedcore/cpu.h"

namespace seedcore {

enum class ElemType : uint8_t { f32, i64 };
const char* elem_type_name(ElemType t);
size_t elem_size(ElemType t);

struct DimSpec {
  int64_t size = -1;   // fixed size, or -1 when symbolic
  std::string symbol;  // non-empty when symbolic
};

struct ValueSpec {
  std::string name;
  ElemType dtype = ElemType::f32;
  std::vector<DimSpec> shape;
};

// Borrowed, C-contiguous memory.
struct TensorRef {
  ElemType dtype = ElemType::f32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// An owned, C-contiguous result.
struct Tensor {
  ElemType dtype = ElemType::f32;
  std::vector<int64_t> shape;
  std::shared_ptr<void> storage;  // 64-byte aligned
  void* data() const { return storage.get(); }
  int64_t numel() const;
};

class Graph {
 public:
  // `graph_json`: the value of metadata.graph (an object). `weights`: every tensor the
  // graph may name. Throws SeedError naming the node (index, op, path) and the problem.
  Graph(std::string_view graph_json, const std::unordered_map<std::string, TensorRef>& weights);
  ~Graph();
  Graph(Graph&&) noexcept;
  Graph& operator=(Graph&&) noexcept;

  const std::vector<ValueSpec>& inputs() const;
  const std::vector<ValueSpec>& outputs() const;
  size_t node_count() const;

  // `inputs` in the order of inputs(); returns outputs in the order of outputs().
  std::vector<Tensor> run(const std::vector<TensorRef>& inputs, unsigned threads = 1, Isa isa = auto_isa()) const;

  // Weight updates in place (annealing, issue 4): after the caller changed the borrowed
  // memory of the weights `names`, re-derives what the Graph computed from them at load
  // (the packed linear/conv2d panels), for those tensors only; the next run() then gives
  // the same bits as a Graph freshly built over the changed weights. SeedError for a
  // name that is not one of the graph's weights. Not concurrent with run().
  void refresh_weights(const std::vector<std::string>& names);

  struct Impl;  // opaque (graph.cpp)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace seedcore

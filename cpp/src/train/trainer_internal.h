// Shared by trainer.cpp and backward.cpp. Not a public header.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "graph/internal.h"
#include "graph/thread_pool.h"
#include "seedcore/train.h"

namespace seedcore::train {

// Gradient buffers, one per value slot (empty until a gradient reaches the slot).
struct Grads {
  std::vector<std::vector<float>> g;
  // The slot's buffer, created zeroed with `n` floats on first use.
  float* at(int slot, int64_t n) {
    auto& v = g[size_t(slot)];
    if (v.empty()) v.assign(size_t(n), 0.0f);
    return v.data();
  }
  bool has(int slot) const { return slot >= 0 && !g[size_t(slot)].empty(); }
};

struct BackwardContext {
  const GraphKernels& kernels;
  TaskRunner* runner;
  const std::vector<graph::Value>& values;  // every slot's forward value
  const std::vector<char>& needs;           // per slot: a gradient is wanted
  Grads& grads;
};

// Adds node n's contribution to the gradients of its inputs that need one, from the
// gradient of its output (grads.has(n.out)).
void backward_node(const graph::Node& n, BackwardContext& ctx);

}  // namespace seedcore::train

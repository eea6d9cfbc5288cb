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
// The buffers stay allocated across steps (a fresh allocation per step cost page
// faults that dominated small models).
struct Grads {
  std::vector<std::vector<float>> g;
  std::vector<char> on;
  void resize(size_t slots) {
    g.resize(slots);
    on.assign(slots, 0);
  }
  void clear() { std::fill(on.begin(), on.end(), 0); }
  // The slot's buffer, zeroed with `n` floats on first use in a pass.
  float* at(int slot, int64_t n) {
    auto& v = g[size_t(slot)];
    if (!on[size_t(slot)]) {
      v.assign(size_t(n), 0.0f);
      on[size_t(slot)] = 1;
    }
    return v.data();
  }
  // The slot's buffer for an op that writes all of it when `fresh` (first use in the
  // pass: not zeroed) and adds to it otherwise.
  float* at_fresh(int slot, int64_t n, bool& fresh) {
    auto& v = g[size_t(slot)];
    fresh = !on[size_t(slot)];
    if (fresh) {
      v.resize(size_t(n));
      on[size_t(slot)] = 1;
    }
    return v.data();
  }
  bool has(int slot) const { return slot >= 0 && on[size_t(slot)]; }
};

// What the trainer's own forward of a node kept for its backward pass (persistent
// across steps so that the buffers are allocated once).
struct NodeAux {
  bool used = false;        // the trainer's forward ran (else the executor's op)
  std::vector<float> cols;  // conv2d: one image's im2col, [Kg, P] (rebuilt image by image)
  std::vector<int32_t> arg; // max_pool2d: the input offset (within its plane) of each output
  // conv2d whose output only a relu reads: the relu is applied while the output is
  // written, and that relu node (relu_of = the conv's index) passes the value through.
  // The relu's backward mask is unchanged: relu(v) > 0 exactly where v > 0.
  bool relu_after = false;
  int relu_of = -1;
};

// The trainer's forward of conv2d (groups 1, not 1x1) and max_pool2d, keeping what
// their backward passes need in `aux`; false (aux.used false) when the executor's op
// should run instead (other cases, and every error, which it reports).
bool forward_special(const graph::Node& n, const std::vector<const graph::Value*>& in, graph::RunContext& ctx,
                     std::vector<NodeAux>& aux, graph::Value& out);

// im2col of an NCHW batch (groups 1): cols[(img * Kg + r) * P + p] for r = (c, kh, kw)
// (each image's [Kg, P] block contiguous).
void im2col_batch(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t OH,
                  int64_t OW, const int64_t* stride, const int64_t* padding, const int64_t* dilation, float* cols,
                  TaskRunner* runner);

// The H x W plane in the middle of a zero border of ph rows and pw columns, written to
// the (H + 2 ph) x (W + 2 pw) floats at p.
void pad_plane_into(const float* plane, int64_t H, int64_t W, int64_t ph, int64_t pw, float* p);
// The H x W plane in the middle of a zero border (ph rows, pw columns) in `buf`, which is
// (re)used as (H + 2 ph) x (W + 2 pw) floats plus `slack` zero floats; only the border
// and the middle are written (no full zero fill per plane). Returns buf.data().
float* padded_plane(std::vector<float>& buf, const float* plane, int64_t H, int64_t W, int64_t ph, int64_t pw,
                    int64_t slack);

struct BackwardContext {
  const GraphKernels& kernels;
  TaskRunner* runner;
  const std::vector<graph::Value>& values;  // every slot's forward value
  const std::vector<char>& needs;           // per slot: a gradient is wanted
  Grads& grads;
  std::vector<float>& scratch1;  // reused across nodes and steps
  std::vector<float>& scratch2;
  std::vector<NodeAux>& aux;  // per node
  const std::vector<graph::Node>& nodes;
  const std::vector<int>& producer;   // per slot: the index of the node making it, or -1
  const std::vector<int>& consumers;  // per slot: the nodes reading it (+1 when it is a graph output)
};

// Adds node n's contribution to the gradients of its inputs that need one, from the
// gradient of its output (grads.has(n.out)).
void backward_node(const graph::Node& n, BackwardContext& ctx);

}  // namespace seedcore::train

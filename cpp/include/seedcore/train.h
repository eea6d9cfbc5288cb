// On-device training in the native core (issue 4): the graph's forward pass keeping
// what the backward pass needs, the backward pass of every op of the graph op set
// (docs/format.md section 4), a loss (seedcore/loss.h) and SGD / Adam updates of the
// tensors chosen to train.
//
//   Trainer t(graph_json, weights, {"fc3.weight", "fc3.bias"});   // copies the weights
//   OptimizerConfig opt;  opt.lr = 0.05;  opt.momentum = 0.9;
//   t.fit({X}, y, /*steps=*/200, /*batch=*/32, LossKind::cross_entropy, opt);
//   Tensor w = t.weight("fc3.weight");
//
// Gradients and optimiser state exist only for the trainable tensors (and for the
// values between them and the loss during a step). Everything is deterministic: the
// mini-batch order comes from the trainer's own PRNG (xoshiro256**, seeded with
// splitmix64), sums run in a fixed order, and results do not depend on the thread count.
// A loss or gradient that is not finite stops training with a SeedError before any
// weight is changed by that step.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "seedcore/graph.h"
#include "seedcore/loss.h"

namespace seedcore::train {

enum class OptimizerKind : uint8_t { sgd, adam };
// "sgd" | "adam"; anything else is a SeedError.
OptimizerKind parse_optimizer(std::string_view name);

// SGD as torch.optim.SGD (momentum buffer starts at the first gradient, no dampening,
// no Nesterov; weight decay adds wd * w to the gradient); Adam as torch.optim.Adam
// (bias-corrected, eps added to sqrt(v_hat), weight decay added to the gradient).
struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::sgd;
  double lr = 0.01;
  double momentum = 0.0;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

// splitmix64 -> xoshiro256**: the same numbers on every platform.
class BatchRng {
 public:
  explicit BatchRng(uint64_t seed = 0);
  uint64_t next();
  uint64_t below(uint64_t n);  // uniform in [0, n), unbiased (n >= 1)
  double uniform();            // [0, 1), 53 bits

 private:
  uint64_t s_[4];
};

// One output row of a 2x2 / stride-2 max pool (the trainer's forward of max_pool2d): input
// rows r0 and r0 + w, r0 at offset `base` of its plane; dst[ow] = the first maximum of
// the window in (0,0), (0,1), (1,0), (1,1) order, NaN propagating (as torch), arg[ow] its
// offset in the plane. SSE2 / NEON where the build has them, else the scalar reference;
// both are public for the test that they agree.
void max_pool_2x2_row(const float* r0, int64_t w, int32_t base, int64_t ow_count, float* dst, int32_t* arg);
void max_pool_2x2_row_reference(const float* r0, int64_t w, int32_t base, int64_t ow_count, float* dst, int32_t* arg);

class Trainer {
 public:
  // `graph_json`: metadata.graph; `weights`: every tensor it may name (copied: the
  // trainer owns and updates its copies); `trainable`: names of float32 tensors the
  // graph reads (at least one; anything else is a SeedError). With `input_grads` the
  // backward pass also produces gradients for the graph's float32 inputs (for tests).
  Trainer(std::string_view graph_json, const std::unordered_map<std::string, TensorRef>& weights,
          const std::vector<std::string>& trainable, unsigned threads = 1, Isa isa = auto_isa(),
          bool input_grads = false);
  ~Trainer();
  Trainer(Trainer&&) noexcept;
  Trainer& operator=(Trainer&&) noexcept;

  const std::vector<ValueSpec>& inputs() const;
  const std::vector<ValueSpec>& outputs() const;
  const std::vector<std::string>& trainable() const;
  int64_t steps_done() const;

  // Inference with the current weights (keeps nothing).
  std::vector<Tensor> forward(const std::vector<TensorRef>& inputs);

  // Forward keeping intermediates, `loss` of output `output` against `target` (int64
  // labels [n] for cross-entropy, else float32 with the output's element count), then
  // backward: replaces the gradients. Returns the loss (NaN, without a backward pass,
  // when the output is not finite).
  double compute_gradients(const std::vector<TensorRef>& inputs, LossKind loss, const TensorRef& target,
                           size_t output = 0);
  // Forward, then backward from the given gradients of the float32 outputs (one per
  // output, in outputs() order; a null data pointer means zero): replaces the gradients.
  void backward_from(const std::vector<TensorRef>& inputs, const std::vector<TensorRef>& output_grads);
  // One optimiser update from the current gradients. SeedError (weights untouched)
  // when a gradient is not finite.
  void step(const OptimizerConfig& opt);

  // Trains for `steps` mini-batches of `batch_size` samples of `data` (the graph's
  // inputs over the whole data set, axis 0 = sample) against `target` (axis 0 =
  // sample). Batches walk a shuffled order of the samples, reshuffled each epoch, from
  // the trainer's PRNG (set_seed); the walk continues across calls on the same data
  // size. `callback(step, loss)` after each step (return false to stop early).
  // Returns the losses. A loss that is not finite, or one above max(1e4, 1000 x the
  // first step's), stops with a SeedError naming the step (training diverged).
  std::vector<double> fit(const std::vector<TensorRef>& data, const TensorRef& target, int64_t steps,
                          int64_t batch_size, LossKind loss, const OptimizerConfig& opt,
                          const std::function<bool(int64_t, double)>& callback = {});
  void set_seed(uint64_t seed);

  // Copies of a weight's current value / gradient (the gradient of a trainable tensor
  // after the last backward pass), and of a float32 input's gradient (input_grads).
  Tensor weight(const std::string& name) const;
  Tensor gradient(const std::string& name) const;
  Tensor input_gradient(size_t input) const;
  // Replaces a weight's value (same shape and dtype), e.g. after annealing.
  void set_weight(const std::string& name, const TensorRef& value);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace seedcore::train

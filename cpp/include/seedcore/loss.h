// Training losses of the native core (issue 4): the value, averaged over the batch,
// and optionally its gradient with respect to the model's outputs. Shared by SGD /
// Adam fine-tuning (which needs the gradient) and by thermal annealing and the
// evolutionary search (which need only the value: pass grad = nullptr).
//
// Sums are taken in double; results do not depend on any thread count. Bad input
// (a label out of range, a non-finite output) is a SeedError naming the sample.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace seedcore::train {

enum class LossKind : uint8_t { cross_entropy, mse, cosine };

// "cross_entropy" | "mse" | "cosine"; anything else is a SeedError listing the three.
LossKind parse_loss(std::string_view name);
const char* loss_name(LossKind kind);

// Softmax cross-entropy of logits [n, c] against integer labels in [0, c):
// mean_i (logsumexp(logits_i) - logits_i[label_i]).  grad: [n, c], (softmax - onehot) / n.
double cross_entropy(const float* logits, int64_t n, int64_t c, const int64_t* labels, float* grad);

// Mean squared error of out [n, d] against target [n, d]: sum (out - target)^2 / (n * d).
// grad: [n, d], 2 (out - target) / (n * d).
double mse(const float* out, const float* target, int64_t n, int64_t d, float* grad);

// Cosine loss for embedding distillation: mean_i (1 - cos(out_i, target_i)), with
// |v| clamped below at 1e-12 as torch.nn.functional.cosine_similarity does (eps 1e-8
// on the product there; here per norm). grad: [n, d].
double cosine(const float* out, const float* target, int64_t n, int64_t d, float* grad);

// Dispatch on kind. For cross_entropy `labels` is used and `target` ignored; for the
// others the reverse. `what` names the data in error messages (e.g. "local.npz").
double loss(LossKind kind, const float* out, int64_t n, int64_t d, const int64_t* labels,
            const float* target, float* grad, const std::string& what = "batch");

}  // namespace seedcore::train

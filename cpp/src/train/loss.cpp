#include "seedcore/loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "seedcore/error.h"

namespace seedcore::train {

LossKind parse_loss(std::string_view name) {
  if (name == "cross_entropy") return LossKind::cross_entropy;
  if (name == "mse") return LossKind::mse;
  if (name == "cosine") return LossKind::cosine;
  throw SeedError("unknown loss '" + std::string(name) + "' (one of: cross_entropy, mse, cosine)");
}

const char* loss_name(LossKind kind) {
  switch (kind) {
    case LossKind::cross_entropy: return "cross_entropy";
    case LossKind::mse: return "mse";
    case LossKind::cosine: return "cosine";
  }
  return "?";
}

namespace {

void check_finite(const float* v, int64_t n, int64_t d, const char* what) {
  for (int64_t i = 0; i < n * d; ++i) {
    if (!std::isfinite(v[i])) {
      throw SeedError(std::string(what) + " of sample " + std::to_string(i / d) + " is not finite");
    }
  }
}

}  // namespace

double cross_entropy(const float* logits, int64_t n, int64_t c, const int64_t* labels, float* grad) {
  if (n <= 0 || c <= 0) throw SeedError("cross_entropy needs a non-empty [n, c] batch");
  check_finite(logits, n, c, "model output");
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = labels[i];
    if (y < 0 || y >= c) {
      throw SeedError("label " + std::to_string(y) + " of sample " + std::to_string(i) +
                      " is out of range [0, " + std::to_string(c) + ")");
    }
    const float* z = logits + i * c;
    double m = z[0];
    for (int64_t j = 1; j < c; ++j) m = std::max(m, static_cast<double>(z[j]));
    double s = 0.0;
    for (int64_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(z[j]) - m);
    const double lse = m + std::log(s);
    total += lse - z[y];
    if (grad != nullptr) {
      float* g = grad + i * c;
      for (int64_t j = 0; j < c; ++j) {
        const double p = std::exp(static_cast<double>(z[j]) - lse);
        g[j] = static_cast<float>((p - (j == y ? 1.0 : 0.0)) / static_cast<double>(n));
      }
    }
  }
  return total / static_cast<double>(n);
}

double mse(const float* out, const float* target, int64_t n, int64_t d, float* grad) {
  if (n <= 0 || d <= 0) throw SeedError("mse needs a non-empty [n, d] batch");
  check_finite(out, n, d, "model output");
  check_finite(target, n, d, "target");
  const double scale = 1.0 / (static_cast<double>(n) * static_cast<double>(d));
  double total = 0.0;
  for (int64_t i = 0; i < n * d; ++i) {
    const double e = static_cast<double>(out[i]) - static_cast<double>(target[i]);
    total += e * e;
    if (grad != nullptr) grad[i] = static_cast<float>(2.0 * e * scale);
  }
  return total * scale;
}

double cosine(const float* out, const float* target, int64_t n, int64_t d, float* grad) {
  if (n <= 0 || d <= 0) throw SeedError("cosine needs a non-empty [n, d] batch");
  check_finite(out, n, d, "model output");
  check_finite(target, n, d, "target");
  constexpr double kEps = 1e-12;
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float* a = out + i * d;
    const float* b = target + i * d;
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      ab += static_cast<double>(a[j]) * b[j];
      aa += static_cast<double>(a[j]) * a[j];
      bb += static_cast<double>(b[j]) * b[j];
    }
    const double na = std::max(std::sqrt(aa), kEps);
    const double nb = std::max(std::sqrt(bb), kEps);
    const double cs = ab / (na * nb);
    total += 1.0 - cs;
    if (grad != nullptr) {
      // d(1 - cos)/da = -(b / (|a||b|) - cos * a / |a|^2)   (|a| above the clamp)
      float* g = grad + i * d;
      const bool clamped = std::sqrt(aa) < kEps;
      for (int64_t j = 0; j < d; ++j) {
        double v = b[j] / (na * nb);
        if (!clamped) v -= cs * a[j] / (na * na);
        g[j] = static_cast<float>(-v / static_cast<double>(n));
      }
    }
  }
  return total / static_cast<double>(n);
}

double loss(LossKind kind, const float* out, int64_t n, int64_t d, const int64_t* labels,
            const float* target, float* grad, const std::string& what) {
  try {
    switch (kind) {
      case LossKind::cross_entropy:
        if (labels == nullptr) throw SeedError("cross_entropy needs integer labels");
        return cross_entropy(out, n, d, labels, grad);
      case LossKind::mse:
        if (target == nullptr) throw SeedError("mse needs a float target");
        return mse(out, target, n, d, grad);
      case LossKind::cosine:
        if (target == nullptr) throw SeedError("cosine needs a float target");
        return cosine(out, target, n, d, grad);
    }
  } catch (const SeedError& e) {
    throw SeedError(what + ": " + e.what());
  }
  throw SeedError(what + ": unknown loss kind");
}

}  // namespace seedcore::train

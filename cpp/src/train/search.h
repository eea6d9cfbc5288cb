// Shared by anneal.cpp and evolve.cpp: the energy of the current weights (forward pass
// on the current batch + loss + prior), batches, and the per-tensor statistics.
// Not a public header.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "seedcore/anneal.h"

namespace seedcore::train {

class Energy {
 public:
  // Validates the problem (trainable set, data shapes, finite data, labels >= 0) and
  // records each tensor's mean and sigma. `who`: "anneal" / "evolve" for messages.
  Energy(Problem& p, double prior, int64_t batch_size, const char* who);

  // The loss of the current weights on the current batch (+inf when the output has a
  // NaN/inf); counts one evaluation. The first call also checks labels / target width
  // against the output.
  double loss();
  // prior * (1/N) * prior_sum (0 without a prior).
  double prior_term() const { return prior_ > 0 ? prior_ * prior_sum / double(total_) : 0.0; }
  double full_prior_sum() const;          // recomputed over every coordinate
  double z2(size_t t, float w) const {    // ((w - mu_t) / sigma_t)^2
    const double z = (double(w) - mu[t]) / sigma[t];
    return z * z;
  }
  bool has_prior() const { return prior_ > 0; }

  // A fresh random batch (no-op when the batch is all samples); true when it changed.
  bool new_batch(Rng& rng);
  bool batched() const { return batch_ < p_.n; }

  void refresh(size_t t);  // re-derives tensor t's packed copies in the graph
  void refresh_all();

  // The end of a run: h's final energy (`final_energy`, or, when the run used batches,
  // the current weights' energy on all samples), evaluations, non-finite rejections
  // and the seconds since `start`.
  void finish(History& h, double final_energy, std::chrono::steady_clock::time_point start);

  Problem& p_;
  std::vector<double> mu, sigma;
  double prior_sum = 0.0;
  int64_t evaluations = 0;
  int64_t nonfinite = 0;
  int64_t total_ = 0;  // N, trainable coordinates

 private:
  double prior_;
  int64_t batch_;
  bool checked_output_ = false;
  const char* who_;
  // The current batch: the problem's data (all samples) or gathered copies.
  std::vector<TensorRef> in_;
  std::vector<std::vector<char>> in_store_;
  std::vector<int64_t> labels_store_;
  std::vector<float> targets_store_;
  const int64_t* labels_ = nullptr;
  const float* targets_ = nullptr;
  int64_t rows_ = 0;
};

}  // namespace seedcore::train

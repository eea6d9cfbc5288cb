// The evolutionary search (anneal.h; docs/training.md, "Annealing"): a population of
// trainable-weight vectors, tournament selection with elitism, per-tensor uniform
// crossover, Gaussian mutation scaled by each tensor's sigma, the 1/5 success rule on
// the mutation scale; the same energy as annealing.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "seedcore/anneal.h"
#include "seedcore/error.h"
#include "search.h"

namespace seedcore::train {

namespace {

void check_evolve_config(const EvolveConfig& c, int64_t total) {
  auto bad = [](const std::string& m) { throw SeedError("evolve: " + m); };
  if (c.generations < 0) bad("generations must be >= 0");
  if (c.population < 2) bad("population must be >= 2, got " + std::to_string(c.population));
  if (c.elite < 0 || c.elite >= c.population) bad("elite must be in [0, population), got " + std::to_string(c.elite));
  if (c.tournament < 1) bad("tournament must be >= 1");
  if (!(c.mutation_scale > 0.0) || !std::isfinite(c.mutation_scale)) bad("mutation_scale must be > 0");
  if (!(c.fraction > 0.0 && c.fraction <= 1.0)) bad("fraction must be in (0, 1]");
  if (!(c.crossover >= 0.0 && c.crossover <= 1.0)) bad("crossover must be in [0, 1]");
  if (c.batch_size < 0) bad("batch_size must be >= 0");
  const double bytes = double(c.population) * double(total) * 4.0;
  if (bytes > 4.0 * (1ull << 30))
    bad("a population of " + std::to_string(c.population) + " copies of " + std::to_string(total) +
        " trainable values needs " + std::to_string(int64_t(bytes / (1 << 20))) +
        " MiB (limit 4096 MiB); train fewer tensors or use a smaller population");
}

}  // namespace

History evolve(Problem& problem, const EvolveConfig& cfg, const Progress& progress) {
  const auto start = std::chrono::steady_clock::now();
  Energy en(problem, cfg.prior, cfg.batch_size, "evolve");
  check_evolve_config(cfg, en.total_);
  auto& params = problem.params;
  const size_t nt = params.size();
  std::vector<size_t> offset(nt + 1, 0);
  for (size_t t = 0; t < nt; ++t) offset[t + 1] = offset[t] + size_t(params[t].size);
  const size_t P = size_t(cfg.population);
  Rng rng(cfg.seed);
  History h;

  std::vector<std::vector<float>> pop(P, std::vector<float>(offset[nt]));
  std::vector<double> energy(P, std::numeric_limits<double>::infinity());
  for (size_t t = 0; t < nt; ++t) std::memcpy(pop[0].data() + offset[t], params[t].data, size_t(params[t].size) * sizeof(float));

  auto evaluate = [&](const std::vector<float>& v) {
    for (size_t t = 0; t < nt; ++t) std::memcpy(params[t].data, v.data() + offset[t], size_t(params[t].size) * sizeof(float));
    en.refresh_all();
    if (en.has_prior()) en.prior_sum = en.full_prior_sum();
    const double l = en.loss();
    return std::isfinite(l) ? l + en.prior_term() : std::numeric_limits<double>::infinity();
  };
  double scale = cfg.mutation_scale;
  auto mutate = [&](std::vector<float>& v) {
    for (size_t t = 0; t < nt; ++t) {
      const int64_t size = params[t].size;
      const int64_t k = std::min<int64_t>(size, std::max<int64_t>(1, int64_t(std::ceil(cfg.fraction * double(size)))));
      const double step = scale * en.sigma[t];
      float* w = v.data() + offset[t];
      for (int64_t j = 0; j < k; ++j) {
        const int64_t i = int64_t(rng.below(uint64_t(size)));
        w[i] = float(double(w[i]) + step * rng.normal());
      }
    }
  };

  en.new_batch(rng);
  energy[0] = evaluate(pop[0]);
  if (!std::isfinite(energy[0]))
    throw SeedError("evolve: the model's output is not finite on " + problem.what + " before any change");
  h.initial_energy = energy[0];
  for (size_t i = 1; i < P; ++i) {
    pop[i] = pop[0];
    mutate(pop[i]);
    energy[i] = evaluate(pop[i]);
  }
  // Ranking: by energy, ties by index (stable), non-finite last.
  std::vector<size_t> order(P);
  auto rank = [&] {
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return energy[a] < energy[b]; });
  };
  rank();
  auto tournament = [&] {
    size_t best = size_t(rng.below(P));
    for (int64_t j = 1; j < cfg.tournament; ++j) {
      const size_t c = size_t(rng.below(P));
      if (energy[c] < energy[best] || (energy[c] == energy[best] && c < best)) best = c;
    }
    return best;
  };

  std::vector<std::vector<float>> next(P, std::vector<float>(offset[nt]));
  std::vector<double> next_energy(P);
  for (int64_t g = 0; g < cfg.generations; ++g) {
    if (en.new_batch(rng)) {  // a fresh batch: the energies so far belong to another one
      for (size_t i = 0; i < P; ++i) energy[i] = evaluate(pop[i]);
      rank();
    }
    const size_t E = size_t(cfg.elite);
    for (size_t i = 0; i < E; ++i) {
      next[i] = pop[order[i]];
      next_energy[i] = energy[order[i]];
    }
    int64_t better = 0;
    for (size_t i = E; i < P; ++i) {
      const size_t a = tournament();
      next[i] = pop[a];
      if (cfg.crossover > 0 && rng.uniform() < cfg.crossover) {
        const size_t b = tournament();
        for (size_t t = 0; t < nt; ++t)
          if (rng.uniform() < 0.5)
            std::memcpy(next[i].data() + offset[t], pop[b].data() + offset[t], size_t(params[t].size) * sizeof(float));
      }
      mutate(next[i]);
      next_energy[i] = evaluate(next[i]);
      if (next_energy[i] < energy[a]) ++better;
    }
    pop.swap(next);
    energy.swap(next_energy);
    rank();
    const double success = P > E ? double(better) / double(P - E) : 0.0;
    if (cfg.adapt_scale) {
      if (success > 0.2) scale = std::min(10.0, scale * 1.22);
      else if (success < 0.2) scale = std::max(1e-4, scale / 1.22);
    }
    h.energies.push_back(energy[order[0]]);
    h.acceptance.push_back(success);
    h.scales.push_back(scale);
    if (progress) progress(g + 1, energy[order[0]], scale);
  }
  // The best individual becomes the weights.
  const std::vector<float>& best = pop[order[0]];
  for (size_t t = 0; t < nt; ++t) std::memcpy(params[t].data, best.data() + offset[t], size_t(params[t].size) * sizeof(float));
  en.refresh_all();
  h.best_energy = energy[order[0]];
  en.finish(h, h.best_energy, start);
  return h;
}

}  // namespace seedcore::train

// Thermal annealing and the evolutionary search of the native core (issue 4): they
// change a chosen subset of a Graph's float32 weights in place to lower an energy,
//
//   E(w) = loss(graph(X_batch; w), y_batch) + prior * (1/N) * sum_t sum_i ((w_ti - mu_t) / sigma_t)^2
//
// where the loss is cross-entropy / MSE / cosine (loss.h, value only), the sum runs
// over the N trainable coordinates, and mu_t / sigma_t are each trainable tensor's
// mean and standard deviation when the search starts (the seed's statistics; sigma_t
// falls back to the RMS of the tensor, then to 1e-2, when it is 0). docs/training.md
// ("Annealing") gives every definition: proposals, acceptance, schedules, reheating.
//
// Everything random comes from one xoshiro256** stream seeded with `seed` (splitmix64),
// Gaussian draws from the polar Box-Muller method, and exp/log from this file's own
// polynomial code, so a run depends only on (weights, data, config, seed) and on the
// forward pass's bits -- not on the thread count (Graph::run does not either), the
// C++ library or the platform's libm.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "seedcore/graph.h"
#include "seedcore/loss.h"

namespace seedcore::train {

enum class Schedule : uint8_t { geometric, linear, cosine, adaptive };
// "geometric" | "linear" | "cosine" | "adaptive"; anything else is a SeedError.
Schedule parse_schedule(std::string_view name);
const char* schedule_name(Schedule s);

// The temperature of step k (0-based) of a cycle of `steps` steps cooling from t0 to
// t_end, for the three fixed schedules (adaptive: its geometric reference).
double schedule_temperature(Schedule s, double t0, double t_end, int64_t k, int64_t steps);

// One trainable tensor: its name in the graph and its borrowed, writable memory.
struct Param {
  std::string name;
  float* data = nullptr;
  int64_t size = 0;
};

// The task: a Graph built over weights that include every Param's memory, the local
// samples and what to compare the graph's first output with.
struct Problem {
  Graph* graph = nullptr;
  std::vector<Param> params;
  std::vector<TensorRef> inputs;  // in Graph::inputs() order; axis 0 = the n samples
  int64_t n = 0;
  LossKind loss = LossKind::cross_entropy;
  const int64_t* labels = nullptr;  // [n], cross_entropy
  const float* targets = nullptr;   // [n, d], mse / cosine
  int64_t target_dim = 0;           // d (targets only)
  unsigned threads = 1;
  std::string what = "data";  // names the data in messages
};

struct AnnealConfig {
  int64_t steps = 2000;        // proposals (each one forward evaluation)
  double t0 = 0.0;             // <= 0: auto, from `calibration` probe proposals
  double t_end = 0.0;          // <= 0: t0 * 1e-3
  Schedule schedule = Schedule::geometric;
  int64_t reheat = 0;          // extra cycles: the steps split into reheat + 1 cycles
  double reheat_factor = 0.5;  // cycle c starts at t0 * reheat_factor^c, from the best state
  double proposal_scale = 1.0; // initial step size, in units of each tensor's sigma
  bool adapt_scale = true;     // Robbins-Monro on log(scale) toward target_accept, per tensor
  double target_accept = 0.25;
  double fraction = 0.01;      // coordinates perturbed per proposal: ceil(fraction * size)
  double prior = 0.0;
  int64_t batch_size = 0;      // 0 or >= n: all samples every step
  int64_t resample_every = 20; // with batch_size: steps between fresh batches
  int64_t calibration = 20;    // probe proposals for the automatic t0
  bool keep_best = true;       // end at the best state seen (else the last)
  uint64_t seed = 0;
};

struct EvolveConfig {
  int64_t generations = 50;
  int64_t population = 16;
  int64_t elite = 2;            // the best `elite` pass unchanged to the next generation
  int64_t tournament = 3;       // parents: the best of `tournament` random individuals
  double mutation_scale = 1.0;  // in units of each tensor's sigma
  double fraction = 0.01;       // coordinates mutated per tensor: ceil(fraction * size)
  double crossover = 0.5;       // probability a child mixes two parents (per tensor, uniform)
  bool adapt_scale = true;      // the 1/5 success rule on mutation_scale, per generation
  double prior = 0.0;
  int64_t batch_size = 0;       // 0 or >= n: all samples; else a fresh batch per generation
  uint64_t seed = 0;
};

struct History {
  std::vector<double> energies;      // anneal: per step, the current state's; evolve: per generation, the best
  std::vector<double> temperatures;  // anneal only
  std::vector<double> acceptance;    // anneal: running rate over the last 100 steps; evolve: children better than their parent
  std::vector<double> scales;        // mean proposal / mutation scale, per step / generation
  double initial_energy = 0.0;
  double best_energy = 0.0;
  double final_energy = 0.0;  // of the state the weights are left in
  double t0 = 0.0, t_end = 0.0;
  int64_t evaluations = 0;    // forward passes
  int64_t accepted = 0;       // anneal: accepted proposals
  int64_t rejected_nonfinite = 0;  // proposals whose output was NaN/inf (always rejected)
  double seconds = 0.0;
};

// Called between steps (step, current energy, temperature; evolve: generation, best
// energy, current mutation scale); it may throw to stop the run, which leaves the
// weights in a consistent state (the current one) and rethrows.
using Progress = std::function<void(int64_t step, double energy, double temperature)>;

History anneal(Problem& problem, const AnnealConfig& cfg, const Progress& progress = nullptr);
History evolve(Problem& problem, const EvolveConfig& cfg, const Progress& progress = nullptr);

// The deterministic pieces, public for tests.
class Rng {  // xoshiro256**, seeded through splitmix64
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  double uniform();                 // [0, 1), 53 bits
  uint64_t below(uint64_t n);       // [0, n), n >= 1
  double normal();                  // polar Box-Muller
 private:
  uint64_t s_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};
double det_exp(double x);  // exp from + - * / and ldexp only: the same bits everywhere
double det_log(double x);  // log, likewise (x > 0)

// Metropolis: accept when dE <= 0, else with probability exp(-dE / T), using `u` in [0, 1).
bool metropolis_accept(double dE, double T, double u);

}  // namespace seedcore::train

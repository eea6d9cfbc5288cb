// Simulated annealing over a Graph's trainable weights (anneal.h; definitions in
// docs/training.md, "Annealing"), plus what it shares with evolve.cpp: the PRNG, the
// deterministic exp/log and the energy (search.h).
#include "seedcore/anneal.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "seedcore/error.h"
#include "search.h"

namespace seedcore::train {

// --- deterministic randomness and math -------------------------------------------

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
constexpr double kLn2 = 0.693147180559945309417232121458176568;
}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return double(next() >> 11) * 0x1.0p-53; }

uint64_t Rng::below(uint64_t n) {  // rejection: exactly uniform
  const uint64_t limit = ~uint64_t(0) - (~uint64_t(0) % n + 1) % n;
  for (;;) {
    const uint64_t x = next();
    if (x <= limit) return x % n;
  }
}

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  for (;;) {
    const double v1 = 2.0 * uniform() - 1.0, v2 = 2.0 * uniform() - 1.0;
    const double s = v1 * v1 + v2 * v2;
    if (s >= 1.0 || s == 0.0) continue;
    const double f = std::sqrt(-2.0 * det_log(s) / s);  // sqrt is correctly rounded (IEEE 754)
    spare_ = v2 * f;
    has_spare_ = true;
    return v1 * f;
  }
}

double det_exp(double x) {
  if (std::isnan(x)) return x;
  if (x > 709.0) return std::numeric_limits<double>::infinity();
  if (x < -745.0) return 0.0;
  const double k = std::floor(x / kLn2 + 0.5);
  const double r = x - k * kLn2;  // |r| <= ~0.35
  double p = 1.0, term = 1.0;
  for (int i = 1; i <= 17; ++i) {  // Taylor: error < 0.35^18 / 18! ~ 1e-24
    term = term * r / double(i);
    p += term;
  }
  return std::ldexp(p, int(k));
}

double det_log(double x) {
  if (!(x > 0.0)) return x == 0.0 ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(x)) return x;
  int e = 0;
  double m = std::frexp(x, &e);  // x = m 2^e, m in [0.5, 1): exact
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    --e;
  }
  const double s = (m - 1.0) / (m + 1.0);  // |s| <= 0.1716
  const double s2 = s * s;
  double sum = 0.0;
  for (int i = 27; i >= 1; i -= 2) sum = sum * s2 + 1.0 / double(i);  // atanh series, Horner
  return double(e) * kLn2 + 2.0 * s * sum;
}

bool metropolis_accept(double dE, double T, double u) {
  if (std::isnan(dE)) return false;
  if (dE <= 0.0) return true;
  if (!(T > 0.0) || std::isinf(dE)) return false;
  return u < det_exp(-dE / T);
}

Schedule parse_schedule(std::string_view name) {
  if (name == "geometric") return Schedule::geometric;
  if (name == "linear") return Schedule::linear;
  if (name == "cosine") return Schedule::cosine;
  if (name == "adaptive") return Schedule::adaptive;
  throw SeedError("anneal: unknown schedule '" + std::string(name) + "' (one of: geometric, linear, cosine, adaptive)");
}

const char* schedule_name(Schedule s) {
  switch (s) {
    case Schedule::geometric: return "geometric";
    case Schedule::linear: return "linear";
    case Schedule::cosine: return "cosine";
    case Schedule::adaptive: return "adaptive";
  }
  return "?";
}

double schedule_temperature(Schedule s, double t0, double t_end, int64_t k, int64_t steps) {
  const double u = steps > 1 ? double(k) / double(steps - 1) : 1.0;
  switch (s) {
    case Schedule::linear: return t0 + (t_end - t0) * u;
    case Schedule::cosine: {
      // (1 + cos(pi u)) / 2 = cos^2(pi u / 2), from a polynomial (no libm): the same bits everywhere.
      const double x = 1.5707963267948966192 * u;  // in [0, pi/2]
      const double x2 = x * x;
      double c = 0.0;
      for (int i = 30; i >= 2; i -= 2) c = 1.0 - c * x2 / (double(i) * double(i - 1));  // cos Taylor, Horner
      return t_end + (t0 - t_end) * c * c;
    }
    case Schedule::geometric:
    case Schedule::adaptive:
      break;
  }
  return t0 * det_exp(u * det_log(t_end / t0));
}

// --- the energy -------------------------------------------------------------------

Energy::Energy(Problem& p, double prior, int64_t batch_size, const char* who)
    : p_(p), prior_(prior), batch_(batch_size <= 0 || batch_size >= p.n ? p.n : batch_size), who_(who) {
  const std::string w = std::string(who) + ": ";
  if (p.graph == nullptr) throw SeedError(w + "no graph");
  if (p.params.empty()) throw SeedError(w + "the trainable set is empty: nothing to change");
  if (!(prior >= 0.0) || std::isinf(prior)) throw SeedError(w + "prior must be a finite number >= 0");
  const auto& specs = p.graph->inputs();
  if (p.inputs.size() != specs.size())
    throw SeedError(w + "the graph takes " + std::to_string(specs.size()) + " input(s), got " + std::to_string(p.inputs.size()));
  if (p.n <= 0) throw SeedError(w + p.what + ": no samples");
  for (size_t i = 0; i < p.inputs.size(); ++i) {
    const TensorRef& r = p.inputs[i];
    if (r.shape.empty() || r.shape[0] != p.n)
      throw SeedError(w + p.what + ": input '" + specs[i].name + "' has " +
                      (r.shape.empty() ? std::string("no sample axis") : std::to_string(r.shape[0]) + " samples") +
                      ", the labels/targets " + std::to_string(p.n));
    if (r.dtype == ElemType::f32) {
      int64_t per = 1;
      for (size_t d = 1; d < r.shape.size(); ++d) per *= r.shape[d];
      const float* x = static_cast<const float*>(r.data);
      for (int64_t j = 0; j < p.n * per; ++j)
        if (!std::isfinite(x[j]))
          throw SeedError(w + p.what + ": sample " + std::to_string(j / per) + " of input '" + specs[i].name +
                          "' has a " + (std::isnan(x[j]) ? "NaN" : "infinite") + " value");
    }
  }
  if (p.loss == LossKind::cross_entropy) {
    if (p.labels == nullptr) throw SeedError(w + "cross_entropy needs integer labels");
    for (int64_t i = 0; i < p.n; ++i)
      if (p.labels[i] < 0)
        throw SeedError(w + p.what + ": label " + std::to_string(p.labels[i]) + " of sample " + std::to_string(i) +
                        " is negative");
  } else {
    if (p.targets == nullptr || p.target_dim <= 0)
      throw SeedError(w + std::string(loss_name(p.loss)) + " needs float targets [n, d]");
    for (int64_t j = 0; j < p.n * p.target_dim; ++j)
      if (!std::isfinite(p.targets[j]))
        throw SeedError(w + p.what + ": target of sample " + std::to_string(j / p.target_dim) + " is not finite");
  }
  for (size_t t = 0; t < p.params.size(); ++t) {
    const Param& q = p.params[t];
    if (q.data == nullptr || q.size <= 0) throw SeedError(w + "trainable tensor '" + q.name + "' is empty");
    double s = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < q.size; ++i) {
      if (!std::isfinite(q.data[i]))
        throw SeedError(w + "trainable tensor '" + q.name + "' has a non-finite value at " + std::to_string(i));
      s += q.data[i];
    }
    const double mean = s / double(q.size);
    for (int64_t i = 0; i < q.size; ++i) s2 += (q.data[i] - mean) * (q.data[i] - mean);
    double sd = std::sqrt(s2 / double(q.size));
    if (!(sd > 0.0)) {  // constant tensor (zero biases, unit norm scales): its RMS, else 1e-2
      double rms = 0.0;
      for (int64_t i = 0; i < q.size; ++i) rms += double(q.data[i]) * q.data[i];
      sd = std::sqrt(rms / double(q.size));
      if (!(sd > 0.0)) sd = 1e-2;
    }
    mu.push_back(mean);
    sigma.push_back(sd);
    total_ += q.size;
  }
  prior_sum = full_prior_sum();
  // Every graph weight named by the problem must be refreshable: fail now, not mid-run.
  std::vector<std::string> names;
  for (const Param& q : p.params) names.push_back(q.name);
  p.graph->refresh_weights(names);
  in_ = p.inputs;
  labels_ = p.labels;
  targets_ = p.targets;
  rows_ = p.n;
}

double Energy::full_prior_sum() const {
  if (prior_ <= 0) return 0.0;
  double s = 0.0;
  for (size_t t = 0; t < p_.params.size(); ++t)
    for (int64_t i = 0; i < p_.params[t].size; ++i) s += z2(t, p_.params[t].data[i]);
  return s;
}

bool Energy::new_batch(Rng& rng) {
  if (batch_ >= p_.n) return false;
  // batch_ distinct samples (partial Fisher-Yates over the indices), in drawn order.
  std::vector<int64_t> idx(size_t(p_.n));
  for (int64_t i = 0; i < p_.n; ++i) idx[size_t(i)] = i;
  for (int64_t i = 0; i < batch_; ++i) std::swap(idx[size_t(i)], idx[size_t(i + int64_t(rng.below(uint64_t(p_.n - i))))]);
  in_store_.resize(p_.inputs.size());
  for (size_t k = 0; k < p_.inputs.size(); ++k) {
    const TensorRef& r = p_.inputs[k];
    size_t per = elem_size(r.dtype);
    for (size_t d = 1; d < r.shape.size(); ++d) per *= size_t(r.shape[d]);
    in_store_[k].resize(per * size_t(batch_));
    for (int64_t i = 0; i < batch_; ++i)
      std::memcpy(in_store_[k].data() + size_t(i) * per, static_cast<const char*>(r.data) + size_t(idx[size_t(i)]) * per, per);
    in_[k] = r;
    in_[k].shape[0] = batch_;
    in_[k].data = in_store_[k].data();
  }
  if (p_.labels) {
    labels_store_.resize(size_t(batch_));
    for (int64_t i = 0; i < batch_; ++i) labels_store_[size_t(i)] = p_.labels[idx[size_t(i)]];
    labels_ = labels_store_.data();
  }
  if (p_.targets) {
    const size_t d = size_t(p_.target_dim);
    targets_store_.resize(d * size_t(batch_));
    for (int64_t i = 0; i < batch_; ++i)
      std::memcpy(targets_store_.data() + size_t(i) * d, p_.targets + size_t(idx[size_t(i)]) * d, d * sizeof(float));
    targets_ = targets_store_.data();
  }
  rows_ = batch_;
  return true;
}

double Energy::loss() {
  std::vector<Tensor> out = p_.graph->run(in_, p_.threads);
  ++evaluations;
  const std::string w = std::string(who_) + ": ";
  if (out.empty() || out[0].dtype != ElemType::f32 || out[0].shape.empty() || out[0].shape[0] != rows_)
    throw SeedError(w + "the graph's first output must be float32 with one row per sample");
  const int64_t d = out[0].numel() / std::max<int64_t>(1, rows_);
  if (!checked_output_) {
    if (p_.loss == LossKind::cross_entropy) {
      for (int64_t i = 0; i < p_.n; ++i)
        if (p_.labels[i] >= d)
          throw SeedError(w + p_.what + ": label " + std::to_string(p_.labels[i]) + " of sample " + std::to_string(i) +
                          " is out of range: the model has " + std::to_string(d) + " outputs (classes 0.." +
                          std::to_string(d - 1) + ")");
    } else if (d != p_.target_dim) {
      throw SeedError(w + p_.what + ": targets have " + std::to_string(p_.target_dim) + " values per sample, the model's output " +
                      std::to_string(d));
    }
    checked_output_ = true;
  }
  const float* o = static_cast<const float*>(out[0].data());
  for (int64_t j = 0; j < rows_ * d; ++j)
    if (!std::isfinite(o[j])) {
      ++nonfinite;
      return std::numeric_limits<double>::infinity();
    }
  return train::loss(p_.loss, o, rows_, d, labels_, targets_, nullptr, p_.what);
}

void Energy::finish(History& h, double final_energy, std::chrono::steady_clock::time_point start) {
  h.final_energy = final_energy;
  if (batched()) {  // the run's energies are per batch; report the final state on all samples
    Energy full(p_, prior_, 0, who_);
    h.final_energy = full.loss() + full.prior_term();
    evaluations += full.evaluations;
  }
  h.evaluations = evaluations;
  h.rejected_nonfinite = nonfinite;
  h.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Energy::refresh(size_t t) { p_.graph->refresh_weights({p_.params[t].name}); }

void Energy::refresh_all() {
  std::vector<std::string> names;
  for (const Param& q : p_.params) names.push_back(q.name);
  p_.graph->refresh_weights(names);
}

// --- annealing --------------------------------------------------------------------

namespace {

void check_anneal_config(const AnnealConfig& c) {
  auto bad = [](const std::string& m) { throw SeedError("anneal: " + m); };
  if (c.steps < 1) bad("steps must be >= 1, got " + std::to_string(c.steps));
  if (!std::isfinite(c.t0) || !std::isfinite(c.t_end)) bad("t0 and t_end must be finite");
  if (c.t0 > 0 && c.t_end > c.t0) bad("t_end (" + std::to_string(c.t_end) + ") must not exceed t0 (" + std::to_string(c.t0) + ")");
  if (c.reheat < 0 || c.reheat >= c.steps) bad("reheat must be in [0, steps), got " + std::to_string(c.reheat));
  if (!(c.reheat_factor > 0.0 && c.reheat_factor <= 1.0)) bad("reheat_factor must be in (0, 1]");
  if (!(c.proposal_scale > 0.0) || !std::isfinite(c.proposal_scale)) bad("proposal_scale must be > 0");
  if (!(c.target_accept > 0.0 && c.target_accept < 1.0)) bad("target_accept must be in (0, 1)");
  if (!(c.fraction > 0.0 && c.fraction <= 1.0)) bad("fraction must be in (0, 1]");
  if (c.batch_size < 0) bad("batch_size must be >= 0");
  if (c.resample_every < 1) bad("resample_every must be >= 1");
  if (c.calibration < 1 && c.t0 <= 0) bad("calibration must be >= 1 when t0 is automatic");
}

struct Saved {
  std::vector<int64_t> idx;
  std::vector<float> old;
  double prior_sum = 0.0;
};

// Perturbs ceil(fraction * size) random coordinates (with replacement) of tensor t by
// scale * sigma_t * N(0, 1), keeping what it overwrote in `s`, and refreshes t.
void propose(Energy& en, Rng& rng, size_t t, double scale, double fraction, Saved& s) {
  Param& q = en.p_.params[t];
  const int64_t k = std::min<int64_t>(q.size, std::max<int64_t>(1, int64_t(std::ceil(fraction * double(q.size)))));
  s.idx.resize(size_t(k));
  s.old.resize(size_t(k));
  s.prior_sum = en.prior_sum;
  const double step = scale * en.sigma[t];
  for (int64_t j = 0; j < k; ++j) {
    const int64_t i = int64_t(rng.below(uint64_t(q.size)));
    const float before = q.data[i];
    const float after = float(double(before) + step * rng.normal());
    s.idx[size_t(j)] = i;
    s.old[size_t(j)] = before;
    if (en.has_prior()) en.prior_sum += en.z2(t, after) - en.z2(t, before);
    q.data[i] = after;
  }
  en.refresh(t);
}

void restore(Energy& en, size_t t, const Saved& s) {
  Param& q = en.p_.params[t];
  for (size_t j = s.idx.size(); j-- > 0;) q.data[s.idx[j]] = s.old[j];
  en.prior_sum = s.prior_sum;
  en.refresh(t);
}

}  // namespace

History anneal(Problem& problem, const AnnealConfig& cfg, const Progress& progress) {
  const auto start = std::chrono::steady_clock::now();
  check_anneal_config(cfg);
  Energy en(problem, cfg.prior, cfg.batch_size, "anneal");
  auto& params = problem.params;
  const size_t nt = params.size();
  Rng rng(cfg.seed);
  History h;
  en.new_batch(rng);
  double loss_now = en.loss();
  if (!std::isfinite(loss_now))
    throw SeedError("anneal: the model's output is not finite on " + problem.what + " before any change");
  double E = loss_now + en.prior_term();
  h.initial_energy = E;

  std::vector<double> scale(nt, cfg.proposal_scale);
  std::vector<int64_t> tries(nt, 0);
  Saved saved;

  // Automatic t0 (White 1984): the temperature at which an average uphill probe move
  // is accepted with probability 0.8: t0 = mean(dE > 0) / ln(1 / 0.8).
  double t0 = cfg.t0;
  if (t0 <= 0) {
    double up = 0.0;
    int64_t n_up = 0;
    for (int64_t c = 0; c < cfg.calibration; ++c) {
      const size_t t = size_t(rng.below(nt));
      propose(en, rng, t, scale[t], cfg.fraction, saved);
      const double dE = en.loss() + en.prior_term() - E;
      restore(en, t, saved);
      if (dE > 0 && std::isfinite(dE)) {
        up += dE;
        ++n_up;
      }
    }
    t0 = n_up > 0 ? (up / double(n_up)) / -det_log(0.8) : 1e-2 * std::max(std::fabs(E), 1e-6);
  }
  double t_end = cfg.t_end > 0 ? cfg.t_end : t0 * 1e-3;
  if (t_end > t0) t_end = t0;
  h.t0 = t0;
  h.t_end = t_end;

  // Best state: a copy, updated only for the tensors changed since it was taken.
  std::vector<std::vector<float>> best(nt);
  std::vector<uint64_t> version(nt, 0), best_version(nt, 0);
  for (size_t t = 0; t < nt; ++t) best[t].assign(params[t].data, params[t].data + params[t].size);
  double best_E = E;
  double best_prior_sum = en.prior_sum;
  auto take_best = [&] {
    for (size_t t = 0; t < nt; ++t)
      if (version[t] != best_version[t]) {
        std::memcpy(best[t].data(), params[t].data, size_t(params[t].size) * sizeof(float));
        best_version[t] = version[t];
      }
    best_E = E;
    best_prior_sum = en.prior_sum;
  };
  auto go_to_best = [&] {
    for (size_t t = 0; t < nt; ++t)
      if (version[t] != best_version[t]) {
        std::memcpy(params[t].data, best[t].data(), size_t(params[t].size) * sizeof(float));
        en.refresh(t);
        version[t] = best_version[t];  // same contents as best again
      }
    E = best_E;
    en.prior_sum = best_prior_sum;
    if (en.batched()) E = en.loss() + en.prior_term();  // best_E may be another batch's
  };

  h.energies.reserve(size_t(cfg.steps));
  h.temperatures.reserve(size_t(cfg.steps));
  h.acceptance.reserve(size_t(cfg.steps));
  std::vector<char> window(100, 0);
  int64_t window_sum = 0;
  const int64_t cycles = cfg.reheat + 1;
  int64_t step = 0;
  for (int64_t c = 0; c < cycles; ++c) {
    const int64_t len = cfg.steps / cycles + (c < cfg.steps % cycles ? 1 : 0);
    double tc = t0;
    for (int64_t j = 0; j < c; ++j) tc *= cfg.reheat_factor;
    tc = std::max(tc, t_end);
    if (c > 0) go_to_best();
    // adaptive: epochs of W steps at one temperature; after each, T *= exp(ln(r) * clamp(T / sd(E), 1/2, 2)),
    // r the geometric ratio per epoch (Huang, Romeo & Sangiovanni-Vincentelli 1986, bounded).
    const int64_t W = std::max<int64_t>(10, len / 50);
    const int64_t n_epochs = (len + W - 1) / W;
    const double log_r = n_epochs > 0 ? det_log(t_end / tc) / double(n_epochs) : 0.0;
    double T_adaptive = tc;
    double ep_s = 0.0, ep_s2 = 0.0;
    int64_t ep_n = 0;
    for (int64_t k = 0; k < len; ++k, ++step) {
      if (en.batched() && step > 0 && step % cfg.resample_every == 0) {
        en.new_batch(rng);
        E = en.loss() + en.prior_term();
      }
      const double T = cfg.schedule == Schedule::adaptive ? T_adaptive : schedule_temperature(cfg.schedule, tc, t_end, k, len);
      const size_t t = size_t(rng.below(nt));
      propose(en, rng, t, scale[t], cfg.fraction, saved);
      const double E_new = en.loss() + en.prior_term();
      const bool acc = metropolis_accept(E_new - E, T, rng.uniform());
      if (acc) {
        E = E_new;
        ++version[t];
        ++h.accepted;
      } else {
        restore(en, t, saved);
      }
      if (cfg.adapt_scale) {  // Robbins-Monro on log(scale), gain 0.5 / (1 + n/10)^0.6
        const double gain = 0.5 * det_exp(-0.6 * det_log(1.0 + double(tries[t]) / 10.0));
        scale[t] = std::min(10.0, std::max(1e-4, scale[t] * det_exp(gain * ((acc ? 1.0 : 0.0) - cfg.target_accept))));
        ++tries[t];
      }
      if (E < best_E) take_best();
      window_sum += (acc ? 1 : 0) - window[size_t(step % 100)];
      window[size_t(step % 100)] = acc ? 1 : 0;
      double mean_scale = 0.0;
      for (double s : scale) mean_scale += s;
      h.energies.push_back(E);
      h.temperatures.push_back(T);
      h.acceptance.push_back(double(window_sum) / double(std::min<int64_t>(step + 1, 100)));
      h.scales.push_back(mean_scale / double(nt));
      if (cfg.schedule == Schedule::adaptive) {
        ep_s += E;
        ep_s2 += E * E;
        if (++ep_n == W) {
          const double m = ep_s / double(ep_n);
          const double var = std::max(0.0, ep_s2 / double(ep_n) - m * m);
          const double sd = std::sqrt(var);
          const double ratio = sd > 0 ? std::min(2.0, std::max(0.5, T_adaptive / sd)) : 2.0;
          T_adaptive = std::max(t_end, T_adaptive * det_exp(log_r * ratio));
          ep_s = ep_s2 = 0.0;
          ep_n = 0;
        }
      }
      if (progress) progress(step + 1, E, T);
    }
  }
  if (cfg.keep_best) go_to_best();
  h.best_energy = best_E;
  en.finish(h, E, start);
  return h;
}

}  // namespace seedcore::train

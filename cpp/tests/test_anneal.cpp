// Annealing and the evolutionary search (seedcore/anneal.h): the deterministic PRNG
// and math, Metropolis acceptance, each schedule's curve, Graph::refresh_weights
// against a freshly built Graph (bit for bit), determinism across thread counts,
// annealing / evolution lowering the loss of a small conv net, and bad input refused.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "seedcore/anneal.h"
#include "seedcore/graph.h"
#include "test_util.h"

using namespace seedcore;
using namespace seedcore::train;

namespace {

std::mt19937 rng(99);
std::vector<float> randn(size_t n, float s = 1.0f) {
  std::normal_distribution<float> d(0.0f, s);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// conv3x3(4) -> relu -> flatten -> linear(3): [n, 1, 6, 6] -> [n, 3]
const char* kNet = R"({"version": 1,
  "inputs": [{"name": "x", "dtype": "float32", "shape": ["n", 1, 6, 6]}],
  "outputs": [{"name": "y", "dtype": "float32", "shape": ["n", 3]}],
  "nodes": [
    {"op": "conv2d", "in": ["x", "cw", "cb"], "out": ["c"], "attrs": {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1}, "path": "conv"},
    {"op": "relu", "in": ["c"], "out": ["r"], "attrs": {}, "path": "act"},
    {"op": "flatten", "in": ["r"], "out": ["f"], "attrs": {"start": 1, "end": -1}, "path": "flat"},
    {"op": "linear", "in": ["f", "fw", "fb"], "out": ["y"], "attrs": {}, "path": "fc"}
  ]})";

struct Net {
  std::unordered_map<std::string, std::vector<float>> w;
  std::unordered_map<std::string, std::vector<int64_t>> shape;
  Net() {
    w["cw"] = randn(4 * 9, 0.3f);  shape["cw"] = {4, 1, 3, 3};
    w["cb"] = randn(4, 0.1f);      shape["cb"] = {4};
    w["fw"] = randn(3 * 144, 0.1f); shape["fw"] = {3, 144};
    w["fb"] = randn(3, 0.1f);      shape["fb"] = {3};
  }
  std::unordered_map<std::string, TensorRef> refs() {
    std::unordered_map<std::string, TensorRef> r;
    for (auto& kv : w) r[kv.first] = TensorRef{ElemType::f32, shape[kv.first], kv.second.data()};
    return r;
  }
  std::vector<Param> params(const std::vector<std::string>& names) {
    std::vector<Param> p;
    for (const auto& n : names) p.push_back({n, w[n].data(), int64_t(w[n].size())});
    return p;
  }
};

// A task the net can learn: the class is which third of the image is brightest.
struct Data {
  int64_t n;
  std::vector<float> x;
  std::vector<int64_t> y;
  explicit Data(int64_t n_) : n(n_), x(randn(size_t(n_ * 36), 0.5f)), y(size_t(n_)) {
    for (int64_t i = 0; i < n; ++i) {
      y[size_t(i)] = i % 3;
      for (int r = 0; r < 6; ++r)
        for (int c = 2 * int(i % 3); c < 2 * int(i % 3) + 2; ++c) x[size_t(i * 36 + r * 6 + c)] += 1.0f;
    }
  }
  TensorRef ref() { return TensorRef{ElemType::f32, {n, 1, 6, 6}, x.data()}; }
};

std::vector<float> run1(Graph& g, Data& d, unsigned threads = 1) {
  auto out = g.run({d.ref()}, threads);
  const float* p = static_cast<const float*>(out[0].data());
  return std::vector<float>(p, p + out[0].numel());
}

void test_math() {
  double worst_e = 0, worst_l = 0;
  for (double x = -30; x <= 30; x += 0.0137) worst_e = std::max(worst_e, std::fabs(det_exp(x) / std::exp(x) - 1));
  for (double x = 1e-8; x < 1e8; x *= 1.37) worst_l = std::max(worst_l, std::fabs(det_log(x) - std::log(x)) / std::max(1.0, std::fabs(std::log(x))));
  CHECK_MSG(worst_e < 1e-14, "det_exp relative error %g", worst_e);
  CHECK_MSG(worst_l < 1e-14, "det_log error %g", worst_l);
  CHECK(det_exp(-1000) == 0.0 && std::isinf(det_exp(1000)));
  Rng a(7), b(7), c(8);
  bool same = true, differ = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next();
    same = same && x == b.next();
    differ = differ || x != c.next();
  }
  CHECK(same && differ);
  double s = 0, s2 = 0;
  const int N = 200000;
  for (int i = 0; i < N; ++i) {
    const double z = a.normal();
    s += z;
    s2 += z * z;
  }
  CHECK_MSG(std::fabs(s / N) < 0.01 && std::fabs(s2 / N - 1) < 0.02, "normal mean %g var %g", s / N, s2 / N);
  int hist[5] = {0, 0, 0, 0, 0};
  for (int i = 0; i < 50000; ++i) ++hist[a.below(5)];
  for (int h : hist) CHECK(h > 9500 && h < 10500);
}

void test_metropolis() {
  Rng r(1);
  int acc_hot = 0, acc_cold = 0, acc_mid = 0;
  const int N = 20000;
  for (int i = 0; i < N; ++i) {
    const double u = r.uniform();
    acc_hot += metropolis_accept(1.0, 1e9, u);
    acc_cold += metropolis_accept(1e-6, 1e-12, u);
    acc_mid += metropolis_accept(1.0, 1.0, u);  // exp(-1) = 0.3679
  }
  CHECK_MSG(acc_hot > N * 0.999, "hot acceptance %d", acc_hot);
  CHECK(acc_cold == 0);
  CHECK_MSG(std::fabs(double(acc_mid) / N - std::exp(-1.0)) < 0.015, "T=1 dE=1 acceptance %g", double(acc_mid) / N);
  CHECK(metropolis_accept(-5.0, 0.0, 0.999) && metropolis_accept(0.0, 1e-30, 0.999));
  CHECK(!metropolis_accept(std::numeric_limits<double>::infinity(), 1e30, 0.0));
  CHECK(!metropolis_accept(std::nan(""), 1.0, 0.0));
}

void test_schedules() {
  for (Schedule s : {Schedule::geometric, Schedule::linear, Schedule::cosine, Schedule::adaptive}) {
    const double a = schedule_temperature(s, 2.0, 0.002, 0, 101), b = schedule_temperature(s, 2.0, 0.002, 100, 101);
    CHECK_MSG(std::fabs(a - 2.0) < 1e-12 && std::fabs(b - 0.002) < 1e-12, "%s ends %g %g", schedule_name(s), a, b);
    double prev = 1e9;
    for (int k = 0; k <= 100; ++k) {
      const double t = schedule_temperature(s, 2.0, 0.002, k, 101);
      CHECK(t <= prev + 1e-15);
      prev = t;
    }
  }
  CHECK(std::fabs(schedule_temperature(Schedule::linear, 2.0, 0.0, 50, 101) - 1.0) < 1e-12);
  CHECK(std::fabs(schedule_temperature(Schedule::cosine, 2.0, 0.0, 50, 101) - 1.0) < 1e-12);
  CHECK(std::fabs(schedule_temperature(Schedule::geometric, 1.0, 0.01, 50, 101) - 0.1) < 1e-12);
  CHECK_THROWS_SEED("bad schedule", parse_schedule("exponential"));
}

void test_refresh() {
  Net net;
  Data d(5);
  Graph g(kNet, net.refs());
  const std::vector<float> before = run1(g, d);
  for (auto& v : net.w["fw"]) v *= 1.5f;
  for (auto& v : net.w["cw"]) v -= 0.25f;
  const std::vector<float> stale = run1(g, d);
  g.refresh_weights({"fw", "cw"});
  const std::vector<float> after = run1(g, d);
  Graph fresh(kNet, net.refs());
  const std::vector<float> want = run1(fresh, d);
  CHECK(after == want);  // bit for bit
  CHECK(after != before);
  (void)stale;
  // Only what was refreshed changes: a stale tensor stays stale until refreshed.
  for (auto& v : net.w["fw"]) v *= -1.0f;
  g.refresh_weights({"cb"});
  Graph fresh2(kNet, net.refs());
  CHECK(run1(g, d) != run1(fresh2, d));
  g.refresh_weights({"fw"});
  CHECK(run1(g, d) == run1(fresh2, d));
  CHECK_THROWS_SEED("unknown weight", g.refresh_weights({"nope"}));
}

struct RunOut {
  History h;
  std::unordered_map<std::string, std::vector<float>> w;
};

RunOut do_anneal(const AnnealConfig& cfg, unsigned threads, bool evolve_mode = false, EvolveConfig ec = {}) {
  rng.seed(5);
  Net net;
  Data d(60);
  Graph g(kNet, net.refs());
  Problem p;
  p.graph = &g;
  p.params = net.params({"cw", "cb", "fw", "fb"});
  p.inputs = {d.ref()};
  p.n = d.n;
  p.labels = d.y.data();
  p.threads = threads;
  RunOut o;
  o.h = evolve_mode ? evolve(p, ec) : anneal(p, cfg);
  // The graph now runs with the final weights: its loss equals a fresh graph's.
  Graph fresh(kNet, net.refs());
  CHECK(run1(g, d) == run1(fresh, d));
  o.w = net.w;
  return o;
}

void test_anneal_runs() {
  AnnealConfig cfg;
  cfg.steps = 600;
  cfg.seed = 3;
  cfg.fraction = 0.05;
  const RunOut a = do_anneal(cfg, 1), b = do_anneal(cfg, 3);
  CHECK(a.w == b.w && a.h.energies == b.h.energies && a.h.temperatures == b.h.temperatures);
  CHECK(a.h.evaluations == 1 + cfg.calibration + cfg.steps);
  CHECK_MSG(a.h.best_energy < 0.8 * a.h.initial_energy, "anneal: %g -> %g", a.h.initial_energy, a.h.best_energy);
  std::printf("anneal: %g -> %g (t0 %g, accepted %lld)\n", a.h.initial_energy, a.h.best_energy, a.h.t0, (long long)a.h.accepted);
  CHECK(a.h.final_energy == a.h.best_energy);
  double lowest = a.h.initial_energy;
  for (double e : a.h.energies) lowest = std::min(lowest, e);
  CHECK(lowest == a.h.best_energy);
  cfg.seed = 4;
  const RunOut c = do_anneal(cfg, 1);
  CHECK(c.w != a.w);
  // Every schedule, with reheats and a prior, and minibatches: deterministic, and lowers the energy.
  for (Schedule s : {Schedule::linear, Schedule::cosine, Schedule::adaptive}) {
    AnnealConfig k = cfg;
    k.schedule = s;
    k.reheat = 2;
    k.prior = 0.01;
    const RunOut x = do_anneal(k, 1), y = do_anneal(k, 2);
    CHECK(x.w == y.w && x.h.energies == y.h.energies);
    CHECK_MSG(x.h.best_energy < x.h.initial_energy, "%s: %g -> %g", schedule_name(s), x.h.initial_energy, x.h.best_energy);
  }
  AnnealConfig mb = cfg;
  mb.batch_size = 16;
  const RunOut m1 = do_anneal(mb, 1), m2 = do_anneal(mb, 2);
  CHECK(m1.w == m2.w && m1.h.final_energy == m2.h.final_energy);
  // T -> 0 (fixed tiny t0): only improvements are accepted, the energy never rises.
  AnnealConfig cold = cfg;
  cold.t0 = 1e-300;
  cold.t_end = 1e-300;
  const RunOut z = do_anneal(cold, 1);
  bool monotone = true;
  for (size_t i = 1; i < z.h.energies.size(); ++i) monotone = monotone && z.h.energies[i] <= z.h.energies[i - 1];
  CHECK(monotone && z.h.energies.front() <= z.h.initial_energy);
  // Very hot: almost every proposal is accepted.
  AnnealConfig hot = cfg;
  hot.t0 = 1e12;
  hot.t_end = 1e12;
  hot.adapt_scale = false;
  const RunOut hh = do_anneal(hot, 1);
  CHECK_MSG(hh.h.accepted > int64_t(0.98 * double(hot.steps)), "hot: accepted %lld", (long long)hh.h.accepted);
}

void test_evolve_runs() {
  EvolveConfig ec;
  ec.generations = 30;
  ec.population = 12;
  ec.fraction = 0.05;
  ec.seed = 1;
  const RunOut a = do_anneal({}, 1, true, ec), b = do_anneal({}, 3, true, ec);
  CHECK(a.w == b.w && a.h.energies == b.h.energies);
  CHECK(a.h.evaluations == ec.population + ec.generations * (ec.population - ec.elite));
  CHECK_MSG(a.h.best_energy < 0.9 * a.h.initial_energy, "evolve: %g -> %g", a.h.initial_energy, a.h.best_energy);
  std::printf("evolve: %g -> %g\n", a.h.initial_energy, a.h.best_energy);
  for (size_t i = 1; i < a.h.energies.size(); ++i) CHECK(a.h.energies[i] <= a.h.energies[i - 1]);  // elitism
}

void test_errors() {
  Net net;
  Data d(10);
  Graph g(kNet, net.refs());
  auto problem = [&] {
    Problem p;
    p.graph = &g;
    p.params = net.params({"fw"});
    p.inputs = {d.ref()};
    p.n = d.n;
    p.labels = d.y.data();
    return p;
  };
  AnnealConfig cfg;
  cfg.steps = 5;
  { Problem p = problem(); p.params.clear(); CHECK_THROWS_SEED("empty trainable set", anneal(p, cfg)); }
  { Problem p = problem(); CHECK_THROWS_SEED("empty trainable set (evolve)", (p.params.clear(), evolve(p, {}))); }
  { Problem p = problem(); p.params[0].name = "zz"; CHECK_THROWS_SEED("not a weight", anneal(p, cfg)); }
  {
    Problem p = problem();
    std::vector<float> x = d.x;
    x[37] = std::nanf("");
    p.inputs[0].data = x.data();
    CHECK_THROWS_SEED("NaN data", anneal(p, cfg));
  }
  {
    Problem p = problem();
    std::vector<int64_t> y = d.y;
    y[4] = 3;
    p.labels = y.data();
    CHECK_THROWS_SEED("label out of range", anneal(p, cfg));
    y[4] = -1;
    CHECK_THROWS_SEED("negative label", anneal(p, cfg));
  }
  { Problem p = problem(); p.n = 9; CHECK_THROWS_SEED("sample count mismatch", anneal(p, cfg)); }
  { Problem p = problem(); AnnealConfig c = cfg; c.steps = 0; CHECK_THROWS_SEED("steps 0", anneal(p, c)); }
  { Problem p = problem(); AnnealConfig c = cfg; c.fraction = 0; CHECK_THROWS_SEED("fraction 0", anneal(p, c)); }
  { Problem p = problem(); EvolveConfig e; e.elite = e.population; CHECK_THROWS_SEED("elite", evolve(p, e)); }
  { Problem p = problem(); p.loss = LossKind::mse; CHECK_THROWS_SEED("mse without targets", anneal(p, cfg)); }
  {
    Problem p = problem();
    std::vector<float> t(10 * 4, 0.0f);
    p.loss = LossKind::mse;
    p.targets = t.data();
    p.target_dim = 4;
    CHECK_THROWS_SEED("target width", anneal(p, cfg));
  }
  // A progress callback that throws stops the run; the graph still matches the weights.
  {
    Problem p = problem();
    int calls = 0;
    bool threw = false;
    try {
      anneal(p, cfg, [&](int64_t, double, double) { if (++calls == 3) throw std::runtime_error("stop"); });
    } catch (const std::runtime_error&) {
      threw = true;
    }
    CHECK(threw && calls == 3);
    Graph fresh(kNet, net.refs());
    CHECK(run1(g, d) == run1(fresh, d));
  }
}

}  // namespace

int main() {
  test_math();
  test_metropolis();
  test_schedules();
  test_refresh();
  test_anneal_runs();
  test_evolve_runs();
  test_errors();
  return seedtest::finish("test_anneal");
}

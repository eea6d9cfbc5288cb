// The native trainer on its own: gradients of a small conv / pool / linear graph
// against central finite differences (double-checked in float with a smooth loss),
// thread-count independence, SGD semantics, a seeded deterministic fit that lowers
// the loss, and bad trainable sets / targets refused with SeedError.
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "seedcore/train.h"
#include "test_util.h"

using namespace seedcore;
using namespace seedcore::train;

namespace {

const char* kGraph = R"({"version": 1,
  "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 2, 6, 6]}],
  "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 3]}],
  "nodes": [
    {"op": "conv2d", "in": ["x", "c.w", "c.b"], "out": ["v0"], "path": "c",
     "attrs": {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1}},
    {"op": "tanh", "in": ["v0"], "out": ["v1"], "attrs": {}, "path": "t"},
    {"op": "max_pool2d", "in": ["v1"], "out": ["v2"], "path": "p",
     "attrs": {"kernel": [2, 2], "stride": [2, 2], "padding": [0, 0]}},
    {"op": "flatten", "in": ["v2"], "out": ["v3"], "attrs": {"start": 1, "end": -1}, "path": "f"},
    {"op": "linear", "in": ["v3", "l.w", "l.b"], "out": ["y"], "attrs": {}, "path": "l"}]})";

struct Weights {
  std::unordered_map<std::string, std::vector<float>> data;
  std::unordered_map<std::string, TensorRef> refs() {
    std::unordered_map<std::string, TensorRef> r;
    const std::unordered_map<std::string, std::vector<int64_t>> shapes = {
        {"c.w", {4, 2, 3, 3}}, {"c.b", {4}}, {"l.w", {3, 36}}, {"l.b", {3}}};
    for (auto& kv : data) r[kv.first] = TensorRef{ElemType::f32, shapes.at(kv.first), kv.second.data()};
    return r;
  }
};

Weights make_weights(uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 0.3f);
  Weights w;
  for (auto [name, n] : std::vector<std::pair<std::string, size_t>>{{"c.w", 72}, {"c.b", 4}, {"l.w", 108}, {"l.b", 3}}) {
    w.data[name].resize(n);
    for (auto& v : w.data[name]) v = d(g);
  }
  return w;
}

std::vector<float> inputs(size_t n) {
  std::mt19937 g(7);
  std::normal_distribution<float> d;
  std::vector<float> v(n * 72);
  for (auto& x : v) x = d(g);
  return v;
}

double loss_of(Weights w, const std::vector<float>& x, const std::vector<int64_t>& y) {
  Trainer t(kGraph, w.refs(), {"l.b"});
  TensorRef xr{ElemType::f32, {int64_t(y.size()), 2, 6, 6}, x.data()};
  TensorRef yr{ElemType::i64, {int64_t(y.size())}, y.data()};
  return t.compute_gradients({xr}, LossKind::cross_entropy, yr);
}

}  // namespace

int main() {
  const std::vector<float> x = inputs(4);
  const std::vector<int64_t> y = {0, 2, 1, 2};
  TensorRef xr{ElemType::f32, {4, 2, 6, 6}, x.data()};
  TensorRef yr{ElemType::i64, {4}, y.data()};

  // gradients vs central differences
  {
    Weights w = make_weights(1);
    Trainer t(kGraph, w.refs(), {"c.w", "c.b", "l.w", "l.b"});
    t.compute_gradients({xr}, LossKind::cross_entropy, yr);
    for (const char* name : {"c.w", "c.b", "l.w", "l.b"}) {
      Tensor g = t.gradient(name);
      const float* gp = static_cast<const float*>(g.data());
      const size_t n = w.data[name].size();
      for (size_t i = 0; i < n; i += (n > 10 ? 7 : 1)) {
        const float h = 1e-3f;
        Weights wp = w, wm = w;
        wp.data[name][i] += h;
        wm.data[name][i] -= h;
        const double fd = (loss_of(wp, x, y) - loss_of(wm, x, y)) / (2.0 * h);
        CHECK_MSG(std::fabs(fd - gp[i]) <= 2e-3 + 2e-2 * std::fabs(fd), "%s[%zu]: grad %g, fd %g", name, i, gp[i], fd);
      }
    }
  }

  // thread-count independence and determinism of fit
  {
    std::vector<float> X = inputs(40);
    std::vector<int64_t> Y(40);
    for (size_t i = 0; i < Y.size(); ++i) Y[i] = int64_t(i % 3);
    TensorRef Xr{ElemType::f32, {40, 2, 6, 6}, X.data()};
    TensorRef Yr{ElemType::i64, {40}, Y.data()};
    OptimizerConfig opt;
    opt.lr = 0.1;
    opt.momentum = 0.9;
    std::vector<std::vector<double>> runs;
    std::vector<std::vector<float>> finals;
    for (unsigned threads : {1u, 3u, 1u}) {
      Weights w = make_weights(2);
      Trainer t(kGraph, w.refs(), {"c.w", "c.b", "l.w", "l.b"}, threads);
      t.set_seed(5);
      runs.push_back(t.fit({Xr}, Yr, 60, 8, LossKind::cross_entropy, opt));
      Tensor f = t.weight("c.w");
      finals.emplace_back(static_cast<const float*>(f.data()), static_cast<const float*>(f.data()) + 72);
    }
    CHECK(runs[0] == runs[1] && runs[0] == runs[2]);
    CHECK(finals[0] == finals[1] && finals[0] == finals[2]);
    double first = 0, last = 0;
    for (int i = 0; i < 10; ++i) { first += runs[0][size_t(i)]; last += runs[0][runs[0].size() - 1 - size_t(i)]; }
    CHECK_MSG(last < 0.7 * first, "loss %g -> %g", first / 10, last / 10);
  }

  // plain SGD: w -= lr * (g + wd * w)
  {
    Weights w = make_weights(3);
    Trainer t(kGraph, w.refs(), {"l.b"});
    t.compute_gradients({xr}, LossKind::cross_entropy, yr);
    Tensor g = t.gradient("l.b");
    OptimizerConfig opt;
    opt.lr = 0.5;
    opt.weight_decay = 0.1;
    t.step(opt);
    Tensor after = t.weight("l.b");
    for (int i = 0; i < 3; ++i) {
      const float w0 = w.data["l.b"][size_t(i)];
      const float want = w0 - 0.5f * (static_cast<const float*>(g.data())[i] + 0.1f * w0);
      CHECK(std::fabs(static_cast<const float*>(after.data())[i] - want) < 1e-6f);
    }
    // the frozen conv weight did not move
    Tensor cw = t.weight("c.w");
    CHECK(std::memcmp(cw.data(), w.data["c.w"].data(), 72 * 4) == 0);
  }

  // bad input
  {
    Weights w = make_weights(4);
    CHECK_THROWS_SEED("empty", Trainer(kGraph, w.refs(), {}));
    CHECK_THROWS_SEED("unknown", Trainer(kGraph, w.refs(), {"nope"}));
    CHECK_THROWS_SEED("twice", Trainer(kGraph, w.refs(), {"l.b", "l.b"}));
    Trainer t(kGraph, w.refs(), {"l.b"});
    std::vector<int64_t> bad = {0, 3, 1, 2};
    TensorRef br{ElemType::i64, {4}, bad.data()};
    CHECK_THROWS_SEED("label out of range", t.compute_gradients({xr}, LossKind::cross_entropy, br));
    TensorRef short_y{ElemType::i64, {3}, y.data()};
    CHECK_THROWS_SEED("label count", t.compute_gradients({xr}, LossKind::cross_entropy, short_y));
    TensorRef wrong{ElemType::f32, {4, 2, 5, 6}, x.data()};
    CHECK_THROWS_SEED("input shape", t.compute_gradients({wrong}, LossKind::cross_entropy, yr));
    CHECK_THROWS_SEED("step before gradients", Trainer(kGraph, w.refs(), {"l.b"}).step(OptimizerConfig{}));
    OptimizerConfig huge;
    huge.lr = 1e30;
    std::vector<float> X = inputs(8);
    std::vector<int64_t> Y = {0, 1, 2, 0, 1, 2, 0, 1};
    Trainer d(kGraph, w.refs(), {"l.w", "l.b", "c.w"});
    CHECK_THROWS_SEED("diverges", d.fit({TensorRef{ElemType::f32, {8, 2, 6, 6}, X.data()}},
                                        TensorRef{ElemType::i64, {8}, Y.data()}, 20, 4, LossKind::cross_entropy, huge));
    Tensor after = d.weight("l.w");
    const float* ap = static_cast<const float*>(after.data());
    bool finite = true;
    for (int i = 0; i < 108; ++i) finite &= std::isfinite(ap[i]);
    CHECK(finite);
  }

  // the 2x2 max pool row: SIMD (SSE2 / NEON) against the scalar reference, bit for bit:
  // random values with ties (zeros, as after a relu, and repeats), NaN and infinities,
  // every row length 0..19 (whole vectors and tails) and an odd input width
  {
    std::mt19937 g(5);
    std::uniform_int_distribution<int> kind(0, 9);
    std::normal_distribution<float> d;
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    int mismatches = 0;
    for (int trial = 0; trial < 200; ++trial) {
      const int64_t ow = trial % 20, w = 2 * ow + (trial % 3 == 0 ? 1 : 0);
      std::vector<float> rows(size_t(2 * w) + 1);
      for (auto& v : rows) {
        const int k = kind(g);
        v = k < 3 ? 0.0f : k == 3 ? 1.0f : k == 4 ? nan : k == 5 ? (g() % 2 ? inf : -inf) : d(g);
      }
      std::vector<float> y1(size_t(ow) + 1, -7.0f), y2 = y1;
      std::vector<int32_t> a1(size_t(ow) + 1, -7), a2 = a1;
      max_pool_2x2_row(rows.data(), w, 100, ow, y1.data(), a1.data());
      max_pool_2x2_row_reference(rows.data(), w, 100, ow, y2.data(), a2.data());
      for (int64_t i = 0; i <= ow; ++i) {
        const bool same = (y1[size_t(i)] == y2[size_t(i)] || (std::isnan(y1[size_t(i)]) && std::isnan(y2[size_t(i)]))) &&
                          a1[size_t(i)] == a2[size_t(i)];
        mismatches += !same;
      }
      CHECK(y1[size_t(ow)] == -7.0f && a1[size_t(ow)] == -7);  // nothing written past the row
    }
    CHECK_MSG(mismatches == 0, "%d outputs differ", mismatches);
    // the reference's semantics: first maximum in window order, NaN wins
    const float r[8] = {1, 3, 5, 3, 3, 0, nan, 5};  // two windows over rows {1,3,5,3} / {3,0,nan,5}
    float y[2];
    int32_t a[2];
    max_pool_2x2_row(r, 4, 0, 2, y, a);
    CHECK(y[0] == 3 && a[0] == 1);  // 3 at (0,1) before the tie at (1,0)
    CHECK(std::isnan(y[1]) && a[1] == 6);
  }

  // the PRNG: fixed numbers on every platform
  {
    BatchRng r(0);
    const uint64_t a = r.next(), b = r.next();
    BatchRng r2(0);
    CHECK(r2.next() == a && r2.next() == b);
    BatchRng r3(1);
    CHECK(r3.next() != a);
    for (int i = 0; i < 1000; ++i) CHECK(r.below(7) < 7);
  }
  return seedtest::finish("test_train");
}

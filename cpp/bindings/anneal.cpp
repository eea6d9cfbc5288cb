// seedcore._native.anneal: runs seedcore::train::anneal / evolve over numpy weights,
// changing the trainable arrays in place, with the GIL released. At most every 50 ms
// the run takes the GIL back to check for Ctrl-C and to call the progress callback
// (and always once at the last step); an exception there stops the run, leaving the
// weights in the current (consistent) state.
#include "anneal.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "seedcore/anneal.h"
#include "seedcore/error.h"
#include "seedcore/graph.h"

namespace py = pybind11;
using seedcore::ElemType;
using seedcore::SeedError;

namespace seedcore_py {
namespace {

bool c_contiguous(const py::array& a) {
  return (py::detail::array_proxy(a.ptr())->flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_) != 0;
}

seedcore::TensorRef tensor_ref(const py::array& a, const std::string& what) {
  seedcore::TensorRef r;
  if (a.dtype().equal(py::dtype::of<float>())) r.dtype = ElemType::f32;
  else if (a.dtype().equal(py::dtype::of<int64_t>())) r.dtype = ElemType::i64;
  else throw SeedError(what + " must be float32 or int64, got " + std::string(py::str(a.dtype())));
  if (!c_contiguous(a)) throw SeedError(what + " is not C-contiguous");
  for (py::ssize_t d = 0; d < a.ndim(); ++d) r.shape.push_back(int64_t(a.shape(d)));
  r.data = a.data();
  return r;
}

struct Stop {};  // a Python exception is pending in `error`

template <class T>
void take(py::dict& cfg, const char* key, T& field) {
  if (cfg.contains(key)) {
    field = cfg[key].cast<T>();
    cfg.attr("pop")(key);
  }
}

py::dict run(const std::string& graph_json, const py::dict& weights, const std::vector<std::string>& trainable,
             const py::list& inputs, const py::object& labels, const py::object& targets, const std::string& mode,
             const py::dict& config, const std::string& loss, unsigned threads, const py::object& progress,
             const std::string& what) {
  std::vector<py::array> held;
  std::unordered_map<std::string, seedcore::TensorRef> refs;
  for (auto item : weights) {
    const std::string name = py::str(item.first);
    if (!py::isinstance<py::array>(item.second)) throw SeedError("weight '" + name + "' is not a numpy array");
    py::array a = py::reinterpret_borrow<py::array>(item.second);
    refs.emplace(name, tensor_ref(a, "weight '" + name + "'"));
    held.push_back(a);
  }
  seedcore::train::Problem p;
  for (const std::string& name : trainable) {
    auto it = refs.find(name);
    if (it == refs.end()) throw SeedError("trainable tensor '" + name + "' is not one of the graph's weights");
    py::array a = py::reinterpret_borrow<py::array>(weights[py::str(name)]);
    if (it->second.dtype != ElemType::f32) throw SeedError("trainable tensor '" + name + "' is not float32");
    if (!a.writeable()) throw SeedError("trainable tensor '" + name + "' is read-only");
    p.params.push_back({name, static_cast<float*>(a.mutable_data()), int64_t(a.size())});
  }
  seedcore::Graph graph(graph_json, refs);
  p.graph = &graph;
  for (size_t i = 0; i < inputs.size(); ++i) {
    py::array a = py::reinterpret_borrow<py::array>(inputs[i]);
    p.inputs.push_back(tensor_ref(a, "input " + std::to_string(i)));
    held.push_back(a);
  }
  p.n = p.inputs.empty() || p.inputs[0].shape.empty() ? 0 : p.inputs[0].shape[0];
  p.loss = seedcore::train::parse_loss(loss);
  if (!labels.is_none()) {
    auto a = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(labels);
    if (!a || a.ndim() != 1) throw SeedError("labels must be a 1-D integer array");
    if (int64_t(a.shape(0)) != p.n)
      throw SeedError(what + ": " + std::to_string(a.shape(0)) + " labels for " + std::to_string(p.n) + " samples");
    p.labels = a.data();
    held.push_back(a);
  }
  if (!targets.is_none()) {
    auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(targets);
    if (!a || a.ndim() < 1) throw SeedError("targets must be a float array [n, d]");
    if (int64_t(a.shape(0)) != p.n)
      throw SeedError(what + ": " + std::to_string(a.shape(0)) + " targets for " + std::to_string(p.n) + " samples");
    p.targets = a.data();
    p.target_dim = p.n > 0 ? int64_t(a.size()) / p.n : 0;
    held.push_back(a);
  }
  p.threads = threads < 1 ? 1 : threads;
  p.what = what;

  py::dict cfg(config);  // a copy: keys are popped as they are read
  seedcore::train::AnnealConfig ac;
  seedcore::train::EvolveConfig ec;
  int64_t total = 0;
  if (mode == "anneal") {
    std::string schedule = "geometric";
    take(cfg, "steps", ac.steps);
    take(cfg, "t0", ac.t0);
    take(cfg, "t_end", ac.t_end);
    take(cfg, "schedule", schedule);
    take(cfg, "reheat", ac.reheat);
    take(cfg, "reheat_factor", ac.reheat_factor);
    take(cfg, "proposal_scale", ac.proposal_scale);
    take(cfg, "adapt_scale", ac.adapt_scale);
    take(cfg, "target_accept", ac.target_accept);
    take(cfg, "fraction", ac.fraction);
    take(cfg, "prior", ac.prior);
    take(cfg, "batch_size", ac.batch_size);
    take(cfg, "resample_every", ac.resample_every);
    take(cfg, "calibration", ac.calibration);
    take(cfg, "keep_best", ac.keep_best);
    take(cfg, "seed", ac.seed);
    ac.schedule = seedcore::train::parse_schedule(schedule);
    total = ac.steps;
  } else if (mode == "evolve") {
    take(cfg, "generations", ec.generations);
    take(cfg, "population", ec.population);
    take(cfg, "elite", ec.elite);
    take(cfg, "tournament", ec.tournament);
    take(cfg, "mutation_scale", ec.mutation_scale);
    take(cfg, "fraction", ec.fraction);
    take(cfg, "crossover", ec.crossover);
    take(cfg, "adapt_scale", ec.adapt_scale);
    take(cfg, "prior", ec.prior);
    take(cfg, "batch_size", ec.batch_size);
    take(cfg, "seed", ec.seed);
    total = ec.generations;
  } else {
    throw SeedError("mode must be 'anneal' or 'evolve', got '" + mode + "'");
  }
  if (cfg.size() > 0) throw SeedError(mode + ": unknown option(s) " + std::string(py::str(cfg.attr("keys")())));

  std::unique_ptr<py::error_already_set> error;
  using clock = std::chrono::steady_clock;
  clock::time_point last = clock::now();
  const bool has_cb = !progress.is_none();
  seedcore::train::Progress cb = [&](int64_t step, double energy, double temperature) {
    const clock::time_point now = clock::now();
    if (step != total && now - last < std::chrono::milliseconds(50)) return;
    last = now;
    py::gil_scoped_acquire gil;
    try {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (has_cb) progress(step, energy, temperature);
    } catch (py::error_already_set& e) {
      error.reset(new py::error_already_set(std::move(e)));
      throw Stop{};
    }
  };
  seedcore::train::History h;
  try {
    py::gil_scoped_release release;
    h = mode == "anneal" ? seedcore::train::anneal(p, ac, cb) : seedcore::train::evolve(p, ec, cb);
  } catch (const Stop&) {
    error->restore();
    throw py::error_already_set();
  }
  py::dict out;
  out["energies"] = h.energies;
  out["temperatures"] = h.temperatures;
  out["acceptance"] = h.acceptance;
  out["scales"] = h.scales;
  out["initial_energy"] = h.initial_energy;
  out["best_energy"] = h.best_energy;
  out["final_energy"] = h.final_energy;
  out["t0"] = h.t0;
  out["t_end"] = h.t_end;
  out["evaluations"] = h.evaluations;
  out["accepted"] = h.accepted;
  out["rejected_nonfinite"] = h.rejected_nonfinite;
  out["seconds"] = h.seconds;
  return out;
}

}  // namespace

void bind_anneal(py::module_& m) {
  m.def("anneal", &run, py::arg("graph_json"), py::arg("weights"), py::arg("trainable"), py::arg("inputs"),
        py::arg("labels"), py::arg("targets"), py::arg("mode"), py::arg("config"), py::arg("loss"),
        py::arg("threads") = 1, py::arg("progress") = py::none(), py::arg("what") = "data",
        "Simulated annealing (mode 'anneal') or the evolutionary search ('evolve') over the trainable "
        "float32 arrays of `weights`, changed in place; returns the history as a dict.");
  m.def("schedule_temperature", [](const std::string& s, double t0, double t_end, int64_t k, int64_t steps) {
    return seedcore::train::schedule_temperature(seedcore::train::parse_schedule(s), t0, t_end, k, steps);
  }, py::arg("schedule"), py::arg("t0"), py::arg("t_end"), py::arg("k"), py::arg("steps"));
  m.def("metropolis_accept", &seedcore::train::metropolis_accept, py::arg("dE"), py::arg("T"), py::arg("u"));
}

}  // namespace seedcore_py

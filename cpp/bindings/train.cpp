// seedcore._native.Trainer: the native trainer (seedcore/train.h) over numpy arrays.
// Training, forward and backward calls release the GIL; a progress callback takes it
// back for the call.
#include "train.h"

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "seedcore/error.h"
#include "seedcore/train.h"

namespace py = pybind11;
using seedcore::ElemType;
using seedcore::SeedError;
namespace tr = seedcore::train;

namespace seedcore_py {
namespace {

// A C-contiguous array of `dt` (converted when needed; the caller keeps `held`).
seedcore::TensorRef as_ref(const py::handle& obj, ElemType dt, const std::string& what, std::vector<py::array>& held) {
  py::array a = py::array::ensure(obj);
  if (!a) throw SeedError(what + " is not convertible to a numpy array");
  const char kind = a.dtype().kind();
  py::array conv;
  if (dt == ElemType::f32) {
    if (kind != 'f') throw SeedError(what + " has dtype " + std::string(py::str(a.dtype())) + ", expected float32");
    conv = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
  } else {
    if (kind != 'i' && kind != 'u') throw SeedError(what + " has dtype " + std::string(py::str(a.dtype())) + ", expected int64");
    conv = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  }
  if (!conv) throw SeedError(what + " could not be converted to " + seedcore::elem_type_name(dt));
  seedcore::TensorRef r;
  r.dtype = dt;
  for (py::ssize_t d = 0; d < conv.ndim(); ++d) r.shape.push_back(int64_t(conv.shape(d)));
  r.data = conv.data();
  held.push_back(conv);
  return r;
}

py::array to_numpy(seedcore::Tensor t) {
  auto* owned = new seedcore::Tensor(std::move(t));
  py::capsule keep(owned, [](void* p) { delete static_cast<seedcore::Tensor*>(p); });
  std::vector<py::ssize_t> shape(owned->shape.begin(), owned->shape.end());
  py::dtype dt = owned->dtype == ElemType::f32 ? py::dtype::of<float>() : py::dtype::of<int64_t>();
  return py::array(dt, shape, owned->data(), keep);
}

tr::OptimizerConfig make_opt(const std::string& kind, double lr, double momentum, double wd, double b1, double b2,
                             double eps) {
  tr::OptimizerConfig o;
  o.kind = tr::parse_optimizer(kind);
  o.lr = lr;
  o.momentum = momentum;
  o.weight_decay = wd;
  o.beta1 = b1;
  o.beta2 = b2;
  o.eps = eps;
  return o;
}

class PyTrainer {
 public:
  PyTrainer(const std::string& graph_json, const py::dict& weights, const std::vector<std::string>& trainable,
            int threads, const std::string& impl, bool input_grads, uint64_t seed) {
    if (threads < 1) throw SeedError("threads must be >= 1, got " + std::to_string(threads));
    std::unordered_map<std::string, seedcore::TensorRef> refs;
    std::vector<py::array> held;
    for (auto item : weights) {
      const std::string name = py::str(item.first);
      py::array a = py::array::ensure(item.second);
      if (!a) throw SeedError("weight '" + name + "' is not a numpy array");
      ElemType dt;
      if (a.dtype().equal(py::dtype::of<float>())) dt = ElemType::f32;
      else if (a.dtype().equal(py::dtype::of<int64_t>())) dt = ElemType::i64;
      else continue;  // the graph cannot use it; naming it in a node fails validation
      refs.emplace(name, as_ref(a, dt, "weight '" + name + "'", held));
    }
    const seedcore::Isa isa = seedcore::resolve_impl(impl);
    py::gil_scoped_release release;
    t_.reset(new tr::Trainer(graph_json, refs, trainable, unsigned(threads), isa, input_grads));
    t_->set_seed(seed);
  }

  std::vector<seedcore::TensorRef> inputs(const py::list& arrays, std::vector<py::array>& held) const {
    const auto& specs = t_->inputs();
    if (arrays.size() != specs.size())
      throw SeedError("the graph takes " + std::to_string(specs.size()) + " input(s), got " + std::to_string(arrays.size()));
    std::vector<seedcore::TensorRef> refs;
    for (size_t i = 0; i < specs.size(); ++i)
      refs.push_back(as_ref(arrays[i], specs[i].dtype, "input '" + specs[i].name + "'", held));
    return refs;
  }
  static seedcore::TensorRef target_ref(const py::handle& target, std::vector<py::array>& held) {
    py::array a = py::array::ensure(target);
    if (!a) throw SeedError("the targets are not convertible to a numpy array");
    const char kind = a.dtype().kind();
    return as_ref(a, kind == 'i' || kind == 'u' ? ElemType::i64 : ElemType::f32, "the targets", held);
  }

  py::array fit(const py::list& data, const py::handle& target, int64_t steps, int64_t batch_size,
                const std::string& loss, const std::string& optimizer, double lr, double momentum, double wd,
                double b1, double b2, double eps, const py::object& callback) {
    std::vector<py::array> held;
    auto refs = inputs(data, held);
    const auto tref = target_ref(target, held);
    const tr::LossKind lk = tr::parse_loss(loss);
    const tr::OptimizerConfig opt = make_opt(optimizer, lr, momentum, wd, b1, b2, eps);
    std::function<bool(int64_t, double)> cb;
    if (!callback.is_none()) {
      cb = [&callback](int64_t step, double value) {
        py::gil_scoped_acquire acquire;
        py::object r = callback(step, value);
        return r.is_none() || r.cast<bool>();
      };
    }
    std::vector<double> losses;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mu_);
      losses = t_->fit(refs, tref, steps, batch_size, lk, opt, cb);
    }
    py::array_t<double> out(py::ssize_t(losses.size()));
    std::copy(losses.begin(), losses.end(), out.mutable_data());
    return out;
  }

  double compute_gradients(const py::list& data, const py::handle& target, const std::string& loss, size_t output) {
    std::vector<py::array> held;
    auto refs = inputs(data, held);
    const auto tref = target_ref(target, held);
    const tr::LossKind lk = tr::parse_loss(loss);
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mu_);
    return t_->compute_gradients(refs, lk, tref, output);
  }

  void backward(const py::list& data, const py::list& grads) {
    std::vector<py::array> held;
    auto refs = inputs(data, held);
    std::vector<seedcore::TensorRef> gr;
    for (size_t i = 0; i < grads.size(); ++i) {
      if (grads[i].is_none()) {
        gr.emplace_back();
        continue;
      }
      gr.push_back(as_ref(grads[i], ElemType::f32, "output gradient " + std::to_string(i), held));
    }
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mu_);
    t_->backward_from(refs, gr);
  }

  void step(const std::string& optimizer, double lr, double momentum, double wd, double b1, double b2, double eps) {
    const tr::OptimizerConfig opt = make_opt(optimizer, lr, momentum, wd, b1, b2, eps);
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mu_);
    t_->step(opt);
  }

  py::list forward(const py::list& data) {
    std::vector<py::array> held;
    auto refs = inputs(data, held);
    std::vector<seedcore::Tensor> outs;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mu_);
      outs = t_->forward(refs);
    }
    py::list r;
    for (auto& t : outs) r.append(to_numpy(std::move(t)));
    return r;
  }

  py::array weight(const std::string& name) const { return to_numpy(t_->weight(name)); }
  py::array gradient(const std::string& name) const { return to_numpy(t_->gradient(name)); }
  py::array input_gradient(size_t i) const { return to_numpy(t_->input_gradient(i)); }
  py::dict trained() const {
    py::dict d;
    for (const auto& n : t_->trainable()) d[py::str(n)] = weight(n);
    return d;
  }
  void set_weight(const std::string& name, const py::handle& value) {
    std::vector<py::array> held;
    py::array a = py::array::ensure(value);
    if (!a) throw SeedError("set_weight: not an array");
    const char kind = a.dtype().kind();
    t_->set_weight(name, as_ref(a, kind == 'f' ? ElemType::f32 : ElemType::i64, "weight '" + name + "'", held));
  }
  void set_seed(uint64_t seed) { t_->set_seed(seed); }
  const std::vector<std::string>& trainable() const { return t_->trainable(); }
  int64_t steps_done() const { return t_->steps_done(); }

 private:
  std::unique_ptr<tr::Trainer> t_;
  std::mutex mu_;  // calls on one trainer are serialised (the GIL is released while it works)
};

}  // namespace

void bind_train(py::module_& m) {
  py::class_<PyTrainer>(m, "Trainer")
      .def(py::init<const std::string&, const py::dict&, const std::vector<std::string>&, int, const std::string&, bool,
                    uint64_t>(),
           py::arg("graph_json"), py::arg("weights"), py::arg("trainable"), py::arg("threads") = 1,
           py::arg("impl") = "auto", py::arg("input_grads") = false, py::arg("seed") = 0,
           "A native trainer over metadata.graph (JSON) and copies of the weights; `trainable`: the names "
           "of the float32 tensors to train.")
      .def("fit", &PyTrainer::fit, py::arg("data"), py::arg("target"), py::arg("steps"), py::arg("batch_size"),
           py::arg("loss") = "cross_entropy", py::arg("optimizer") = "sgd", py::arg("lr") = 0.01,
           py::arg("momentum") = 0.0, py::arg("weight_decay") = 0.0, py::arg("beta1") = 0.9,
           py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("callback") = py::none(),
           "Trains `steps` mini-batches of `data` (a list of arrays, one per graph input, axis 0 = sample) "
           "against `target`; returns the per-step losses (float64 array).")
      .def("compute_gradients", &PyTrainer::compute_gradients, py::arg("data"), py::arg("target"),
           py::arg("loss") = "cross_entropy", py::arg("output") = 0)
      .def("backward", &PyTrainer::backward, py::arg("data"), py::arg("output_grads"),
           "Forward, then backward from the given output gradients (None = zero).")
      .def("step", &PyTrainer::step, py::arg("optimizer") = "sgd", py::arg("lr") = 0.01, py::arg("momentum") = 0.0,
           py::arg("weight_decay") = 0.0, py::arg("beta1") = 0.9, py::arg("beta2") = 0.999, py::arg("eps") = 1e-8)
      .def("forward", &PyTrainer::forward, py::arg("data"))
      .def("weight", &PyTrainer::weight, py::arg("name"))
      .def("gradient", &PyTrainer::gradient, py::arg("name"))
      .def("input_gradient", &PyTrainer::input_gradient, py::arg("index"))
      .def("trained_weights", &PyTrainer::trained)
      .def("set_weight", &PyTrainer::set_weight, py::arg("name"), py::arg("value"))
      .def("set_seed", &PyTrainer::set_seed, py::arg("seed"))
      .def_property_readonly("trainable", &PyTrainer::trainable)
      .def_property_readonly("steps_done", &PyTrainer::steps_done);
}

}  // namespace seedcore_py

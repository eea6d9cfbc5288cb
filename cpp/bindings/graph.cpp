// seedcore._native.Graph: validates a graph against numpy weights it keeps alive
// (zero-copy), runs it with the GIL released, returns numpy arrays that own the
// executor's result buffers.
#include "graph.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

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

class PyGraph {
 public:
  PyGraph(const std::string& graph_json, const py::dict& weights) {
    std::unordered_map<std::string, seedcore::TensorRef> refs;
    for (auto item : weights) {
      const std::string name = py::str(item.first);
      if (!py::isinstance<py::array>(item.second))
        throw SeedError("weight '" + name + "' is not a numpy array");
      py::array a = py::reinterpret_borrow<py::array>(item.second);
      seedcore::TensorRef r;
      if (a.dtype().equal(py::dtype::of<float>())) r.dtype = ElemType::f32;
      else if (a.dtype().equal(py::dtype::of<int64_t>())) r.dtype = ElemType::i64;
      else continue;  // the graph cannot use it; naming it in a node fails validation
      if (!c_contiguous(a)) throw SeedError("weight '" + name + "' is not C-contiguous");
      for (py::ssize_t d = 0; d < a.ndim(); ++d) r.shape.push_back(int64_t(a.shape(d)));
      r.data = a.data();
      refs.emplace(name, std::move(r));
      arrays_.push_back(a);  // keeps the memory alive as long as the graph
    }
    graph_.reset(new seedcore::Graph(graph_json, refs));
  }

  py::list specs(bool inputs) const {
    py::list out;
    for (const auto& s : inputs ? graph_->inputs() : graph_->outputs()) {
      py::dict d;
      d["name"] = s.name;
      d["dtype"] = seedcore::elem_type_name(s.dtype);
      py::list shape;
      for (const auto& dim : s.shape) {
        if (dim.symbol.empty()) shape.append(py::int_(dim.size));
        else shape.append(py::str(dim.symbol));
      }
      d["shape"] = shape;
      out.append(d);
    }
    return out;
  }
  py::list names(bool inputs) const {
    py::list out;
    for (const auto& s : inputs ? graph_->inputs() : graph_->outputs()) out.append(py::str(s.name));
    return out;
  }

  py::dict run(const py::dict& inputs, int threads, const std::string& impl) {
    const seedcore::Isa isa = seedcore::resolve_impl(impl);
    if (threads < 1) throw SeedError("threads must be >= 1, got " + std::to_string(threads));
    const auto& specs = graph_->inputs();
    for (auto item : inputs) {
      const std::string k = py::str(item.first);
      bool known = false;
      for (const auto& s : specs) known |= s.name == k;
      if (!known) throw SeedError("unknown input '" + k + "' (the graph takes " + join_names(true) + ")");
    }
    std::vector<py::array> held;
    std::vector<seedcore::TensorRef> refs;
    for (const auto& s : specs) {
      if (!inputs.contains(py::str(s.name))) throw SeedError("missing input '" + s.name + "'");
      py::object obj = inputs[py::str(s.name)];
      py::array a = py::array::ensure(obj);
      if (!a) throw SeedError("input '" + s.name + "' is not convertible to a numpy array");
      const char kind = a.dtype().kind();
      py::array conv;
      if (s.dtype == ElemType::f32) {
        if (kind != 'f') throw SeedError("input '" + s.name + "' has dtype " + std::string(py::str(a.dtype())) + ", expected float32");
        conv = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
      } else {
        if (kind != 'i' && kind != 'u')
          throw SeedError("input '" + s.name + "' has dtype " + std::string(py::str(a.dtype())) + ", expected int64");
        conv = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
      }
      if (!conv) throw SeedError("input '" + s.name + "' could not be converted to " + seedcore::elem_type_name(s.dtype));
      seedcore::TensorRef r;
      r.dtype = s.dtype;
      for (py::ssize_t d = 0; d < conv.ndim(); ++d) r.shape.push_back(int64_t(conv.shape(d)));
      r.data = conv.data();
      refs.push_back(std::move(r));
      held.push_back(conv);
    }
    std::vector<seedcore::Tensor> outs;
    {
      py::gil_scoped_release release;
      outs = graph_->run(refs, unsigned(threads), isa);
    }
    py::dict result;
    const auto& out_specs = graph_->outputs();
    for (size_t i = 0; i < outs.size(); ++i) {
      auto* owned = new seedcore::Tensor(std::move(outs[i]));
      py::capsule keep(owned, [](void* p) { delete static_cast<seedcore::Tensor*>(p); });
      std::vector<py::ssize_t> shape(owned->shape.begin(), owned->shape.end());
      py::dtype dt = owned->dtype == ElemType::f32 ? py::dtype::of<float>() : py::dtype::of<int64_t>();
      result[py::str(out_specs[i].name)] = py::array(dt, shape, owned->data(), keep);
    }
    return result;
  }

  size_t node_count() const { return graph_->node_count(); }

 private:
  std::string join_names(bool inputs) const {
    std::string s;
    for (const auto& v : inputs ? graph_->inputs() : graph_->outputs()) s += (s.empty() ? "'" : ", '") + v.name + "'";
    return s;
  }
  std::vector<py::array> arrays_;
  std::unique_ptr<seedcore::Graph> graph_;
};

}  // namespace

void bind_graph(py::module_& m) {
  py::class_<PyGraph>(m, "Graph")
      .def(py::init<const std::string&, const py::dict&>(), py::arg("graph_json"), py::arg("weights"),
           "Validates metadata.graph (a JSON string) against the weights (name -> C-contiguous float32/int64 "
           "numpy array, kept by reference).")
      .def_property_readonly("input_names", [](const PyGraph& g) { return g.names(true); })
      .def_property_readonly("output_names", [](const PyGraph& g) { return g.names(false); })
      .def_property_readonly("input_specs", [](const PyGraph& g) { return g.specs(true); })
      .def_property_readonly("output_specs", [](const PyGraph& g) { return g.specs(false); })
      .def_property_readonly("node_count", &PyGraph::node_count)
      .def("run", &PyGraph::run, py::arg("inputs"), py::arg("threads") = 1, py::arg("impl") = "auto",
           "Runs the graph (GIL released); returns {output name: numpy array}.");
}

}  // namespace seedcore_py

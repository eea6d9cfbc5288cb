// seedcore._native: a thin pybind11 layer over the core. Decoding and verification
// release the GIL; decoded tensors are written straight into numpy buffers that the
// binding allocates (or the caller passes as `out`), so there is no extra copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "encode.h"
#include "graph.h"
#include "seedcore/cpu.h"
#include "seedcore/error.h"
#include "seedcore/json.h"
#include "seedcore/seed_file.h"
#include "seedcore/tensor_spec.h"

namespace py = pybind11;
using seedcore::Dtype;
using seedcore::SeedError;
using seedcore::SeedFile;

namespace {

py::dtype numpy_dtype(Dtype d) {
  switch (d) {
    case Dtype::boolean: return py::dtype("bool");
    default: return py::dtype(seedcore::dtype_name(d));
  }
}

std::vector<py::ssize_t> numpy_shape(const seedcore::TensorSpec& spec) {
  return std::vector<py::ssize_t>(spec.shape.begin(), spec.shape.end());
}

// Allocates the numpy array a tensor decodes into (GIL held).
py::array empty_array_for(const seedcore::TensorSpec& spec) {
  return py::array(numpy_dtype(spec.decoded_dtype()), numpy_shape(spec));
}

// A contiguous read-only view of any bytes-like object (PyBUF_SIMPLE refuses
// non-contiguous buffers), released on scope exit.
class ByteView {
 public:
  explicit ByteView(const py::handle& obj) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE) != 0) throw py::error_already_set();
  }
  ~ByteView() { PyBuffer_Release(&view_); }
  ByteView(const ByteView&) = delete;
  ByteView& operator=(const ByteView&) = delete;
  const uint8_t* data() const { return static_cast<const uint8_t*>(view_.buf); }
  uint64_t size() const { return uint64_t(view_.len); }

 private:
  Py_buffer view_{};
};

py::dict cpu_features_dict() {
  const seedcore::CpuFeatures& f = seedcore::cpu_features();
  py::dict d;
  d["isa"] = seedcore::isa_name(seedcore::auto_isa());
  d["avx2"] = f.avx2;
  d["fma"] = f.fma;
  d["f16c"] = f.f16c;
  d["neon"] = f.neon;
  d["forced_scalar"] = f.forced_scalar;
  d["arch"] = f.arch;
  return d;
}

py::array decode_tensor(const SeedFile& file, const std::string& name, const std::string& impl) {
  const seedcore::Isa isa = seedcore::resolve_impl(impl);
  const size_t index = file.index_of(name);
  py::array out = empty_array_for(file.tensors()[index].spec);
  void* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    file.decode_into(index, dst, isa);
  }
  return out;
}

py::dict decode_all(const SeedFile& file, unsigned threads, const std::string& impl) {
  const seedcore::Isa isa = seedcore::resolve_impl(impl);
  const auto& tensors = file.tensors();
  std::vector<py::array> arrays;
  std::vector<size_t> indices;
  std::vector<void*> outs;
  arrays.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    arrays.push_back(empty_array_for(tensors[i].spec));
    indices.push_back(i);
    outs.push_back(arrays.back().mutable_data());
  }
  {
    py::gil_scoped_release release;
    file.decode_many(indices, outs, threads, isa);
  }
  py::dict result;  // insertion order = file order
  for (size_t i = 0; i < tensors.size(); ++i) result[py::str(tensors[i].name)] = arrays[i];
  return result;
}

std::vector<uint64_t> shape_from_python(const py::sequence& shape) {
  std::vector<uint64_t> dims;
  if (shape.size() > 8)
    throw SeedError("<payload>: shape has " + std::to_string(shape.size()) + " dimensions (at most 8)");
  for (const py::handle& item : shape) {
    if (!py::isinstance<py::int_>(item) || py::isinstance<py::bool_>(item))
      throw SeedError("<payload>: shape holds a dimension that is not an integer");
    const py::int_ v = py::reinterpret_borrow<py::int_>(item);
    if (v < py::int_(0) || v >= py::int_(uint64_t(1) << 32))
      throw SeedError("<payload>: shape dimension " + std::string(py::str(v)) + " is outside 0..2^32-1");
    dims.push_back(v.cast<uint64_t>());
  }
  return dims;
}

py::array decode_payload(const std::string& codec, const std::string& params_json, const py::sequence& shape,
                         const std::string& dtype, const py::object& payload, const std::string& impl,
                         const py::object& out) {
  const std::string where = "<payload>";
  const seedcore::Isa isa = seedcore::resolve_impl(impl);
  const seedcore::JsonDocument doc = seedcore::JsonDocument::parse(params_json, where + ": params");
  std::vector<uint64_t> dims = shape_from_python(shape);
  const seedcore::TensorSpec spec = seedcore::make_tensor_spec(std::move(dims), dtype, codec, doc, doc.root(), where);
  ByteView bytes(payload);
  const uint64_t expected = seedcore::expected_payload_length(spec);
  if (bytes.size() != expected)
    throw SeedError(seedcore::tensor_context(where, spec) + ": payload length " + std::to_string(bytes.size()) +
                    " does not match the " + std::to_string(expected) + " bytes that shape " +
                    spec.shape_string() + " needs");
  py::array result;
  if (out.is_none()) {
    const uint64_t limit = seedcore::physical_memory_bytes();
    if (spec.decoded_bytes() > limit)
      throw SeedError(seedcore::tensor_context(where, spec) + ": decodes to " + std::to_string(spec.decoded_bytes()) +
                      " bytes, more than the " + std::to_string(limit) + " bytes of physical memory");
    result = empty_array_for(spec);
  } else {
    if (!py::isinstance<py::array>(out)) throw SeedError(where + ": out must be a numpy array");
    result = py::reinterpret_borrow<py::array>(out);
    const py::dtype want = numpy_dtype(spec.decoded_dtype());
    if (!result.dtype().is(want) && !result.dtype().equal(want))
      throw SeedError(where + ": out has dtype " + std::string(py::str(result.dtype())) + ", expected " +
                      std::string(py::str(want)));
    const int flags = py::detail::array_proxy(result.ptr())->flags;
    if (!(flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_) || !(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_) ||
        !result.writeable())
      throw SeedError(where + ": out must be a writeable, aligned, C-contiguous array");
    if (uint64_t(result.size()) != spec.n)
      throw SeedError(where + ": out has " + std::to_string(result.size()) + " elements, expected " +
                      std::to_string(spec.n));
  }
  void* dst = result.mutable_data();
  {
    py::gil_scoped_release release;
    seedcore::decode_payload(spec, bytes.data(), bytes.size(), dst, isa, where);
  }
  return result;
}

// Median seconds of memset over one nbytes buffer (after a warm-up pass that also
// faults the pages in): the bandwidth reference benchmarks divide by.
double bench_memset(uint64_t nbytes, int repeats) {
  if (nbytes == 0 || repeats <= 0) throw SeedError("bench_memset: nbytes and repeats must be positive");
  std::unique_ptr<unsigned char[]> buf(new unsigned char[size_t(nbytes)]);
  std::vector<double> times;
  for (int r = -1; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memset(buf.get(), r & 0x7F, size_t(nbytes));
    // Keep the compiler from eliding a memset whose result is never read.
    __asm__ __volatile__("" : : "r"(buf.get()) : "memory");
    const auto t1 = std::chrono::steady_clock::now();
    if (r >= 0) times.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  std::sort(times.begin(), times.end());
  const size_t m = times.size();
  return m % 2 ? times[m / 2] : 0.5 * (times[m / 2 - 1] + times[m / 2]);
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "seedcore native core: .seed reader, verifier and decoders";

  // C++ SeedError → seedcore.errors.SeedError (imported when an error happens, so
  // the Python package may import this module first). Other std exceptions keep
  // pybind11's defaults (bad_alloc → MemoryError, ...).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const SeedError& e) {
      try {
        py::object cls = py::module_::import("seedcore.errors").attr("SeedError");
        PyErr_SetString(cls.ptr(), e.what());
      } catch (py::error_already_set&) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, e.what());
      }
    }
  });

  m.def("cpu_features", &cpu_features_dict,
        "What the CPU/build offers and which ISA decoding uses now ('isa').");

  py::class_<SeedFile, std::unique_ptr<SeedFile>>(m, "SeedFile")
      .def(py::init<const std::string&, uint64_t>(), py::arg("path"), py::arg("max_bytes") = 0,
           "Opens and validates header, metadata and tensor table (not payload CRCs).")
      .def_property_readonly("path", &SeedFile::path)
      .def_property_readonly("file_length", &SeedFile::file_length)
      .def_property_readonly("metadata_json", [](const SeedFile& f) {
        const std::string_view s = f.metadata_json();
        return py::str(s.data(), s.size());
      })
      .def_property_readonly("tensor_names", [](const SeedFile& f) {
        py::list names;
        for (const auto& t : f.tensors()) names.append(py::str(t.name));
        return names;
      })
      .def("verify", &SeedFile::verify, py::call_guard<py::gil_scoped_release>(),
           "Checks every payload's CRC-32 and decodability; raises SeedError on the first problem.")
      .def("decode", &decode_tensor, py::arg("name"), py::arg("impl") = "auto")
      .def("decode_all", &decode_all, py::arg("threads") = 0, py::arg("impl") = "auto")
      .def("close", &SeedFile::close, py::call_guard<py::gil_scoped_release>())
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](SeedFile& f, py::args) {
        py::gil_scoped_release release;
        f.close();
      });

  m.def("decode_payload", &decode_payload, py::arg("codec"), py::arg("params_json"), py::arg("shape"),
        py::arg("dtype"), py::arg("payload"), py::arg("impl") = "auto", py::arg("out") = py::none(),
        "Decodes one payload without a file, validating params and length like the reader.");
  m.def("bench_memset", [](uint64_t nbytes, int repeats) {
    py::gil_scoped_release release;
    return bench_memset(nbytes, repeats);
  }, py::arg("nbytes"), py::arg("repeats"));

  seedcore_py::bind_encode(m);
  seedcore_py::bind_graph(m);
}

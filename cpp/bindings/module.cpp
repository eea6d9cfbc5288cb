// seedcore._native: a thin pybind11 layer over the core. Decoding and verification
// release the GIL; decoded tensors are written straight into numpy arrays (views
// into one huge-page arena per decode call, or the caller's `out`), with no copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "anneal.h"
#include "encode.h"
#include "graph.h"
#include "train.h"
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

// One anonymous mapping that holds every tensor a decode call returns, each 64-byte
// aligned inside it. Numpy asks for transparent huge pages only for arrays of 4 MiB
// or more and its buffers are not 2 MiB aligned, so about half of MiniLM's output was
// mapped 4 KiB at a time, page fault by page fault. An arena of 2 MiB or more is
// therefore 2 MiB aligned, a multiple of 2 MiB long and advised for huge pages (THP
// is often in `madvise` mode); a smaller one is plain pages (a huge page would zero
// 2 MiB for a few bytes). Nothing is touched here: the decoding threads fault the
// pages in, each the pages it writes. munmap on destruction returns the memory.
class DecodeArena {
 public:
  static constexpr uint64_t kHugePage = uint64_t(2) << 20;

  explicit DecodeArena(uint64_t bytes) {
    const bool huge = bytes >= kHugePage;
    const uint64_t align = huge ? kHugePage : 4096;
    length_ = size_t((std::max<uint64_t>(bytes, 1) + align - 1) & ~(align - 1));
    // Over-map by one alignment unit, then unmap the unaligned head and the tail.
    const size_t mapped = length_ + size_t(huge ? kHugePage : 0);
    void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    uint8_t* raw = static_cast<uint8_t*>(p);
    uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw) + align - 1) & ~uintptr_t(align - 1));
    if (base > raw) ::munmap(raw, size_t(base - raw));
    if (raw + mapped > base + length_) ::munmap(base + length_, size_t(raw + mapped - (base + length_)));
    base_ = base;
#if defined(MADV_HUGEPAGE)
    // A hint: without THP support (or with THP off) the pages are simply 4 KiB.
    if (huge) (void)::madvise(base_, length_, MADV_HUGEPAGE);
#endif
  }
  ~DecodeArena() { ::munmap(base_, length_); }
  DecodeArena(const DecodeArena&) = delete;
  DecodeArena& operator=(const DecodeArena&) = delete;

  uint8_t* data() const { return base_; }

 private:
  uint8_t* base_ = nullptr;
  size_t length_ = 0;
};

// Numpy arrays for tensors[indices[i]], views into one new DecodeArena (outs[i] =
// each array's data). The arena belongs to a capsule that every array holds as its
// base, so it is unmapped when the last of the arrays is gone. The arrays are
// writeable and C-contiguous, like arrays numpy allocates.
std::vector<py::array> arena_arrays(const SeedFile& file, const std::vector<size_t>& indices,
                                    std::vector<void*>& outs) {
  const auto& tensors = file.tensors();
  std::vector<uint64_t> offsets;
  offsets.reserve(indices.size());
  uint64_t total = 0;
  for (size_t index : indices) {
    offsets.push_back(total);
    total += (tensors.at(index).spec.decoded_bytes() + 63) & ~uint64_t(63);
  }
  std::unique_ptr<DecodeArena> arena(new DecodeArena(total));
  uint8_t* base = arena->data();
  py::capsule owner(arena.get(), [](void* p) { delete static_cast<DecodeArena*>(p); });
  arena.release();
  std::vector<py::array> arrays;
  arrays.reserve(indices.size());
  outs.clear();
  for (size_t i = 0; i < indices.size(); ++i) {
    const seedcore::TensorSpec& spec = tensors[indices[i]].spec;
    void* ptr = base + offsets[i];
    arrays.emplace_back(numpy_dtype(spec.decoded_dtype()), numpy_shape(spec), ptr, owner);
    outs.push_back(ptr);
  }
  return arrays;
}

py::array decode_tensor(const SeedFile& file, const std::string& name, const std::string& impl) {
  const seedcore::Isa isa = seedcore::resolve_impl(impl);
  const size_t index = file.index_of(name);
  std::vector<void*> outs;
  py::array out = arena_arrays(file, {index}, outs)[0];
  {
    py::gil_scoped_release release;
    file.decode_into(index, outs[0], isa);
  }
  return out;
}

py::dict decode_all(const SeedFile& file, unsigned threads, const std::string& impl) {
  const seedcore::Isa isa = seedcore::resolve_impl(impl);
  const auto& tensors = file.tensors();
  std::vector<size_t> indices(tensors.size());
  for (size_t i = 0; i < indices.size(); ++i) indices[i] = i;
  std::vector<void*> outs;
  const std::vector<py::array> arrays = arena_arrays(file, indices, outs);
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

// `out` as the array a tensor of `spec` decodes into: a writeable, aligned,
// C-contiguous numpy array of its decoded dtype and element count (any shape).
py::array checked_out_array(const py::object& out, const seedcore::TensorSpec& spec, const std::string& where) {
  if (!py::isinstance<py::array>(out)) throw SeedError(where + ": out must be a numpy array");
  py::array result = py::reinterpret_borrow<py::array>(out);
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
  return result;
}

// Decodes one tensor into the caller's array (bounded-RAM assembly reuses one buffer
// tensor after tensor) on up to `threads` threads; the payload's pages are released
// from RSS afterwards (SeedFile::release_payload).
void decode_tensor_into(const SeedFile& file, const std::string& name, const py::object& out, unsigned threads,
                        const std::string& impl) {
  const seedcore::Isa isa = seedcore::resolve_impl(impl);
  const size_t index = file.index_of(name);
  const seedcore::TensorSpec& spec = file.tensors()[index].spec;
  py::array target = checked_out_array(out, spec, file.path() + ": tensor '" + name + "'");
  void* dst = target.mutable_data();
  py::gil_scoped_release release;
  file.decode_many({index}, {dst}, threads, isa);
}

// Name, shape, decoded dtype and decoded bytes of every tensor, in file order: what a
// streaming writer needs before decoding anything.
py::list tensor_specs(const SeedFile& file) {
  py::list result;
  for (const seedcore::TensorEntry& e : file.tensors()) {
    py::dict d;
    d["name"] = e.name;
    d["shape"] = py::tuple(py::cast(numpy_shape(e.spec)));
    d["dtype"] = py::str(numpy_dtype(e.spec.decoded_dtype()));
    d["nbytes"] = e.spec.decoded_bytes();
    d["payload_bytes"] = e.length;
    result.append(d);
  }
  return result;
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
    result = checked_out_array(out, spec, where);
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
      .def("decode_into", &decode_tensor_into, py::arg("name"), py::arg("out"), py::arg("threads") = 1,
           py::arg("impl") = "auto",
           "Decodes tensor `name` into `out` (its decoded dtype and element count, C-contiguous, "
           "writeable) on up to `threads` threads (0 = all cores), then drops its payload's pages from RSS")
      .def("release_payload", [](const SeedFile& f, const std::string& name) { f.release_payload(f.index_of(name)); },
           py::arg("name"), py::call_guard<py::gil_scoped_release>(),
           "Drops tensor `name`'s payload pages from resident memory (they stay in the page cache)")
      .def_property_readonly("tensor_specs", &tensor_specs)
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
  seedcore_py::bind_anneal(m);
  seedcore_py::bind_train(m);
}

// pybind11 entry points of the native encoders: the prng seed search (used by
// seedcore/codecs/prng.py) and the ecq entropy coder.
#include "encode.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../src/encode/ecq_encode.h"
#include "../src/encode/prng_search.h"

namespace py = pybind11;
namespace enc = seedcore::encode;

namespace seedcore_py {

namespace {

enc::ScanIsa pick_isa(const std::string& impl) {
    if (impl == "scalar") return enc::ScanIsa::scalar;
    if (impl == "avx2" || impl == "neon") {
        const enc::ScanIsa isa = impl == "avx2" ? enc::ScanIsa::avx2 : enc::ScanIsa::neon;
        if (!enc::scan_isa_available(isa))
            throw std::invalid_argument("prng_search: this CPU/build has no " + impl + " kernel");
        return isa;
    }
    if (impl != "auto") throw std::invalid_argument("prng_search: unknown impl '" + impl + "'");
    const char* force = std::getenv("SEEDCORE_FORCE_SCALAR");
    if (force && std::strcmp(force, "1") == 0) return enc::ScanIsa::scalar;
    if (enc::scan_isa_available(enc::ScanIsa::avx2)) return enc::ScanIsa::avx2;
    if (enc::scan_isa_available(enc::ScanIsa::neon)) return enc::ScanIsa::neon;
    return enc::ScanIsa::scalar;
}

template <typename T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

py::tuple prng_search(carray<float> w, carray<float> q, carray<std::int16_t> basis,
                      carray<double> pinv, int K, int exp_bias, int candidates,
                      const std::string& impl, int threads) {
    if (w.ndim() != 2) throw std::invalid_argument("prng_search: w must be (nblocks, C)");
    const int C = static_cast<int>(w.shape(1));
    if (basis.ndim() != 3 || basis.shape(1) != C)
        throw std::invalid_argument("prng_search: basis must be (num_seeds, C, P)");
    const int P = static_cast<int>(basis.shape(2));
    const std::size_t num_seeds = static_cast<std::size_t>(basis.shape(0));
    if (C < 1 || C > 64 || P < 1 || P > 8 || P > C || K < 8 || K > 16 ||
        num_seeds != (std::size_t{1} << K) - 1)
        throw std::invalid_argument("prng_search: unsupported C, P or K");
    if (q.ndim() != 3 || q.shape(1) != C * P || q.shape(2) != 8 ||
        q.shape(0) * 8 < static_cast<py::ssize_t>(num_seeds))
        throw std::invalid_argument("prng_search: q must be (ceil(num_seeds/8), C*P, 8)");
    if (pinv.ndim() != 3 || static_cast<std::size_t>(pinv.shape(0)) != num_seeds ||
        pinv.shape(1) != P || pinv.shape(2) != C)
        throw std::invalid_argument("prng_search: pinv must be (num_seeds, P, C)");
    const enc::ScanIsa isa = pick_isa(impl);
    enc::PrngTables t;
    t.C = C; t.P = P; t.K = K;
    t.num_seeds = num_seeds;
    t.q = q.data();
    t.q_stride = static_cast<std::size_t>(q.shape(0)) * 8;
    t.basis = basis.data();
    t.pinv = pinv.data();
    const std::size_t nb = static_cast<std::size_t>(w.shape(0));
    std::vector<enc::PrngBlockCode> codes(nb);
    {
        py::gil_scoped_release release;
        enc::prng_search(t, w.data(), nb, exp_bias, candidates, isa, threads, codes.data());
    }
    py::array_t<std::uint32_t> seeds(nb);
    py::array_t<std::uint8_t> exps(nb);
    py::array_t<std::int8_t> mants({static_cast<py::ssize_t>(nb), static_cast<py::ssize_t>(P)});
    py::array_t<double> errors(nb);
    py::array_t<std::uint32_t> evaluated(nb);
    auto s = seeds.mutable_unchecked<1>();
    auto e = exps.mutable_unchecked<1>();
    auto m = mants.mutable_unchecked<2>();
    auto r = errors.mutable_unchecked<1>();
    auto v = evaluated.mutable_unchecked<1>();
    for (std::size_t b = 0; b < nb; ++b) {
        s(b) = codes[b].seed;
        e(b) = codes[b].exponent;
        for (int j = 0; j < P; ++j) m(b, j) = codes[b].mantissa[j];
        r(b) = codes[b].error;
        v(b) = codes[b].evaluated;
    }
    return py::make_tuple(seeds, exps, mants, errors, evaluated);
}

py::bytes ecq_encode(carray<std::int32_t> codes, long long chunk) {
    if (codes.ndim() != 1) throw std::invalid_argument("ecq_encode: codes must be a 1-D array");
    if (chunk < 256 || chunk > (1LL << 20))
        throw std::invalid_argument("ecq_encode: chunk " + std::to_string(chunk) + " is outside [256, 2^20]");
    std::vector<std::uint8_t> payload;
    {
        py::gil_scoped_release release;
        payload = enc::ecq_encode(codes.data(), static_cast<std::size_t>(codes.shape(0)),
                                  static_cast<std::uint32_t>(chunk));
    }
    return py::bytes(reinterpret_cast<const char*>(payload.data()), payload.size());
}

}  // namespace

void bind_encode(py::module_& m) {
    m.def("prng_search", &prng_search, py::arg("w"), py::arg("q"), py::arg("basis"), py::arg("pinv"),
          py::arg("K"), py::arg("exp_bias"), py::arg("candidates") = 32, py::arg("impl") = "auto",
          py::arg("threads") = 0,
          "Exact prng seed search over all 2^K - 1 seeds for each block of w (nblocks x C).\n"
          "Returns (seeds, exponents E, mantissas, squared errors, candidates evaluated).");
    m.def("ecq_encode", &ecq_encode, py::arg("codes"), py::arg("chunk"),
          "The complete ecq payload (format.md 3.6) for the 1-D int32 codes, rANS-coded in\n"
          "chunks of `chunk` elements (256 .. 2^20): S, lo, frequencies, padding, chunk\n"
          "offsets, streams. ValueError when the codes span more than 32768 values or lie\n"
          "outside [-2^24, 2^24]. Deterministic.");
}

}  // namespace seedcore_py

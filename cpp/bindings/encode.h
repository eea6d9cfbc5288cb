// Bindings for the encoder-side accelerators (the prng seed search, the ecq coder).
// Owned by the encoder work; module.cpp only calls bind_encode().
#pragma once
#include <pybind11/pybind11.h>

namespace seedcore_py {
void bind_encode(pybind11::module_& m);
}

// Bindings for thermal annealing and the evolutionary search (seedcore._native.anneal).
// module.cpp only calls bind_anneal().
#pragma once
#include <pybind11/pybind11.h>

namespace seedcore_py {
void bind_anneal(pybind11::module_& m);
}

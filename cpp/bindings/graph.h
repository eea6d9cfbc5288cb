// Bindings for the native forward pass (seedcore._native.Graph). module.cpp only
// calls bind_graph().
#pragma once
#include <pybind11/pybind11.h>

namespace seedcore_py {
void bind_graph(pybind11::module_& m);
}

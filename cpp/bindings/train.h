// Bindings for on-device training (seedcore._native.Trainer). module.cpp only calls
// bind_train().
#pragma once
#include <pybind11/pybind11.h>

namespace seedcore_py {
void bind_train(pybind11::module_& m);
}

// The one error type of the seedcore core. Every refusal (bad file, bad payload,
// unsupported request) is a SeedError whose message names the file, the part of it
// and what is wrong; the Python bindings turn it into seedcore.errors.SeedError.
#pragma once
#include <stdexcept>
#include <string>

namespace seedcore {

class SeedError : public std::runtime_error {
 public:
  explicit SeedError(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace seedcore

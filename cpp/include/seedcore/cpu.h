// Which instruction sets decoding can use, and how a caller's `impl` string maps
// onto one. x86_64 decides at run time (cpuid + xgetbv); aarch64 at compile time
// (NEON is baseline in ARMv8). SEEDCORE_FORCE_SCALAR=1 forces the scalar kernels.
#pragma once
#include <string>

namespace seedcore {

enum class Isa { scalar, avx2, neon };

struct CpuFeatures {
  bool avx2 = false;  // AVX2 usable: CPU has it and the OS saves YMM state
  bool fma = false;
  bool f16c = false;
  bool neon = false;
  bool forced_scalar = false;  // SEEDCORE_FORCE_SCALAR is set to a true value
  const char* arch = "other";  // "x86_64", "aarch64" or "other"
};

// Detected once (thread-safe static); the environment variable is read then too.
const CpuFeatures& cpu_features();

const char* isa_name(Isa isa);

// True when this build has kernels for `isa` and this CPU can run them.
bool isa_available(Isa isa);

// The ISA "auto" means now: the best available one, or scalar when forced.
Isa auto_isa();

// Maps "auto" | "scalar" | "avx2" | "neon" to an Isa; throws SeedError for an unknown
// name or for an ISA this CPU/build lacks.
Isa resolve_impl(const std::string& impl);

}  // namespace seedcore

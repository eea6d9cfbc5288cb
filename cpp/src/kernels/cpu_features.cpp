// CPU feature detection and the mapping of `impl` names to kernel sets.
#include "seedcore/cpu.h"

#include <cstdlib>
#include <cstring>

#include "seedcore/error.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define SEEDCORE_ARCH_X86_64 1
#elif defined(__aarch64__)
#define SEEDCORE_ARCH_AARCH64 1
#endif

namespace seedcore {
namespace {

bool env_forces_scalar() {
  const char* v = std::getenv("SEEDCORE_FORCE_SCALAR");
  if (v == nullptr || *v == '\0') return false;
  // "0", "false", "no", "off" leave SIMD on; anything else forces scalar.
  for (const char* off : {"0", "false", "False", "FALSE", "no", "off", "OFF"})
    if (std::strcmp(v, off) == 0) return false;
  return true;
}

#if defined(SEEDCORE_ARCH_X86_64)
// AVX2 needs the CPU bit *and* the OS saving YMM state on context switches
// (XCR0 bits 1 and 2), otherwise the first ymm instruction faults.
void detect_x86(CpuFeatures& f) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return;
  const bool osxsave = (c & bit_OSXSAVE) != 0;
  const bool avx = (c & bit_AVX) != 0;
  const bool fma = (c & bit_FMA) != 0;
  const bool f16c = (c & bit_F16C) != 0;
  bool ymm_state = false;
  if (osxsave) {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    ymm_state = (lo & 0x6u) == 0x6u;
  }
  bool avx2 = false;
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    avx2 = (b & bit_AVX2) != 0;
  }
  const bool os_ok = osxsave && avx && ymm_state;
  f.avx2 = os_ok && avx2;
  f.fma = os_ok && fma;
  f.f16c = os_ok && f16c;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(SEEDCORE_ARCH_X86_64)
  f.arch = "x86_64";
  detect_x86(f);
#elif defined(SEEDCORE_ARCH_AARCH64)
  f.arch = "aarch64";
  f.neon = true;
#endif
  f.forced_scalar = env_forces_scalar();
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::neon: return "neon";
  }
  return "scalar";
}

bool isa_available(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::scalar: return true;
#if defined(SEEDCORE_ARCH_X86_64)
    // The AVX2 kernels also use FMA-free F16C conversions, so they need all three.
    case Isa::avx2: return f.avx2 && f.f16c;
#else
    case Isa::avx2: return false;
#endif
#if defined(SEEDCORE_ARCH_AARCH64)
    case Isa::neon: return f.neon;
#else
    case Isa::neon: return false;
#endif
  }
  return false;
}

Isa auto_isa() {
  if (cpu_features().forced_scalar) return Isa::scalar;
  if (isa_available(Isa::avx2)) return Isa::avx2;
  if (isa_available(Isa::neon)) return Isa::neon;
  return Isa::scalar;
}

Isa resolve_impl(const std::string& impl) {
  if (impl == "auto") return auto_isa();
  Isa isa;
  if (impl == "scalar") isa = Isa::scalar;
  else if (impl == "avx2") isa = Isa::avx2;
  else if (impl == "neon") isa = Isa::neon;
  else throw SeedError("impl '" + impl + "' is unknown (expected auto, scalar, avx2 or neon)");
  if (!isa_available(isa))
    throw SeedError(std::string("impl '") + impl + "' is not available on this " +
                    cpu_features().arch + " CPU/build");
  return isa;
}

}  // namespace seedcore

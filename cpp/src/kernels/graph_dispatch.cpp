// One GraphKernels table per ISA compiled into this build.
#include "graph_kernel_decls.h"
#include "seedcore/error.h"

namespace seedcore {
namespace {
const GraphKernels kScalar{Isa::scalar, kScalarMr, kScalarNr, gemm_micro_scalar, depthwise3x3_scalar};
#if defined(__x86_64__)
const GraphKernels kAvx2{Isa::avx2, kAvx2Mr, kAvx2Nr, gemm_micro_avx2, depthwise3x3_avx2};
#endif
#if defined(__aarch64__)
const GraphKernels kNeon{Isa::neon, kNeonMr, kNeonNr, gemm_micro_neon, depthwise3x3_neon};
#endif
}  // namespace

const GraphKernels& graph_kernels(Isa isa) {
  switch (isa) {
    case Isa::scalar: return kScalar;
#if defined(__x86_64__)
    case Isa::avx2:
      // The micro-kernel uses FMA instructions on top of AVX2.
      if (isa_available(Isa::avx2) && cpu_features().fma) return kAvx2;
      break;
#endif
#if defined(__aarch64__)
    case Isa::neon:
      if (isa_available(Isa::neon)) return kNeon;
      break;
#endif
    default: break;
  }
  throw SeedError(std::string("no ") + isa_name(isa) + " forward-pass kernels in this build/CPU");
}

}  // namespace seedcore

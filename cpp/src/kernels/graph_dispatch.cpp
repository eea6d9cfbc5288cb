// One GraphKernels table per ISA compiled into this build.
#include "graph_kernel_decls.h"
#include "seedcore/error.h"

namespace seedcore {
namespace {
const GraphKernels kScalar{Isa::scalar, kScalarMr, kScalarNr, kScalarKc, gemm_micro_scalar, gemm_micro_rows_scalar, gemm_micro_cols_scalar, gemm_pack_bt_scalar, depthwise3x3_scalar, nullptr, false,
                          gelu_erf_scalar, softmax_row_scalar, layer_norm_row_scalar};
#if defined(__x86_64__)
const GraphKernels kAvx2{Isa::avx2, kAvx2Mr, kAvx2Nr, kAvx2Kc, gemm_micro_avx2, gemm_micro_rows_avx2, gemm_micro_cols_avx2, gemm_pack_bt_avx2, depthwise3x3_avx2, depthwise3x3_plane_avx2, false,
                        gelu_erf_avx2, softmax_row_avx2, layer_norm_row_avx2};
const GraphKernels kAvx512{Isa::avx2, kAvx512Mr, kAvx512Nr, kAvx512Kc, gemm_micro_avx512, gemm_micro_rows_avx512, gemm_micro_cols_avx512, gemm_pack_bt_avx2, depthwise3x3_avx512, depthwise3x3_plane_avx512, true,
                          gelu_erf_avx2, softmax_row_avx2, layer_norm_row_avx2};

// cpuid + XCR0 (libgcc checks that the OS saves opmask and ZMM state).
bool avx512_usable() {
  static const bool usable = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return usable;
}
#endif
#if defined(__aarch64__)
const GraphKernels kNeon{Isa::neon, kNeonMr, kNeonNr, kNeonKc, gemm_micro_neon, gemm_micro_rows_neon, gemm_micro_cols_neon, gemm_pack_bt_neon, depthwise3x3_neon, nullptr, false,
                        gelu_erf_neon, softmax_row_neon, layer_norm_row_neon};
#endif
}  // namespace

const GraphKernels& graph_kernels(Isa isa, bool allow_avx512) {
  (void)allow_avx512;
  switch (isa) {
    case Isa::scalar: return kScalar;
#if defined(__x86_64__)
    case Isa::avx2:
      // The micro-kernels use FMA instructions on top of AVX2.
      if (isa_available(Isa::avx2) && cpu_features().fma) return allow_avx512 && avx512_usable() ? kAvx512 : kAvx2;
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

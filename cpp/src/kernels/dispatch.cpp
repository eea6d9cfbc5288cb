// One DecodeKernels table per ISA compiled into this build.
#include "kernel_decls.h"
#include "seedcore/error.h"

namespace seedcore {
namespace {

#define SEEDCORE_KERNEL_TABLE(isa_id, uses_tables, layout)                                   \
  DecodeKernels{Isa::isa_id,                                                                  \
                convert_f16_to_f32_##isa_id,                                                  \
                convert_bf16_to_f32_##isa_id,                                                 \
                dequantize_q8_blocks_##isa_id,                                                \
                dequantize_q4_blocks_##isa_id,                                                \
                decode_prng_blocks_##isa_id,                                                  \
                uses_tables,                                                                  \
                layout,                                                                       \
                stats_gauss_run_##isa_id,                                                     \
                generate_stats_tile_##isa_id,                                                 \
                stream_copy_f32_##isa_id}

const DecodeKernels kScalarKernels =
    SEEDCORE_KERNEL_TABLE(scalar, false, PrngBasisLayout::madd_pairs);
#if defined(__x86_64__)
const DecodeKernels kAvx2Kernels = SEEDCORE_KERNEL_TABLE(avx2, true, PrngBasisLayout::madd_pairs);
#endif
#if defined(__aarch64__)
const DecodeKernels kNeonKernels = SEEDCORE_KERNEL_TABLE(neon, true, PrngBasisLayout::columns);
#endif

}  // namespace

const DecodeKernels& decode_kernels(Isa isa) {
  switch (isa) {
    case Isa::scalar: return kScalarKernels;
#if defined(__x86_64__)
    case Isa::avx2: return kAvx2Kernels;
#endif
#if defined(__aarch64__)
    case Isa::neon: return kNeonKernels;
#endif
    default: break;
  }
  throw SeedError(std::string("no ") + isa_name(isa) + " kernels in this build");
}

}  // namespace seedcore

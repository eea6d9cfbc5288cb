// q8 / q4: 32-element blocks with one binary16 scale (format.md 3.2, 3.3; the ggml
// Q8_0 / Q4_0 layouts, except that all scales come first).
#include "codec_traits.h"
#include "seedcore/error.h"

namespace seedcore {
namespace {

void parse_block_params(TensorSpec& spec, const JsonDocument& doc, uint32_t params, const std::string& ctx) {
  require_exact_keys(doc, params, {"block"}, ctx);
  spec.block = uint32_t(require_int_param(doc, params, "block", 32, 32, ctx));
}

uint64_t block_count(const TensorSpec& spec) { return (spec.n + 31) / 32; }
uint64_t q8_expected_length(const TensorSpec& spec) { return 34 * block_count(spec); }
uint64_t q4_expected_length(const TensorSpec& spec) { return 18 * block_count(spec); }

// Scales must be finite: inf x 0 would give a NaN whose bits differ between x86
// and ARM, so such a file could not decode to the same tensor everywhere.
void check_block_payload(const TensorSpec& spec, const uint8_t* payload, const std::string& ctx) {
  const uint64_t nb = block_count(spec);
  for (uint64_t b = 0; b < nb; ++b) {
    const unsigned h = unsigned(payload[2 * b]) | (unsigned(payload[2 * b + 1]) << 8);
    if ((h & 0x7C00u) == 0x7C00u)
      throw SeedError(ctx + ": block " + std::to_string(b) + " has a scale that is not finite");
  }
}

uint64_t block_elems_32(const TensorSpec&) { return 32; }

using BlockKernel = void (*)(const uint8_t* scales, const uint8_t* quants, size_t nblocks, float* dst);

// Scales first, then `quant_bytes` per block. Full blocks go straight to the kernel;
// a partial last block is decoded into a 32-float temporary and its first n mod 32
// values copied out (decode_float_blocks).
void decode_blockq_range(const RangeDecodePlan& plan, uint64_t first, uint64_t count, void* out,
                         BlockKernel kernel, size_t quant_bytes) {
  const uint8_t* scales = plan.payload;
  const uint8_t* quants = plan.payload + 2 * plan.blocks;
  decode_float_blocks(plan, first, count, out, [&](uint64_t b, uint64_t c, float* d) {
    kernel(scales + 2 * b, quants + quant_bytes * b, size_t(c), d);
  });
}
void decode_q8_range(const RangeDecodePlan& plan, uint64_t first, uint64_t count, void* out) {
  decode_blockq_range(plan, first, count, out, plan.kernels->dequantize_q8_blocks, 32);
}
void decode_q4_range(const RangeDecodePlan& plan, uint64_t first, uint64_t count, void* out) {
  decode_blockq_range(plan, first, count, out, plan.kernels->dequantize_q4_blocks, 16);
}

}  // namespace

const CodecTraits kQ8Codec = {Codec::q8, "q8", parse_block_params, q8_expected_length,
                              check_block_payload, block_elems_32, nullptr, decode_q8_range, nullptr};
const CodecTraits kQ4Codec = {Codec::q4, "q4", parse_block_params, q4_expected_length,
                              check_block_payload, block_elems_32, nullptr, decode_q4_range, nullptr};

}  // namespace seedcore

// raw: values stored as they are (format.md 3.1). Floating storages decode to
// binary32; integer and bool storages are copied as their own dtype.
#include <cstring>

#include "codec_traits.h"
#include "seedcore/error.h"

namespace seedcore {
namespace {

void parse_raw_params(TensorSpec& spec, const JsonDocument& doc, uint32_t params, const std::string& ctx) {
  require_exact_keys(doc, params, {"storage"}, ctx);
  const uint32_t s = doc.find(params, "storage");
  if (doc.kind(s) != JsonDocument::Kind::string)
    throw SeedError(ctx + ": params.storage must be a string");
  const std::string storage(doc.string_value(s));
  Dtype st;
  if (!parse_dtype(storage, st)) throw SeedError(ctx + ": params.storage '" + storage + "' is unknown");
  if (is_float_dtype(spec.dtype)) {
    if (st != Dtype::float32 && st != Dtype::float16 && st != Dtype::bfloat16)
      throw SeedError(ctx + ": params.storage must be float32, float16 or bfloat16 for dtype " +
                      dtype_name(spec.dtype) + ", not '" + storage + "'");
  } else if (st != spec.dtype) {
    throw SeedError(ctx + ": params.storage must equal dtype " + dtype_name(spec.dtype) + ", not '" +
                    storage + "'");
  }
  spec.storage = st;
}

uint64_t raw_expected_length(const TensorSpec& spec) { return spec.n * dtype_itemsize(spec.storage); }

void check_raw_payload(const TensorSpec& spec, const uint8_t* payload, const std::string& ctx) {
  if (spec.storage != Dtype::boolean) return;
  for (uint64_t i = 0; i < spec.n; ++i)
    if (payload[i] > 1)
      throw SeedError(ctx + ": bool element " + std::to_string(i) + " is " + std::to_string(payload[i]) +
                      " (must be 0 or 1)");
}

uint64_t raw_block_elems(const TensorSpec&) { return 1; }

void decode_raw_range(const RangeDecodePlan& plan, uint64_t first, uint64_t count, void* out) {
  const uint8_t* payload = plan.payload;
  const DecodeKernels& k = *plan.kernels;
  float* dst = static_cast<float*>(out);
  switch (plan.spec->storage) {
    case Dtype::float16:
      produce_float_items(plan, first, count, 1, dst, [&](uint64_t e, uint64_t c, float* d) {
        k.convert_f16_to_f32(payload + 2 * e, size_t(c), d);
      });
      return;
    case Dtype::bfloat16:
      produce_float_items(plan, first, count, 1, dst, [&](uint64_t e, uint64_t c, float* d) {
        k.convert_bf16_to_f32(payload + 2 * e, size_t(c), d);
      });
      return;
    default: {
      // float32 and every integer storage: the payload bytes are the decoded bytes
      // (both supported architectures are little-endian).
      const size_t item = dtype_itemsize(plan.spec->storage);
      std::memcpy(static_cast<uint8_t*>(out) + first * item, payload + first * item, size_t(count * item));
      return;
    }
  }
}

}  // namespace

const CodecTraits kRawCodec = {Codec::raw, "raw", parse_raw_params, raw_expected_length,
                               check_raw_payload, raw_block_elems, nullptr, decode_raw_range, nullptr};

}  // namespace seedcore

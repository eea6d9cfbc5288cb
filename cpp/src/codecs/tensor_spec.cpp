// Names, element counts, and the codec-independent part of tensor entry validation.
#include "seedcore/tensor_spec.h"

#include <cstring>

#include "codec_traits.h"
#include "seedcore/error.h"

namespace seedcore {
namespace {

struct DtypeInfo { Dtype dtype; const char* name; size_t itemsize; bool is_float; };
constexpr DtypeInfo kDtypes[] = {
    {Dtype::float32, "float32", 4, true}, {Dtype::float16, "float16", 2, true},
    {Dtype::bfloat16, "bfloat16", 2, true}, {Dtype::float64, "float64", 8, true},
    {Dtype::int64, "int64", 8, false},    {Dtype::int32, "int32", 4, false},
    {Dtype::int16, "int16", 2, false},    {Dtype::int8, "int8", 1, false},
    {Dtype::uint8, "uint8", 1, false},    {Dtype::boolean, "bool", 1, false},
};
constexpr const char* kCodecNames[] = {"raw", "q8", "q4", "prng", "stats", "ecq"};

}  // namespace

const char* dtype_name(Dtype d) { return kDtypes[size_t(d)].name; }
size_t dtype_itemsize(Dtype d) { return kDtypes[size_t(d)].itemsize; }
bool is_float_dtype(Dtype d) { return kDtypes[size_t(d)].is_float; }
const char* codec_name(Codec c) { return kCodecNames[size_t(c)]; }

bool parse_dtype(const std::string& s, Dtype& out) {
  for (const DtypeInfo& info : kDtypes)
    if (s == info.name) { out = info.dtype; return true; }
  return false;
}

bool parse_codec(const std::string& s, Codec& out) {
  for (size_t i = 0; i < sizeof(kCodecNames) / sizeof(kCodecNames[0]); ++i)
    if (s == kCodecNames[i]) { out = Codec(i); return true; }
  return false;
}

std::string TensorSpec::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

uint64_t checked_element_count(const std::vector<uint64_t>& shape, const std::string& where) {
  if (shape.size() > 8)
    throw SeedError(where + ": shape has " + std::to_string(shape.size()) + " dimensions (at most 8)");
  bool empty = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] >= (uint64_t(1) << 32))
      throw SeedError(where + ": shape dimension " + std::to_string(i) + " is " +
                      std::to_string(shape[i]) + " (must be < 2^32)");
    empty |= shape[i] == 0;
  }
  if (empty) return 0;  // the limit is on n itself, not on partial products
  uint64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    n *= shape[i];  // both factors < 2^32: no overflow in 64 bits
    if (n >= (uint64_t(1) << 32))
      throw SeedError(where + ": shape has 2^32 or more elements (n must be < 2^32)");
  }
  return n;
}

std::string tensor_context(const std::string& where, const TensorSpec& spec) {
  return where + " (codec " + codec_name(spec.codec) + ")";
}

TensorSpec make_tensor_spec(std::vector<uint64_t> shape, const std::string& dtype,
                            const std::string& codec, const JsonDocument& doc, uint32_t params,
                            const std::string& where) {
  TensorSpec spec;
  spec.n = checked_element_count(shape, where);
  spec.shape = std::move(shape);
  if (!parse_dtype(dtype, spec.dtype))
    throw SeedError(where + ": dtype '" + dtype + "' is unknown");
  if (!parse_codec(codec, spec.codec))
    throw SeedError(where + ": codec '" + codec + "' is unknown");
  const std::string ctx = tensor_context(where, spec);
  if (!is_float_dtype(spec.dtype) && spec.codec != Codec::raw)
    throw SeedError(ctx + ": dtype " + dtype + " must use the raw codec");
  if (doc.kind(params) != JsonDocument::Kind::object)
    throw SeedError(ctx + ": params must be an object, not " + json_kind_name(doc.kind(params)));
  codec_traits(spec.codec).parse_params(spec, doc, params, ctx);
  return spec;
}

uint64_t expected_payload_length(const TensorSpec& spec) {
  return codec_traits(spec.codec).expected_length(spec);
}

void check_payload_decodable(const TensorSpec& spec, const uint8_t* payload, const std::string& where) {
  codec_traits(spec.codec).check_payload(spec, payload, tensor_context(where, spec));
}

void check_payload_fully(const TensorSpec& spec, const uint8_t* payload, const std::string& where) {
  const CodecTraits& traits = codec_traits(spec.codec);
  const std::string ctx = tensor_context(where, spec);
  traits.check_payload(spec, payload, ctx);
  if (traits.check_decoding != nullptr) traits.check_decoding(spec, payload, ctx);
}

RangeDecodePlan plan_range_decode(const TensorSpec& spec, const uint8_t* payload, Isa isa, const std::string& where,
                                  PrngTableCache* tables) {
  const CodecTraits& traits = codec_traits(spec.codec);
  RangeDecodePlan plan;
  plan.spec = &spec;
  plan.payload = payload;
  plan.ctx = tensor_context(where, spec);
  plan.table_cache = tables;
  plan.kernels = &decode_kernels(isa);
  plan.block_elems = traits.block_elems(spec);
  plan.blocks = spec.n == 0 ? 0 : (spec.n + plan.block_elems - 1) / plan.block_elems;
  plan.stream = is_float_dtype(spec.dtype) && plan.kernels->isa != Isa::scalar &&
                spec.decoded_bytes() >= kStreamingMinBytes;
  if (traits.prepare != nullptr && plan.blocks != 0) traits.prepare(plan);
  return plan;
}

void decode_checked_payload(const TensorSpec& spec, const uint8_t* payload, void* out, Isa isa,
                            const std::string& where) {
  if (spec.n == 0) return;
  const RangeDecodePlan plan = plan_range_decode(spec, payload, isa, where);
  codec_traits(spec.codec).decode_range(plan, 0, plan.blocks, out);
}

void decode_payload(const TensorSpec& spec, const uint8_t* payload, uint64_t payload_length,
                    void* out, Isa isa, const std::string& where) {
  const uint64_t expected = expected_payload_length(spec);
  if (payload_length != expected)
    throw SeedError(tensor_context(where, spec) + ": payload length " + std::to_string(payload_length) +
                    " does not match the " + std::to_string(expected) + " bytes that shape " +
                    spec.shape_string() + " needs");
  check_payload_decodable(spec, payload, where);
  decode_checked_payload(spec, payload, out, isa, where);
}

// --- helpers for the codec files ---

void require_exact_keys(const JsonDocument& doc, uint32_t params, std::initializer_list<const char*> keys,
                        const std::string& ctx) {
  for (uint32_t m = doc.node(params).first; m != JsonDocument::kNone; m = doc.node(m).next) {
    bool known = false;
    for (const char* k : keys) known = known || doc.key(m) == k;
    if (!known) throw SeedError(ctx + ": params has unknown key '" + std::string(doc.key(m)) + "'");
  }
  for (const char* k : keys)
    if (doc.find(params, k) == JsonDocument::kNone)
      throw SeedError(ctx + ": params lacks key '" + k + "'");
}

int64_t require_int_param(const JsonDocument& doc, uint32_t params, const char* key, int64_t lo,
                          int64_t hi, const std::string& ctx) {
  int64_t v = 0;
  if (!doc.integer_in(doc.find(params, key), lo, hi, v))
    throw SeedError(ctx + ": params." + key + " must be an integer in [" + std::to_string(lo) + ", " +
                    std::to_string(hi) + "]");
  return v;
}

const CodecTraits& codec_traits(Codec codec) {
  switch (codec) {
    case Codec::raw: return kRawCodec;
    case Codec::q8: return kQ8Codec;
    case Codec::q4: return kQ4Codec;
    case Codec::prng: return kPrngCodec;
    case Codec::stats: return kStatsCodec;
    case Codec::ecq: return kEcqCodec;
  }
  return kRawCodec;
}

}  // namespace seedcore

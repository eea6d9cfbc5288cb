// One traits entry per codec (ggml-style): how to read its params, how long its
// payload must be, which payload rules need the bytes, and how to decode it.
// Adding a codec = one new file in cpp/src/codecs/ + one line in codec_table.cpp.
#pragma once
#include <cstdint>
#include <algorithm>
#include <initializer_list>
#include <string>

#include "seedcore/kernels.h"
#include "seedcore/tensor_spec.h"

namespace seedcore {

struct CodecTraits {
  Codec codec;
  const char* name;
  // Reads and range-checks params into spec (dtype, shape already set and valid).
  void (*parse_params)(TensorSpec& spec, const JsonDocument& doc, uint32_t params, const std::string& ctx);
  uint64_t (*expected_length)(const TensorSpec& spec);
  void (*check_payload)(const TensorSpec& spec, const uint8_t* payload, const std::string& ctx);
  void (*decode)(const TensorSpec& spec, const uint8_t* payload, void* out, const DecodeKernels& k);
};

const CodecTraits& codec_traits(Codec codec);

extern const CodecTraits kRawCodec, kQ8Codec, kQ4Codec, kPrngCodec, kStatsCodec;

// --- helpers shared by the codec files ---

// params must be an object with exactly `keys`.
void require_exact_keys(const JsonDocument& doc, uint32_t params, std::initializer_list<const char*> keys,
                        const std::string& ctx);
// params[key] as an integer in [lo, hi], else SeedError naming the key and range.
int64_t require_int_param(const JsonDocument& doc, uint32_t params, const char* key, int64_t lo,
                          int64_t hi, const std::string& ctx);

// Outputs at least this large are written with non-temporal stores through an
// L1-resident scratch chunk: they are far beyond the caches, so skipping the
// read-for-ownership of each destination line is worth ~2× in write bandwidth.
constexpr uint64_t kStreamingMinBytes = uint64_t(8) << 20;

}  // namespace seedcore

#include <memory>

namespace seedcore {

// Runs produce(first_item, count, dst) over items [0, items), where each item is
// `item_floats` output floats. Large outputs go through an L1-sized scratch chunk and
// the ISA's non-temporal stream copy; small ones are produced in place.
template <class Produce>
void produce_float_items(uint64_t items, size_t item_floats, float* out, const DecodeKernels& k,
                         Produce produce) {
  if (items == 0) return;
  if (items * item_floats * sizeof(float) < kStreamingMinBytes || k.isa == Isa::scalar) {
    produce(uint64_t(0), items, out);
    return;
  }
  const size_t chunk_items = item_floats >= 4096 ? 1 : 4096 / item_floats;
  std::unique_ptr<float[]> scratch(new float[chunk_items * item_floats]);
  for (uint64_t first = 0; first < items; first += chunk_items) {
    const uint64_t count = std::min<uint64_t>(chunk_items, items - first);
    produce(first, count, scratch.get());
    k.stream_copy_f32(out + first * item_floats, scratch.get(), size_t(count * item_floats));
  }
}

}  // namespace seedcore

// One traits entry per codec (ggml-style): how to read its params, how long its
// payload must be, which payload rules need the bytes, and how to decode it.
// Adding a codec = one new file in cpp/src/codecs/ + one line in codec_traits()
// (tensor_spec.cpp).
//
// Decoding is by ranges of blocks. A block is the codec's smallest independently
// decodable run of elements (q8/q4: 32, prng: C, raw: 1, stats: one row); any run of
// whole blocks decodes to exactly the bits the whole-tensor decode writes there, by
// the same kernel calls on the same inputs. The whole-tensor decode is the range of
// all blocks; decode_many cuts large tensors into ranges that threads share.
#pragma once
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "seedcore/kernels.h"
#include "seedcore/tensor_spec.h"

namespace seedcore {

// Outputs at least this large are written with non-temporal stores through an
// L1-resident scratch chunk: they are far beyond the caches, so skipping the
// read-for-ownership of each destination line is worth ~2× in write bandwidth.
constexpr uint64_t kStreamingMinBytes = uint64_t(8) << 20;

// prng basis tables depend only on (C, P, K) and the kernels' entry layout, so the
// tensors of one file can share one build instead of one each (MiniLM: 37 tensors,
// one parameter set; each build is 512 entries of C·P LFSR steps). Thread-safe.
class PrngTableCache {
 public:
  std::shared_ptr<const PrngBasisTables> get(const PrngParams& params, PrngBasisLayout layout);

 private:
  struct Entry {
    uint32_t C, P, K;
    PrngBasisLayout layout;
    std::shared_ptr<const PrngBasisTables> tables;
  };
  std::mutex mutex_;
  std::vector<Entry> entries_;
};

// ecq: the decoding tables of one payload (ecq.cpp).
struct EcqTables;

// One checked payload made ready for range decoding: what every range shares, built
// once (plan_range_decode). decode_range may run on disjoint ranges from any number
// of threads at once.
struct RangeDecodePlan {
  const TensorSpec* spec = nullptr;
  const uint8_t* payload = nullptr;  // passed its CRC and check_payload_decodable
  // The tensor's context for errors found while decoding (tensor_context(), e.g.
  // "f.seed: tensor 'w' (codec ecq)"): ecq checks its streams' rules as it decodes.
  std::string ctx;
  const DecodeKernels* kernels = nullptr;
  uint64_t block_elems = 1;          // elements per block
  uint64_t blocks = 0;               // ceil(n / block_elems); the last may be partial
  // Large float outputs go through the ISA's non-temporal stream copy (the same
  // values, fewer bytes moved). Decided once per tensor, so every range agrees.
  bool stream = false;
  // prng: the basis tables, when the kernels use them and the tensor is large enough
  // (null otherwise: the kernels then step the LFSR); from table_cache when given.
  PrngTableCache* table_cache = nullptr;
  std::shared_ptr<const PrngBasisTables> prng_tables;
  const PrngBasisTables* prng_tables_or_null() const { return prng_tables.get(); }
  // ecq: slot -> symbol table, frequencies and decoded values, built once per tensor.
  std::shared_ptr<const EcqTables> ecq_tables;
};

struct CodecTraits {
  Codec codec;
  const char* name;
  // Reads and range-checks params into spec (dtype, shape already set and valid).
  void (*parse_params)(TensorSpec& spec, const JsonDocument& doc, uint32_t params, const std::string& ctx);
  uint64_t (*expected_length)(const TensorSpec& spec);
  void (*check_payload)(const TensorSpec& spec, const uint8_t* payload, const std::string& ctx);
  // Elements per block (≥ 1 when n > 0).
  uint64_t (*block_elems)(const TensorSpec& spec);
  // Builds what the ranges share into plan (nullptr: nothing to build).
  void (*prepare)(RangeDecodePlan& plan);
  // Decodes blocks [first_block, first_block + block_count) into `out`, the whole
  // tensor's output (block b starts at element b·block_elems). A partial last block
  // writes only its elements below n. Payload rules that only decoding can check
  // (ecq's streams) are checked here: a block that breaks one throws SeedError(plan.ctx
  // + ...), possibly after other outputs of the range were written (never outside it).
  void (*decode_range)(const RangeDecodePlan& plan, uint64_t first_block, uint64_t block_count, void* out);
  // The rules that decode_range checks as it decodes, checked without writing (for
  // verify); nullptr when check_payload already checks every rule.
  void (*check_decoding)(const TensorSpec& spec, const uint8_t* payload, const std::string& ctx);
};

const CodecTraits& codec_traits(Codec codec);

extern const CodecTraits kRawCodec, kQ8Codec, kQ4Codec, kPrngCodec, kStatsCodec, kEcqCodec;

// The plan for decoding a checked payload with the kernels of `isa` (prng tables from
// `tables` when given, else built for this plan alone). `where` names the tensor as
// for check_payload_decodable (plan.ctx = tensor_context(where, spec)).
RangeDecodePlan plan_range_decode(const TensorSpec& spec, const uint8_t* payload, Isa isa, const std::string& where,
                                  PrngTableCache* tables = nullptr);

// --- helpers shared by the codec files ---

// params must be an object with exactly `keys`.
void require_exact_keys(const JsonDocument& doc, uint32_t params, std::initializer_list<const char*> keys,
                        const std::string& ctx);
// params[key] as an integer in [lo, hi], else SeedError naming the key and range.
int64_t require_int_param(const JsonDocument& doc, uint32_t params, const char* key, int64_t lo,
                          int64_t hi, const std::string& ctx);

// Runs produce(first_item, count, dst) over items [first, first + count), each item
// `item_floats` (≤ 64) output floats, writing item i at out + i·item_floats. With
// plan.stream the items go through an L1-sized scratch chunk and the ISA's
// non-temporal stream copy; otherwise they are produced in place.
template <class Produce>
void produce_float_items(const RangeDecodePlan& plan, uint64_t first, uint64_t count, size_t item_floats,
                         float* out, Produce produce) {
  if (count == 0) return;
  if (!plan.stream) {
    produce(first, count, out + first * item_floats);
    return;
  }
  constexpr size_t kScratchFloats = 4096;  // 16 KiB: stays in L1
  const size_t chunk = kScratchFloats / item_floats;
  float scratch[kScratchFloats];
  for (uint64_t i = first; i < first + count; i += chunk) {
    const uint64_t c = std::min<uint64_t>(chunk, first + count - i);
    produce(i, c, scratch);
    plan.kernels->stream_copy_f32(out + i * item_floats, scratch, size_t(c * item_floats));
  }
}

// Decodes the full blocks of [first_block, first_block + block_count) with
// produce_float_items and a partial last block (when the range includes it) into a
// temporary, copying out its elements below n. produce(first, count, dst) decodes
// full blocks of plan.block_elems (≤ 64) floats.
template <class Produce>
void decode_float_blocks(const RangeDecodePlan& plan, uint64_t first_block, uint64_t block_count, void* out,
                         Produce produce) {
  const uint64_t C = plan.block_elems;
  const uint64_t full = plan.spec->n / C;  // blocks [0, full) are whole
  float* dst = static_cast<float*>(out);
  const uint64_t end = first_block + block_count;
  produce_float_items(plan, first_block, std::min(end, full) - std::min(first_block, full), size_t(C), dst,
                      produce);
  if (end > full && full < plan.blocks) {
    float tail[64];
    produce(full, uint64_t(1), tail);
    std::copy(tail, tail + (plan.spec->n - full * C), dst + full * C);
  }
}

}  // namespace seedcore

// prng: SeedLM-style pseudo-random basis blocks (format.md 3.4).
#include <algorithm>
#include <cstring>

#include "../kernels/scalar_helpers.h"
#include "codec_traits.h"
#include "seedcore/error.h"

namespace seedcore {
namespace {

struct PrngSections { uint64_t nb, seed_bytes, exp_bytes, mant_bytes; };

PrngSections prng_sections(const TensorSpec& spec) {
  const PrngParams& p = spec.prng;
  PrngSections s;
  s.nb = (spec.n + p.C - 1) / p.C;
  s.seed_bytes = (s.nb * p.K + 7) / 8;
  s.exp_bytes = (s.nb + 1) / 2;
  s.mant_bytes = (s.nb * p.P + 1) / 2;
  return s;
}

PrngPayloadView prng_view(const TensorSpec& spec, const uint8_t* payload) {
  const PrngSections s = prng_sections(spec);
  PrngPayloadView v;
  v.nb = s.nb;
  v.params = spec.prng;
  v.seeds = payload;
  v.exponents = payload + s.seed_bytes;
  v.mantissas = payload + s.seed_bytes + s.exp_bytes;
  return v;
}

void parse_prng_params(TensorSpec& spec, const JsonDocument& doc, uint32_t params, const std::string& ctx) {
  require_exact_keys(doc, params, {"C", "P", "K", "exp_bias"}, ctx);
  PrngParams& p = spec.prng;
  p.C = uint32_t(require_int_param(doc, params, "C", 1, 64, ctx));
  p.P = uint32_t(require_int_param(doc, params, "P", 1, 8, ctx));
  p.K = uint32_t(require_int_param(doc, params, "K", 8, 16, ctx));
  p.exp_bias = int32_t(require_int_param(doc, params, "exp_bias", -100, 100, ctx));
  if (p.P > p.C)
    throw SeedError(ctx + ": params.P (" + std::to_string(p.P) + ") must not exceed params.C (" +
                    std::to_string(p.C) + ")");
}

uint64_t prng_expected_length(const TensorSpec& spec) {
  const PrngSections s = prng_sections(spec);
  return s.seed_bytes + s.exp_bytes + s.mant_bytes;
}

void check_prng_payload(const TensorSpec& spec, const uint8_t* payload, const std::string& ctx) {
  const PrngSections s = prng_sections(spec);
  const PrngPayloadView v = prng_view(spec, payload);
  const uint32_t K = spec.prng.K;
  if (K == 16) {
    // A chunk at a time with no early exit, so the compiler vectorises the scan (it
    // runs over every seed of every tensor before any decoding); a chunk that holds a
    // zero is scanned again to name the block.
    constexpr uint64_t kChunk = 4096;
    for (uint64_t b0 = 0; b0 < s.nb; b0 += kChunk) {
      const uint64_t end = std::min(s.nb, b0 + kChunk);
      uint16_t zero = 0;  // a 16-bit accumulator: GCC does not vectorise a bool reduction
      for (uint64_t b = b0; b < end; ++b) {
        uint16_t seed;
        std::memcpy(&seed, v.seeds + 2 * b, 2);  // byte order does not matter for == 0
        zero |= uint16_t(seed == 0);
      }
      if (!zero) continue;
      for (uint64_t b = b0; b < end; ++b)
        if ((v.seeds[2 * b] | v.seeds[2 * b + 1]) == 0)
          throw SeedError(ctx + ": block " + std::to_string(b) + " has seed 0 (seeds must be in [1, 2^K - 1])");
    }
  } else {
    for (uint64_t b = 0; b < s.nb; ++b)
      if (read_bits_lsb_first(v.seeds, b, K) == 0)
        throw SeedError(ctx + ": block " + std::to_string(b) + " has seed 0 (seeds must be in [1, 2^K - 1])");
  }
  const uint32_t seed_used_bits = uint32_t((s.nb * K) % 8);
  if (seed_used_bits != 0 && (v.seeds[s.seed_bytes - 1] >> seed_used_bits) != 0)
    throw SeedError(ctx + ": unused bits in the last byte of the seed section are not zero");
  if ((s.nb & 1) && (v.exponents[s.exp_bytes - 1] >> 4) != 0)
    throw SeedError(ctx + ": unused bits in the last byte of the exponent section are not zero");
  if (((s.nb * spec.prng.P) & 1) && (v.mantissas[s.mant_bytes - 1] >> 4) != 0)
    throw SeedError(ctx + ": unused bits in the last byte of the mantissa section are not zero");
}

uint64_t prng_block_elems(const TensorSpec& spec) { return spec.prng.C; }

// A table build costs (256 + 2^(K−8)) · C·P LFSR steps, about what stepping the LFSR
// directly costs for the same number of blocks; below that, step directly. Built once
// per tensor, shared by every range.
void prepare_prng(RangeDecodePlan& plan) {
  const PrngParams& p = plan.spec->prng;
  if (plan.kernels->prng_uses_tables && plan.blocks >= 256u + (1u << (p.K - 8))) {
    if (plan.table_cache != nullptr)
      plan.prng_tables = plan.table_cache->get(p, plan.kernels->prng_layout);
    else
      plan.prng_tables = std::make_shared<const PrngBasisTables>(build_prng_basis_tables(p, plan.kernels->prng_layout));
  }
}

void decode_prng_range(const RangeDecodePlan& plan, uint64_t first, uint64_t count, void* out) {
  const PrngPayloadView v = prng_view(*plan.spec, plan.payload);
  const PrngBasisTables* tables = plan.prng_tables_or_null();
  const auto kernel = plan.kernels->decode_prng_blocks;
  decode_float_blocks(plan, first, count, out, [&](uint64_t b, uint64_t c, float* d) {
    kernel(v, tables, b, c, d);
  });
}

}  // namespace

std::shared_ptr<const PrngBasisTables> PrngTableCache::get(const PrngParams& params, PrngBasisLayout layout) {
  std::lock_guard<std::mutex> lock(mutex_);  // a build takes tens of microseconds: hold it
  for (const Entry& e : entries_)
    if (e.C == params.C && e.P == params.P && e.K == params.K && e.layout == layout) return e.tables;
  auto tables = std::make_shared<const PrngBasisTables>(build_prng_basis_tables(params, layout));
  entries_.push_back({params.C, params.P, params.K, layout, tables});
  return tables;
}

const CodecTraits kPrngCodec = {Codec::prng, "prng", parse_prng_params, prng_expected_length,
                                check_prng_payload, prng_block_elems, prepare_prng, decode_prng_range, nullptr};

}  // namespace seedcore

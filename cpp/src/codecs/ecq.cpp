// ecq: entropy-coded uniform quantisation (format.md 3.6). The codes q of x = f32(q) × d
// are stored with a static rANS coder (byte-wise renormalisation, 32-bit state, 15-bit
// probabilities), one stream per chunk of `chunk` elements. A block of the range
// decoding is a chunk: each stream decodes on its own, so threads share a tensor by
// chunks. rANS decoding is one serial dependency chain per stream, so there is one
// scalar decoder for every ISA (a SIMD version would need interleaved streams, which
// the format does not have).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../kernels/scalar_helpers.h"
#include "codec_traits.h"
#include "seedcore/error.h"

namespace seedcore {

namespace {

constexpr uint32_t kScaleBits = 15;
constexpr uint32_t kTotal = 1u << kScaleBits;  // the frequencies sum to this
constexpr uint32_t kStateLow = 1u << 23;       // the state is in [2^23, 2^31) between symbols
constexpr uint32_t kStateHigh = 1u << 31;
constexpr uint32_t kMaxSymbols = 32768;
constexpr int64_t kMaxCodeMagnitude = int64_t(1) << 24;

}  // namespace

// What every chunk of one payload shares: for each of the 2^15 slots r, its symbol s
// (F[s] <= r < F[s] + f[s]) and f[s] | (r - F[s]) << 16, so that a decoding step takes
// one table load on its dependency chain; and (for decoding) the output value of each
// symbol, f32(lo + s) × d.
struct EcqTables {
  std::vector<uint16_t> slot_symbol;  // 2^15 entries: s
  std::vector<uint32_t> slot_step;    // 2^15 entries: f[s] | (r - F[s]) << 16 (f[s] <= 2^15)
  std::vector<float> value;           // empty when built only for validation
};

namespace {

// Where the parts of a payload lie (format.md 3.6): f[] at 8, e[] at A, streams at B.
struct EcqLayout {
  uint32_t S = 0;
  int32_t lo = 0;
  uint64_t A = 0, nc = 0, B = 0;
};

EcqLayout ecq_layout(const TensorSpec& spec, const uint8_t* payload) {
  EcqLayout l;
  l.S = load_u32_le_bytes(payload);
  l.lo = int32_t(load_u32_le_bytes(payload + 4));
  l.A = (8 + 2 * uint64_t(l.S) + 3) & ~uint64_t(3);
  l.nc = (spec.n + spec.ecq.chunk - 1) / spec.ecq.chunk;
  l.B = l.A + 4 * l.nc;
  return l;
}

// Stream i is [B + e[i-1], B + e[i]) with e[-1] = 0.
uint64_t stream_begin(const EcqLayout& l, const uint8_t* payload, uint64_t i) {
  return l.B + (i == 0 ? 0 : load_u32_le_bytes(payload + l.A + 4 * (i - 1)));
}
uint64_t stream_end(const EcqLayout& l, const uint8_t* payload, uint64_t i) {
  return l.B + load_u32_le_bytes(payload + l.A + 4 * i);
}

// The frequency table must already sum to 2^15 (the fill is still bounded if not).
std::shared_ptr<EcqTables> build_ecq_tables(const EcqLayout& l, const uint8_t* payload, const float* step) {
  auto t = std::make_shared<EcqTables>();
  t->slot_symbol.assign(kTotal, 0);
  t->slot_step.assign(kTotal, 0);
  uint32_t F = 0;
  for (uint32_t s = 0; s < l.S; ++s) {
    const uint32_t f = load_u16_le(payload + 8 + 2 * size_t(s));
    const uint32_t end = std::min(kTotal, F + f);
    for (uint32_t slot = F; slot < end; ++slot) {
      t->slot_symbol[slot] = uint16_t(s);
      t->slot_step[slot] = f | (slot - F) << 16;
    }
    F += f;
  }
  if (step != nullptr) {
    t->value.resize(l.S);
    // |lo + s| <= 2^24: the int -> binary32 conversion is exact; then one multiply.
    for (uint32_t s = 0; s < l.S; ++s) t->value[s] = float(int32_t(l.lo + int32_t(s))) * *step;
  }
  return t;
}

enum class ChunkFault { none, short_stream, initial_state, overrun, final_state, unread };

// Decodes `count` elements from the stream [p, end) (format.md 3.6), writing them to
// out when kWrite. Never reads outside [p, end). `at` is the element where an overrun
// happened, or the number of unread bytes.
template <bool kWrite>
ChunkFault decode_chunk(const EcqTables& t, const uint8_t* p, const uint8_t* end, uint64_t count, float* out,
                        uint64_t& at) {
  if (end - p < 4) return ChunkFault::short_stream;
  uint32_t x = load_u32_le_bytes(p);
  p += 4;
  if (x < kStateLow || x >= kStateHigh) return ChunkFault::initial_state;
  const uint16_t* slot_symbol = t.slot_symbol.data();
  const uint32_t* slot_step = t.slot_step.data();
  const float* value = t.value.data();
  for (uint64_t i = 0; i < count; ++i) {
    // x < 2^31 and f[s] <= 2^15 keep every step in u32; x >= 2^23 gives x >= 2^8 after
    // the step, so renormalising takes at most two bytes.
    const uint32_t r = x & (kTotal - 1);
    const uint32_t s = slot_symbol[r];
    const uint32_t e = slot_step[r];
    x = (e & 0xffff) * (x >> kScaleBits) + (e >> 16);
    while (x < kStateLow) {
      if (p == end) {
        at = i;
        return ChunkFault::overrun;
      }
      x = (x << 8) | *p++;
    }
    if (kWrite) out[i] = value[s];
  }
  if (x != kStateLow) {
    at = x;
    return ChunkFault::final_state;
  }
  if (p != end) {
    at = uint64_t(end - p);
    return ChunkFault::unread;
  }
  return ChunkFault::none;
}

// L whole chunks decoded side by side. One rANS stream is a serial chain (each step
// needs the previous state and a dependent table load), so a core runs several
// independent streams in the time of one. Renormalising is branch-free: after a step
// the state y is >= 2^8 (see decode_chunk), so it takes n = [y < 2^23] + [y < 2^15]
// bytes, read as one 16-bit big-endian value b0·256 + b1 shifted right by 8·(2 − n)
// while two or more bytes are left; in a stream's last byte, byte by byte, a lane
// reading a zero byte in place past the end and being marked bad. The same arithmetic
// as decode_chunk, so the same values; returns false if any lane breaks a rule
// (decode_chunk then says which and where). Never reads outside a stream.
template <int L, bool kWrite>
bool decode_lanes(const EcqTables& t, const uint8_t* const* begin, const uint8_t* const* end, uint64_t count,
                  float* const* out) {
  static const uint8_t kZeroByte = 0;
  uint32_t x[L];
  const uint8_t* p[L];
  uint32_t bad = 0;
  for (int k = 0; k < L; ++k) {
    if (end[k] - begin[k] < 4) return false;
    x[k] = load_u32_le_bytes(begin[k]);
    p[k] = begin[k] + 4;
    bad |= uint32_t(x[k] < kStateLow || x[k] >= kStateHigh);
  }
  if (bad) return false;
  const uint16_t* slot_symbol = t.slot_symbol.data();
  const uint32_t* slot_step = t.slot_step.data();
  const float* value = t.value.data();
  for (uint64_t i = 0; i < count; ++i) {
    for (int k = 0; k < L; ++k) {
      const uint32_t r = x[k] & (kTotal - 1);
      const uint32_t e = slot_step[r];
      uint32_t y = (e & 0xffff) * (x[k] >> kScaleBits) + (e >> 16);
      if (end[k] - p[k] >= 2) {
        const uint32_t n = uint32_t(y < kStateLow) + uint32_t(y < (1u << 15));
        const uint32_t two = uint32_t(p[k][0]) << 8 | p[k][1];
        y = (y << (8 * n)) | (two >> (8 * (2 - n)));
        p[k] += n;
      } else {
        for (int round = 0; round < 2; ++round) {
          const uint32_t need = uint32_t(y < kStateLow);
          const uint32_t have = uint32_t(p[k] != end[k]);
          bad |= need & ~have;
          const uint8_t* q = have ? p[k] : &kZeroByte;
          y = need ? (y << 8) | *q : y;
          p[k] += need & have;
        }
      }
      x[k] = y;
      if (kWrite) out[k][i] = value[slot_symbol[r]];
    }
  }
  for (int k = 0; k < L; ++k) bad |= uint32_t(x[k] != kStateLow || p[k] != end[k]);
  return bad == 0;
}

uint64_t chunk_length(const TensorSpec& spec, uint64_t i) {
  const uint64_t start = i * spec.ecq.chunk;
  return std::min<uint64_t>(spec.ecq.chunk, spec.n - start);
}

void parse_ecq_params(TensorSpec& spec, const JsonDocument& doc, uint32_t params, const std::string& ctx) {
  require_exact_keys(doc, params, {"step", "chunk", "bytes"}, ctx);
  const uint32_t node = doc.find(params, "step");
  if (doc.kind(node) != JsonDocument::Kind::number)
    throw SeedError(ctx + ": params.step must be a number, not " + json_kind_name(doc.kind(node)));
  const double d = doc.number_value(node);  // the nearest binary64, as strtod
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", d);
  if (!(d >= 0x1p-100 && d <= 0x1p100))
    throw SeedError(ctx + ": params.step (" + text + ") must be in [2^-100, 2^100]");
  const float f = float(d);
  if (double(f) != d)
    throw SeedError(ctx + ": params.step (" + text + ") is not a binary32 number (it must convert to binary32 exactly)");
  spec.ecq.step = f;
  spec.ecq.chunk = uint32_t(require_int_param(doc, params, "chunk", 256, int64_t(1) << 20, ctx));
  spec.ecq.bytes = uint64_t(require_int_param(doc, params, "bytes", 8, (int64_t(1) << 40) - 1, ctx));
}

uint64_t ecq_expected_length(const TensorSpec& spec) { return spec.ecq.bytes; }

// The rules of format.md 3.6 that need no decoding, in the order of its table: S, lo,
// the frequencies, the padding, the offsets e[] and where the streams end. They put
// every stream inside the payload with at least 4 bytes, so decoding never reads
// outside it. The rules of each stream (initial state, no read past its end, final
// state 2^23, every byte read) are checked by decoding it: decode_ecq_range checks them
// as it decodes (on the threads that share the tensor), check_ecq_streams without
// writing anything (verify).
void check_ecq_payload(const TensorSpec& spec, const uint8_t* payload, const std::string& ctx) {
  const uint64_t m = spec.ecq.bytes;  // the payload length (already checked)
  const EcqLayout l = ecq_layout(spec, payload);
  if (l.S < 1 || l.S > kMaxSymbols)
    throw SeedError(ctx + ": alphabet size S = " + std::to_string(l.S) + " is outside [1, 32768]");
  if (int64_t(l.lo) < -kMaxCodeMagnitude || int64_t(l.lo) + int64_t(l.S) - 1 > kMaxCodeMagnitude)
    throw SeedError(ctx + ": lo = " + std::to_string(l.lo) + " with S = " + std::to_string(l.S) +
                    " gives codes outside [-2^24, 2^24]");
  if (l.A > m)
    throw SeedError(ctx + ": payload of " + std::to_string(m) + " bytes is too short for the frequency table of " +
                    std::to_string(l.S) + " symbols (" + std::to_string(l.A) + " bytes)");
  uint32_t sum = 0;
  for (uint32_t s = 0; s < l.S; ++s) sum += load_u16_le(payload + 8 + 2 * size_t(s));
  if (sum != kTotal)
    throw SeedError(ctx + ": frequencies sum to " + std::to_string(sum) + " (must be 32768)");
  for (uint64_t i = 8 + 2 * uint64_t(l.S); i < l.A; ++i)
    if (payload[i] != 0) throw SeedError(ctx + ": padding after the frequency table is not zero");
  if (l.B > m)
    throw SeedError(ctx + ": payload of " + std::to_string(m) + " bytes is too short for the offsets of " +
                    std::to_string(l.nc) + " chunks (the streams would start at byte " + std::to_string(l.B) + ")");
  uint64_t prev = 0;
  for (uint64_t i = 0; i < l.nc; ++i) {
    const uint64_t e = load_u32_le_bytes(payload + l.A + 4 * i);
    if (e < prev + 4)
      throw SeedError(ctx + ": chunk " + std::to_string(i) + ": stream offset e[" + std::to_string(i) + "] = " +
                      std::to_string(e) + " is less than 4 bytes after the previous one (" + std::to_string(prev) +
                      ")");
    prev = e;
  }
  if (l.B + prev != m)
    throw SeedError(ctx + ": the streams end at byte " + std::to_string(l.B + prev) + ", not at the payload's end (" +
                    std::to_string(m) + ")");
}

// The SeedError for chunk i's fault (decode_chunk's `at`).
[[noreturn]] void throw_chunk_fault(const std::string& ctx, const EcqLayout& l, const uint8_t* payload, uint64_t i,
                                    ChunkFault fault, uint64_t at) {
  const std::string where = ctx + ": chunk " + std::to_string(i) + ": ";
  switch (fault) {
    case ChunkFault::short_stream:
      throw SeedError(where + "stream is shorter than 4 bytes");
    case ChunkFault::initial_state:
      throw SeedError(where + "initial state " + std::to_string(load_u32_le_bytes(payload + stream_begin(l, payload, i))) +
                      " is outside [2^23, 2^31)");
    case ChunkFault::overrun:
      throw SeedError(where + "decoding element " + std::to_string(at) + " reads past the end of the stream");
    case ChunkFault::final_state:
      throw SeedError(where + "final state " + std::to_string(at) + " is not 2^23");
    case ChunkFault::unread:
      throw SeedError(where + std::to_string(at) + " bytes of the stream are left unread");
    case ChunkFault::none:
      break;
  }
  throw SeedError(where + "stream is invalid");  // not reached: fault != none
}

// Decodes chunks [first, first + count) of a payload that passed check_ecq_payload
// (writing chunk i at dst + i·chunk when kWrite) and checks every stream rule, throwing
// a SeedError that names the first chunk (in this range) that breaks one. Whole chunks
// go 8, 4 or 2 at a time through decode_lanes; a group that fails is decoded again chunk
// by chunk with decode_chunk, which names the chunk and the fault. Every read stays
// inside the chunk's stream and every write inside the chunk's output.
template <bool kWrite>
void decode_checked_chunks(const TensorSpec& spec, const uint8_t* payload, const EcqTables& tables,
                           uint64_t first, uint64_t count, float* dst, const std::string& ctx) {
  const EcqLayout l = ecq_layout(spec, payload);
  const uint64_t C = spec.ecq.chunk;
  const uint64_t full = spec.n / C;  // chunks [0, full) are whole
  auto serial = [&](uint64_t i) {
    uint64_t at = 0;
    const ChunkFault fault = decode_chunk<kWrite>(tables, payload + stream_begin(l, payload, i),
                                                  payload + stream_end(l, payload, i), chunk_length(spec, i),
                                                  kWrite ? dst + i * C : nullptr, at);
    if (fault != ChunkFault::none) throw_chunk_fault(ctx, l, payload, i, fault, at);
  };
  const uint64_t last = first + count;
  const uint64_t whole_end = std::min(last, full);
  uint64_t i = first;
  // Groups of L whole chunks through decode_lanes<L>; a group that fails is decoded
  // again chunk by chunk (decode_lanes and decode_chunk compute the same, so one throws).
  auto groups = [&](auto lanes) {
    constexpr int L = decltype(lanes)::value;
    for (; i + L <= whole_end; i += L) {
      const uint8_t* begin[L];
      const uint8_t* end[L];
      float* outs[L];
      for (int k = 0; k < L; ++k) {
        begin[k] = payload + stream_begin(l, payload, i + k);
        end[k] = payload + stream_end(l, payload, i + k);
        outs[k] = kWrite ? dst + (i + k) * C : nullptr;
      }
      if (decode_lanes<L, kWrite>(tables, begin, end, C, outs)) continue;
      for (int k = 0; k < L; ++k) serial(i + k);
    }
  };
  groups(std::integral_constant<int, 8>());
  groups(std::integral_constant<int, 4>());
  groups(std::integral_constant<int, 2>());
  for (; i < last; ++i) serial(i);
}

// The stream rules of every chunk, decoded without writing (verify).
void check_ecq_streams(const TensorSpec& spec, const uint8_t* payload, const std::string& ctx) {
  const EcqLayout l = ecq_layout(spec, payload);
  if (l.nc == 0) return;
  const std::shared_ptr<EcqTables> tables = build_ecq_tables(l, payload, nullptr);
  decode_checked_chunks<false>(spec, payload, *tables, 0, l.nc, nullptr, ctx);
}

uint64_t ecq_block_elems(const TensorSpec& spec) { return spec.ecq.chunk; }

void prepare_ecq(RangeDecodePlan& plan) {
  plan.ecq_tables = build_ecq_tables(ecq_layout(*plan.spec, plan.payload), plan.payload, &plan.spec->ecq.step);
}

// The payload passed check_ecq_payload; the stream rules are checked here, as each
// chunk decodes (a chunk that breaks one throws a SeedError naming plan.ctx and the
// chunk, after its range may have written some of its outputs).
void decode_ecq_range(const RangeDecodePlan& plan, uint64_t first, uint64_t count, void* out) {
  if (count == 0) return;
  const TensorSpec& spec = *plan.spec;
  std::shared_ptr<const EcqTables> tables = plan.ecq_tables;
  if (!tables) tables = build_ecq_tables(ecq_layout(spec, plan.payload), plan.payload, &spec.ecq.step);
  decode_checked_chunks<true>(spec, plan.payload, *tables, first, count, static_cast<float*>(out), plan.ctx);
}

}  // namespace

const CodecTraits kEcqCodec = {Codec::ecq, "ecq", parse_ecq_params, ecq_expected_length,
                               check_ecq_payload, ecq_block_elems, prepare_ecq, decode_ecq_range,
                               check_ecq_streams};

}  // namespace seedcore

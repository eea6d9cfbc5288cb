// What a tensor entry says about its payload once validated: shape, dtype, codec and
// the codec's parameters. Building a TensorSpec applies every rule of format.md
// sections 2-3 that does not need the payload bytes; check_payload_decodable()
// applies the rest that need no decoding (seeds ≠ 0, unused bits zero, bool bytes,
// stats values, ecq tables and stream offsets). The rules of ecq's rANS streams
// (initial and final states, no read past a stream, every byte read) need the streams
// decoded: decoding checks them as it goes, and check_payload_fully() checks them
// without writing anything.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "seedcore/cpu.h"
#include "seedcore/json.h"

namespace seedcore {

enum class Dtype : uint8_t { float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, boolean };
enum class Codec : uint8_t { raw, q8, q4, prng, stats, ecq };

const char* dtype_name(Dtype d);   // "bool" for Dtype::boolean
const char* codec_name(Codec c);
bool parse_dtype(const std::string& s, Dtype& out);
bool parse_codec(const std::string& s, Codec& out);
bool is_float_dtype(Dtype d);       // float32, float16, bfloat16, float64
size_t dtype_itemsize(Dtype d);     // storage size of one element

struct PrngParams {
  uint32_t C = 0, P = 0, K = 0;
  int32_t exp_bias = 0;
};

struct StatsParams {
  uint32_t k = 0;
  uint32_t seed = 0;
  uint64_t rows = 0, cols = 0;  // the rows × cols view of format.md 3.5
};

struct EcqParams {
  float step = 0.0f;   // the quantisation step d, a binary32 in [2^-100, 2^100]
  uint32_t chunk = 0;  // elements per independently coded chunk, 256 .. 2^20
  uint64_t bytes = 0;  // the payload length m, 8 .. 2^40 - 1
};

struct TensorSpec {
  std::vector<uint64_t> shape;
  uint64_t n = 1;               // element count, < 2^32
  Dtype dtype = Dtype::float32;
  Codec codec = Codec::raw;
  Dtype storage = Dtype::float32;  // raw: the stored element type
  uint32_t block = 32;             // q8 / q4
  PrngParams prng;
  StatsParams stats;
  EcqParams ecq;

  // Decoded element type: float32 for floating dtypes, else the integer/bool dtype.
  Dtype decoded_dtype() const { return is_float_dtype(dtype) ? Dtype::float32 : dtype; }
  uint64_t decoded_bytes() const { return n * dtype_itemsize(decoded_dtype()); }
  std::string shape_string() const;  // "[384, 384]"
};

// Element count of `shape` with the format's bounds (≤ 8 dims, each < 2^32, n < 2^32);
// throws SeedError("<where>: ...").
uint64_t checked_element_count(const std::vector<uint64_t>& shape, const std::string& where);

// Validates dtype, codec and params (object node `params` of `doc`, exact key set)
// for an already-checked shape. `where` names the tensor, e.g. "f.seed: tensor 'w'".
TensorSpec make_tensor_spec(std::vector<uint64_t> shape, const std::string& dtype,
                            const std::string& codec, const JsonDocument& doc, uint32_t params,
                            const std::string& where);

// Expected payload length in bytes (format.md section 3), overflow-free since n < 2^32.
uint64_t expected_payload_length(const TensorSpec& spec);

// "<where> (codec q8)"-style context used in every payload-level message.
std::string tensor_context(const std::string& where, const TensorSpec& spec);

// Checks the payload rules that need its bytes but no decoding (payload length must
// already match). Enough for decode_checked_payload to read only inside the payload
// and write only inside its output; for ecq, the streams' rules are left to decoding.
void check_payload_decodable(const TensorSpec& spec, const uint8_t* payload, const std::string& where);

// check_payload_decodable, plus the rules that decoding checks as it goes (ecq's
// streams, decoded without writing): every rule of the payload. Costs a decode for ecq.
void check_payload_fully(const TensorSpec& spec, const uint8_t* payload, const std::string& where);

// Decodes a payload whose length matches and which passed check_payload_decodable
// into `out` (decoded_bytes() bytes, any alignment) with the kernels of `isa`. ecq's
// stream rules are checked while decoding: a stream that breaks one throws
// SeedError("<where> (codec ecq): chunk i: ..."), and `out` then holds partial
// results (never anything written outside it). `where` names the tensor, as for
// check_payload_decodable.
void decode_checked_payload(const TensorSpec& spec, const uint8_t* payload, void* out, Isa isa,
                            const std::string& where);

// check_payload_decodable + decode_checked_payload: decodes the payload or throws a
// SeedError (for every rule of the payload), leaving `out` undefined on error.
void decode_payload(const TensorSpec& spec, const uint8_t* payload, uint64_t payload_length,
                    void* out, Isa isa, const std::string& where);

}  // namespace seedcore

// A strict, bounded JSON (RFC 8259) parser for .seed metadata.
//
// Strict: UTF-8 only (no BOM, no overlong forms, no surrogate code points), escapes
// checked (\uXXXX surrogates must pair), no control characters in strings, strict
// number grammar, no trailing garbage, duplicate object keys rejected, nesting depth
// bounded. Bounded: the document is a flat arena of 40-byte nodes plus one pool for
// decoded strings, so memory is proportional to the (≤ 16 MiB) input and recursion
// depth is at most max_depth.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace seedcore {

class JsonDocument {
 public:
  enum class Kind : uint8_t { null, boolean, number, string, array, object };
  static constexpr uint32_t kNone = 0xFFFFFFFFu;

  struct Node {
    Kind kind = Kind::null;
    bool bool_value = false;
    bool negative = false;     // number: a leading '-'
    bool is_integer = false;   // number written without fraction or exponent
    bool int_overflow = false; // integer magnitude >= 2^64
    uint32_t count = 0;        // array/object: number of children
    uint32_t first = kNone;    // array/object: first child
    uint32_t next = kNone;     // next sibling in the parent container
    uint32_t key_off = 0, key_len = 0;  // object member: its key in the pool
    union {
      uint64_t magnitude;      // integer number: |value| (when !int_overflow)
      double real;             // any other number: its value (see number_value)
      struct { uint32_t off, len; } str;  // string: decoded UTF-8 in the pool
    };
    Node() : magnitude(0) {}
  };

  // Parses `text`; throws SeedError("<where>: <what> at byte N").
  static JsonDocument parse(std::string_view text, const std::string& where, int max_depth = 64);

  uint32_t root() const { return 0; }
  const Node& node(uint32_t i) const { return nodes_[i]; }
  Kind kind(uint32_t i) const { return nodes_[i].kind; }
  std::string_view string_value(uint32_t i) const {
    return std::string_view(pool_).substr(nodes_[i].str.off, nodes_[i].str.len);
  }
  std::string_view key(uint32_t i) const {
    return std::string_view(pool_).substr(nodes_[i].key_off, nodes_[i].key_len);
  }
  // Object member lookup (linear; objects in .seed metadata are small). kNone if absent.
  uint32_t find(uint32_t object, std::string_view key) const;
  // Integer value if node i is an integer number within [lo, hi]; false otherwise.
  bool integer_in(uint32_t i, int64_t lo, int64_t hi, int64_t& out) const;
  bool unsigned_integer(uint32_t i, uint64_t& out) const;  // integer in [0, 2^64)
  // The value of number node i as the nearest binary64 (round to nearest even), as
  // strtod gives it in the "C" locale: ±inf beyond the range, ±0 or a subnormal below
  // it; "-0" is -0.0. Throws SeedError when node i is not a number.
  double number_value(uint32_t i) const;

 private:
  friend class JsonParser;
  std::vector<Node> nodes_;
  std::string pool_;
};

const char* json_kind_name(JsonDocument::Kind kind);

}  // namespace seedcore

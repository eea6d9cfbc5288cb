// Strict recursive-descent JSON parser (see json.h for what "strict" means).
#include "seedcore/json.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>
#include <unordered_set>

#include "seedcore/error.h"

namespace seedcore {

const char* json_kind_name(JsonDocument::Kind kind) {
  switch (kind) {
    case JsonDocument::Kind::null: return "null";
    case JsonDocument::Kind::boolean: return "a boolean";
    case JsonDocument::Kind::number: return "a number";
    case JsonDocument::Kind::string: return "a string";
    case JsonDocument::Kind::array: return "a list";
    case JsonDocument::Kind::object: return "an object";
  }
  return "?";
}

class JsonParser {
 public:
  JsonParser(std::string_view text, const std::string& where, int max_depth, JsonDocument& doc)
      : s_(text), where_(where), max_depth_(max_depth), doc_(doc) {}

  void parse_document() {
    skip_ws();
    parse_value(1);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected data after the JSON value");
  }

 private:
  using Node = JsonDocument::Node;
  using Kind = JsonDocument::Kind;

  [[noreturn]] void fail(const std::string& what) const {
    throw SeedError(where_ + ": " + what + " at byte " + std::to_string(pos_));
  }

  bool at_end() const { return pos_ >= s_.size(); }
  unsigned char peek() const { return static_cast<unsigned char>(s_[pos_]); }

  void skip_ws() {
    while (!at_end()) {
      const char c = s_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') ++pos_;
      else break;
    }
  }

  uint32_t new_node(Kind kind) {
    if (doc_.nodes_.size() >= 0xFFFFFFF0u) fail("too many JSON values");
    doc_.nodes_.emplace_back();
    doc_.nodes_.back().kind = kind;
    return static_cast<uint32_t>(doc_.nodes_.size() - 1);
  }

  void expect_literal(const char* lit) {
    const size_t len = std::strlen(lit);
    if (s_.substr(pos_, len) != lit) fail("invalid literal");
    pos_ += len;
  }

  // Returns the index of the parsed value's node. `depth` is the nesting depth the
  // value would have if it is a container (the top-level container is depth 1).
  uint32_t parse_value(int depth) {
    if (at_end()) fail("unexpected end of JSON");
    const unsigned char c = peek();
    switch (c) {
      case '{': return parse_object(depth);
      case '[': return parse_array(depth);
      case '"': {
        const uint32_t n = new_node(Kind::string);
        uint32_t off, len;
        parse_string(off, len);
        doc_.nodes_[n].str.off = off;
        doc_.nodes_[n].str.len = len;
        return n;
      }
      case 't': { expect_literal("true"); uint32_t n = new_node(Kind::boolean); doc_.nodes_[n].bool_value = true; return n; }
      case 'f': { expect_literal("false"); return new_node(Kind::boolean); }
      case 'n': { expect_literal("null"); return new_node(Kind::null); }
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
        fail("unexpected character");
    }
  }

  uint32_t parse_object(int depth) {
    if (depth > max_depth_) fail("JSON nesting deeper than " + std::to_string(max_depth_));
    const uint32_t obj = new_node(Kind::object);
    ++pos_;  // '{'
    skip_ws();
    if (!at_end() && peek() == '}') { ++pos_; return obj; }
    uint32_t last = JsonDocument::kNone;
    uint32_t count = 0;
    for (;;) {
      skip_ws();
      if (at_end() || peek() != '"') fail("expected a string key");
      const size_t key_pos = pos_;
      uint32_t koff, klen;
      parse_string(koff, klen);
      const std::string_view key = std::string_view(doc_.pool_).substr(koff, klen);
      // Duplicate keys: a linear scan while the object is small, then a hash set
      // (one per nesting depth, so nested objects never share one) so that a hostile
      // object with millions of keys stays O(n).
      if (count < kLinearScanMembers) {
        for (uint32_t m = doc_.nodes_[obj].first; m != JsonDocument::kNone; m = doc_.nodes_[m].next)
          if (doc_.key(m) == key) { pos_ = key_pos; fail("duplicate key '" + std::string(key) + "'"); }
      } else {
        auto& seen = keys_by_depth_[static_cast<size_t>(depth)];
        if (count == kLinearScanMembers) {
          seen.clear();
          for (uint32_t m = doc_.nodes_[obj].first; m != JsonDocument::kNone; m = doc_.nodes_[m].next)
            seen.insert(doc_.key(m));
        }
        if (!seen.insert(key).second) { pos_ = key_pos; fail("duplicate key '" + std::string(key) + "'"); }
      }
      skip_ws();
      if (at_end() || peek() != ':') fail("expected ':'");
      ++pos_;
      skip_ws();
      const uint32_t v = parse_value(depth + 1);
      doc_.nodes_[v].key_off = koff;
      doc_.nodes_[v].key_len = klen;
      if (last == JsonDocument::kNone) doc_.nodes_[obj].first = v;
      else doc_.nodes_[last].next = v;
      last = v;
      ++count;
      doc_.nodes_[obj].count = count;
      skip_ws();
      if (at_end()) fail("unexpected end of JSON in an object");
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == '}') { ++pos_; return obj; }
      fail("expected ',' or '}'");
    }
  }

  uint32_t parse_array(int depth) {
    if (depth > max_depth_) fail("JSON nesting deeper than " + std::to_string(max_depth_));
    const uint32_t arr = new_node(Kind::array);
    ++pos_;  // '['
    skip_ws();
    if (!at_end() && peek() == ']') { ++pos_; return arr; }
    uint32_t last = JsonDocument::kNone;
    uint32_t count = 0;
    for (;;) {
      skip_ws();
      const uint32_t v = parse_value(depth + 1);
      if (last == JsonDocument::kNone) doc_.nodes_[arr].first = v;
      else doc_.nodes_[last].next = v;
      last = v;
      doc_.nodes_[arr].count = ++count;
      skip_ws();
      if (at_end()) fail("unexpected end of JSON in a list");
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == ']') { ++pos_; return arr; }
      fail("expected ',' or ']'");
    }
  }

  uint32_t parse_number() {
    const uint32_t n = new_node(Kind::number);
    const size_t start = pos_;
    bool negative = false;
    if (peek() == '-') { negative = true; ++pos_; }
    if (at_end()) fail("invalid number");
    uint64_t mag = 0;
    bool overflow = false;
    int64_t int_digits = 0;  // digits of a non-zero integer part
    if (peek() == '0') {
      ++pos_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (!at_end() && peek() >= '0' && peek() <= '9') {
        const uint64_t d = peek() - '0';
        if (mag > (UINT64_MAX - d) / 10) overflow = true;
        else mag = mag * 10 + d;
        ++int_digits;
        ++pos_;
      }
    } else {
      fail("invalid number");
    }
    bool integer = true;
    int64_t lead_zeros = 0;  // zeros after '.' before the first non-zero digit
    bool nonzero_seen = int_digits > 0;
    if (!at_end() && peek() == '.') {
      integer = false;
      ++pos_;
      if (at_end() || peek() < '0' || peek() > '9') fail("invalid number: digits must follow '.'");
      while (!at_end() && peek() >= '0' && peek() <= '9') {
        if (peek() != '0') nonzero_seen = true;
        else if (!nonzero_seen) ++lead_zeros;
        ++pos_;
      }
    }
    int64_t exponent = 0;  // saturated far beyond binary64's range
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      integer = false;
      ++pos_;
      bool exp_negative = false;
      if (!at_end() && (peek() == '+' || peek() == '-')) exp_negative = s_[pos_++] == '-';
      if (at_end() || peek() < '0' || peek() > '9') fail("invalid number: digits must follow the exponent");
      while (!at_end() && peek() >= '0' && peek() <= '9') {
        if (exponent < 1000000000) exponent = exponent * 10 + (peek() - '0');
        ++pos_;
      }
      if (exp_negative) exponent = -exponent;
    }
    Node& node = doc_.nodes_[n];
    node.negative = negative;
    node.is_integer = integer;
    node.int_overflow = integer && overflow;
    if (integer && !overflow) {
      node.magnitude = mag;
    } else {
      // The value is 0.d… × 10^order with d ≠ 0; beyond binary64's range, order > 0
      // means it overflows and order ≤ 0 that it underflows.
      const int64_t order = int_digits > 0 ? int_digits + exponent : exponent - lead_zeros;
      node.real = decimal_to_double(s_.substr(start, pos_ - start), negative, order > 0);
    }
    return n;
  }

  // The token (JSON number grammar, already checked) as the nearest binary64, as
  // strtod in the "C" locale: std::from_chars is exact and ignores the locale, and
  // its out-of-range answer becomes strtod's ±inf (overflow) or ±0 (underflow).
  static double decimal_to_double(std::string_view token, bool negative, bool overflows) {
    double v = 0.0;
    const std::from_chars_result r = std::from_chars(token.data(), token.data() + token.size(), v);
    if (r.ec == std::errc()) return v;
    // result_out_of_range: the grammar was checked, so nothing else can go wrong.
    const double inf_or_zero = overflows ? HUGE_VAL : 0.0;
    return negative ? -inf_or_zero : inf_or_zero;
  }

  static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  uint32_t parse_hex4() {
    if (s_.size() - pos_ < 4) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex_value(static_cast<unsigned char>(s_[pos_ + i]));
      if (h < 0) fail("invalid \\u escape");
      v = v * 16 + static_cast<uint32_t>(h);
    }
    pos_ += 4;
    return v;
  }

  void append_utf8(uint32_t cp) {
    std::string& p = doc_.pool_;
    if (cp < 0x80) p.push_back(static_cast<char>(cp));
    else if (cp < 0x800) { p.push_back(static_cast<char>(0xC0 | (cp >> 6))); p.push_back(static_cast<char>(0x80 | (cp & 0x3F))); }
    else if (cp < 0x10000) { p.push_back(static_cast<char>(0xE0 | (cp >> 12))); p.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F))); p.push_back(static_cast<char>(0x80 | (cp & 0x3F))); }
    else { p.push_back(static_cast<char>(0xF0 | (cp >> 18))); p.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F))); p.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F))); p.push_back(static_cast<char>(0x80 | (cp & 0x3F))); }
  }

  // Length of the valid UTF-8 sequence starting at pos_ (lead byte >= 0x80), or 0.
  size_t utf8_sequence_length() const {
    const size_t left = s_.size() - pos_;
    auto b = [&](size_t i) { return static_cast<unsigned char>(s_[pos_ + i]); };
    auto cont = [&](size_t i) { return i < left && (b(i) & 0xC0) == 0x80; };
    const unsigned char c = b(0);
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
      if (!cont(1) || !cont(2)) return 0;
      if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
      if (c == 0xED && b(1) >= 0xA0) return 0;  // UTF-16 surrogate
      return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
      if (!cont(1) || !cont(2) || !cont(3)) return 0;
      if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
      if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
      return 4;
    }
    return 0;
  }

  void parse_string(uint32_t& off, uint32_t& len) {
    ++pos_;  // opening quote
    const size_t start = doc_.pool_.size();
    for (;;) {
      if (at_end()) fail("unterminated string");
      const unsigned char c = peek();
      if (c == '"') { ++pos_; break; }
      if (c < 0x20) fail("control character in a string");
      if (c == '\\') {
        ++pos_;
        if (at_end()) fail("unterminated escape");
        const char e = s_[pos_++];
        switch (e) {
          case '"': doc_.pool_.push_back('"'); break;
          case '\\': doc_.pool_.push_back('\\'); break;
          case '/': doc_.pool_.push_back('/'); break;
          case 'b': doc_.pool_.push_back('\b'); break;
          case 'f': doc_.pool_.push_back('\f'); break;
          case 'n': doc_.pool_.push_back('\n'); break;
          case 'r': doc_.pool_.push_back('\r'); break;
          case 't': doc_.pool_.push_back('\t'); break;
          case 'u': {
            uint32_t cp = parse_hex4();
            if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (s_.size() - pos_ < 2 || s_[pos_] != '\\' || s_[pos_ + 1] != 'u')
                fail("unpaired high surrogate in \\u escape");
              pos_ += 2;
              const uint32_t lo = parse_hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) fail("high surrogate not followed by a low surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            append_utf8(cp);
            break;
          }
          default: --pos_; fail("invalid escape");
        }
        continue;
      }
      if (c < 0x80) { doc_.pool_.push_back(static_cast<char>(c)); ++pos_; continue; }
      const size_t n = utf8_sequence_length();
      if (n == 0) fail("invalid UTF-8");
      doc_.pool_.append(s_.data() + pos_, n);
      pos_ += n;
    }
    if (doc_.pool_.size() > 0xFFFFFFF0u) fail("JSON strings too large");
    off = static_cast<uint32_t>(start);
    len = static_cast<uint32_t>(doc_.pool_.size() - start);
  }

  std::string_view s_;
  const std::string& where_;
  int max_depth_;
  JsonDocument& doc_;
  size_t pos_ = 0;
  static constexpr uint32_t kLinearScanMembers = 16;
  // Views into doc_.pool_, which is reserved up front and never reallocates.
  std::vector<std::unordered_set<std::string_view>> keys_by_depth_ =
      std::vector<std::unordered_set<std::string_view>>(static_cast<size_t>(max_depth_) + 2);
};

JsonDocument JsonDocument::parse(std::string_view text, const std::string& where, int max_depth) {
  JsonDocument doc;
  doc.pool_.reserve(text.size());  // decoded strings are never longer than the input
  JsonParser parser(text, where, max_depth, doc);
  parser.parse_document();
  return doc;
}

uint32_t JsonDocument::find(uint32_t object, std::string_view k) const {
  if (nodes_[object].kind != Kind::object) return kNone;
  for (uint32_t m = nodes_[object].first; m != kNone; m = nodes_[m].next)
    if (key(m) == k) return m;
  return kNone;
}

bool JsonDocument::unsigned_integer(uint32_t i, uint64_t& out) const {
  const Node& n = nodes_[i];
  if (n.kind != Kind::number || !n.is_integer || n.int_overflow) return false;
  if (n.negative && n.magnitude != 0) return false;
  out = n.magnitude;
  return true;
}

double JsonDocument::number_value(uint32_t i) const {
  const Node& n = nodes_[i];
  if (n.kind != Kind::number) throw SeedError(std::string("JSON value is ") + json_kind_name(n.kind) + ", not a number");
  if (!n.is_integer || n.int_overflow) return n.real;
  // uint64 → binary64 rounds to nearest even, as strtod does.
  const double magnitude = double(n.magnitude);
  return n.negative ? -magnitude : magnitude;
}

bool JsonDocument::integer_in(uint32_t i, int64_t lo, int64_t hi, int64_t& out) const {
  const Node& n = nodes_[i];
  if (n.kind != Kind::number || !n.is_integer || n.int_overflow) return false;
  if (n.magnitude > (uint64_t(1) << 62)) return false;  // far outside any range we use
  const int64_t v = n.negative ? -static_cast<int64_t>(n.magnitude) : static_cast<int64_t>(n.magnitude);
  if (v < lo || v > hi) return false;
  out = v;
  return true;
}

}  // namespace seedcore

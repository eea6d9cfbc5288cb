// ecq (format.md 3.6): the native encoder against a decoder written line by line from
// the spec; encoder + decoder round trips to exactly f32(code) × step for many code
// distributions and sizes; decoding by ranges of chunks (and by decode_many threads)
// equals the whole decode; the frequency normalisation; and every payload and params
// rule refused with a SeedError that names it, never a crash: the structural rules by
// check_payload_decodable, the stream rules by every decode path (decode_payload,
// decode_range, decode_into, decode_many on several threads) and by verify, naming the
// tensor and the chunk, without writing outside the tensor's output.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../src/codecs/codec_traits.h"
#include "../src/encode/ecq_encode.h"
#include "seedcore/cpu.h"
#include "seedcore/json.h"
#include "seedcore/seed_file.h"
#include "seedcore/tensor_spec.h"
#include "test_util.h"

using namespace seedcore;
using namespace seedtest;
namespace enc = seedcore::encode;

namespace {

// Expects a SeedError whose message contains `needle`.
#define CHECK_SEED_ERROR_HAS(label, needle, ...)                                                      \
  do {                                                                                                \
    std::string what_;                                                                                \
    bool seed_ = false, other_ = false;                                                               \
    try { __VA_ARGS__; } catch (const seedcore::SeedError& e_) { seed_ = true; what_ = e_.what(); }   \
    catch (const std::exception& e_) { other_ = true; what_ = e_.what(); }                             \
    CHECK_MSG(seed_ && what_.find(needle) != std::string::npos, "%s: expected a SeedError with '%s', got %s '%s'", \
              std::string(label).c_str(), needle, seed_ ? "SeedError" : other_ ? "another exception" : "no error", \
              what_.c_str());                                                                         \
  } while (0)

// Expects a SeedError whose message starts with `prefix` (the tensor's context) and
// contains `needle`.
#define CHECK_SEED_ERROR_IN(label, prefix, needle, ...)                                                \
  do {                                                                                                \
    std::string what_;                                                                                \
    bool seed_ = false;                                                                               \
    try { __VA_ARGS__; } catch (const seedcore::SeedError& e_) { seed_ = true; what_ = e_.what(); }   \
    catch (const std::exception& e_) { what_ = e_.what(); }                                           \
    const std::string prefix_ = (prefix);                                                             \
    CHECK_MSG(seed_ && what_.compare(0, prefix_.size(), prefix_) == 0 && what_.find(needle) != std::string::npos, \
              "%s: expected a SeedError '%s...%s', got '%s'", std::string(label).c_str(), prefix_.c_str(), \
              needle, what_.c_str());                                                                 \
  } while (0)

uint32_t u32_at(const std::vector<uint8_t>& b, size_t at) {
  return uint32_t(b[at]) | uint32_t(b[at + 1]) << 8 | uint32_t(b[at + 2]) << 16 | uint32_t(b[at + 3]) << 24;
}

std::string step_json(float step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", double(step));
  return buf;
}

std::string ecq_params(const std::string& step, uint64_t chunk, uint64_t bytes) {
  return "{\"step\": " + step + ", \"chunk\": " + std::to_string(chunk) + ", \"bytes\": " + std::to_string(bytes) + "}";
}

TensorSpec make_spec(uint64_t n, const std::string& params_json, const std::string& dtype = "float32") {
  const JsonDocument doc = JsonDocument::parse(params_json, "params");
  return make_tensor_spec({n}, dtype, "ecq", doc, doc.root(), "t");
}

// decode_payload (the where is "t"); also when it throws, nothing past the tensor's
// output may have been written.
std::vector<float> decode(uint64_t n, const std::string& params_json, const std::vector<uint8_t>& payload,
                          Isa isa = Isa::scalar) {
  const TensorSpec spec = make_spec(n, params_json);
  std::vector<float> out(size_t(n) + 1, -12345.0f);
  try {
    decode_payload(spec, payload.data(), payload.size(), out.data(), isa, "t");
  } catch (...) {
    CHECK_MSG(out[size_t(n)] == -12345.0f, "a refused decode wrote past the tensor's end");
    throw;
  }
  CHECK_MSG(out[size_t(n)] == -12345.0f, "decode wrote past the tensor's end");
  out.pop_back();
  return out;
}

// format.md 3.6 read literally (linear symbol search, no tables): the codes, or an
// empty optional-like flag `ok` = false on any rule broken.
std::vector<int64_t> reference_decode(const std::vector<uint8_t>& p, uint64_t n, uint64_t chunk, bool& ok) {
  ok = false;
  std::vector<int64_t> codes;
  const uint64_t m = p.size();
  if (m < 8) return codes;
  const uint32_t S = u32_at(p, 0);
  const int64_t lo = int32_t(u32_at(p, 4));
  if (S < 1 || S > 32768 || lo < -(int64_t(1) << 24) || lo + S - 1 > (int64_t(1) << 24)) return codes;
  const uint64_t A = (8 + 2 * uint64_t(S) + 3) / 4 * 4;
  if (A > m) return codes;
  std::vector<uint32_t> f(S), F(S);
  uint32_t sum = 0;
  for (uint32_t s = 0; s < S; ++s) {
    f[s] = uint32_t(p[8 + 2 * s]) | uint32_t(p[9 + 2 * s]) << 8;
    F[s] = sum;
    sum += f[s];
  }
  if (sum != 32768) return codes;
  for (uint64_t i = 8 + 2 * uint64_t(S); i < A; ++i)
    if (p[i] != 0) return codes;
  const uint64_t nc = (n + chunk - 1) / chunk;
  const uint64_t B = A + 4 * nc;
  if (B > m) return codes;
  uint64_t prev = 0;
  for (uint64_t i = 0; i < nc; ++i) {
    const uint64_t e = u32_at(p, size_t(A + 4 * i));
    if (e < prev + 4) return codes;
    const uint64_t begin = B + prev, end = B + e;
    if (end > m) return codes;
    uint64_t at = begin;
    uint32_t x = u32_at(p, size_t(at));
    at += 4;
    if (x < (1u << 23) || x >= (1u << 31)) return codes;
    for (uint64_t k = i * chunk; k < std::min(n, (i + 1) * chunk); ++k) {
      const uint32_t r = x % 32768;
      // The last symbol with F[s] <= r (symbols of frequency 0 before it share its F).
      const uint32_t s = uint32_t(std::upper_bound(F.begin(), F.end(), r) - F.begin()) - 1;
      if (!(F[s] <= r && r < F[s] + f[s])) return codes;
      x = f[s] * (x / 32768) + r - F[s];
      while (x < (1u << 23)) {
        if (at == end) return codes;
        x = x * 256 + p[size_t(at++)];
      }
      codes.push_back(lo + s);
    }
    if (x != (1u << 23) || at != end) return codes;
    prev = e;
  }
  if (B + prev != m) return codes;
  ok = true;
  return codes;
}

// Encodes, checks the payload with the reference decoder, decodes natively (scalar
// and the best ISA) and compares with f32(code) × step bit for bit.
void round_trip(const std::string& label, const std::vector<int32_t>& codes, uint32_t chunk, float step) {
  std::vector<uint8_t> payload;
  try {
    payload = enc::ecq_encode(codes.data(), codes.size(), chunk);
  } catch (const std::exception& e) {
    CHECK_MSG(false, "%s: encode failed: %s", label.c_str(), e.what());
    return;
  }
  CHECK_MSG(payload == enc::ecq_encode(codes.data(), codes.size(), chunk), "%s: encoding is not deterministic",
            label.c_str());
  bool ok = false;
  const std::vector<int64_t> ref = reference_decode(payload, codes.size(), chunk, ok);
  CHECK_MSG(ok, "%s: the spec-literal decoder refuses the payload", label.c_str());
  if (ok) {
    bool same = ref.size() == codes.size();
    for (size_t i = 0; same && i < codes.size(); ++i) same = ref[i] == codes[i];
    CHECK_MSG(same, "%s: the spec-literal decoder gives other codes", label.c_str());
  }
  const std::string params = ecq_params(step_json(step), chunk, payload.size());
  for (Isa isa : {Isa::scalar, resolve_impl("auto")}) {
    try {
      const std::vector<float> out = decode(codes.size(), params, payload, isa);
      size_t bad = 0;
      for (size_t i = 0; i < codes.size(); ++i) {
        const float want = float(codes[i]) * step;
        if (std::memcmp(&out[i], &want, 4) != 0 && bad++ == 0)
          std::fprintf(stderr, "%s: element %zu is %a, want %a\n", label.c_str(), i, double(out[i]), double(want));
      }
      CHECK_MSG(bad == 0, "%s: %zu elements differ from f32(code) * step", label.c_str(), bad);
    } catch (const std::exception& e) {
      CHECK_MSG(false, "%s: decode refused the encoder's payload: %s", label.c_str(), e.what());
    }
  }
}

// Rounded Laplace-like codes: the shape ecq sees for real weights.
std::vector<int32_t> laplace_codes(Rng& rng, size_t n, double scale) {
  std::vector<int32_t> c(n);
  std::uniform_real_distribution<double> u(-0.5, 0.5);
  for (auto& v : c) {
    const double x = u(rng);
    v = int32_t(std::lround(-scale * (x < 0 ? -1.0 : 1.0) * std::log(1.0 - 2.0 * std::fabs(x) + 1e-300)));
  }
  return c;
}

std::vector<int32_t> uniform_codes(Rng& rng, size_t n, int32_t lo, int32_t hi) {
  std::vector<int32_t> c(n);
  std::uniform_int_distribution<int32_t> d(lo, hi);
  for (auto& v : c) v = d(rng);
  return c;
}

void test_round_trips(Rng& rng) {
  round_trip("uniform [-7, 7], chunk 256", uniform_codes(rng, 10000, -7, 7), 256, 0.25f);
  round_trip("laplace scale 3, chunk 4096", laplace_codes(rng, 50000, 3.0), 4096, 0x1.3p-7f);
  round_trip("laplace scale 300 (wide, gaps)", laplace_codes(rng, 20000, 300.0), 1024, 0.1f);
  round_trip("n < chunk", laplace_codes(rng, 100, 2.0), 256, 0.5f);
  round_trip("n not a multiple of chunk", laplace_codes(rng, 3 * 1000 + 17, 1.5), 1000, 0.01f);
  round_trip("n a multiple of chunk", laplace_codes(rng, 4 * 512, 1.5), 512, 0.01f);
  round_trip("n = 1", {42}, 256, 1.0f);
  round_trip("n = 0", {}, 256, 1.0f);
  round_trip("single symbol", std::vector<int32_t>(3000, -5), 1024, 3.0f);
  round_trip("single symbol 0", std::vector<int32_t>(700, 0), 256, 1.0f);
  round_trip("two symbols, one rare", [&] {
    std::vector<int32_t> c(100000, 1);
    c[777] = 0;
    return c;
  }(), 65536, 0.125f);
  round_trip("codes at -2^24", [&] {
    std::vector<int32_t> c = uniform_codes(rng, 2000, -(1 << 24), -(1 << 24) + 3);
    return c;
  }(), 256, 1.0f);
  round_trip("codes at 2^24", uniform_codes(rng, 2000, (1 << 24) - 100, 1 << 24), 300, 0x1p-100f);
  round_trip("step 2^100", uniform_codes(rng, 2000, -(1 << 24), 32767 - (1 << 24)), 256, 0x1p100f);
  // S = 32768: every value of [-16384, 16383] occurs once, plus a peak (many symbols
  // raised to frequency 1, so the normalisation must take the excess from the peak).
  {
    std::vector<int32_t> c;
    for (int32_t v = -16384; v < 16384; ++v) c.push_back(v);
    for (int i = 0; i < 200000; ++i) c.push_back(int32_t(rng() % 5) - 2);
    std::shuffle(c.begin(), c.end(), rng);
    round_trip("S = 32768 with a peak", c, 8192, 0.001f);
  }
  {
    std::vector<int32_t> c = uniform_codes(rng, 40000, 0, 32767);
    c[0] = 0;
    c[1] = 32767;
    round_trip("S = 32768 uniform", c, 1 << 20, 0.5f);
  }
  round_trip("S = 32767", [&] {
    std::vector<int32_t> c = laplace_codes(rng, 30000, 4.0);
    c[5] = -16000;
    c[6] = 16766;
    return c;
  }(), 2048, 0.5f);
  round_trip("chunk 2^20, n > chunk", laplace_codes(rng, (1 << 20) + 4097, 5.0), 1 << 20, 0.02f);

  // Stream layout: the single-symbol stream is just the state 2^23; n = 0 is the table.
  const std::vector<int32_t> one(300, 9);
  const std::vector<uint8_t> p = enc::ecq_encode(one.data(), one.size(), 256);
  const std::vector<uint8_t> want = {1, 0, 0, 0, 9, 0, 0, 0, 0, 0x80, 0, 0, 4, 0, 0, 0, 8, 0, 0, 0,
                                     0, 0, 0x80, 0, 0, 0, 0x80, 0};
  CHECK_MSG(p == want, "single-symbol payload layout differs");
  const std::vector<uint8_t> empty = enc::ecq_encode(nullptr, 0, 256);
  CHECK((empty == std::vector<uint8_t>{1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0}));

  // Source dtypes: floating ones decode to float32; integer ones may not use ecq.
  const std::string params = ecq_params("0.5", 256, empty.size());
  for (const char* dtype : {"float16", "bfloat16", "float64"}) {
    try {
      CHECK(make_spec(0, params, dtype).decoded_dtype() == Dtype::float32);
    } catch (const std::exception& e) {
      CHECK_MSG(false, "%s refused: %s", dtype, e.what());
    }
  }
  for (const char* dtype : {"int32", "int8", "bool"})
    CHECK_SEED_ERROR_HAS(dtype, "must use the raw codec", make_spec(0, params, dtype));
}

void test_encoder_rules() {
  auto freqs = [](std::vector<uint64_t> counts) { return enc::ecq_normalize_frequencies(counts); };
  CHECK((freqs({1, 1}) == std::vector<uint16_t>{16384, 16384}));
  CHECK((freqs({5}) == std::vector<uint16_t>{32768}));
  CHECK((freqs({1, 0, 999999}) == std::vector<uint16_t>{1, 0, 32767}));
  CHECK((freqs({3, 0, 0, 1}) == std::vector<uint16_t>{24576, 0, 0, 8192}));
  // Thirds: 10922.67 each rounds up to 10923 (sum 32769); the first largest gives one back.
  CHECK((freqs({1, 1, 1}) == std::vector<uint16_t>{10922, 10923, 10923}));
  // Sevenths: 4681.14 rounds down (sum 32767); the first largest gets one more.
  CHECK((freqs({1, 1, 1, 1, 1, 1, 1}) == std::vector<uint16_t>{4682, 4681, 4681, 4681, 4681, 4681, 4681}));
  {
    // 32768 occurring symbols, one of them dominant: every one must end at >= 1 and
    // the dominant one gives up the excess.
    std::vector<uint64_t> counts(32768, 1);
    counts[100] = 1000000;
    const std::vector<uint16_t> f = freqs(counts);
    uint32_t sum = 0, ones = 0;
    for (uint16_t v : f) { sum += v; ones += v == 1; }
    CHECK(sum == 32768 && ones == 32768 && f[100] == 1);
    std::vector<uint64_t> c2(32768, 0);
    for (size_t i = 0; i < c2.size(); i += 3) c2[i] = 1 + i % 7;
    c2[5] = 100000;
    const std::vector<uint16_t> g = freqs(c2);
    sum = 0;
    bool zero_ok = true;
    for (size_t i = 0; i < g.size(); ++i) { sum += g[i]; zero_ok = zero_ok && ((g[i] == 0) == (c2[i] == 0)); }
    CHECK(sum == 32768 && zero_ok);
  }
  auto throws_invalid = [](const std::vector<int32_t>& codes, uint32_t chunk, const char* needle) {
    try {
      enc::ecq_encode(codes.data(), codes.size(), chunk);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what()).find(needle) != std::string::npos;
    }
    return false;
  };
  CHECK(throws_invalid({0, 32768}, 256, "codes span 32769 values (more than 32768); use a larger step"));
  CHECK(throws_invalid({-16384, 16384}, 256, "more than 32768"));
  CHECK(throws_invalid({(1 << 24) + 1}, 256, "outside [-2^24, 2^24]"));
  CHECK(throws_invalid({-(1 << 24) - 1}, 256, "outside [-2^24, 2^24]"));
  CHECK(throws_invalid({1, 2}, 255, "chunk"));
  CHECK(throws_invalid({1, 2}, (1 << 20) + 1, "chunk"));
  CHECK(!throws_invalid({0, 32767}, 256, "span"));
}

// Ranges of chunks decode to the whole decode's bits and write nothing else; decode_many
// (pieces across 2 MiB windows, several threads) equals decode_into.
void test_ranges(Rng& rng) {
  const uint32_t chunk = 1000;
  const std::vector<int32_t> codes = laplace_codes(rng, 25 * chunk + 321, 6.0);
  const std::vector<uint8_t> payload = enc::ecq_encode(codes.data(), codes.size(), chunk);
  const TensorSpec spec = make_spec(codes.size(), ecq_params("0.0625", chunk, payload.size()));
  check_payload_decodable(spec, payload.data(), "t");
  std::vector<float> whole(codes.size());
  decode_checked_payload(spec, payload.data(), whole.data(), Isa::scalar, "t");
  const RangeDecodePlan plan = plan_range_decode(spec, payload.data(), Isa::scalar, "t");
  CHECK(plan.block_elems == chunk && plan.blocks == 26 && plan.ecq_tables != nullptr);
  CHECK(plan.ctx == "t (codec ecq)");
  const CodecTraits& traits = codec_traits(Codec::ecq);
  for (auto range : std::vector<std::pair<uint64_t, uint64_t>>{{0, 26}, {0, 1}, {3, 5}, {25, 1}, {24, 2}, {13, 0}, {7, 18}}) {
    std::vector<float> out(codes.size(), -7.0f);
    traits.decode_range(plan, range.first, range.second, out.data());
    bool good = true;
    for (size_t i = 0; i < out.size(); ++i) {
      const uint64_t c = i / chunk;
      const bool inside = c >= range.first && c < range.first + range.second;
      good = good && (inside ? std::memcmp(&out[i], &whole[i], 4) == 0 : out[i] == -7.0f);
    }
    CHECK_MSG(good, "decode_range(%llu, %llu) differs from the whole decode", (unsigned long long)range.first,
              (unsigned long long)range.second);
  }
  // A broken stream (chunk 9's final state, by the byte just before chunk 10's stream)
  // refuses every range that holds chunk 9 (in a group of four at any offset, or
  // alone) and no other; ranges that refuse write nothing outside themselves.
  {
    std::vector<uint8_t> bad = payload;
    const uint64_t S = u32_at(bad, 0), A = (8 + 2 * S + 3) / 4 * 4, B = A + 4 * 26;
    bad[size_t(B + u32_at(bad, size_t(A + 4 * 9)) - 1)] ^= 0x01;
    try {
      check_payload_decodable(spec, bad.data(), "t");  // a stream rule: not checked here
    } catch (const std::exception& e) {
      CHECK_MSG(false, "check_payload_decodable refuses a stream fault: %s", e.what());
    }
    const RangeDecodePlan bad_plan = plan_range_decode(spec, bad.data(), Isa::scalar, "t");
    for (auto range : std::vector<std::pair<uint64_t, uint64_t>>{
             {0, 26}, {9, 1}, {8, 4}, {6, 4}, {9, 4}, {7, 3}, {0, 9}, {10, 16}, {5, 4}}) {
      std::vector<float> out(codes.size(), -7.0f);
      const bool holds = range.first <= 9 && 9 < range.first + range.second;
      const std::string label = "bad stream, range (" + std::to_string(range.first) + ", " +
                                std::to_string(range.second) + ")";
      if (holds) {
        CHECK_SEED_ERROR_HAS(label, "t (codec ecq): chunk 9: ",
                             traits.decode_range(bad_plan, range.first, range.second, out.data()));
      } else {
        try {
          traits.decode_range(bad_plan, range.first, range.second, out.data());
        } catch (const std::exception& e) {
          CHECK_MSG(false, "%s refused: %s", label.c_str(), e.what());
        }
      }
      bool outside_untouched = true;
      for (size_t i = 0; i < out.size(); ++i) {
        const uint64_t c = i / chunk;
        if (c < range.first || c >= range.first + range.second) outside_untouched = outside_untouched && out[i] == -7.0f;
      }
      CHECK_MSG(outside_untouched, "%s wrote outside its chunks", label.c_str());
    }
  }
  // Through a file: a tensor spanning several 2 MiB windows, and a small one.
  const std::vector<int32_t> big = laplace_codes(rng, 1500007, 2.5);
  const std::vector<uint8_t> big_payload = enc::ecq_encode(big.data(), big.size(), 4096);
  std::vector<TensorDesc> t;
  t.push_back({"big", {1500007}, "float32", "ecq", ecq_params(step_json(0.001f), 4096, big_payload.size()), big_payload, ""});
  t.push_back({"small", {25 * chunk + 321}, "float16", "ecq", ecq_params("0.0625", chunk, payload.size()), payload, ""});
  auto file = SeedFile::from_bytes(build_seed(t), "mem.seed");
  file->verify();
  std::vector<std::vector<uint8_t>> ref(2);
  for (size_t i = 0; i < 2; ++i) {
    ref[i].resize(size_t(file->tensors()[i].spec.decoded_bytes()));
    file->decode_into(i, ref[i].data(), resolve_impl("auto"));
  }
  CHECK(std::memcmp(ref[1].data(), whole.data(), ref[1].size()) == 0);
  bool big_ok = true;
  for (size_t i = 0; i < big.size(); ++i) {
    float v;
    std::memcpy(&v, ref[0].data() + 4 * i, 4);
    big_ok = big_ok && v == float(big[i]) * 0.001f;
  }
  CHECK_MSG(big_ok, "big tensor through a file differs from f32(code) * step");
  for (unsigned threads : {1u, 2u, 5u}) {
    std::vector<std::vector<uint8_t>> outs(2);
    std::vector<void*> ptrs;
    for (size_t i = 0; i < 2; ++i) {
      outs[i].assign(ref[i].size(), 0xA5);
      ptrs.push_back(outs[i].data());
    }
    file->decode_many({0, 1}, ptrs, threads, Isa::scalar);
    CHECK_MSG(outs == ref, "decode_many with %u threads differs", threads);
  }
  // The big tensor with a broken stream in chunk 201 (inside a group of four) or in
  // the last chunk (366, partial): decode_into, decode_many on 1, 2 and 5 threads (the
  // tensor is cut into pieces across windows) and verify refuse it naming the tensor
  // and the chunk; nothing is written past either output. The payload's CRC is right,
  // and check_payload_decodable passes (only decoding sees it).
  for (const uint64_t broken : {uint64_t(201), uint64_t(366)}) {
    std::vector<uint8_t> bad = big_payload;
    const uint64_t S = u32_at(bad, 0), A = (8 + 2 * S + 3) / 4 * 4, B = A + 4 * 367;
    const uint64_t begin = B + u32_at(bad, size_t(A + 4 * (broken - 1))), end = B + u32_at(bad, size_t(A + 4 * broken));
    bad[size_t((begin + end) / 2)] ^= 0x5A;
    std::vector<TensorDesc> tb = t;
    tb[0].payload = bad;
    auto bad_file = SeedFile::from_bytes(build_seed(tb), "mem.seed");
    const std::string needle = "mem.seed: tensor 'big' (codec ecq): chunk " + std::to_string(broken) + ": ";
    const std::string label = "big tensor, chunk " + std::to_string(broken) + " broken";
    CHECK_SEED_ERROR_HAS(label + ": verify", needle.c_str(), bad_file->verify());
    CHECK_SEED_ERROR_HAS(label + ": verify_tensor", needle.c_str(), bad_file->verify_tensor(0));
    const uint64_t guard = 4096;
    for (Isa isa : {Isa::scalar, resolve_impl("auto")}) {
      std::vector<uint8_t> out(ref[0].size() + guard, 0xA5);
      CHECK_SEED_ERROR_HAS(label + ": decode_into", needle.c_str(), bad_file->decode_into(0, out.data(), isa));
      bool guard_ok = true;
      for (size_t i = ref[0].size(); i < out.size(); ++i) guard_ok = guard_ok && out[i] == 0xA5;
      CHECK_MSG(guard_ok, "%s: decode_into wrote past the tensor's output", label.c_str());
    }
    for (unsigned threads : {1u, 2u, 5u}) {
      // Both outputs in one buffer, each followed by guard bytes.
      std::vector<uint8_t> arena(ref[0].size() + guard + ref[1].size() + guard, 0xA5);
      uint8_t* out0 = arena.data();
      uint8_t* out1 = arena.data() + ref[0].size() + guard;
      CHECK_SEED_ERROR_HAS(label + ": decode_many on " + std::to_string(threads) + " threads", needle.c_str(),
                           bad_file->decode_many({1, 0}, {out1, out0}, threads, Isa::scalar));
      bool guard_ok = true;
      for (size_t i = 0; i < guard; ++i)
        guard_ok = guard_ok && out0[ref[0].size() + i] == 0xA5 && out1[ref[1].size() + i] == 0xA5;
      CHECK_MSG(guard_ok, "%s: decode_many on %u threads wrote outside the outputs", label.c_str(), threads);
    }
    // The other tensor still decodes.
    std::vector<uint8_t> small(ref[1].size());
    bad_file->decode_many({1}, {small.data()}, 2, Isa::scalar);
    CHECK(small == ref[1]);
  }
}

// A valid small payload to break: laplace codes, 5 chunks of 256 (the last partial;
// the first four are checked side by side, the fifth alone), S odd or even.
struct Sample {
  std::vector<int32_t> codes;
  std::vector<uint8_t> payload;
  uint32_t S = 0;
  uint64_t A = 0, B = 0, nc = 0;
};

Sample make_sample(Rng& rng, bool odd_S) {
  Sample s;
  for (;;) {
    s.codes = laplace_codes(rng, 4 * 256 + 76, 2.0);
    s.payload = enc::ecq_encode(s.codes.data(), s.codes.size(), 256);
    s.S = u32_at(s.payload, 0);
    if ((s.S % 2 == 1) == odd_S) break;
  }
  s.A = (8 + 2 * uint64_t(s.S) + 3) / 4 * 4;
  s.nc = 5;
  s.B = s.A + 4 * s.nc;
  return s;
}

// Which check refuses a payload: check_payload_decodable (a structural rule, before
// any decoding) or decoding (a stream rule: check_payload_decodable passes).
enum class Refused { by_check, by_decoding };

// The payload (bytes = its length) must be refused with `needle` by decode_payload
// (where "t") and, in a file as tensor 'w', by verify, decode_into and decode_many on
// 1, 2 and 5 threads, each message naming the tensor; and by check_payload_decodable
// exactly when `by` is by_check.
void expect_refused(const std::string& label, const char* needle, uint64_t n, const std::vector<uint8_t>& payload,
                    Refused by) {
  const std::string params = ecq_params("0.5", 256, payload.size());
  CHECK_SEED_ERROR_IN(label, "t (codec ecq): ", needle, decode(n, params, payload));
  const TensorSpec spec = make_spec(n, params);
  if (by == Refused::by_check) {
    CHECK_SEED_ERROR_HAS(label + ": check_payload_decodable", needle, check_payload_decodable(spec, payload.data(), "t"));
  } else {
    try {
      check_payload_decodable(spec, payload.data(), "t");
    } catch (const std::exception& e) {
      CHECK_MSG(false, "%s: check_payload_decodable refuses a stream fault (%s): it must be left to decoding",
                label.c_str(), e.what());
    }
    CHECK_SEED_ERROR_HAS(label + ": check_payload_fully", needle, check_payload_fully(spec, payload.data(), "t"));
  }
  std::vector<TensorDesc> t;
  t.push_back({"w", {n}, "float32", "ecq", params, payload, ""});
  auto file = SeedFile::from_bytes(build_seed(t), "mem.seed");
  const char* in_file = "mem.seed: tensor 'w' (codec ecq): ";
  CHECK_SEED_ERROR_IN(label + ": verify", in_file, needle, file->verify());
  std::vector<float> out(size_t(n) + 1, -12345.0f);
  CHECK_SEED_ERROR_IN(label + ": decode_into", in_file, needle, file->decode_into(0, out.data(), Isa::scalar));
  for (unsigned threads : {1u, 2u, 5u})
    CHECK_SEED_ERROR_IN(label + ": decode_many on " + std::to_string(threads) + " threads", in_file, needle,
                        file->decode_many({0}, {out.data()}, threads, resolve_impl("auto")));
  CHECK_MSG(out[size_t(n)] == -12345.0f, "%s: a refused decode wrote past the tensor's end", label.c_str());
  bool ok = true;
  reference_decode(payload, n, 256, ok);
  // The literal reading of the spec must agree (it refuses too).
  CHECK_MSG(!ok, "%s: the spec-literal decoder accepts it", label.c_str());
}

void test_bad_payloads(Rng& rng) {
  const Sample s = make_sample(rng, true);
  const uint64_t n = s.codes.size();
  try {
    decode(n, ecq_params("0.5", 256, s.payload.size()), s.payload);
  } catch (const std::exception& e) {
    CHECK_MSG(false, "the sample payload is refused: %s", e.what());
  }
  auto with = [&](auto edit) {
    std::vector<uint8_t> p = s.payload;
    edit(p);
    return p;
  };
  expect_refused("S = 0", "alphabet size S = 0", n, with([](auto& p) { put_u32(p, 0, 0); }), Refused::by_check);
  expect_refused("S = 32769", "alphabet size S = 32769", n, with([](auto& p) { put_u32(p, 0, 32769); }), Refused::by_check);
  expect_refused("S too large for the payload", "too short for the frequency table", n,
                 with([](auto& p) { put_u32(p, 0, 32768); }), Refused::by_check);
  expect_refused("lo below -2^24", "gives codes outside [-2^24, 2^24]", n,
                 with([](auto& p) { put_u32(p, 4, uint32_t(-(1 << 24) - 1)); }), Refused::by_check);
  expect_refused("lo + S - 1 above 2^24", "gives codes outside [-2^24, 2^24]", n,
                 with([&](auto& p) { put_u32(p, 4, uint32_t((1 << 24) - s.S + 2)); }), Refused::by_check);
  auto add_to_f0 = [](std::vector<uint8_t>& p, int delta) {
    const int f0 = (p[8] | p[9] << 8) + delta;
    p[8] = uint8_t(f0);
    p[9] = uint8_t(f0 >> 8);
  };
  expect_refused("sum of f + 1", "frequencies sum to 32769", n, with([&](auto& p) { add_to_f0(p, 1); }), Refused::by_check);
  expect_refused("sum of f - 1", "frequencies sum to 32767", n, with([&](auto& p) { add_to_f0(p, -1); }), Refused::by_check);
  expect_refused("nonzero padding", "padding", n, with([&](auto& p) { p[s.A - 1] = 1; }), Refused::by_check);
  expect_refused("e[0] < 4", "stream offset e[0] = 3", n, with([&](auto& p) { put_u32(p, s.A, 3); }), Refused::by_check);
  expect_refused("e[1] < e[0] + 4", "chunk 1: stream offset", n,
                 with([&](auto& p) { put_u32(p, s.A + 4, u32_at(p, s.A) + 3); }), Refused::by_check);
  const size_t last_e = size_t(s.A + 4 * (s.nc - 1));
  expect_refused("last e truncated", "the streams end at byte", n,
                 with([&](auto& p) { put_u32(p, last_e, u32_at(p, last_e) - 1); }), Refused::by_check);
  expect_refused("last e extended", "the streams end at byte", n,
                 with([&](auto& p) { put_u32(p, last_e, u32_at(p, last_e) + 1); }), Refused::by_check);
  expect_refused("e[3] moved by one", "chunk 3:", n,
                 with([&](auto& p) { put_u32(p, s.A + 12, u32_at(p, s.A + 12) - 1); }), Refused::by_decoding);
  expect_refused("initial state of chunk 4 >= 2^31", "chunk 4: initial state", n,
                 with([&](auto& p) { p[size_t(s.B + u32_at(p, s.A + 12) + 3)] |= 0x80; }), Refused::by_decoding);
  expect_refused("payload extended by one byte", "the streams end at byte", n, with([](auto& p) { p.push_back(0); }), Refused::by_check);
  expect_refused("payload truncated into e[]", "too short for the offsets", n,
                 with([&](auto& p) { p.resize(size_t(s.B - 1)); }), Refused::by_check);
  expect_refused("payload of 8 bytes", "too short for the frequency table", n,
                 with([](auto& p) { p.resize(8); }), Refused::by_check);
  // Moving a boundary between streams: both streams keep >= 4 bytes but are wrong.
  expect_refused("e[0] moved by one", "chunk 0:", n, with([&](auto& p) { put_u32(p, s.A, u32_at(p, s.A) + 1); }), Refused::by_decoding);
  expect_refused("initial state >= 2^31", "chunk 1: initial state", n,
                 with([&](auto& p) { p[size_t(s.B + u32_at(p, s.A) + 3)] |= 0x80; }), Refused::by_decoding);
  expect_refused("initial state < 2^23", "chunk 2: initial state 8388607", n, with([&](auto& p) {
                   put_u32(p, size_t(s.B + u32_at(p, s.A + 4)), (1u << 23) - 1);
                 }), Refused::by_decoding);
  // Chunk 0's stream replaced by the bare state 2^23: decoding needs bytes it has not.
  {
    std::vector<uint8_t> p(s.payload.begin(), s.payload.begin() + std::ptrdiff_t(s.B));
    p.resize(p.size() + 4);
    put_u32(p, p.size() - 4, 1u << 23);
    const uint32_t e0 = u32_at(s.payload, s.A);
    p.insert(p.end(), s.payload.begin() + std::ptrdiff_t(s.B + e0), s.payload.end());
    for (uint64_t c = 0; c < s.nc; ++c)
      put_u32(p, size_t(s.A + 4 * c), u32_at(s.payload, size_t(s.A + 4 * c)) - e0 + 4);
    expect_refused("stream overrun", "chunk 0: decoding element 0 reads past the end of the stream", n, p, Refused::by_decoding);
  }
  // A stream whose last byte is 0, cut by that byte: reading zeros past its end would
  // decode the same codes and end in state 2^23, but a read past the end is an error.
  {
    bool found = false;
    for (int attempt = 0; attempt < 20000 && !found; ++attempt) {
      const Sample z = make_sample(rng, attempt % 2 == 0);
      for (uint64_t c = 0; c < 4 && !found; ++c) {
        const uint64_t end = z.B + u32_at(z.payload, size_t(z.A + 4 * c));
        const uint64_t begin = z.B + (c ? u32_at(z.payload, size_t(z.A + 4 * c - 4)) : 0);
        if (end - begin < 6 || z.payload[size_t(end - 1)] != 0) continue;
        found = true;
        std::vector<uint8_t> p = z.payload;
        p.erase(p.begin() + std::ptrdiff_t(end - 1));
        for (uint64_t j = c; j < z.nc; ++j)
          put_u32(p, size_t(z.A + 4 * j), u32_at(p, size_t(z.A + 4 * j)) - 1);
        expect_refused("stream cut by its last (zero) byte",
                       ("chunk " + std::to_string(c) + ": decoding element").c_str(), z.codes.size(), p, Refused::by_decoding);
      }
    }
    CHECK_MSG(found, "no sample stream ends in a zero byte");
  }
  // Single-symbol payloads: the state never changes, so it must start at 2^23, and the
  // stream must be exactly its 4 bytes.
  {
    const std::vector<int32_t> one(300, 1);
    const std::vector<uint8_t> good = enc::ecq_encode(one.data(), one.size(), 256);
    std::vector<uint8_t> p = good;
    p[size_t(p.size() - 4)] = 1;  // chunk 1's state 2^23 + 1
    expect_refused("final state", "chunk 1: final state 8388609 is not 2^23", 300, p, Refused::by_decoding);
    p = good;
    p.insert(p.begin() + std::ptrdiff_t(p.size() - 4), 0);  // chunk 0 gets a 5th byte
    put_u32(p, 12, 5);  // e[] at A = 12
    put_u32(p, 16, 9);
    expect_refused("unread bytes", "chunk 0: 1 bytes of the stream are left unread", 300, p, Refused::by_decoding);
  }
  // Every single-byte change of the streams: a SeedError or (rarely) another valid
  // payload, never a crash; the native check agrees with the spec-literal decoder.
  int detected = 0, total = 0, disagree = 0;
  for (size_t i = size_t(s.B); i < s.payload.size(); ++i)
    for (uint8_t mask : {uint8_t(0x01), uint8_t(0x10), uint8_t(0x80), uint8_t(0xFF)}) {
      std::vector<uint8_t> p = s.payload;
      p[i] ^= mask;
      ++total;
      bool refused = false;
      try {
        decode(n, ecq_params("0.5", 256, p.size()), p);
      } catch (const SeedError&) {
        refused = true;
      }
      detected += refused;
      bool ok = false;
      reference_decode(p, n, 256, ok);
      disagree += ok == refused;
    }
  std::printf("stream byte changes: %d of %d refused\n", detected, total);
  CHECK_MSG(disagree == 0, "%d stream changes judged differently by the spec-literal decoder", disagree);
  CHECK_MSG(detected * 10 >= total * 9, "only %d of %d stream changes refused", detected, total);
  // Every truncation of the payload (with bytes = its length) is refused.
  int truncations_accepted = 0;
  for (size_t len = 8; len < s.payload.size(); ++len) {  // bytes < 8: a params error (test_bad_params)
    std::vector<uint8_t> p(s.payload.begin(), s.payload.begin() + std::ptrdiff_t(len));
    try {
      decode(n, ecq_params("0.5", 256, len), p);
      ++truncations_accepted;
    } catch (const SeedError&) {
    }
  }
  CHECK_MSG(truncations_accepted == 0, "%d truncations accepted", truncations_accepted);
  // An even S: the table has no padding; a padding edit hits f[] instead.
  const Sample even = make_sample(rng, false);
  try {
    decode(even.codes.size(), ecq_params("0.5", 256, even.payload.size()), even.payload);
  } catch (const std::exception& e) {
    CHECK_MSG(false, "even-S sample refused: %s", e.what());
  }
}

void test_bad_params() {
  const std::vector<int32_t> codes(300, 2);
  const std::vector<uint8_t> p = enc::ecq_encode(codes.data(), codes.size(), 256);
  const std::string m = std::to_string(p.size());
  auto refuse = [&](const std::string& label, const char* needle, const std::string& params) {
    CHECK_SEED_ERROR_HAS(label, needle, decode(300, params, p));
  };
  auto accept = [&](const std::string& label, const std::string& params, float step) {
    try {
      const std::vector<float> out = decode(300, params, p);
      CHECK_MSG(out[0] == 2.0f * step, "%s: decoded %a", label.c_str(), double(out[0]));
    } catch (const std::exception& e) {
      CHECK_MSG(false, "%s refused: %s", label.c_str(), e.what());
    }
  };
  accept("step 0.1f exactly", ecq_params("0.100000001490116119384765625", 256, p.size()), 0.1f);
  accept("step 0.1f as %.17g", ecq_params(step_json(0.1f), 256, p.size()), 0.1f);
  accept("step 1 (an integer)", ecq_params("1", 256, p.size()), 1.0f);
  accept("step 2^-100", ecq_params("7.8886090522101181e-31", 256, p.size()), 0x1p-100f);
  accept("step 2^100", ecq_params("1267650600228229401496703205376", 256, p.size()), 0x1p100f);
  accept("step 2^100 with an exponent", ecq_params("1.267650600228229401496703205376e30", 256, p.size()), 0x1p100f);
  refuse("step 0.1", "is not a binary32 number", ecq_params("0.1", 256, p.size()));
  refuse("step 1 + 2^-30", "is not a binary32 number", ecq_params("1.000000000931322574615478515625", 256, p.size()));
  refuse("step 2^-101", "must be in [2^-100, 2^100]", ecq_params("3.9443045261050590e-31", 256, p.size()));
  refuse("step 2^101", "must be in [2^-100, 2^100]", ecq_params("2535301200456458802993406410752", 256, p.size()));
  refuse("step 0", "must be in [2^-100, 2^100]", ecq_params("0", 256, p.size()));
  refuse("step -0.5", "must be in [2^-100, 2^100]", ecq_params("-0.5", 256, p.size()));
  refuse("step 1e400", "must be in [2^-100, 2^100]", ecq_params("1e400", 256, p.size()));
  refuse("step a string", "params.step must be a number", "{\"step\": \"0.5\", \"chunk\": 256, \"bytes\": " + m + "}");
  refuse("step null", "params.step must be a number", "{\"step\": null, \"chunk\": 256, \"bytes\": " + m + "}");
  refuse("chunk 255", "params.chunk", ecq_params("0.5", 255, p.size()));
  refuse("chunk 2^20 + 1", "params.chunk", ecq_params("0.5", (1 << 20) + 1, p.size()));
  refuse("chunk 256.0", "params.chunk", "{\"step\": 0.5, \"chunk\": 256.0, \"bytes\": " + m + "}");
  refuse("bytes 7", "params.bytes", ecq_params("0.5", 256, 7));
  refuse("bytes 2^40", "params.bytes", ecq_params("0.5", 256, uint64_t(1) << 40));
  refuse("bytes one more than the payload", "payload length", ecq_params("0.5", 256, p.size() + 1));
  refuse("bytes one less than the payload", "payload length", ecq_params("0.5", 256, p.size() - 1));
  refuse("missing step", "lacks key 'step'", "{\"chunk\": 256, \"bytes\": " + m + "}");
  refuse("unknown key", "unknown key 'block'", "{\"step\": 0.5, \"chunk\": 256, \"bytes\": " + m + ", \"block\": 32}");
  // The chunk must match the payload's: 300 elements in chunks of 2^20 is one chunk,
  // not the two the payload has.
  refuse("chunk differs from the encoder's", "the streams end at byte", ecq_params("0.5", 1 << 20, p.size()));
}

}  // namespace

int main() {
  Rng rng(20250601);
  test_round_trips(rng);
  test_encoder_rules();
  test_ranges(rng);
  test_bad_payloads(rng);
  test_bad_params();
  return finish("test_ecq");
}

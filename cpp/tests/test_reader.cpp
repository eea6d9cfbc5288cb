// The reader refuses what format.md does not allow (always with SeedError, never a
// crash): every truncation and every single-byte change of a small valid file,
// header field errors, offsets, huge stats shapes beyond max_bytes, unknown codecs,
// duplicate names, bad JSON, bad params, undecodable payloads. Also CRC-32 and JSON
// parser unit checks, and multi-threaded decoding determinism.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../src/encode/ecq_encode.h"
#include "seedcore/crc32.h"
#include "seedcore/json.h"
#include "seedcore/seed_file.h"
#include "test_util.h"

using namespace seedcore;
using namespace seedtest;

namespace {

std::unique_ptr<SeedFile> open_bytes(const std::vector<uint8_t>& b, uint64_t max_bytes = 0) {
  return SeedFile::from_bytes(b, "mem.seed", max_bytes);
}

// Opens, verifies and decodes everything.
void open_verify_decode(const std::vector<uint8_t>& b) {
  auto f = open_bytes(b);
  f->verify();
  for (size_t i = 0; i < f->tensors().size(); ++i) {
    std::vector<uint8_t> out(size_t(f->tensors()[i].spec.decoded_bytes()));
    f->decode_into(i, out.data(), Isa::scalar);
  }
}

uint32_t u32_at(const std::vector<uint8_t>& b, size_t at) {
  return uint32_t(b[at]) | uint32_t(b[at + 1]) << 8 | uint32_t(b[at + 2]) << 16 | uint32_t(b[at + 3]) << 24;
}

// Runs f, expecting a SeedError whose message contains `needle`.
template <class F>
void check_seed_error_has(const std::string& label, const std::string& needle, F f) {
  std::string what;
  bool seed = false;
  try {
    f();
  } catch (const SeedError& e) {
    seed = true;
    what = e.what();
  } catch (const std::exception& e) {
    what = e.what();
  }
  CHECK_MSG(seed && what.find(needle) != std::string::npos, "%s: expected a SeedError with '%s', got '%s'",
            label.c_str(), needle.c_str(), what.c_str());
}

// An ecq payload of n Laplace-like codes (the native encoder's output) and its params.
std::vector<uint8_t> ecq_payload(Rng& rng, uint64_t n, uint32_t chunk) {
  std::vector<int32_t> codes(static_cast<size_t>(n));
  for (auto& c : codes) c = int32_t(rng() % 9) + int32_t(rng() % 9) - 8;
  return seedcore::encode::ecq_encode(codes.data(), codes.size(), chunk);
}
std::string ecq_params(const char* step, uint32_t chunk, const std::vector<uint8_t>& payload) {
  return std::string("{\"step\": ") + step + ", \"chunk\": " + std::to_string(chunk) +
         ", \"bytes\": " + std::to_string(payload.size()) + "}";
}

std::vector<TensorDesc> small_valid_tensors(Rng& rng) {
  std::vector<TensorDesc> t;
  t.push_back({"w.prng", {3, 7}, "float32", "prng", "{\"C\": 8, \"P\": 3, \"K\": 12, \"exp_bias\": -5}",
               random_prng_payload(rng, 21, 8, 3, 12), ""});
  t.push_back({"w.q8", {40}, "float16", "q8", "{\"block\": 32}", random_blockq_payload(rng, 40, false, false), ""});
  t.push_back({"w.q4", {2, 17}, "bfloat16", "q4", "{\"block\": 32}", random_blockq_payload(rng, 34, true, false), ""});
  t.push_back({"w.stats", {4, 6}, "float32", "stats", "{\"k\": 2, \"seed\": 99}",
               stats_payload(0.5f, 1.0f, 0.25f, {2.0f, 1.0f}), ""});
  t.push_back({"ids", {5}, "int64", "raw", "{\"storage\": \"int64\"}", random_bytes(rng, 40), ""});
  t.push_back({"mask", {3}, "bool", "raw", "{\"storage\": \"bool\"}", {1, 0, 1}, ""});
  t.push_back({"empty", {0, 4}, "float32", "raw", "{\"storage\": \"float16\"}", {}, ""});
  t.push_back({"scalar", {}, "float64", "raw", "{\"storage\": \"float32\"}", {0, 0, 128, 63}, ""});
  const std::vector<uint8_t> ecq = ecq_payload(rng, 300, 256);
  t.push_back({"w.ecq", {3, 100}, "float32", "ecq", ecq_params("0.25", 256, ecq), ecq, ""});
  return t;
}

void test_crc32() {
  CHECK(crc32("123456789", 9) == 0xCBF43926u);
  CHECK(crc32("", 0) == 0);
  std::string s(1000, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = char(i * 7 + 3);
  for (size_t cut : {0, 1, 15, 16, 17, 500, 999}) CHECK(crc32(s.data() + cut, s.size() - cut, crc32(s.data(), cut)) == crc32(s.data(), s.size()));
  CHECK(crc32("The quick brown fox jumps over the lazy dog", 43) == 0x414FA339u);
}

// number_value gives every number's value as strtod does in the "C" locale (this test
// process never calls setlocale), bit for bit, including out-of-range tokens.
void test_json_numbers() {
  const char* tokens[] = {"0", "-0", "0.0", "-0.0", "1", "-7", "6", "1e-12", "1E-5", "-1.5e+3", "0.1", "3.14159",
                          "9007199254740993", "18446744073709551615", "18446744073709551616",
                          "123456789012345678901234567890", "1e400", "-1e400", "1e-400", "-1e-400", "4e-320",
                          "2.2250738585072011e-308", "1.7976931348623157e308", "1.7976931348623159e308",
                          "0.000000000000000000000000001e-300", "0e999999999999", "10e-325", "2.5e-324",
                          "100000000000000000000000e-330", "0.00001e313"};
  std::string text = "[";
  for (const char* t : tokens) text += std::string(text.size() > 1 ? "," : "") + t;
  const JsonDocument d = JsonDocument::parse(text + "]", "numbers");
  uint32_t node = d.node(d.root()).first;
  for (const char* t : tokens) {
    const double want = std::strtod(t, nullptr), got = d.number_value(node);
    CHECK_MSG(std::memcmp(&want, &got, sizeof want) == 0, "number_value(%s) = %.17g, strtod gives %.17g", t, got,
              want);
    node = d.node(node).next;
  }
  CHECK_THROWS_SEED("number_value of a string", d.number_value(d.root()));
}

void test_json() {
  auto ok = [](const std::string& t) {
    try { JsonDocument::parse(t, "json"); return true; } catch (const SeedError&) { return false; }
  };
  for (const char* good : {"{}", "[]", "0", "-0", "1e5", "-1.5E-3", "\"\\u00e9\\ud83d\\ude00\"", " {\"a\" : [1, 2, {\"b\": null}]} ",
                           "true", "\"\xc3\xa9\xf0\x9f\x98\x80\"", "{\"a\":1,\"A\":2}", "18446744073709551616"})
    CHECK_MSG(ok(good), "valid JSON refused: %s", good);
  for (const char* bad : {"", " ", "{", "{\"a\":1,}", "[1,]", "[1 2]", "01", "1.", ".5", "+1", "-", "1e", "NaN",
                          "Infinity", "nul", "tru", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"",
                          "\"\\ud800\\u0041\"", "\"a\tb\"", "{\"a\":1,\"a\":2}", "{} x", "{}{}", "\xef\xbb\xbf{}",
                          "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\x80\"", "\"\xe2\x82\"",
                          "{1:2}", "[1]]"})
    CHECK_MSG(!ok(bad), "invalid JSON accepted: %s", bad);
  CHECK(!ok(std::string("[1]\0", 4)));
  std::string deep64(64, '['), deep65(65, '[');
  deep64 += std::string(64, ']');
  deep65 += std::string(65, ']');
  CHECK(ok(deep64));
  CHECK(!ok(deep65));
  std::string very_deep(100000, '[');  // must not recurse 100000 deep
  CHECK(!ok(very_deep));
  // Duplicate keys in a large object (hash-set path) and nested large objects.
  std::string big = "{";
  for (int i = 0; i < 100; ++i) big += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":{\"x\":1,\"y\":2}";
  CHECK(ok(big + "}"));
  CHECK(!ok(big + ",\"k57\":0}"));
  const JsonDocument d = JsonDocument::parse("{\"s\": \"a\\n\\u00e9\\ud83d\\ude00\", \"n\": -42, \"u\": 18446744073709551615}", "j");
  CHECK(d.string_value(d.find(0, "s")) == "a\n\xc3\xa9\xf0\x9f\x98\x80");
  int64_t v = 0;
  CHECK(d.integer_in(d.find(0, "n"), -100, 0, v) && v == -42);
  uint64_t u = 0;
  CHECK(d.unsigned_integer(d.find(0, "u"), u) && u == UINT64_MAX);
  test_json_numbers();
}

void test_valid_file_and_threads(Rng& rng) {
  const std::vector<uint8_t> f = build_seed(small_valid_tensors(rng));
  try {
    open_verify_decode(f);
  } catch (const std::exception& e) {
    CHECK_MSG(false, "small valid file refused: %s", e.what());
  }
  // Larger file: decode_many with 1, 2 and 5 threads gives identical bytes.
  std::vector<TensorDesc> t;
  for (int i = 0; i < 12; ++i) {
    const uint64_t n = 10000 + 997 * uint64_t(i);
    t.push_back({"t" + std::to_string(i), {n}, "float32", "prng", "{\"C\": 8, \"P\": 4, \"K\": 16, \"exp_bias\": -14}",
                 random_prng_payload(rng, n, 8, 4, 16), ""});
    t.push_back({"q" + std::to_string(i), {n}, "float32", "q4", "{\"block\": 32}", random_blockq_payload(rng, n, true, false), ""});
  }
  auto file = open_bytes(build_seed(t));
  std::vector<std::vector<uint8_t>> ref;
  for (unsigned threads : {1u, 2u, 5u}) {
    std::vector<std::vector<uint8_t>> outs;
    std::vector<size_t> idx;
    std::vector<void*> ptrs;
    for (size_t i = 0; i < file->tensors().size(); ++i) {
      outs.emplace_back(size_t(file->tensors()[i].spec.decoded_bytes()));
      idx.push_back(i);
    }
    for (auto& o : outs) ptrs.push_back(o.data());
    file->decode_many(idx, ptrs, threads, resolve_impl("auto"));
    if (ref.empty()) ref = outs;
    CHECK_MSG(outs == ref, "decode_many with %u threads differs", threads);
  }
  // Mapped from disk, decode_many and release_payload drop payload pages from RSS
  // (MADV_DONTNEED); decoding again reads them back from the page cache, unchanged.
  {
    const std::vector<uint8_t> big = build_seed(t);
    char big_path[] = "/tmp/seedcore_test_XXXXXX";
    const int big_fd = mkstemp(big_path);
    CHECK(big_fd >= 0);
    if (big_fd >= 0) {
      CHECK(write(big_fd, big.data(), big.size()) == ssize_t(big.size()));
      ::close(big_fd);
      try {
        SeedFile sf(big_path);
        for (int round = 0; round < 2; ++round) {
          std::vector<std::vector<uint8_t>> outs;
          std::vector<size_t> idx;
          std::vector<void*> ptrs;
          for (size_t i = 0; i < sf.tensors().size(); ++i) {
            outs.emplace_back(size_t(sf.tensors()[i].spec.decoded_bytes()));
            idx.push_back(i);
          }
          for (auto& o : outs) ptrs.push_back(o.data());
          sf.decode_many(idx, ptrs, 2, resolve_impl("auto"));
          CHECK_MSG(outs == ref, "decode_many of a mapped file differs (round %d)", round);
          for (size_t i = 0; i < sf.tensors().size(); ++i) sf.release_payload(i);
        }
        sf.verify();
        std::vector<uint8_t> one(size_t(sf.tensors()[3].spec.decoded_bytes()));
        sf.decode_into(3, one.data(), resolve_impl("auto"));
        CHECK_MSG(one == ref[3], "decode_into after release_payload differs");
      } catch (const std::exception& e) {
        CHECK_MSG(false, "mapped decode with releases failed: %s", e.what());
      }
      unlink(big_path);
    }
  }
  // Through a real file and mmap, then close.
  char path[] = "/tmp/seedcore_test_XXXXXX";
  const int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd >= 0) {
    CHECK(write(fd, f.data(), f.size()) == ssize_t(f.size()));
    ::close(fd);
    try {
      SeedFile sf(path);
      sf.verify();
      CHECK(sf.tensors().size() == 9 && sf.file_length() == f.size());
      sf.close();
      CHECK_THROWS_SEED("decode after close", {
        float x;
        sf.decode_into(0, &x, Isa::scalar);
      });
    } catch (const std::exception& e) {
      CHECK_MSG(false, "mmap open failed: %s", e.what());
    }
    // Truncated copies on disk.
    for (size_t len : {size_t(0), size_t(10), size_t(63), size_t(64), size_t(200), f.size() - 1}) {
      FILE* out = std::fopen(path, "wb");
      std::fwrite(f.data(), 1, len, out);
      std::fclose(out);
      CHECK_THROWS_SEED("truncated file on disk to " + std::to_string(len), SeedFile sf(path));
    }
    unlink(path);
  }
  CHECK_THROWS_SEED("missing file", SeedFile sf("/nonexistent/x.seed"));
  CHECK_THROWS_SEED("directory", SeedFile sf("/tmp"));
}

// Tensors large enough that decode_many cuts them into pieces (each spans several
// 2 MiB output windows; prng_big is above the 8 MiB size from which decode_into
// streams its output, which decode_many never does), for every codec, with partial
// last blocks: decode_many on 1, 2 and 5 threads must equal decode_into byte for byte.
// A corrupt payload must be refused before any output byte is written.
// Output buffers for decode_many over every tensor of `file`, each filled with 0xA5.
struct ManyOutputs {
  std::vector<std::vector<uint8_t>> outs;
  std::vector<size_t> idx;
  std::vector<void*> ptrs;
};
ManyOutputs filled_outputs(const SeedFile& file) {
  ManyOutputs m;
  const size_t count = file.tensors().size();
  m.outs.resize(count);
  for (size_t i = 0; i < count; ++i) {
    m.outs[i].assign(size_t(file.tensors()[i].spec.decoded_bytes()), 0xA5);
    m.idx.push_back(i);
    m.ptrs.push_back(m.outs[i].data());
  }
  return m;
}

void test_split_decoding(Rng& rng) {
  std::vector<TensorDesc> t;
  const char* prng84 = "{\"C\": 8, \"P\": 4, \"K\": 16, \"exp_bias\": -14}";
  t.push_back({"prng_big", {2200003}, "float32", "prng", prng84, random_prng_payload(rng, 2200003, 8, 4, 16), ""});
  t.push_back({"prng_c12", {1100005}, "float32", "prng", "{\"C\": 12, \"P\": 3, \"K\": 12, \"exp_bias\": -3}",
               random_prng_payload(rng, 1100005, 12, 3, 12), ""});
  t.push_back({"q8", {1100017}, "float32", "q8", "{\"block\": 32}", random_blockq_payload(rng, 1100017, false, false), ""});
  t.push_back({"q4", {1031, 1067}, "float16", "q4", "{\"block\": 32}", random_blockq_payload(rng, 1031 * 1067, true, false), ""});
  t.push_back({"f16", {1200001}, "float32", "raw", "{\"storage\": \"float16\"}", random_bytes(rng, 2 * 1200001), ""});
  t.push_back({"bf16", {2300001}, "bfloat16", "raw", "{\"storage\": \"bfloat16\"}", random_bytes(rng, 2 * 2300001), ""});
  t.push_back({"f32", {1100003}, "float32", "raw", "{\"storage\": \"float32\"}", random_bytes(rng, 4 * 1100003), ""});
  t.push_back({"i64", {600001}, "int64", "raw", "{\"storage\": \"int64\"}", random_bytes(rng, 8 * 600001), ""});
  t.push_back({"stats", {1100, 1001}, "float32", "stats", "{\"k\": 4, \"seed\": 9}",
               stats_payload(0.01f, 0.5f, 0.1f, {3.0f, 2.0f, 1.0f, 0.5f}), ""});
  const std::vector<uint8_t> ecq = ecq_payload(rng, 1200007, 4096);
  t.push_back({"ecq", {1200007}, "float16", "ecq", ecq_params("0.001953125", 4096, ecq), ecq, ""});
  t.push_back({"small", {1000}, "float32", "prng", prng84, random_prng_payload(rng, 1000, 8, 4, 16), ""});
  auto file = open_bytes(build_seed(t));
  const size_t count = file->tensors().size();
  for (const char* impl : {"scalar", "auto"}) {
    const Isa isa = resolve_impl(impl);
    std::vector<std::vector<uint8_t>> ref(count);
    for (size_t i = 0; i < count; ++i) {
      ref[i].resize(size_t(file->tensors()[i].spec.decoded_bytes()));
      file->decode_into(i, ref[i].data(), isa);
    }
    for (unsigned threads : {1u, 2u, 5u}) {
      ManyOutputs m = filled_outputs(*file);
      file->decode_many(m.idx, m.ptrs, threads, isa);
      for (size_t i = 0; i < count; ++i)
        CHECK_MSG(m.outs[i] == ref[i], "%s: tensor %s differs with %u threads", impl,
                  file->tensors()[i].name.c_str(), threads);
    }
  }
  // A broken ecq stream (chunk 150 of 293, CRC right): refused by decode_many while
  // decoding (the payload's structure passes), naming the tensor and the chunk.
  {
    std::vector<TensorDesc> tb = t;
    std::vector<uint8_t>& p = tb[9].payload;
    CHECK(tb[9].name == "ecq");
    const uint64_t S = u32_at(p, 0), A = (8 + 2 * S + 3) / 4 * 4, B = A + 4 * 293;
    p[size_t(B + (u32_at(p, size_t(A + 4 * 149)) + u32_at(p, size_t(A + 4 * 150))) / 2)] ^= 0x24;
    auto bad = open_bytes(build_seed(tb));
    for (unsigned threads : {1u, 2u, 5u}) {
      ManyOutputs m = filled_outputs(*bad);
      check_seed_error_has("broken ecq stream in decode_many on " + std::to_string(threads) + " threads",
                           "mem.seed: tensor 'ecq' (codec ecq): chunk 150: ",
                           [&] { bad->decode_many(m.idx, m.ptrs, threads, Isa::scalar); });
    }
  }
  // One flipped payload byte in the last tensor: nothing may be written anywhere.
  std::vector<uint8_t> bytes = build_seed(t);
  const TensorEntry& last = file->tensors().back();
  bytes[size_t(last.offset + 5)] ^= 0x10;
  auto bad = open_bytes(bytes);
  for (unsigned threads : {1u, 2u}) {
    ManyOutputs m = filled_outputs(*bad);
    CHECK_THROWS_SEED("corrupt payload in decode_many", bad->decode_many(m.idx, m.ptrs, threads, Isa::scalar));
    bool untouched = true;
    for (const auto& o : m.outs)
      for (uint8_t b : o) untouched = untouched && b == 0xA5;
    CHECK_MSG(untouched, "decode_many wrote output before refusing a corrupt payload (%u threads)", threads);
  }
}

void test_truncations_and_flips(Rng& rng) {
  const std::vector<uint8_t> f = build_seed(small_valid_tensors(rng));
  std::printf("small valid file: %zu bytes\n", f.size());
  for (size_t len = 0; len < f.size(); ++len) {
    std::vector<uint8_t> t(f.begin(), f.begin() + std::ptrdiff_t(len));
    CHECK_THROWS_SEED("truncated to " + std::to_string(len), open_verify_decode(t));
  }
  // Every byte, XORed with several masks; all 255 changes for the header.
  int flips = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    const int last = i < 64 ? 255 : 3;
    for (int k = 1; k <= last; ++k) {
      const uint8_t mask = i < 64 ? uint8_t(k) : (k == 1 ? 0x01 : k == 2 ? 0x80 : 0xFF);
      std::vector<uint8_t> t = f;
      t[i] ^= mask;
      ++flips;
      CHECK_THROWS_SEED("byte " + std::to_string(i) + " ^= " + std::to_string(mask), open_verify_decode(t));
    }
  }
  std::printf("single-byte changes checked: %d\n", flips);
  // Appended bytes.
  std::vector<uint8_t> longer = f;
  longer.push_back(0);
  CHECK_THROWS_SEED("extended by one byte", open_verify_decode(longer));
}

// A file whose tensor entry is given as raw JSON (offset computed by the builder).
std::vector<uint8_t> file_with_entry(const std::string& entry_fields, const std::vector<uint8_t>& payload,
                                     const std::string& name = "x") {
  TensorDesc d{name, {}, "", "", "", payload, ""};
  // Build metadata manually: the fields plus offset/length/crc.
  std::vector<uint8_t> f;
  uint64_t data_offset = 64;
  std::string meta;
  for (int iter = 0; iter < 8; ++iter) {
    meta = "{\"format\": \"seedcore\", \"format_version\": 1, \"model\": {\"name\": \"m\", \"source\": \"s\"}, "
           "\"tool\": {\"name\": \"t\", \"version\": \"v\"}, \"graph\": null, \"provenance\": null, "
           "\"tensors\": [{\"name\": \"" + name + "\", " + entry_fields + ", \"offset\": " + std::to_string(data_offset) +
           ", \"length\": " + std::to_string(payload.size()) +
           ", \"crc32\": " + std::to_string(crc32(payload.data(), payload.size())) + "}]}";
    const uint64_t next = align64(64 + meta.size());
    if (next == data_offset) break;
    data_offset = next;
  }
  std::vector<TensorDesc> tensors = {d};
  return build_seed(tensors, "", &meta);
}

void test_entry_rules(Rng& rng) {
  const auto prng_payload = random_prng_payload(rng, 16, 8, 4, 16);
  auto good = file_with_entry("\"shape\": [16], \"dtype\": \"float32\", \"codec\": \"prng\", \"params\": {\"C\": 8, \"P\": 4, \"K\": 16, \"exp_bias\": -14}", prng_payload);
  try { open_verify_decode(good); } catch (const std::exception& e) { CHECK_MSG(false, "entry baseline refused: %s", e.what()); }

  struct Bad { const char* label; std::string fields; std::vector<uint8_t> payload; };
  const std::vector<uint8_t> q8_32 = random_blockq_payload(rng, 32, false, false);
  const std::vector<uint8_t> ecq300 = ecq_payload(rng, 300, 256);
  const std::vector<Bad> bads = {
      {"unknown codec", "\"shape\": [32], \"dtype\": \"float32\", \"codec\": \"q5\", \"params\": {\"block\": 32}", q8_32},
      {"unknown dtype", "\"shape\": [32], \"dtype\": \"float8\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32},
      {"block 64", "\"shape\": [32], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 64}", q8_32},
      {"block 32.0", "\"shape\": [32], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32.0}", q8_32},
      {"block 3.2e1", "\"shape\": [32], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 3.2e1}", q8_32},
      {"extra param", "\"shape\": [32], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32, \"x\": 1}", q8_32},
      {"missing param", "\"shape\": [32], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {}", q8_32},
      {"params not object", "\"shape\": [32], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": [32]", q8_32},
      {"q8 on int", "\"shape\": [32], \"dtype\": \"int8\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32},
      {"length mismatch", "\"shape\": [33], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32},
      {"shape negative", "\"shape\": [-32], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32},
      {"shape float", "\"shape\": [32.0], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32},
      {"shape 9 dims", "\"shape\": [1,1,1,1,1,1,1,1,32], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32},
      {"dim 2^32", "\"shape\": [4294967296, 0], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32},
      {"n 2^32", "\"shape\": [65536, 65536], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32},
      {"n overflow", "\"shape\": [4294967295, 4294967295, 4294967295], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32},
      {"raw storage mismatch", "\"shape\": [8], \"dtype\": \"int32\", \"codec\": \"raw\", \"params\": {\"storage\": \"int64\"}", random_bytes(rng, 64)},
      {"raw float storage int", "\"shape\": [8], \"dtype\": \"float32\", \"codec\": \"raw\", \"params\": {\"storage\": \"int32\"}", random_bytes(rng, 32)},
      {"bool byte 2", "\"shape\": [3], \"dtype\": \"bool\", \"codec\": \"raw\", \"params\": {\"storage\": \"bool\"}", {1, 2, 0}},
      {"prng P > C", "\"shape\": [16], \"dtype\": \"float32\", \"codec\": \"prng\", \"params\": {\"C\": 2, \"P\": 3, \"K\": 16, \"exp_bias\": 0}", prng_payload},
      {"prng K 17", "\"shape\": [16], \"dtype\": \"float32\", \"codec\": \"prng\", \"params\": {\"C\": 8, \"P\": 4, \"K\": 17, \"exp_bias\": 0}", prng_payload},
      {"prng K 7", "\"shape\": [16], \"dtype\": \"float32\", \"codec\": \"prng\", \"params\": {\"C\": 8, \"P\": 4, \"K\": 7, \"exp_bias\": 0}", prng_payload},
      {"prng C 65", "\"shape\": [16], \"dtype\": \"float32\", \"codec\": \"prng\", \"params\": {\"C\": 65, \"P\": 4, \"K\": 16, \"exp_bias\": 0}", prng_payload},
      {"prng e0 101", "\"shape\": [16], \"dtype\": \"float32\", \"codec\": \"prng\", \"params\": {\"C\": 8, \"P\": 4, \"K\": 16, \"exp_bias\": 101}", prng_payload},
      {"prng seed 0", "\"shape\": [16], \"dtype\": \"float32\", \"codec\": \"prng\", \"params\": {\"C\": 8, \"P\": 4, \"K\": 16, \"exp_bias\": 0}",
       [&] { auto p = prng_payload; p[2] = 0; p[3] = 0; return p; }()},
      {"prng unused exponent bits", "\"shape\": [8], \"dtype\": \"float32\", \"codec\": \"prng\", \"params\": {\"C\": 8, \"P\": 4, \"K\": 16, \"exp_bias\": 0}",
       [&] { auto p = random_prng_payload(rng, 8, 8, 4, 16); p[2] |= 0x10; return p; }()},
      {"prng unused seed bits", "\"shape\": [8], \"dtype\": \"float32\", \"codec\": \"prng\", \"params\": {\"C\": 8, \"P\": 3, \"K\": 12, \"exp_bias\": 0}",
       [&] { auto p = random_prng_payload(rng, 8, 8, 3, 12); p[1] |= 0x80; return p; }()},
      {"prng unused mantissa bits", "\"shape\": [8], \"dtype\": \"float32\", \"codec\": \"prng\", \"params\": {\"C\": 8, \"P\": 3, \"K\": 16, \"exp_bias\": 0}",
       [&] { auto p = random_prng_payload(rng, 8, 8, 3, 16); p.back() |= 0x10; return p; }()},
      {"stats k on 1-D", "\"shape\": [16], \"dtype\": \"float32\", \"codec\": \"stats\", \"params\": {\"k\": 1, \"seed\": 0}", stats_payload(0, 1, 0, {1})},
      {"stats k > rows", "\"shape\": [2, 16], \"dtype\": \"float32\", \"codec\": \"stats\", \"params\": {\"k\": 3, \"seed\": 0}", stats_payload(0, 1, 0, {3, 2, 1})},
      {"stats seed 2^32", "\"shape\": [16], \"dtype\": \"float32\", \"codec\": \"stats\", \"params\": {\"k\": 0, \"seed\": 4294967296}", stats_payload(0, 1, 0, {})},
      {"stats std < 0", "\"shape\": [16], \"dtype\": \"float32\", \"codec\": \"stats\", \"params\": {\"k\": 0, \"seed\": 1}", stats_payload(0, -1, 0, {})},
      {"stats sparsity > 1", "\"shape\": [16], \"dtype\": \"float32\", \"codec\": \"stats\", \"params\": {\"k\": 0, \"seed\": 1}", stats_payload(0, 1, 1.5f, {})},
      {"stats nan mean", "\"shape\": [16], \"dtype\": \"float32\", \"codec\": \"stats\", \"params\": {\"k\": 0, \"seed\": 1}", stats_payload(NAN, 1, 0, {})},
      {"stats sigma increasing", "\"shape\": [4, 4], \"dtype\": \"float32\", \"codec\": \"stats\", \"params\": {\"k\": 2, \"seed\": 1}", stats_payload(0, 1, 0, {1, 2})},
      {"stats sigma < 0", "\"shape\": [4, 4], \"dtype\": \"float32\", \"codec\": \"stats\", \"params\": {\"k\": 1, \"seed\": 1}", stats_payload(0, 1, 0, {-1})},
      {"ecq on int", "\"shape\": [300], \"dtype\": \"int32\", \"codec\": \"ecq\", \"params\": " + ecq_params("0.25", 256, ecq300), ecq300},
      {"ecq step 0.1", "\"shape\": [300], \"dtype\": \"float32\", \"codec\": \"ecq\", \"params\": " + ecq_params("0.1", 256, ecq300), ecq300},
      {"ecq chunk 128", "\"shape\": [300], \"dtype\": \"float32\", \"codec\": \"ecq\", \"params\": " + ecq_params("0.25", 128, ecq300), ecq300},
      {"ecq bytes mismatch", "\"shape\": [300], \"dtype\": \"float32\", \"codec\": \"ecq\", \"params\": " + ecq_params("0.25", 256, ecq300), [&] { auto p = ecq300; p.push_back(0); return p; }()},
      {"ecq shape mismatch", "\"shape\": [600], \"dtype\": \"float32\", \"codec\": \"ecq\", \"params\": " + ecq_params("0.25", 256, ecq300), ecq300},
      {"ecq stream byte flipped", "\"shape\": [300], \"dtype\": \"float32\", \"codec\": \"ecq\", \"params\": " + ecq_params("0.25", 256, ecq300),
       [&] { auto p = ecq300; p[p.size() - 1] ^= 1; return p; }()},
      {"unknown entry key", "\"shape\": [32], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32}, \"note\": 1", q8_32},
  };
  for (const Bad& b : bads) CHECK_THROWS_SEED(b.label, open_verify_decode(file_with_entry(b.fields, b.payload)));
  // ecq's stream rules are checked by verify and, without it, by decoding (not when
  // opening): each names the tensor and the chunk.
  {
    auto p = ecq300;
    p[p.size() - 1] ^= 1;  // chunk 1's stream (the last)
    auto f = open_bytes(file_with_entry("\"shape\": [300], \"dtype\": \"float32\", \"codec\": \"ecq\", \"params\": " +
                                            ecq_params("0.25", 256, p), p));
    const std::string needle = "mem.seed: tensor 'x' (codec ecq): chunk 1: ";
    std::vector<float> out(300);
    check_seed_error_has("ecq stream: verify", needle, [&] { f->verify(); });
    check_seed_error_has("ecq stream: decode_into", needle, [&] { f->decode_into(0, out.data(), Isa::scalar); });
    for (unsigned threads : {1u, 2u})
      check_seed_error_has("ecq stream: decode_many", needle,
                           [&] { f->decode_many({0}, {out.data()}, threads, resolve_impl("auto")); });
  }
  CHECK_THROWS_SEED("empty name", open_verify_decode(file_with_entry("\"shape\": [32], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32, "")));
  CHECK_THROWS_SEED("name 1025 bytes", open_verify_decode(file_with_entry("\"shape\": [32], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32, std::string(1025, 'a'))));
  try {
    open_verify_decode(file_with_entry("\"shape\": [32], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32, std::string(1024, 'a')));
  } catch (const std::exception& e) { CHECK_MSG(false, "1024-byte name refused: %s", e.what()); }

  // Stats: a huge declared shape with a 12-byte payload must be refused against
  // max_bytes before anything is allocated.
  const auto huge = file_with_entry("\"shape\": [65535, 65535], \"dtype\": \"float32\", \"codec\": \"stats\", \"params\": {\"k\": 0, \"seed\": 1}",
                                    stats_payload(0, 1, 0, {}));
  CHECK_THROWS_SEED("stats beyond max_bytes", open_bytes(huge, uint64_t(1) << 30));
  try { open_bytes(huge, uint64_t(1) << 35); } catch (const std::exception& e) { CHECK_MSG(false, "stats within max_bytes refused: %s", e.what()); }
  // A message names the file, the tensor and the problem.
  try {
    open_verify_decode(file_with_entry("\"shape\": [33], \"dtype\": \"float32\", \"codec\": \"q8\", \"params\": {\"block\": 32}", q8_32, "enc.x"));
  } catch (const SeedError& e) {
    const std::string m = e.what();
    CHECK_MSG(m == "mem.seed: tensor 'enc.x' (codec q8): payload length 34 does not match the 68 bytes that shape [33] needs",
              "message: %s", m.c_str());
  }
}

void test_file_level(Rng& rng) {
  std::vector<TensorDesc> t = small_valid_tensors(rng);
  const std::vector<uint8_t> base = build_seed(t);
  auto refused = [&](const char* label, std::vector<uint8_t> f, bool fix_crc) {
    if (fix_crc) refresh_header_crc(f);
    CHECK_THROWS_SEED(label, open_verify_decode(f));
  };
  { auto f = base; f[0] = 'X'; refused("wrong magic", f, true); }
  { auto f = base; put_u32(f, 8, 2); refused("version 2", f, true); }
  { auto f = base; put_u32(f, 8, 0); refused("version 0", f, true); }
  { auto f = base; put_u32(f, 12, 65); refused("header_size", f, true); }
  { auto f = base; put_u64(f, 16, 128); refused("metadata_offset", f, true); }
  { auto f = base; put_u64(f, 24, 1); refused("metadata_length 1", f, true); }
  { auto f = base; put_u64(f, 24, (16u << 20) + 1); refused("metadata_length > 16 MiB", f, true); }
  { auto f = base; put_u64(f, 24, UINT64_MAX); refused("metadata_length huge", f, true); }
  { auto f = base; put_u64(f, 32, 64); refused("data_offset", f, true); }
  { auto f = base; put_u64(f, 40, f.size() + 64); refused("file_length", f, true); }
  { auto f = base; put_u32(f, 48, 1); refused("flags", f, true); }
  { auto f = base; f[55] = 1; refused("reserved", f, true); }
  { auto f = base; f[60] ^= 1; refused("header crc", f, false); }
  // Duplicate names.
  { auto d = t; d[1].name = d[0].name; refused("duplicate names", build_seed(d), false); }
  // Top-level schema.
  {
    std::string meta = metadata_for(t, 0);
    for (const auto& edit : std::vector<std::pair<std::string, std::string>>{
             {"\"format\": \"seedcore\"", "\"format\": \"seedcorf\""},
             {"\"format_version\": 1", "\"format_version\": 2"},
             {"\"format_version\": 1", "\"format_version\": 1.0"},
             {"\"graph\": null, ", ""},
             {"\"provenance\": null", "\"provenance\": 3"},
             {"\"version\": \"0.1.0\"", "\"version\": 1"},
             {"\"source\": \"cpp/tests\"", "\"source\": \"cpp/tests\", \"x\": 1"},
             {"\"tensors\": [", "\"tensors\": 5, \"t\": ["},
         }) {
      std::string m = metadata_for(t, 0);
      const size_t at = m.find(edit.first);
      CHECK(at != std::string::npos);
      m.replace(at, edit.first.size(), edit.second);
      // Rebuild with this metadata at the right data_offset.
      std::string meta2;
      uint64_t data_offset = 64;
      for (int it = 0; it < 8; ++it) {
        meta2 = metadata_for(t, data_offset);
        const size_t a2 = meta2.find(edit.first);
        meta2.replace(a2, edit.first.size(), edit.second);
        const uint64_t next = align64(64 + meta2.size());
        if (next == data_offset) break;
        data_offset = next;
      }
      CHECK_THROWS_SEED("metadata edit: " + edit.second, open_verify_decode(build_seed(t, "", &meta2)));
    }
    (void)meta;
  }
  // Unknown top-level keys are ignored; graph may be anything.
  try {
    open_verify_decode(build_seed(t, "\"future\": {\"a\": [1, 2.5e3]}, "));
  } catch (const std::exception& e) { CHECK_MSG(false, "unknown top-level key refused: %s", e.what()); }
  // Offsets out of range / not chained.
  {
    std::vector<TensorDesc> one = {t[4]};
    std::vector<uint8_t> f = build_seed(one);
    const std::string meta(reinterpret_cast<const char*>(f.data() + 64), f.size() - 64);
    const uint64_t data_offset = align64(64 + metadata_for(one, 0).size());
    (void)data_offset;
    for (const char* repl : {"\"offset\": 0,", "\"offset\": 18446744073709551615,", "\"offset\": 18446744073709551616,",
                             "\"offset\": -64,", "\"offset\": 1099511627776,"}) {
      std::string m = metadata_for(one, 64);
      uint64_t off = 64;
      for (int it = 0; it < 8; ++it) {
        m = metadata_for(one, off);
        const uint64_t next = align64(64 + m.size());
        if (next == off) break;
        off = next;
      }
      const std::string key = "\"offset\": " + std::to_string(off) + ",";
      const size_t at = m.find(key);
      CHECK(at != std::string::npos);
      m.replace(at, key.size(), repl);
      CHECK_THROWS_SEED(std::string("offset edit ") + repl, open_verify_decode(build_seed(one, "", &m)));
    }
  }
  // Nonzero padding after the metadata and after a payload (header CRC fixed).
  {
    auto f = base;
    uint64_t mlen = 0;
    for (int i = 0; i < 8; ++i) mlen |= uint64_t(f[24 + i]) << (8 * i);
    if ((64 + mlen) % 64 != 0) { f[64 + mlen] = 1; refused("metadata padding", f, true); }
  }
}

}  // namespace

int main() {
  Rng rng(7);
  try {
    test_crc32();
    test_json();
    test_valid_file_and_threads(rng);
    test_split_decoding(rng);
    test_truncations_and_flips(rng);
    test_entry_rules(rng);
    test_file_level(rng);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL: unexpected exception: %s\n", e.what());
    ++failures();
  }
  return finish("test_reader");
}

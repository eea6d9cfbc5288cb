// Minimal test harness + helpers shared by the native tests: CHECK macros that print
// file:line and keep going, a failure count that becomes the exit status, a builder
// for in-memory .seed files, and random valid payloads for every codec.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "seedcore/crc32.h"
#include "seedcore/error.h"

namespace seedtest {

inline int& failures() { static int f = 0; return f; }
inline int& checks() { static int c = 0; return c; }

#define CHECK(cond)                                                                  \
  do {                                                                               \
    ++::seedtest::checks();                                                          \
    if (!(cond)) {                                                                   \
      ++::seedtest::failures();                                                      \
      std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
    }                                                                                \
  } while (0)

#define CHECK_MSG(cond, ...)                                                         \
  do {                                                                               \
    ++::seedtest::checks();                                                          \
    if (!(cond)) {                                                                   \
      ++::seedtest::failures();                                                      \
      std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);            \
      std::fprintf(stderr, __VA_ARGS__);                                             \
      std::fprintf(stderr, "\n");                                                    \
    }                                                                                \
  } while (0)

// Expects `fn` to throw seedcore::SeedError (and nothing else).
#define CHECK_THROWS_SEED(label, ...)                                                \
  do {                                                                               \
    ++::seedtest::checks();                                                          \
    bool threw_ = false;                                                             \
    try { __VA_ARGS__; } catch (const seedcore::SeedError&) { threw_ = true; }       \
    catch (const std::exception& e_) {                                               \
      std::fprintf(stderr, "FAIL %s:%d: %s: threw a non-SeedError: %s\n", __FILE__,   \
                   __LINE__, std::string(label).c_str(), e_.what());                 \
      ++::seedtest::failures(); threw_ = true;                                       \
    }                                                                                \
    if (!threw_) {                                                                   \
      ++::seedtest::failures();                                                      \
      std::fprintf(stderr, "FAIL %s:%d: %s: no SeedError\n", __FILE__, __LINE__,      \
                   std::string(label).c_str());                                      \
    }                                                                                \
  } while (0)

inline int finish(const char* name) {
  if (failures() == 0) {
    std::printf("%s: OK (%d checks)\n", name, checks());
    return 0;
  }
  std::printf("%s: FAILED %d of %d checks\n", name, failures(), checks());
  return 1;
}

// --- building .seed files in memory ---

struct TensorDesc {
  std::string name;
  std::vector<uint64_t> shape;
  std::string dtype, codec, params_json;
  std::vector<uint8_t> payload;
  std::string extra_json;  // appended inside the entry (for negative tests)
};

inline uint64_t align64(uint64_t x) { return (x + 63) & ~uint64_t(63); }

inline void put_u32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = uint8_t(v >> (8 * i));
}
inline void put_u64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = uint8_t(v >> (8 * i));
}

inline std::string json_escape(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += char(c); }
    else if (c < 0x20) { char buf[8]; std::snprintf(buf, sizeof buf, "\\u%04x", c); o += buf; }
    else o += char(c);
  }
  return o + "\"";
}

// Metadata JSON for `tensors` laid out from data_offset. `top_extra` is inserted
// before "tensors" (e.g. "\"x\": 1, ").
inline std::string metadata_for(const std::vector<TensorDesc>& tensors, uint64_t data_offset,
                                const std::string& top_extra = "") {
  std::string j = "{\"format\": \"seedcore\", \"format_version\": 1, "
                  "\"model\": {\"name\": \"test\", \"source\": \"cpp/tests\"}, "
                  "\"tool\": {\"name\": \"seedcore\", \"version\": \"0.1.0\"}, " + top_extra + "\"tensors\": [";
  uint64_t off = data_offset;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorDesc& t = tensors[i];
    if (i) j += ", ";
    j += "{\"name\": " + json_escape(t.name) + ", \"shape\": [";
    for (size_t d = 0; d < t.shape.size(); ++d) j += (d ? ", " : "") + std::to_string(t.shape[d]);
    j += "], \"dtype\": \"" + t.dtype + "\", \"codec\": \"" + t.codec + "\", \"params\": " + t.params_json +
         ", \"offset\": " + std::to_string(off) + ", \"length\": " + std::to_string(t.payload.size()) +
         ", \"crc32\": " + std::to_string(seedcore::crc32(t.payload.data(), t.payload.size())) + t.extra_json + "}";
    off = align64(off + t.payload.size());
  }
  return j + "], \"graph\": null, \"provenance\": null}";
}

// A complete file. Metadata length affects data_offset, which affects the offsets
// written into the metadata: iterate until the length is stable.
inline std::vector<uint8_t> build_seed(const std::vector<TensorDesc>& tensors, const std::string& top_extra = "",
                                       const std::string* metadata_override = nullptr) {
  std::string meta;
  uint64_t data_offset = 64;
  for (int iter = 0; iter < 8; ++iter) {
    meta = metadata_override ? *metadata_override : metadata_for(tensors, data_offset, top_extra);
    const uint64_t next = align64(64 + meta.size());
    if (next == data_offset) break;
    data_offset = next;
  }
  uint64_t end = data_offset;
  for (const TensorDesc& t : tensors) end = align64(end + t.payload.size());
  std::vector<uint8_t> f(end, 0);
  std::memcpy(f.data(), "SEEDCORE", 8);
  put_u32(f, 8, 1);
  put_u32(f, 12, 64);
  put_u64(f, 16, 64);
  put_u64(f, 24, meta.size());
  put_u64(f, 32, data_offset);
  put_u64(f, 40, end);
  std::memcpy(f.data() + 64, meta.data(), meta.size());
  uint64_t off = data_offset;
  for (const TensorDesc& t : tensors) {
    if (!t.payload.empty()) std::memcpy(f.data() + off, t.payload.data(), t.payload.size());
    off = align64(off + t.payload.size());
  }
  put_u32(f, 60, seedcore::crc32(meta.data(), meta.size(), seedcore::crc32(f.data(), 60)));
  return f;
}

// Recomputes the header CRC after a test edited the header or metadata.
inline void refresh_header_crc(std::vector<uint8_t>& f) {
  uint64_t mlen = 0;
  for (int i = 0; i < 8; ++i) mlen |= uint64_t(f[24 + i]) << (8 * i);
  if (f.size() < 64 || mlen > f.size() - 64) return;
  put_u32(f, 60, seedcore::crc32(f.data() + 64, size_t(mlen), seedcore::crc32(f.data(), 60)));
}

// --- random valid payloads ---

using Rng = std::mt19937_64;

inline std::vector<uint8_t> random_bytes(Rng& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = uint8_t(rng());
  return v;
}

// A binary16 that is finite and not too extreme, or (when wild) any bit pattern.
inline uint16_t random_half(Rng& rng, bool wild) {
  if (wild) return uint16_t(rng());
  const uint16_t exp = uint16_t(1 + rng() % 29);  // normal, finite
  return uint16_t((rng() & 1) << 15 | exp << 10 | (rng() & 0x3FF));
}

inline std::vector<uint8_t> random_blockq_payload(Rng& rng, uint64_t n, bool q4, bool wild_scales) {
  const uint64_t nb = (n + 31) / 32;
  std::vector<uint8_t> p = random_bytes(rng, size_t(nb * (q4 ? 18 : 34)));
  for (uint64_t b = 0; b < nb; ++b) {
    const uint16_t h = random_half(rng, wild_scales);
    p[2 * b] = uint8_t(h);
    p[2 * b + 1] = uint8_t(h >> 8);
  }
  return p;
}

// Sets a `bits`-bit value in an LSB-first stream.
inline void put_bits(std::vector<uint8_t>& s, size_t base, uint64_t index, uint32_t bits, uint32_t v) {
  for (uint32_t i = 0; i < bits; ++i) {
    const uint64_t bit = index * bits + i;
    if ((v >> i) & 1) s[base + bit / 8] |= uint8_t(1u << (bit % 8));
  }
}

inline std::vector<uint8_t> random_prng_payload(Rng& rng, uint64_t n, uint32_t C, uint32_t P, uint32_t K) {
  const uint64_t nb = (n + C - 1) / C;
  const uint64_t sb = (nb * K + 7) / 8, eb = (nb + 1) / 2, mb = (nb * P + 1) / 2;
  std::vector<uint8_t> p(size_t(sb + eb + mb), 0);
  for (uint64_t b = 0; b < nb; ++b) {
    const uint32_t seed = uint32_t(1 + rng() % ((1u << K) - 1));
    put_bits(p, 0, b, K, seed);
    put_bits(p, size_t(sb), b, 4, uint32_t(rng() & 15));
  }
  for (uint64_t t = 0; t < nb * P; ++t) put_bits(p, size_t(sb + eb), t, 4, uint32_t(rng() & 15));
  return p;
}

inline void put_f32(std::vector<uint8_t>& p, size_t i, float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  put_u32(p, 4 * i, b);
}

inline std::vector<uint8_t> stats_payload(float mean, float sd, float sparsity, std::vector<float> sigmas) {
  std::vector<uint8_t> p(4 * (3 + sigmas.size()));
  put_f32(p, 0, mean);
  put_f32(p, 1, sd);
  put_f32(p, 2, sparsity);
  for (size_t i = 0; i < sigmas.size(); ++i) put_f32(p, 3 + i, sigmas[i]);
  return p;
}

inline std::vector<uint8_t> read_file(const std::string& path, bool& ok) {
  std::vector<uint8_t> v;
  ok = false;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return v;
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  v.resize(size_t(size));
  ok = size == 0 || std::fread(v.data(), 1, v.size(), f) == v.size();
  std::fclose(f);
  return v;
}

}  // namespace seedtest

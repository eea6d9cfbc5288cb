// Every SIMD kernel available on this machine against its scalar twin, bit for bit
// (bytes, not values: −0.0 and NaN payloads matter), for every codec over many
// shapes and parameters: partial last blocks, n = 0, K 8..16, C/P edge values, stats
// with k 0..8 and sparsity. Both the raw kernels (with prng tables built even for
// tiny inputs) and the full decode path (chunking, non-temporal streaming) are run.
#include <string>
#include <vector>

#include "seedcore/cpu.h"
#include "seedcore/json.h"
#include "seedcore/kernels.h"
#include "seedcore/tensor_spec.h"
#include "test_util.h"

using namespace seedcore;
using namespace seedtest;

namespace {

std::vector<Isa> simd_isas() {
  std::vector<Isa> v;
  for (Isa isa : {Isa::avx2, Isa::neon})
    if (isa_available(isa)) v.push_back(isa);
  return v;
}

TensorSpec spec_of(std::vector<uint64_t> shape, const std::string& dtype, const std::string& codec,
                   const std::string& params) {
  const JsonDocument doc = JsonDocument::parse(params, "test params");
  return make_tensor_spec(std::move(shape), dtype, codec, doc, doc.root(), "test tensor");
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

size_t first_difference(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], 4) != 0) return i;
  return a.size();
}

// Decodes with every ISA through the full path and compares with scalar.
void check_full_decode(const TensorSpec& spec, const std::vector<uint8_t>& payload, const std::string& label) {
  // Canary floats after the output catch writes past the end.
  const size_t n = size_t(spec.n);
  std::vector<float> ref(n + 16, 12345.0f);
  decode_payload(spec, payload.data(), payload.size(), ref.data(), Isa::scalar, label);
  for (size_t i = n; i < n + 16; ++i) CHECK_MSG(ref[i] == 12345.0f, "%s: scalar wrote past the end", label.c_str());
  for (Isa isa : simd_isas()) {
    std::vector<float> got(n + 16, 12345.0f);
    decode_payload(spec, payload.data(), payload.size(), got.data(), isa, label);
    CHECK_MSG(same_bytes(ref, got), "%s: %s differs from scalar at element %zu of %zu", label.c_str(),
              isa_name(isa), first_difference(ref, got), n);
  }
}

void test_raw_conversions(Rng& rng) {
  for (size_t n : {0, 1, 7, 8, 9, 15, 16, 17, 100, 1000, 4099}) {
    std::vector<uint8_t> src = random_bytes(rng, 2 * n);
    // Make sure the interesting classes appear: ±0, subnormals, ±inf, NaNs (incl. sNaN).
    const uint16_t specials[] = {0x0000, 0x8000, 0x0001, 0x83FF, 0x7C00, 0xFC00, 0x7C01, 0x7E00, 0xFD55, 0x3C00};
    for (size_t i = 0; i < n && i < 10; ++i) { src[2 * i] = uint8_t(specials[i]); src[2 * i + 1] = uint8_t(specials[i] >> 8); }
    for (bool bf16 : {false, true}) {
      std::vector<float> ref(n);
      auto fn_of = [&](Isa isa) { const DecodeKernels& k = decode_kernels(isa); return bf16 ? k.convert_bf16_to_f32 : k.convert_f16_to_f32; };
      fn_of(Isa::scalar)(src.data(), n, ref.data());
      for (Isa isa : simd_isas()) {
        std::vector<float> got(n);
        fn_of(isa)(src.data(), n, got.data());
        CHECK_MSG(same_bytes(ref, got), "%s n=%zu %s differs at %zu", bf16 ? "bf16" : "f16", n, isa_name(isa),
                  first_difference(ref, got));
      }
    }
  }
  // Known values of the scalar reference.
  const uint8_t one[2] = {0x00, 0x3C}, tiny[2] = {0x01, 0x00}, snan[2] = {0x01, 0x7C};
  float f;
  decode_kernels(Isa::scalar).convert_f16_to_f32(one, 1, &f);
  CHECK(f == 1.0f);
  decode_kernels(Isa::scalar).convert_f16_to_f32(tiny, 1, &f);
  CHECK(f == 5.9604644775390625e-08f);
  decode_kernels(Isa::scalar).convert_f16_to_f32(snan, 1, &f);
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  CHECK(bits == 0x7F802000u);  // signalling NaN payload kept
  // Full raw path, including a large tensor that takes the streaming path.
  for (uint64_t n : {uint64_t(0), uint64_t(33), uint64_t(3u << 20)}) {
    for (const char* st : {"float16", "bfloat16", "float32"}) {
      const TensorSpec spec = spec_of({n}, "float32", "raw", std::string("{\"storage\": \"") + st + "\"}");
      check_full_decode(spec, random_bytes(rng, size_t(expected_payload_length(spec))),
                        std::string("raw ") + st + " n=" + std::to_string(n));
    }
  }
}

void test_blockq(Rng& rng) {
  for (bool q4 : {false, true}) {
    for (bool wild : {false, true}) {
      for (size_t nb : {1, 2, 3, 8, 33, 257}) {
        std::vector<uint8_t> p = random_blockq_payload(rng, nb * 32, q4, wild);
        std::vector<float> ref(nb * 32);
        const DecodeKernels& s = decode_kernels(Isa::scalar);
        (q4 ? s.dequantize_q4_blocks : s.dequantize_q8_blocks)(p.data(), p.data() + 2 * nb, nb, ref.data());
        for (Isa isa : simd_isas()) {
          const DecodeKernels& k = decode_kernels(isa);
          std::vector<float> got(nb * 32);
          (q4 ? k.dequantize_q4_blocks : k.dequantize_q8_blocks)(p.data(), p.data() + 2 * nb, nb, got.data());
          CHECK_MSG(same_bytes(ref, got), "%s wild=%d nb=%zu %s differs at %zu", q4 ? "q4" : "q8", int(wild), nb,
                    isa_name(isa), first_difference(ref, got));
        }
      }
    }
    for (uint64_t n : {uint64_t(0), uint64_t(1), uint64_t(31), uint64_t(32), uint64_t(33), uint64_t(1000),
                       uint64_t(3u << 20) + 5}) {
      const TensorSpec spec = spec_of({n}, "float32", q4 ? "q4" : "q8", "{\"block\": 32}");
      check_full_decode(spec, random_blockq_payload(rng, n, q4, false),
                        std::string(q4 ? "q4" : "q8") + " n=" + std::to_string(n));
    }
  }
  // Scalar reference against hand-computed values: scale 0.5 (0x3800).
  std::vector<uint8_t> p(18, 0);
  p[0] = 0x00; p[1] = 0x38;
  p[2] = 0xF0;  // element 0: nibble 0 → −8; element 16: nibble 15 → 7
  std::vector<float> out(32);
  decode_kernels(Isa::scalar).dequantize_q4_blocks(p.data(), p.data() + 2, 1, out.data());
  CHECK(out[0] == -4.0f && out[16] == 3.5f && out[1] == -4.0f);
}

PrngPayloadView view_of(const std::vector<uint8_t>& p, uint64_t nb, const PrngParams& pp) {
  PrngPayloadView v;
  v.nb = nb;
  v.params = pp;
  const uint64_t sb = (nb * pp.K + 7) / 8, eb = (nb + 1) / 2;
  v.seeds = p.data();
  v.exponents = p.data() + sb;
  v.mantissas = p.data() + sb + eb;
  return v;
}

void test_prng(Rng& rng) {
  // Hand-checked scalar reference: K = 8, C = 2, P = 1, seed 1, E = 0, e0 = 0, m = 1.
  // States: v0 = 1, v1 = step(1) = 0 ^ 0xB8 = 0xB8. U = v − 128 → −127, 56.
  // x = U · m · 2^(0 + 0 − 7).
  {
    std::vector<uint8_t> p = {0x01, 0x00, 0x01};
    PrngParams pp{2, 1, 8, 0};
    std::vector<float> out(2);
    decode_kernels(Isa::scalar).decode_prng_blocks(view_of(p, 1, pp), nullptr, 0, 1, out.data());
    CHECK(out[0] == -127.0f / 128.0f && out[1] == 56.0f / 128.0f);
  }
  const uint32_t Cs[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 33, 64};
  for (uint32_t K = 8; K <= 16; ++K) {
    for (uint32_t C : Cs) {
      for (uint32_t P = 1; P <= 8 && P <= C; ++P) {
        if (K != 16 && K != 8 && (rng() % 3) != 0) continue;  // sample the middle Ks
        const int32_t e0 = (rng() % 4 == 0) ? ((rng() & 1) ? 100 : -100) : int32_t(rng() % 41) - 20;
        const PrngParams pp{C, P, K, e0};
        const uint64_t nb = 1 + rng() % 300;
        std::vector<uint8_t> p = random_prng_payload(rng, nb * C, C, P, K);
        const PrngPayloadView v = view_of(p, nb, pp);
        std::vector<float> ref(nb * C + 8, 777.0f);
        decode_kernels(Isa::scalar).decode_prng_blocks(v, nullptr, 0, nb, ref.data());
        for (Isa isa : simd_isas()) {
          const DecodeKernels& k = decode_kernels(isa);
          const PrngBasisTables t = build_prng_basis_tables(pp, k.prng_layout);
          std::vector<float> got(nb * C + 8, 777.0f);
          k.decode_prng_blocks(v, &t, 0, nb, got.data());
          CHECK_MSG(same_bytes(ref, got), "prng K=%u C=%u P=%u e0=%d nb=%llu %s differs at %zu", K, C, P, e0,
                    (unsigned long long)nb, isa_name(isa), first_difference(ref, got));
          // An offset sub-range (first_block > 0) must match too.
          if (nb > 3) {
            std::vector<float> part((nb - 3) * C + 8, 777.0f);
            k.decode_prng_blocks(v, &t, 3, nb - 3, part.data());
            CHECK_MSG(std::memcmp(part.data(), ref.data() + 3 * C, (nb - 3) * C * 4) == 0,
                      "prng K=%u C=%u P=%u sub-range %s differs", K, C, P, isa_name(isa));
          }
        }
      }
    }
  }
  // Full path: partial last blocks, n = 0, and outputs large enough for tables and
  // non-temporal streaming, for the three presets and a few others.
  struct Case { uint32_t C, P, K; int32_t e0; uint64_t n; };
  const Case cases[] = {{8, 4, 16, -14, 0}, {8, 4, 16, -14, 5}, {8, 4, 16, -14, 384 * 384},
                        {8, 3, 16, -10, 384 * 384 + 3}, {12, 4, 16, 2, 100003}, {12, 4, 16, 0, (3u << 20) + 7},
                        {8, 4, 16, 5, (3u << 20)}, {8, 3, 16, -3, (3u << 20) + 1}, {5, 2, 11, 7, 70001},
                        {64, 8, 16, -100, 200000}, {1, 1, 8, 100, 5000}, {17, 5, 13, -50, 99999}};
  for (const Case& c : cases) {
    const std::string params = "{\"C\": " + std::to_string(c.C) + ", \"P\": " + std::to_string(c.P) +
                               ", \"K\": " + std::to_string(c.K) + ", \"exp_bias\": " + std::to_string(c.e0) + "}";
    const TensorSpec spec = spec_of({c.n}, "float32", "prng", params);
    check_full_decode(spec, random_prng_payload(rng, c.n, c.C, c.P, c.K), "prng " + params + " n=" + std::to_string(c.n));
  }
}

void test_stats(Rng& rng) {
  struct Shape { std::vector<uint64_t> dims; };
  const std::vector<std::vector<uint64_t>> shapes = {{}, {1}, {7}, {100}, {3, 5}, {8, 8}, {13, 17}, {64, 9},
                                                     {9, 64}, {2, 3, 11}, {40, 1000}, {1000, 40}, {0, 5}, {5, 0}};
  for (const auto& shape : shapes) {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    const uint64_t rows = shape.size() >= 2 ? shape[0] : 1;
    const uint64_t cols = shape.size() >= 2 ? (rows ? n / rows : 0) : n;
    const uint64_t kmax = std::min<uint64_t>({64, rows, cols, shape.size() >= 2 ? 8u : 0u});
    for (uint64_t k = 0; k <= kmax; ++k) {
      for (float sparsity : {0.0f, 0.3f, 1.0f}) {
        std::vector<float> sig;
        float s = 3.0f;
        for (uint64_t i = 0; i < k; ++i) { sig.push_back(s); s *= 0.5f; }
        const float mean = float(int(rng() % 200) - 100) / 64.0f;
        const std::vector<uint8_t> p = stats_payload(mean, 0.75f, sparsity, sig);
        const std::string params = "{\"k\": " + std::to_string(k) + ", \"seed\": " + std::to_string(uint32_t(rng())) + "}";
        const TensorSpec spec = spec_of(shape, "float32", "stats", params);
        check_full_decode(spec, p, "stats " + spec.shape_string() + " " + params + " sparsity=" + std::to_string(sparsity));
      }
    }
  }
  // Sparsity 1 zeroes everything; sparsity 0 zeroes nothing that is not exactly 0.
  {
    const TensorSpec spec = spec_of({50}, "float32", "stats", "{\"k\": 0, \"seed\": 5}");
    std::vector<float> out(50);
    decode_payload(spec, stats_payload(1.0f, 1.0f, 1.0f, {}).data(), 12, out.data(), Isa::scalar, "s");
    bool all_zero = true;
    for (float f : out) all_zero = all_zero && f == 0.0f;
    CHECK(all_zero);
  }
  // gauss run kernels on their own.
  for (Isa isa : simd_isas()) {
    std::vector<float> a(1001), b(1001);
    decode_kernels(Isa::scalar).stats_gauss_run(0xDEADBEEFu, 4294967000u, a.size(), a.data());
    decode_kernels(isa).stats_gauss_run(0xDEADBEEFu, 4294967000u, b.size(), b.data());
    CHECK_MSG(same_bytes(a, b), "stats_gauss_run %s differs", isa_name(isa));
  }
}

}  // namespace

int main() {
  std::printf("ISAs under test: scalar");
  for (Isa isa : simd_isas()) std::printf(" %s", isa_name(isa));
  std::printf(" (auto = %s)\n", isa_name(auto_isa()));
  Rng rng(20240611);
  try {
    test_raw_conversions(rng);
    test_blockq(rng);
    test_prng(rng);
    test_stats(rng);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL: unexpected exception: %s\n", e.what());
    ++failures();
  }
  return finish("test_kernels");
}

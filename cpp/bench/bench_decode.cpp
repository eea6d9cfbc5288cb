// Single-thread decode throughput (output bytes per second) against the C library's
// memset over the same large buffer, median of several runs after a warm-up.
// Usage: bench_decode [MiB of output, default 512] [repeats, default 7] [impl, default auto]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "seedcore/cpu.h"
#include "seedcore/json.h"
#include "seedcore/tensor_spec.h"

using namespace seedcore;

namespace {

double median_seconds(int repeats, const std::function<void()>& fn) {
  fn();  // warm-up (also faults the output pages in)
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<uint8_t> payload_for(const TensorSpec& spec, std::mt19937_64& rng) {
  std::vector<uint8_t> p(size_t(expected_payload_length(spec)));
  for (auto& b : p) b = uint8_t(rng());
  if (spec.codec == Codec::prng) {
    // Valid seeds (non-zero) and zero unused bits: K = 16 in every case benchmarked.
    const uint64_t nb = (spec.n + spec.prng.C - 1) / spec.prng.C;
    for (uint64_t b = 0; b < nb; ++b)
      if (p[2 * b] == 0 && p[2 * b + 1] == 0) p[2 * b] = 1;
    const uint64_t eb = (nb + 1) / 2, mb = (nb * spec.prng.P + 1) / 2;
    if (nb & 1) p[2 * nb + eb - 1] &= 0x0F;
    if ((nb * spec.prng.P) & 1) p[2 * nb + eb + mb - 1] &= 0x0F;
  } else {
    const uint64_t nb = (spec.n + 31) / 32;
    for (uint64_t b = 0; b < nb; ++b) { p[2 * b] = uint8_t(rng()); p[2 * b + 1] = uint8_t(0x10 | (rng() & 0x0F)); }
  }
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 512;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 7;
  const Isa isa = resolve_impl(argc > 3 ? argv[3] : "auto");
  const uint64_t n = mib * (1u << 20) / 4;
  std::vector<float> out(size_t(n) + 64);
  std::printf("output %llu MiB, %d repeats, median, one thread, impl %s\n", (unsigned long long)mib, repeats,
              isa_name(isa));
  const double t_memset = median_seconds(repeats, [&] {
    std::memset(out.data(), 0, size_t(n) * 4);
    __asm__ __volatile__("" : : "r"(out.data()) : "memory");
  });
  const double memset_gbs = double(n) * 4 / t_memset / 1e9;
  std::printf("%-18s %7.2f GB/s\n", "memset", memset_gbs);
  struct Case { const char* label; const char* codec; const char* params; };
  const Case cases[] = {
      {"prng C8 P4 K16", "prng", "{\"C\": 8, \"P\": 4, \"K\": 16, \"exp_bias\": -14}"},
      {"prng C8 P3 K16", "prng", "{\"C\": 8, \"P\": 3, \"K\": 16, \"exp_bias\": -14}"},
      {"prng C12 P4 K16", "prng", "{\"C\": 12, \"P\": 4, \"K\": 16, \"exp_bias\": -14}"},
      {"q4", "q4", "{\"block\": 32}"},
      {"q8", "q8", "{\"block\": 32}"},
  };
  std::mt19937_64 rng(1);
  for (const Case& c : cases) {
    const JsonDocument doc = JsonDocument::parse(c.params, "bench");
    const TensorSpec spec = make_tensor_spec({n}, "float32", c.codec, doc, doc.root(), "bench");
    const std::vector<uint8_t> payload = payload_for(spec, rng);
    const double t = median_seconds(repeats, [&] {
      decode_payload(spec, payload.data(), payload.size(), out.data(), isa, "bench");
    });
    const double gbs = double(n) * 4 / t / 1e9;
    std::printf("%-18s %7.2f GB/s  %.2fx memset\n", c.label, gbs, gbs / memset_gbs);
  }
  return 0;
}

// CRC-32: the accelerated implementation (PCLMULQDQ on x86-64, ARMv8 CRC32 on
// aarch64) against the table reference on every length 0..1024 at random alignments
// and seeds, on large buffers, and known values; crc32_combine against chaining.
#include <chrono>
#include <cstdio>
#include <vector>

#include "seedcore/crc32.h"
#include "test_util.h"

using namespace seedcore;

namespace {

void test_known_values() {
  for (Crc32Fn f : {Crc32Fn(crc32_table), Crc32Fn(crc32), crc32_accelerated()}) {
    if (f == nullptr) continue;
    CHECK(f("123456789", 9, 0) == 0xCBF43926u);
    CHECK(f("", 0, 0) == 0);
    CHECK(f("", 0, 0x12345678u) == 0x12345678u);
    CHECK(f("The quick brown fox jumps over the lazy dog", 43, 0) == 0x414FA339u);
    // 1 MiB of zero bytes: zlib.crc32(bytes(1 << 20)) == 0xa738ea1c.
    std::vector<uint8_t> zeros(size_t(1) << 20, 0);
    CHECK(f(zeros.data(), zeros.size(), 0) == 0xA738EA1Cu);
  }
}

void test_against_table(std::mt19937_64& rng) {
  const Crc32Fn fast = crc32_accelerated();
  std::printf("test_crc32: crc32() uses %s; accelerated implementation %s\n", crc32_impl_name(),
              fast ? "present" : "absent");
  std::vector<uint8_t> buf(1024 + 64 + 16);
  for (auto& b : buf) b = uint8_t(rng());
  for (Crc32Fn f : {Crc32Fn(crc32), fast}) {
    if (f == nullptr) continue;
    for (size_t len = 0; len <= 1024; ++len) {
      for (int rep = 0; rep < 4; ++rep) {
        const size_t align = size_t(rng() % 64);
        const uint32_t init = rep == 0 ? 0u : uint32_t(rng());
        const uint8_t* p = buf.data() + align;
        const uint32_t want = crc32_table(p, len, init), got = f(p, len, init);
        CHECK_MSG(got == want, "len %zu align %zu init %08x: %08x != %08x", len, align, init, got, want);
      }
    }
    // Large buffers, odd lengths and offsets, all-ones bytes.
    std::vector<uint8_t> big((size_t(8) << 20) + 77);
    for (auto& b : big) b = uint8_t(rng());
    for (size_t off : {size_t(0), size_t(3), size_t(61)}) {
      const size_t len = big.size() - off - size_t(rng() % 1000);
      CHECK(f(big.data() + off, len, 0) == crc32_table(big.data() + off, len, 0));
    }
    std::vector<uint8_t> ones(100003, 0xFF);
    CHECK(f(ones.data(), ones.size(), 0) == crc32_table(ones.data(), ones.size(), 0));
    // Chaining through any cut equals one call.
    for (size_t cut : {0, 1, 15, 16, 17, 63, 64, 65, 500, 4095}) {
      CHECK(f(big.data() + cut, 100000 - cut, f(big.data(), cut, 0)) == crc32_table(big.data(), 100000, 0));
    }
  }
}

void test_combine(std::mt19937_64& rng) {
  std::vector<uint8_t> buf(300000);
  for (auto& b : buf) b = uint8_t(rng());
  for (size_t cut : {size_t(0), size_t(1), size_t(7), size_t(4096), size_t(123457), buf.size()}) {
    const uint32_t a = crc32(buf.data(), cut), b = crc32(buf.data() + cut, buf.size() - cut);
    CHECK(crc32_combine(a, b, buf.size() - cut) == crc32(buf.data(), buf.size()));
  }
}

// Throughput of each implementation over 64 MiB (informational; no assertion).
void report_speed() {
  std::vector<uint8_t> buf(size_t(64) << 20, 0x5A);
  auto gbps = [&](Crc32Fn f) {
    double best = 1e9;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      volatile uint32_t c = f(buf.data(), buf.size(), 0);
      (void)c;
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return double(buf.size()) / best / 1e9;
  };
  std::printf("test_crc32: table %.2f GB/s", gbps(crc32_table));
  if (Crc32Fn f = crc32_accelerated()) std::printf(", accelerated %.2f GB/s", gbps(f));
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::mt19937_64 rng(20240611);
  try {
    test_known_values();
    test_against_table(rng);
    test_combine(rng);
    if (argc > 1 && std::string(argv[1]) == "--speed") report_speed();
  } catch (const std::exception& e) {
    CHECK_MSG(false, "unexpected exception: %s", e.what());
  }
  return seedtest::finish("test_crc32");
}

// CRC-32: the portable table implementation (the reference), the run-time choice of
// an accelerated one (crc32_pclmul.cpp, crc32_armv8.cpp), and zlib's crc32_combine.
//
// Table version: slicing-by-16. Sixteen 256-entry tables let the loop fold 16 input
// bytes per iteration with independent lookups (~1 byte/cycle or better), instead of
// the classic one-byte-at-a-time loop. Tables are built at compile time.
#include "seedcore/crc32.h"

#include <array>
#include <cstring>

#include "crc32_impl.h"
#include "seedcore/cpu.h"

namespace seedcore {
namespace {

constexpr uint32_t kPoly = 0xEDB88320u;  // reflected 0x04C11DB7
constexpr int kSlices = 16;
using CrcTables = std::array<std::array<uint32_t, 256>, kSlices>;

constexpr CrcTables make_crc_tables() {
  CrcTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][i] = c;
  }
  // t[s][i] = CRC of byte i followed by s zero bytes.
  for (int s = 1; s < kSlices; ++s)
    for (uint32_t i = 0; i < 256; ++i)
      t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFFu];
  return t;
}

constexpr CrcTables kCrcTables = make_crc_tables();

inline uint32_t load_u32_le(const unsigned char* p) {
  // Byte-wise assembly keeps this correct on any host endianness; compilers emit
  // one load on little-endian targets.
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// a·b mod P in the reflected domain (bit 31 is x^0), as zlib's multmodp.
uint32_t multmodp(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
    if (a & m) product ^= b;
    b = (b & 1u) ? (b >> 1) ^ kPoly : b >> 1;
  }
  return product;
}

Crc32Fn choose_crc32() {
  if (cpu_features().forced_scalar) return crc32_table;
  if (Crc32Fn f = crc32_accelerated()) return f;
  return crc32_table;
}

Crc32Fn chosen_crc32() {
  static const Crc32Fn fn = choose_crc32();
  return fn;
}

}  // namespace

uint32_t crc32_table(const void* data, size_t size, uint32_t crc) {
  const auto& t = kCrcTables;
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  while (size >= 16) {
    const uint32_t w0 = load_u32_le(p) ^ c;
    const uint32_t w1 = load_u32_le(p + 4);
    const uint32_t w2 = load_u32_le(p + 8);
    const uint32_t w3 = load_u32_le(p + 12);
    c = t[15][w0 & 0xFF] ^ t[14][(w0 >> 8) & 0xFF] ^ t[13][(w0 >> 16) & 0xFF] ^ t[12][w0 >> 24] ^
        t[11][w1 & 0xFF] ^ t[10][(w1 >> 8) & 0xFF] ^ t[9][(w1 >> 16) & 0xFF] ^ t[8][w1 >> 24] ^
        t[7][w2 & 0xFF] ^ t[6][(w2 >> 8) & 0xFF] ^ t[5][(w2 >> 16) & 0xFF] ^ t[4][w2 >> 24] ^
        t[3][w3 & 0xFF] ^ t[2][(w3 >> 8) & 0xFF] ^ t[1][(w3 >> 16) & 0xFF] ^ t[0][w3 >> 24];
    p += 16;
    size -= 16;
  }
  while (size--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFFu];
  return ~c;
}

Crc32Fn crc32_accelerated() {
#if defined(__x86_64__)
  return crc32_pclmul_if_supported();
#else
  return crc32_armv8_if_supported();
#endif
}

uint32_t crc32(const void* data, size_t size, uint32_t crc) { return chosen_crc32()(data, size, crc); }

const char* crc32_impl_name() {
  const Crc32Fn f = chosen_crc32();
  if (f == crc32_table) return "table";
#if defined(__x86_64__)
  return "pclmul";
#else
  return "armv8-crc";
#endif
}

// CRC(a‖b) = CRC(a)·x^(8·len_b) + CRC(b) mod P (the init/final xors cancel, as in
// zlib). x^(8·len_b) is built from the squares x^(2^k) by binary exponentiation.
uint32_t crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  uint32_t x2k = 1u << 30;  // x^1, then x^2, x^4, ... (reflected)
  uint32_t shift = 1u << 31;  // x^0
  for (uint64_t n = len_b * 8; n != 0; n >>= 1) {  // len_b < 2^61 for any real buffer
    if (n & 1) shift = multmodp(x2k, shift);
    x2k = multmodp(x2k, x2k);
  }
  return multmodp(shift, crc_a) ^ crc_b;
}

}  // namespace seedcore

// CRC-32 (zlib polynomial) with the ARMv8 CRC32 instructions (crc32x / crc32b: the
// reflected 0x04C11DB7 polynomial, exactly zlib's CRC). Optional in ARMv8.0 but
// implemented by Cortex-A72 (Raspberry Pi 4) and Cortex-A57 (Jetson Nano); ARMv8.1
// makes them mandatory. Compiled on every target, empty off aarch64.
//
// When the build flags do not already enable the extension (plain -march=armv8-a),
// the pragma below enables it for this file only, and crc32.cpp calls it only when
// the kernel reports HWCAP_CRC32 (getauxval), so a CPU without it never runs it.
// If the compiler cannot enable it at all, the table implementation is used.
#include "crc32_impl.h"

#if defined(__aarch64__)
#if !defined(__ARM_FEATURE_CRC32)
#pragma GCC target("arch=armv8-a+crc")
#endif
#include <arm_acle.h>
#include <sys/auxv.h>
#include <cstring>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

namespace seedcore {

#if defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
namespace {

inline uint64_t load_u64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // unaligned loads are fine on AArch64; little-endian Linux
  return v;
}

// One dependency chain: crc32x has a latency of ~2-3 cycles and a throughput of one
// per cycle on A72/A57, so 8 bytes every ~3 cycles (several GB/s) — far more than
// what the table reaches, and enough next to decoding.
uint32_t crc32_armv8(const void* data, size_t size, uint32_t crc) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  while (size >= 32) {
    c = __crc32d(c, load_u64(p));
    c = __crc32d(c, load_u64(p + 8));
    c = __crc32d(c, load_u64(p + 16));
    c = __crc32d(c, load_u64(p + 24));
    p += 32;
    size -= 32;
  }
  while (size >= 8) {
    c = __crc32d(c, load_u64(p));
    p += 8;
    size -= 8;
  }
  while (size--) c = __crc32b(c, *p++);
  return ~c;
}

}  // namespace

Crc32Fn crc32_armv8_if_supported() {
  return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? crc32_armv8 : nullptr;
}
#elif !defined(__x86_64__)
Crc32Fn crc32_armv8_if_supported() { return nullptr; }
#endif

}  // namespace seedcore

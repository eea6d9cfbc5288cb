// CRC-32 of zlib / PNG / Ethernet (reflected polynomial 0xEDB88320, init and final
// xor 0xFFFFFFFF): crc32(data) == Python's zlib.crc32(data).
//
// crc32() picks, once, the fastest implementation this CPU runs: PCLMULQDQ folding on
// x86-64 (pclmul + sse4.1, checked with cpuid), the ARMv8 CRC32 instructions on
// aarch64 (checked with getauxval), else the slicing-by-16 table. The table version is
// the reference every other one is tested against, and SEEDCORE_FORCE_SCALAR=1 makes
// crc32() use it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace seedcore {

// Chains like zlib: crc32(b, nb, crc32(a, na)) == crc32 of a followed by b.
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);

// The table implementation (portable reference), same contract as crc32().
uint32_t crc32_table(const void* data, size_t size, uint32_t crc = 0);

using Crc32Fn = uint32_t (*)(const void* data, size_t size, uint32_t crc);

// The hardware-accelerated implementation this build and CPU can run, ignoring
// SEEDCORE_FORCE_SCALAR (tests compare it with crc32_table), or nullptr when none.
Crc32Fn crc32_accelerated();

// What crc32() uses: "pclmul", "armv8-crc" or "table".
const char* crc32_impl_name();

// zlib's crc32_combine: the CRC of a followed by b from crc32(a), crc32(b) and b's
// length, in O(log len_b) without touching the data (lets threads checksum parts of
// one payload).
uint32_t crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

}  // namespace seedcore

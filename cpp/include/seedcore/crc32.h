// CRC-32 of zlib / PNG / Ethernet (reflected polynomial 0xEDB88320, init and final
// xor 0xFFFFFFFF): crc32(data) == Python's zlib.crc32(data).
#pragma once
#include <cstddef>
#include <cstdint>

namespace seedcore {

// Chains like zlib: crc32(b, nb, crc32(a, na)) == crc32 of a followed by b.
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);

}  // namespace seedcore

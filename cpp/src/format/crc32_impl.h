// Accelerated CRC-32 kernels (internal): each returns nullptr when this build or CPU
// cannot run it, so crc32.cpp can pick one at run time. Both take and return the
// CRC in zlib's convention (pre- and post-inverted), like crc32().
#pragma once
#include "seedcore/crc32.h"

namespace seedcore {

#if defined(__x86_64__)
Crc32Fn crc32_pclmul_if_supported();  // crc32_pclmul.cpp, built for x86-64 only
#else
Crc32Fn crc32_armv8_if_supported();   // crc32_armv8.cpp (nullptr off aarch64)
#endif

}  // namespace seedcore

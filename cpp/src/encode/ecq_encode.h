// The ecq encoder (format.md 3.6): integer codes -> the complete payload (alphabet,
// frequencies, chunk offsets, rANS streams). The Python side chooses the step and
// the codes; this is the entropy coder, native because it runs over every element.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace seedcore::encode {

// Normalises symbol counts (count[s] for s < S, S <= 32768, total > 0) to frequencies
// summing to 2^15: f[s] = max(1, round(count[s] * 2^15 / total)) for occurring symbols,
// 0 for absent ones, then the sum is corrected on the largest frequencies first (never
// taking one below 1). Deterministic; always succeeds.
std::vector<uint16_t> ecq_normalize_frequencies(const std::vector<uint64_t>& counts);

// The ecq payload for `codes` (n of them, n < 2^32) in chunks of `chunk` elements
// (256 .. 2^20): lo = min code, S = max - min + 1 (n = 0: S = 1, lo = 0, f = {32768}).
// Throws std::invalid_argument for a chunk out of range, codes outside [-2^24, 2^24],
// more than 32768 distinct code values between min and max, or streams too long for
// the u32 offsets. Deterministic: the same codes give the same bytes.
std::vector<uint8_t> ecq_encode(const int32_t* codes, size_t n, uint32_t chunk);

}  // namespace seedcore::encode

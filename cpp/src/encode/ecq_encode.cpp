// The ecq encoder: frequencies from the codes' counts, then each chunk coded in reverse
// with the rANS encoder that matches the decoder of format.md 3.6 (ryg_rans "rans_byte":
// L = 2^23, 15-bit frequencies, byte-wise renormalisation).
#include "ecq_encode.h"

#include <algorithm>
#include <numeric>
#include <queue>
#include <stdexcept>
#include <string>
#include <utility>

namespace seedcore::encode {

namespace {

constexpr uint32_t kScaleBits = 15;
constexpr uint32_t kTotal = 1u << kScaleBits;
constexpr uint32_t kStateLow = 1u << 23;
constexpr uint32_t kMaxSymbols = 32768;
constexpr int64_t kMaxCodeMagnitude = int64_t(1) << 24;

void put_u32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = uint8_t(v >> (8 * i));
}

}  // namespace

std::vector<uint16_t> ecq_normalize_frequencies(const std::vector<uint64_t>& counts) {
    const size_t S = counts.size();
    if (S == 0 || S > kMaxSymbols)
        throw std::invalid_argument("ecq: " + std::to_string(S) + " symbols (must be 1 to 32768)");
    unsigned __int128 total128 = 0;
    for (uint64_t c : counts) total128 += c;
    if (total128 == 0 || total128 >= (unsigned __int128)(1) << 64)
        throw std::invalid_argument("ecq: symbol counts must have a sum in [1, 2^64)");
    const uint64_t total = uint64_t(total128);
    std::vector<uint32_t> f(S, 0);
    int64_t sum = 0;
    for (size_t s = 0; s < S; ++s) {
        if (counts[s] == 0) continue;
        // round(count · 2^15 / total), halves up, at least 1
        const unsigned __int128 num = (unsigned __int128)(counts[s]) * (2 * kTotal) + total;
        f[s] = std::max<uint32_t>(1, uint32_t(num / ((unsigned __int128)(total) * 2)));
        sum += f[s];
    }
    if (sum < int64_t(kTotal)) {
        // Rounding down lost less than 1/2 per symbol: one pass over the occurring
        // symbols, largest first, gives the missing ones back (the loop wraps anyway).
        std::vector<uint32_t> order;
        for (size_t s = 0; s < S; ++s)
            if (f[s] != 0) order.push_back(uint32_t(s));
        std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return f[a] > f[b]; });
        for (size_t k = 0; sum < int64_t(kTotal); k = (k + 1) % order.size(), ++sum) ++f[order[k]];
    } else if (sum > int64_t(kTotal)) {
        // Too many (rounding up, and rare symbols raised to 1): take one at a time from
        // the largest frequency (the smallest index among equals), never below 1. At
        // most 32768 symbols occur, so the occurring ones can always reach 2^15.
        std::priority_queue<std::pair<uint32_t, uint32_t>> heap;  // (f, S - index)
        for (size_t s = 0; s < S; ++s)
            if (f[s] > 1) heap.push({f[s], uint32_t(S - s)});
        while (sum > int64_t(kTotal)) {
            const auto top = heap.top();
            heap.pop();
            const size_t s = S - top.second;
            --f[s];
            --sum;
            if (f[s] > 1) heap.push({f[s], top.second});
        }
    }
    return std::vector<uint16_t>(f.begin(), f.end());
}

std::vector<uint8_t> ecq_encode(const int32_t* codes, size_t n, uint32_t chunk) {
    if (chunk < 256 || chunk > (1u << 20))
        throw std::invalid_argument("ecq: chunk " + std::to_string(chunk) + " is outside [256, 2^20]");
    if (uint64_t(n) >= (uint64_t(1) << 32))
        throw std::invalid_argument("ecq: " + std::to_string(n) + " codes (a tensor has fewer than 2^32)");
    int64_t lo = 0, hi = 0;
    if (n != 0) {
        const auto mm = std::minmax_element(codes, codes + n);
        lo = *mm.first;
        hi = *mm.second;
    }
    for (int64_t v : {lo, hi})
        if (v < -kMaxCodeMagnitude || v > kMaxCodeMagnitude)
            throw std::invalid_argument("ecq: code " + std::to_string(v) + " is outside [-2^24, 2^24]; use a larger step");
    const int64_t span = hi - lo + 1;
    if (span > int64_t(kMaxSymbols))
        throw std::invalid_argument("ecq: codes span " + std::to_string(span) +
                                    " values (more than 32768); use a larger step");
    const uint32_t S = uint32_t(span);

    std::vector<uint16_t> freq;
    if (n == 0) {
        freq = {uint16_t(kTotal)};
    } else {
        std::vector<uint64_t> counts(S, 0);
        for (size_t i = 0; i < n; ++i) ++counts[size_t(int64_t(codes[i]) - lo)];
        freq = ecq_normalize_frequencies(counts);
    }
    std::vector<uint32_t> cum(S);
    uint32_t F = 0;
    for (uint32_t s = 0; s < S; ++s) {
        cum[s] = F;
        F += freq[s];
    }

    const uint64_t A = (8 + 2 * uint64_t(S) + 3) & ~uint64_t(3);
    const uint64_t nc = (uint64_t(n) + chunk - 1) / chunk;
    const uint64_t B = A + 4 * nc;
    std::vector<uint8_t> out(size_t(B), 0);
    put_u32(out, 0, S);
    put_u32(out, 4, uint32_t(int32_t(lo)));
    for (uint32_t s = 0; s < S; ++s) {
        out[8 + 2 * size_t(s)] = uint8_t(freq[s]);
        out[9 + 2 * size_t(s)] = uint8_t(freq[s] >> 8);
    }
    out.reserve(size_t(B) + n / 2 + 8 * nc);

    std::vector<uint8_t> emitted;  // one chunk's bytes in the order the encoder emits them
    emitted.reserve(2 * size_t(std::min<uint64_t>(chunk, n)) + 8);
    uint64_t offset = 0;
    for (uint64_t c = 0; c < nc; ++c) {
        const size_t start = size_t(c * chunk);
        const size_t end = std::min(n, start + chunk);
        emitted.clear();
        uint32_t x = kStateLow;
        for (size_t i = end; i-- > start;) {
            const uint32_t s = uint32_t(int64_t(codes[i]) - lo);
            const uint32_t f = freq[s];
            const uint32_t x_max = f << 16;  // (L >> scale_bits) << 8, times f: at most 2^31
            while (x >= x_max) {
                emitted.push_back(uint8_t(x));
                x >>= 8;
            }
            x = ((x / f) << kScaleBits) + (x % f) + cum[s];
        }
        // The final state leads (little-endian), then the bytes in the order the
        // decoder reads them: the reverse of their emission.
        for (int k = 0; k < 4; ++k) out.push_back(uint8_t(x >> (8 * k)));
        out.insert(out.end(), emitted.rbegin(), emitted.rend());
        offset += 4 + emitted.size();
        if (offset > 0xFFFFFFFFu)
            throw std::invalid_argument("ecq: the streams exceed 2^32 - 1 bytes (the offsets are u32)");
        put_u32(out, size_t(A + 4 * c), uint32_t(offset));
    }
    return out;
}

}  // namespace seedcore::encode

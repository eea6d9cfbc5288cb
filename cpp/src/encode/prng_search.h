// The prng encoder's seed search (SeedLM-style), accelerated in the native core.
//
// For each block of C weights the encoder looks for the seed s whose C x P LFSR
// basis U(s), with P quantised coefficients (4-bit mantissas, one shared 4-bit
// exponent), reconstructs the block with the smallest squared error. The search
// is exact over all 2^K - 1 seeds: the unquantised least-squares residual
//   lb(s) = |w|^2 - |Q(s)^T w|^2        (Q(s): orthonormal basis of span U(s))
// is a lower bound of every quantised error for that seed, so candidates are
// evaluated in increasing lb order and the search stops as soon as lb exceeds
// the best quantised error found. The lb scan over all seeds is the hot loop
// (C*P + P multiply-adds per block and seed) and has scalar, AVX2 and NEON
// kernels; everything after it is shared float64 scalar code, so every path
// returns the same seeds, exponents and mantissas.
#pragma once
#include <cstddef>
#include <cstdint>

namespace seedcore::encode {

// Tables that depend only on (C, P, K); built by the Python encoder in float64.
struct PrngTables {
    int C = 0, P = 0, K = 0;
    std::size_t num_seeds = 0;    // 2^K - 1; seed value = index + 1
    // Orthonormal bases in groups of 8 seeds, each group contiguous so the scan
    // reads memory linearly: q[(index / 8) * (C*P*8) + (j*C + i) * 8 + index % 8].
    const float* q = nullptr;
    std::size_t q_stride = 0;     // seeds stored: >= num_seeds, a multiple of 8; padding is 0
    const std::int16_t* basis = nullptr;  // [index][i][j] = U[i][j] (integer basis)
    const double* pinv = nullptr;         // [index][j][i] = pseudo-inverse of U/2^(K-1)
};

struct PrngBlockCode {
    std::uint32_t seed = 0;   // 1 .. 2^K - 1
    std::uint8_t exponent = 0;  // E, 0..15; scale = 2^(E + exp_bias - (K-1))
    std::int8_t mantissa[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    double error = 0.0;       // squared error of the decoded block
    std::uint32_t evaluated = 0;  // candidates whose quantised error was computed
};

enum class ScanIsa { scalar, avx2, neon };

// Computes lb for `nblk` (1..4) blocks against seeds [s0, s0 + count) where
// count is a multiple of 8. wb holds each block's weights broadcast 8 times
// ([b][i][8] floats); ww[b] = |w_b|^2. lb[b * count + s] receives the bounds,
// and bit (s % 8) of below[b * count / 8 + s / 8] is set when lb < thr[b], so
// the caller only looks at the few seeds that can enter its shortlist.
struct ScanArgs {
    const PrngTables* tables;
    const float* wb;
    const float* ww;
    const float* thr;
    int nblk;
    std::size_t s0, count;
    float* lb;
    std::uint8_t* below;
};
void scan_lb_scalar(const ScanArgs& a);
void scan_lb_avx2(const ScanArgs& a);
void scan_lb_neon(const ScanArgs& a);
bool scan_isa_available(ScanIsa isa);

// Quantises block w under seed `index` with the shared procedure (documented in
// prng.py, which mirrors it bit for bit in numpy).
PrngBlockCode quantize_block(const PrngTables& t, std::size_t index, const double* w,
                             int exp_bias);

// Searches every block of w (nblocks x C, row-major float32). `candidates` is
// the size of the per-block shortlist kept during the scan (exactness does not
// depend on it, only speed). Blocks are split over `threads` threads; results
// do not depend on the thread count.
void prng_search(const PrngTables& t, const float* w, std::size_t nblocks, int exp_bias,
                 int candidates, ScanIsa isa, int threads, PrngBlockCode* out);

}  // namespace seedcore::encode

// The AVX2 depthwise 3x3 blocks shared by depthwise_avx2.cpp (padded planes) and
// depthwise_plane_avx2.cpp (in place): R output rows x V vectors of 8 columns at a time,
// and the stride-2 loop over even/odd-split rows. Internal; built with the AVX2 flags.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace seedcore {
namespace dw_avx2 {
// Internal linkage in each including file, as when these lived in depthwise_avx2.cpp's
// anonymous namespace: GCC then inlines the once-called block templates fully (with
// vague linkage it did not, and 7x7 planes took 15 % longer).
namespace {

constexpr int64_t kStripWidth = 256;  // stride 2: outputs per column strip of the even/odd split
constexpr int kMaxRows = 6;           // output rows per block

// Clamp in the scalar twin's terms: max(lo, v) gives lo for v < lo and v for NaN v;
// min(hi, .) likewise (lo / hi are -inf / +inf without a fused clamp).
inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); }

struct Params {
  __m256 w[9];
  float bias, lo, hi;
};

// Taps of stride 1, dilation 1: output row r, tap (kh, kw) reads row[r + kh] + kw.
struct Stride1Taps {
  const float* row[kMaxRows + 2];
  const float* at(int r, int kh, int kw) const { return row[r + kh] + kw; }
};
// Taps of stride 2, dilation 1 over split rows: input row j = 2r + kh, columns 2c (even),
// 2c + 1 (odd), 2c + 2 (even, one on).
struct Stride2Taps {
  const float* even[2 * kMaxRows + 1];
  const float* odd[2 * kMaxRows + 1];
  const float* at(int r, int kh, int kw) const {
    const int j = 2 * r + kh;
    return kw == 1 ? odd[j] : even[j] + (kw == 2 ? 1 : 0);
  }
};

// Output rows r < R, columns [c, c + 8V) of `out` (row stride out_rs); with Masked the
// last vector stores only its first `tail` lanes.
template <int R, int V, bool Masked, class Taps>
inline void block(const Taps& taps, int64_t c, const Params& p, float* out, int64_t out_rs, __m256i tail) {
  __m256 acc[R][V];
  const __m256 bv = _mm256_set1_ps(p.bias);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = bv;
  for (int kh = 0; kh < 3; ++kh)
    for (int kw = 0; kw < 3; ++kw)
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v)
          acc[r][v] = _mm256_fmadd_ps(p.w[kh * 3 + kw], _mm256_loadu_ps(taps.at(r, kh, kw) + c + 8 * v), acc[r][v]);
  const __m256 lo = _mm256_set1_ps(p.lo), hi = _mm256_set1_ps(p.hi);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) {
      float* o = out + r * out_rs + c + 8 * v;
      if (Masked && v == V - 1)
        _mm256_maskstore_ps(o, tail, clamp8(acc[r][v], lo, hi));
      else
        _mm256_storeu_ps(o, clamp8(acc[r][v], lo, hi));
    }
}

// R output rows, all `width` columns: full blocks of 8V, then the tail.
template <int R, int V, class Taps>
inline void rows_block(const Taps& taps, int64_t width, const Params& p, float* out, int64_t out_rs) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  int64_t c = 0;
  for (; c + 8 * V <= width; c += 8 * V) block<R, V, false>(taps, c, p, out, out_rs, lanes);
  const int64_t rest = width - c;
  if (rest > 8) {  // V == 2 here: one full vector, one masked
    block<R, 2, true>(taps, c, p, out, out_rs, _mm256_cmpgt_epi32(_mm256_set1_epi32(int(rest - 8)), lanes));
  } else if (rest > 0) {
    block<R, 1, true>(taps, c, p, out, out_rs, _mm256_cmpgt_epi32(_mm256_set1_epi32(int(rest)), lanes));
  }
}

// `rows` (1..R) output rows with the block height picked at compile time.
template <int R, int V, class Taps>
inline void rows_any(int rows, const Taps& taps, int64_t width, const Params& p, float* out, int64_t out_rs) {
  if constexpr (R > 1) {
    if (rows < R) return rows_any<R - 1, V>(rows, taps, width, p, out, out_rs);
  }
  rows_block<R, V>(taps, width, p, out, out_rs);
}

// Narrow planes (under 16 columns): one vector across, six rows; wider: two vectors,
// three rows.
template <class Taps>
inline void rows_dispatch(int rows, const Taps& taps, int64_t width, const Params& p, float* out, int64_t out_rs) {
  if (width < 16)
    rows_any<6, 1>(rows, taps, width, p, out, out_rs);
  else
    rows_any<3, 2>(rows, taps, width, p, out, out_rs);
}

// Rows of the next block when `left` rows remain in blocks of at most `rb`: the blocks
// balanced (7 rows as 4 + 3, not 6 + 1, whose lone row is one latency-bound chain).
inline int block_rows(int64_t left, int rb) {
  const int64_t blocks = (left + rb - 1) / rb;
  return int((left + blocks - 1) / blocks);
}

// even[i] = row[2i], odd[i] = row[2i + 1] for i <= count (16 floats at a time; the
// caller guarantees row is readable 16 floats past row[2 * count]).
inline void split_even_odd(const float* row, int64_t count, float* even, float* odd) {
  for (int64_t i = 0; i <= count; i += 8) {
    const __m256 lo = _mm256_loadu_ps(row + 2 * i), hi = _mm256_loadu_ps(row + 2 * i + 8);
    const __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // x0 x2 x8 x10 | x4 x6 x12 x14
    const __m256 od = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    _mm256_storeu_ps(even + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0))));
    _mm256_storeu_ps(odd + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), _MM_SHUFFLE(3, 1, 2, 0))));
  }
}

// The stride-2 loop: column strips, blocks of output rows, each input row i split into
// its even and odd columns by `split(i, c0, width, even, odd)`, which fills the two
// buffers and returns true, or returns false for a padding row (the taps then read
// zeros). Instantiated once per input form and never inlined, so that the ~28 KiB scratch
// on its stack frame is not set up for stride-1 calls (measured: a fixed ~300 ns per plane).
template <class Split>
__attribute__((noinline)) void stride2_loop(int64_t oh_count, int64_t ow_count, const Params& p, float* out,
                                            const Split& split) {
  constexpr int64_t kHalf = kStripWidth + 16;  // floats per half row: the strip, the 3rd tap's +1, 8 spare
  alignas(32) float halves[2 * kMaxRows + 1][2][kHalf];
  alignas(32) static const float kZeros[kHalf] = {};  // both halves of a padding row
  const int rb = ow_count < 16 ? 6 : 3;
  for (int64_t c0 = 0; c0 < ow_count; c0 += kStripWidth) {
    const int64_t width = ow_count - c0 < kStripWidth ? ow_count - c0 : kStripWidth;
    for (int64_t oh = 0; oh < oh_count;) {
      const int rows = block_rows(oh_count - oh, rb);
      Stride2Taps t;
      for (int j = 0; j < 2 * rows + 1; ++j) {
        const bool inside = split(2 * oh + j, c0, width, halves[j][0], halves[j][1]);
        t.even[j] = inside ? halves[j][0] : kZeros;
        t.odd[j] = inside ? halves[j][1] : kZeros;
      }
      rows_dispatch(rows, t, width, p, out + oh * ow_count + c0, ow_count);
      oh += rows;
    }
  }
}

inline Params make_params(const float* w, float bias, const float* clamp) {
  Params p;
  for (int t = 0; t < 9; ++t) p.w[t] = _mm256_set1_ps(w[t]);
  p.bias = bias;
  p.lo = clamp ? clamp[0] : -__builtin_inff();
  p.hi = clamp ? clamp[1] : __builtin_inff();
  return p;
}

}  // namespace
}  // namespace dw_avx2
}  // namespace seedcore

// AVX2+FMA depthwise 3x3. Dilation 1 (stride 1 or 2) computes a block of R output rows
// x V vectors of 8 columns at a time: R*V independent accumulators (at most 6, next to
// the nine weight registers), each fed its nine taps as FMAs in t = kh*3 + kw order.
// One output row alone makes the nine FMAs of a vector one dependent chain, latency-bound
// (measured: MobileNetV2's 7- and 14-wide planes about 3x slower); blocking rows keeps the
// chains independent whatever the width. Stride 1 reads the padded rows in place; stride
// 2 first splits each input row into even and odd columns (once per block of rows, in
// column strips), so every tap is a plain contiguous load. The last 1..8V-1 columns use
// full loads (the caller keeps the input readable 16 floats past the last tap) and a
// masked store. Other strides and dilations take the generic row-by-row path below.
// Every output is bias + the nine products as FMAs in t order, whatever the path.
//
// depthwise3x3_plane_avx2 computes the same over the unpadded plane, in place: rows above
// and below the plane point at a row of zeros, and the column blocks that reach past
// either side (the first and the last of a row) load with lane masks, so lanes outside
// the plane read 0 and are never touched; stride 2 splits rows with the same masked loads
// at the edges. For wide planes (MobileNetV2's 112-wide ones) that saves the padded
// copy; narrow ones are faster copied (every block of theirs loads with masks).
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "graph_kernel_decls.h"

namespace seedcore {
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

// Tap sources for block(): interior(c, V) says whether the columns [c, c + 8V) need no
// masked loads (always, over a padded plane), masks() sets the three taps' lane masks of
// an edge vector, load<Edge>() loads 8 floats of tap (kh, kw) for output row r from
// column col.

// 8 floats of a row of `w` floats from column j under edge_mask(j, w): lanes outside
// [0, w) read 0 and are never touched (the address of lane 0 may lie before the row;
// masked-off lanes do not fault).
inline __m256i edge_mask(int64_t j, int64_t w) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int64_t lo = j < -8 ? -8 : (j > 8 ? 8 : j);              // lane l valid iff l >= -j
  const int64_t hi = w - j < -1 ? -1 : (w - j > 8 ? 8 : w - j);  // ... and l < w - j
  return _mm256_and_si256(_mm256_cmpgt_epi32(lanes, _mm256_set1_epi32(int(-lo - 1))),
                          _mm256_cmpgt_epi32(_mm256_set1_epi32(int(hi)), lanes));
}
inline __m256 load_masked(const float* row, int64_t j, __m256i mask) {
  const float* at = reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(row) + uintptr_t(j * 4));
  return _mm256_maskload_ps(at, mask);
}

// Taps of stride 1, dilation 1 over a padded plane: tap (kh, kw) reads row[r + kh] + kw.
struct Stride1Taps {
  const float* row[kMaxRows + 2];
  bool interior(int64_t, int) const { return true; }
  void masks(int64_t, __m256i*) const {}
  template <bool>
  __m256 load(int r, int kh, int kw, int64_t col, const __m256i*) const { return _mm256_loadu_ps(row[r + kh] + kw + col); }
};
// Taps of stride 1, dilation 1 in place: plane row row[r + kh] (a row of zeros above and
// below the plane), column col + kw - pw.
struct Stride1PlaneTaps {
  const float* row[kMaxRows + 2];
  int64_t w, pw;
  bool interior(int64_t c, int V) const { return c - pw >= 0 && c + 8 * V + 2 - pw <= w; }
  void masks(int64_t col, __m256i* m) const {
    for (int kw = 0; kw < 3; ++kw) m[kw] = edge_mask(col + kw - pw, w);
  }
  template <bool Edge>
  __m256 load(int r, int kh, int kw, int64_t col, const __m256i* m) const {
    const int64_t j = col + kw - pw;
    return Edge ? load_masked(row[r + kh], j, m[kw]) : _mm256_loadu_ps(row[r + kh] + j);
  }
};
// Taps of stride 2, dilation 1 over split rows: input row j = 2r + kh, columns 2c (even),
// 2c + 1 (odd), 2c + 2 (even, one on).
struct Stride2Taps {
  const float* even[2 * kMaxRows + 1];
  const float* odd[2 * kMaxRows + 1];
  bool interior(int64_t, int) const { return true; }
  void masks(int64_t, __m256i*) const {}
  template <bool>
  __m256 load(int r, int kh, int kw, int64_t col, const __m256i*) const {
    const int j = 2 * r + kh;
    return _mm256_loadu_ps((kw == 1 ? odd[j] : even[j] + (kw == 2 ? 1 : 0)) + col);
  }
};

// Output rows r < R, columns [c, c + 8V) of `out` (row stride out_rs); with Masked the
// last vector stores only its first `tail` lanes.
template <int R, int V, bool Masked, bool Edge, class Taps>
inline void block(const Taps& taps, int64_t c, const Params& p, float* out, int64_t out_rs, __m256i tail) {
  __m256i m[V][3];
  if (Edge)
    for (int v = 0; v < V; ++v) taps.masks(c + 8 * v, m[v]);
  __m256 acc[R][V];
  const __m256 bv = _mm256_set1_ps(p.bias);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = bv;
  for (int kh = 0; kh < 3; ++kh)
    for (int kw = 0; kw < 3; ++kw)
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v)
          acc[r][v] = _mm256_fmadd_ps(p.w[kh * 3 + kw], taps.template load<Edge>(r, kh, kw, c + 8 * v, m[v]), acc[r][v]);
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
  for (; c + 8 * V <= width; c += 8 * V) {
    if (taps.interior(c, V))
      block<R, V, false, false>(taps, c, p, out, out_rs, lanes);
    else
      block<R, V, false, true>(taps, c, p, out, out_rs, lanes);
  }
  const int64_t rest = width - c;
  if (rest > 8) {  // V == 2 here: one full vector, one masked
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(rest - 8)), lanes);
    if (taps.interior(c, 2))
      block<R, 2, true, false>(taps, c, p, out, out_rs, tail);
    else
      block<R, 2, true, true>(taps, c, p, out, out_rs, tail);
  } else if (rest > 0) {
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(rest)), lanes);
    if (taps.interior(c, 1))
      block<R, 1, true, false>(taps, c, p, out, out_rs, tail);
    else
      block<R, 1, true, true>(taps, c, p, out, out_rs, tail);
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

void depthwise_stride1(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, const Params& p,
                       float* out) {
  const int rb = ow_count < 16 ? 6 : 3;
  for (int64_t oh = 0; oh < oh_count;) {
    const int rows = block_rows(oh_count - oh, rb);
    Stride1Taps t;
    for (int k = 0; k < rows + 2; ++k) t.row[k] = in + (oh + k) * in_w;
    rows_dispatch(rows, t, ow_count, p, out + oh * ow_count, ow_count);
    oh += rows;
  }
}

// even[i] = row[2i], odd[i] = row[2i + 1] for i <= count (16 floats at a time; the
// caller guarantees row is readable 16 floats past row[2 * count]).
void split_even_odd(const float* row, int64_t count, float* even, float* odd) {
  for (int64_t i = 0; i <= count; i += 8) {
    const __m256 lo = _mm256_loadu_ps(row + 2 * i), hi = _mm256_loadu_ps(row + 2 * i + 8);
    const __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // x0 x2 x8 x10 | x4 x6 x12 x14
    const __m256 od = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    _mm256_storeu_ps(even + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0))));
    _mm256_storeu_ps(odd + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), _MM_SHUFFLE(3, 1, 2, 0))));
  }
}

// Stride 2, dilation 1. A function of its own so that the ~28 KiB scratch on its stack
// frame is not set up for stride-1 calls (measured: a fixed ~300 ns per plane).
__attribute__((noinline)) void depthwise_stride2(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count,
                                                 const Params& p, float* out) {
  constexpr int64_t kHalf = kStripWidth + 16;  // floats per half row: the strip, the 3rd tap's +1, 8 spare
  alignas(32) float halves[2 * kMaxRows + 1][2][kHalf];
  const int rb = ow_count < 16 ? 6 : 3;
  for (int64_t c0 = 0; c0 < ow_count; c0 += kStripWidth) {
    const int64_t width = ow_count - c0 < kStripWidth ? ow_count - c0 : kStripWidth;
    for (int64_t oh = 0; oh < oh_count;) {
      const int rows = block_rows(oh_count - oh, rb);
      Stride2Taps t;
      for (int j = 0; j < 2 * rows + 1; ++j) {
        split_even_odd(in + (2 * oh + j) * in_w + 2 * c0, width, halves[j][0], halves[j][1]);
        t.even[j] = halves[j][0];
        t.odd[j] = halves[j][1];
      }
      rows_dispatch(rows, t, width, p, out + oh * ow_count + c0, ow_count);
      oh += rows;
    }
  }
}

// Any stride and dilation, one output row at a time (four accumulators across the row).
void depthwise_generic(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, int stride, int dil,
                       const Params& p, float* out) {
  const __m256 bv = _mm256_set1_ps(p.bias), lo = _mm256_set1_ps(p.lo), hi = _mm256_set1_ps(p.hi);
  for (int64_t oh = 0; oh < oh_count; ++oh) {
    const float* tap[9];
    for (int kh = 0; kh < 3; ++kh)
      for (int kw = 0; kw < 3; ++kw) tap[kh * 3 + kw] = in + (oh * stride + kh * dil) * in_w + kw * dil;
    float* o = out + oh * ow_count;
    if (stride != 1) {
      for (int64_t i = 0; i < ow_count; ++i) {  // strided taps: scalar FMAs in t order
        float acc = p.bias;
        for (int t = 0; t < 9; ++t) acc = __builtin_fmaf(_mm256_cvtss_f32(p.w[t]), tap[t][i * stride], acc);
        acc = _mm256_cvtss_f32(clamp8(_mm256_set1_ps(acc), lo, hi));
        o[i] = acc;
      }
      continue;
    }
    int64_t i = 0;
    for (; i + 32 <= ow_count; i += 32) {
      __m256 a0 = bv, a1 = bv, a2 = bv, a3 = bv;
      for (int t = 0; t < 9; ++t) {
        const float* q = tap[t] + i;
        a0 = _mm256_fmadd_ps(p.w[t], _mm256_loadu_ps(q), a0);
        a1 = _mm256_fmadd_ps(p.w[t], _mm256_loadu_ps(q + 8), a1);
        a2 = _mm256_fmadd_ps(p.w[t], _mm256_loadu_ps(q + 16), a2);
        a3 = _mm256_fmadd_ps(p.w[t], _mm256_loadu_ps(q + 24), a3);
      }
      _mm256_storeu_ps(o + i, clamp8(a0, lo, hi));
      _mm256_storeu_ps(o + i + 8, clamp8(a1, lo, hi));
      _mm256_storeu_ps(o + i + 16, clamp8(a2, lo, hi));
      _mm256_storeu_ps(o + i + 24, clamp8(a3, lo, hi));
    }
    for (; i < ow_count; i += 8) {
      const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(ow_count - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      __m256 acc = bv;
      for (int t = 0; t < 9; ++t) acc = _mm256_fmadd_ps(p.w[t], _mm256_loadu_ps(tap[t] + i), acc);
      _mm256_maskstore_ps(o + i, mask, clamp8(acc, lo, hi));
    }
  }
}

// --- in place over the unpadded plane (depthwise3x3_plane_avx2) ---

// A row of at least n zeros: the taps of the padding rows. A static row serves planes up
// to 4096 wide, wider ones a per-thread row (thread_local in a shared library costs a
// __tls_get_addr call per access, too much per plane).
const float* zero_row(int64_t n) {
  alignas(32) static const float kZeroRow[4096] = {};
  if (n <= 4096) return kZeroRow;
  thread_local std::vector<float> zeros;
  if (zeros.size() < size_t(n)) zeros.assign(size_t(n), 0.0f);
  return zeros.data();
}

void plane_stride1(const float* in, int64_t h, int64_t w, int64_t ph, int64_t pw, int64_t oh_count,
                   int64_t ow_count, const Params& p, float* out) {
  const int rb = ow_count < 16 ? 6 : 3;
  const float* zeros = zero_row(w);
  Stride1PlaneTaps t;
  t.w = w;
  t.pw = pw;
  for (int64_t oh = 0; oh < oh_count;) {
    const int rows = block_rows(oh_count - oh, rb);
    for (int k = 0; k < rows + 2; ++k) {
      const int64_t i = oh + k - ph;
      t.row[k] = i >= 0 && i < h ? in + i * w : zeros;
    }
    rows_dispatch(rows, t, ow_count, p, out + oh * ow_count, ow_count);
    oh += rows;
  }
}

// even[i] = x(j0 + 2i), odd[i] = x(j0 + 2i + 1) for i <= count, 8 at a time, with x the
// row of `w` floats and 0 outside it (masked loads where a vector reaches past the row).
void split_even_odd_plane(const float* row, int64_t j0, int64_t w, int64_t count, float* even, float* odd) {
  for (int64_t i = 0; i <= count; i += 8) {
    const int64_t j = j0 + 2 * i;
    __m256 lo, hi;
    if (j >= 0 && j + 16 <= w) {
      lo = _mm256_loadu_ps(row + j);
      hi = _mm256_loadu_ps(row + j + 8);
    } else {
      lo = load_masked(row, j, edge_mask(j, w));
      hi = load_masked(row, j + 8, edge_mask(j + 8, w));
    }
    const __m256 ev = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 od = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    _mm256_storeu_ps(even + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0))));
    _mm256_storeu_ps(odd + i, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), _MM_SHUFFLE(3, 1, 2, 0))));
  }
}

__attribute__((noinline)) void plane_stride2(const float* in, int64_t h, int64_t w, int64_t ph, int64_t pw,
                                             int64_t oh_count, int64_t ow_count, const Params& p, float* out) {
  constexpr int64_t kHalf = kStripWidth + 16;
  alignas(32) float halves[2 * kMaxRows + 1][2][kHalf];
  alignas(32) static const float kZeros[kHalf] = {};  // both halves of a padding row
  const int rb = ow_count < 16 ? 6 : 3;
  for (int64_t c0 = 0; c0 < ow_count; c0 += kStripWidth) {
    const int64_t width = ow_count - c0 < kStripWidth ? ow_count - c0 : kStripWidth;
    for (int64_t oh = 0; oh < oh_count;) {
      const int rows = block_rows(oh_count - oh, rb);
      Stride2Taps t;
      for (int j = 0; j < 2 * rows + 1; ++j) {
        const int64_t i = 2 * oh + j - ph;  // the padded row 2 oh + j
        if (i < 0 || i >= h) {
          t.even[j] = t.odd[j] = kZeros;
          continue;
        }
        // padded column 2 (c0 + k) is plane column 2 (c0 + k) - pw
        split_even_odd_plane(in + i * w, 2 * c0 - pw, w, width, halves[j][0], halves[j][1]);
        t.even[j] = halves[j][0];
        t.odd[j] = halves[j][1];
      }
      rows_dispatch(rows, t, width, p, out + oh * ow_count + c0, ow_count);
      oh += rows;
    }
  }
}

Params make_params(const float* w, float bias, const float* clamp) {
  Params p;
  for (int t = 0; t < 9; ++t) p.w[t] = _mm256_set1_ps(w[t]);
  p.bias = bias;
  p.lo = clamp ? clamp[0] : -__builtin_inff();
  p.hi = clamp ? clamp[1] : __builtin_inff();
  return p;
}

}  // namespace

void depthwise3x3_avx2(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, int stride, int dil,
                       const float* w, float bias, float* out, const float* clamp) {
  const Params p = make_params(w, bias, clamp);
  if (dil == 1 && stride == 1)
    depthwise_stride1(in, in_w, oh_count, ow_count, p, out);
  else if (dil == 1 && stride == 2)
    depthwise_stride2(in, in_w, oh_count, ow_count, p, out);
  else
    depthwise_generic(in, in_w, oh_count, ow_count, stride, dil, p, out);
  // GCC leaves the upper halves dirty after calls taking __m256 by value; the SSE code
  // that runs next then pays an AVX-SSE transition (measured ~380 ns per call here).
  _mm256_zeroupper();
}

void depthwise3x3_plane_avx2(const float* in, int64_t h, int64_t in_w, int64_t ph, int64_t pw, int64_t oh_count,
                             int64_t ow_count, int stride, int dil, const float* w, float bias, float* out,
                             const float* clamp) {
  if (dil != 1 || (stride != 1 && stride != 2)) {  // rare: a padded copy, the generic path
    const int64_t hp = (oh_count - 1) * stride + 2 * dil + 1, wp = (ow_count - 1) * stride + 2 * dil + 1;
    std::vector<float> pad(size_t(hp * wp + 32), 0.0f);
    for (int64_t i = 0; i < hp; ++i)
      for (int64_t j = 0; j < wp; ++j) {
        const int64_t si = i - ph, sj = j - pw;
        if (si >= 0 && si < h && sj >= 0 && sj < in_w) pad[size_t(i * wp + j)] = in[si * in_w + sj];
      }
    depthwise3x3_avx2(pad.data(), wp, oh_count, ow_count, stride, dil, w, bias, out, clamp);
    return;
  }
  const Params p = make_params(w, bias, clamp);
  if (stride == 1)
    plane_stride1(in, h, in_w, ph, pw, oh_count, ow_count, p, out);
  else
    plane_stride2(in, h, in_w, ph, pw, oh_count, ow_count, p, out);
  _mm256_zeroupper();  // as above
}

}  // namespace seedcore

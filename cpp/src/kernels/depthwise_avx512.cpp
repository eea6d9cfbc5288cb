// AVX-512 depthwise 3x3 with dilation 1, stride 1 or 2 (the AVX-512 table's entries;
// other strides and dilations go to the AVX2 kernels). Every load is masked to the
// floats the taps need and to the plane, so the kernels run in place over the unpadded
// plane with its padding implied (depthwise3x3_plane, which the graph uses for every
// stride-2 plane and stride-1 ones of 8 output columns or more) and, stride 2, over a
// padded plane (depthwise3x3; stride 1 padded is the AVX2 kernel): lanes outside the
// plane read 0, rows outside it are rows of 0. A block of R output rows x 16 columns
// reads each of its input rows once and feeds the one to three output rows that use it.
// Stride 1: an input row is loaded at the three column shifts of the taps. Stride 2: the
// AVX2 kernel splits every input row into even and odd columns through a buffer and reads
// the taps back from it; here 16 outputs need the row's floats 2c .. 2c + 32, loaded as
// two 16-float vectors from 2c and two from 2c + 2, and one vpermt2ps each gives the even
// columns (tap kw = 0), the odd ones (kw = 1) and the even ones from 2c + 2 (kw = 2).
// Every output is bias + the nine products as FMAs in t = kh*3 + kw order, as in the
// AVX2 and scalar kernels (the same bits as the AVX2 one: test_graph).
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "graph_kernel_decls.h"

// GCC 12 warns inside its own _mm512_max_ps / _mm512_min_ps (their _mm512_undefined_ps
// pass-through operand), a known false positive (as in gemm_avx512.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace seedcore {
namespace {

constexpr int kRows = 6;  // output rows per block (R accumulators, 9 weights, taps: under 32 zmm)

struct Params512 {
  __m512 w[9];
  __m512 bias, lo, hi;
};

// Lanes l < n (n clamped to [0, 16]).
inline __mmask16 first_lanes(int64_t n) {
  return n <= 0 ? __mmask16(0) : n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u);
}

// Stride 2: the masks of the four loads of a column block, at row offsets j0 + s for
// s = 0, 16, 2, 18 (columns of the row, j0 = 2c - pw), lane l kept when its column lies
// in the row [0, in_w) and among the 2 * outputs + 1 the taps read.
struct Columns2 {
  int64_t j0;
  __mmask16 m[4];
};
inline Columns2 columns2(int64_t c, int outputs, int64_t pw, int64_t in_w) {
  Columns2 b;
  b.j0 = 2 * c - pw;
  const int64_t need_end = b.j0 + 2 * outputs + 1;  // one past the last column read
  const int64_t end = need_end < in_w ? need_end : in_w;
  const int offsets[4] = {0, 16, 2, 18};
  for (int q = 0; q < 4; ++q) {
    const int64_t start = b.j0 + offsets[q];  // column of lane 0
    const __mmask16 below = start >= 0 ? __mmask16(0xFFFF) : __mmask16(~first_lanes(-start));  // lanes with column >= 0
    b.m[q] = __mmask16(below & first_lanes(end - start));
  }
  return b;
}

// Stride 1: the masks of a column block's three loads, at columns c - pw + kw of the
// row (kw = 0, 1, 2), lane l kept when its column lies in the row [0, in_w) and l is
// one of the block's outputs.
struct Columns1 {
  int64_t j0;  // column of lane 0 of the kw = 0 load
  __mmask16 m[3];
};
inline Columns1 columns1(int64_t c, int outputs, int64_t pw, int64_t in_w) {
  Columns1 b;
  b.j0 = c - pw;
  for (int kw = 0; kw < 3; ++kw) {
    const int64_t start = b.j0 + kw;
    const __mmask16 below = start >= 0 ? __mmask16(0xFFFF) : __mmask16(~first_lanes(-start));
    b.m[kw] = __mmask16(below & first_lanes(in_w - start) & first_lanes(outputs));
  }
  return b;
}

template <int S>
using Columns = typename std::conditional<S == 1, Columns1, Columns2>::type;

// R output rows from input row i0 (of the plane; outside it: zeros), one column block of
// up to 16 outputs: each of the S * (R - 1) + 3 input rows is read once, as its three
// tap vectors (kw = 0, 1, 2), and feeds the one to three output rows that use it
// (kh = j - S * r), so each output still gets its taps in t order.
template <int S, int R>
inline void block(const float* in, int64_t h, int64_t in_w, int64_t i0, const Columns<S>& cb, int outputs,
                  const Params512& p, float* out, int64_t out_rs) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = p.bias;
#pragma GCC unroll 16
  for (int j = 0; j < S * (R - 1) + 3; ++j) {
    const int64_t i = i0 + j;
    __m512 x[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    if (i >= 0 && i < h) {
      // The address of lane 0 may lie before the row (column -1): masked-off lanes do not fault.
      const float* row = reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(in + i * in_w) + uintptr_t(cb.j0 * 4));
      if constexpr (S == 1) {
        for (int kw = 0; kw < 3; ++kw) x[kw] = _mm512_maskz_loadu_ps(cb.m[kw], row + kw);
      } else {
        const __m512 a = _mm512_maskz_loadu_ps(cb.m[0], row), b = _mm512_maskz_loadu_ps(cb.m[1], row + 16);
        const __m512 a2 = _mm512_maskz_loadu_ps(cb.m[2], row + 2), b2 = _mm512_maskz_loadu_ps(cb.m[3], row + 18);
        x[0] = _mm512_permutex2var_ps(a, even, b);
        x[1] = _mm512_permutex2var_ps(a, odd, b);
        x[2] = _mm512_permutex2var_ps(a2, even, b2);
      }
    }
    for (int r = 0; r < R; ++r) {
      const int kh = j - S * r;
      if (kh < 0 || kh > 2) continue;
      for (int kw = 0; kw < 3; ++kw) acc[r] = _mm512_fmadd_ps(p.w[kh * 3 + kw], x[kw], acc[r]);
    }
  }
  const __mmask16 store = first_lanes(outputs);
  for (int r = 0; r < R; ++r)
    _mm512_mask_storeu_ps(out + r * out_rs, store, _mm512_min_ps(p.hi, _mm512_max_ps(p.lo, acc[r])));
}

// Output rows [0, oh_count) x columns [0, ow_count) of the convolution with stride S over
// the h x in_w plane with ph rows and pw columns of zero padding implied above and left:
// column blocks of 16, then balanced blocks of output rows (7 rows as 4 + 3, not 6 + 1).
template <int S>
void plane(const float* in, int64_t h, int64_t in_w, int64_t ph, int64_t pw, int64_t oh_count, int64_t ow_count,
           const Params512& p, float* out) {
  for (int64_t c = 0; c < ow_count; c += 16) {
    const int outputs = int(ow_count - c < 16 ? ow_count - c : 16);
    Columns<S> cb;
    if constexpr (S == 1)
      cb = columns1(c, outputs, pw, in_w);
    else
      cb = columns2(c, outputs, pw, in_w);
    for (int64_t oh = 0; oh < oh_count;) {
      const int64_t left = oh_count - oh, blocks = (left + kRows - 1) / kRows;
      const int rows = int((left + blocks - 1) / blocks);
      float* o = out + oh * ow_count + c;
      const int64_t i0 = S * oh - ph;
      switch (rows) {
        case 1: block<S, 1>(in, h, in_w, i0, cb, outputs, p, o, ow_count); break;
        case 2: block<S, 2>(in, h, in_w, i0, cb, outputs, p, o, ow_count); break;
        case 3: block<S, 3>(in, h, in_w, i0, cb, outputs, p, o, ow_count); break;
        case 4: block<S, 4>(in, h, in_w, i0, cb, outputs, p, o, ow_count); break;
        case 5: block<S, 5>(in, h, in_w, i0, cb, outputs, p, o, ow_count); break;
        default: block<S, kRows>(in, h, in_w, i0, cb, outputs, p, o, ow_count); break;
      }
      oh += rows;
    }
  }
}

Params512 make_params512(const float* w, float bias, const float* clamp) {
  Params512 p;
  for (int t = 0; t < 9; ++t) p.w[t] = _mm512_set1_ps(w[t]);
  p.bias = _mm512_set1_ps(bias);
  p.lo = _mm512_set1_ps(clamp ? clamp[0] : -__builtin_inff());
  p.hi = _mm512_set1_ps(clamp ? clamp[1] : __builtin_inff());
  return p;
}

}  // namespace

// Over a padded plane only stride 2 (stride 1 through the AVX2 kernel: the graph pads
// only planes under 8 output columns, where that one is faster).
void depthwise3x3_avx512(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count, int stride, int dil,
                         const float* w, float bias, float* out, const float* clamp) {
  if (stride != 2 || dil != 1) return depthwise3x3_avx2(in, in_w, oh_count, ow_count, stride, dil, w, bias, out, clamp);
  // The padded plane: every row the taps read exists, and no column past the last tap is read.
  plane<2>(in, 2 * oh_count + 1, in_w, 0, 0, oh_count, ow_count, make_params512(w, bias, clamp), out);
  _mm256_zeroupper();
}

void depthwise3x3_plane_avx512(const float* in, int64_t h, int64_t in_w, int64_t ph, int64_t pw, int64_t oh_count,
                               int64_t ow_count, int stride, int dil, const float* w, float bias, float* out,
                               const float* clamp) {
  if ((stride != 1 && stride != 2) || dil != 1)
    return depthwise3x3_plane_avx2(in, h, in_w, ph, pw, oh_count, ow_count, stride, dil, w, bias, out, clamp);
  if (stride == 1)
    plane<1>(in, h, in_w, ph, pw, oh_count, ow_count, make_params512(w, bias, clamp), out);
  else
    plane<2>(in, h, in_w, ph, pw, oh_count, ow_count, make_params512(w, bias, clamp), out);
  _mm256_zeroupper();
}

}  // namespace seedcore

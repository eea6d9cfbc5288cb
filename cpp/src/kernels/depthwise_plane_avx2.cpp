// AVX2+FMA depthwise 3x3 over the unpadded plane (depthwise3x3_plane_avx2). Stride 2,
// dilation 1 runs in place: each input row is split into the even and odd columns of the
// padded row straight from the plane, with lane-masked loads where a vector reaches past
// either end of the row (lanes outside read 0 and are never touched), and rows above and
// below the plane are rows of zeros; then the padded kernel's own blocks run over the
// split rows (depthwise_avx2_blocks.h), so the results are the same bits. That saves the
// padded copy of wide planes (MobileNetV2's 112-wide stride-2 planes after the fused
// expansion: 0.76 -> 0.61 ms for the node). Other strides and dilations pad a copy and run
// the padded kernel: in place, stride 1 needs masked loads in its edge blocks, which
// measured no faster than the copy.
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "depthwise_avx2_blocks.h"
#include "graph_kernel_decls.h"

namespace seedcore {
namespace {

using namespace dw_avx2;

// 8 floats of a row of w floats from column j; lanes outside [0, w) read 0 and are never
// touched (the address of lane 0 may lie before the row; masked-off lanes do not fault).
inline __m256 load_edge(const float* row, int64_t j, int64_t w) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int64_t lo = j < -8 ? -8 : (j > 8 ? 8 : j);              // lane l valid iff l >= -j
  const int64_t hi = w - j < -1 ? -1 : (w - j > 8 ? 8 : w - j);  // ... and l < w - j
  const __m256i mask = _mm256_and_si256(_mm256_cmpgt_epi32(lanes, _mm256_set1_epi32(int(-lo - 1))),
                                        _mm256_cmpgt_epi32(_mm256_set1_epi32(int(hi)), lanes));
  const float* at = reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(row) + uintptr_t(j * 4));
  return _mm256_maskload_ps(at, mask);
}

// even[i] = x(j0 + 2i), odd[i] = x(j0 + 2i + 1) for i <= count, with x the row of w floats
// and 0 outside it: split_even_odd with masked loads at the ends of the row.
void split_even_odd_plane(const float* row, int64_t j0, int64_t w, int64_t count, float* even, float* odd) {
  for (int64_t i = 0; i <= count; i += 8) {
    const int64_t j = j0 + 2 * i;
    if (j >= 0 && j + 16 <= w) {
      split_even_odd(row + j, 0, even + i, odd + i);  // one step of 16 floats
      continue;
    }
    alignas(32) float x[16];
    _mm256_store_ps(x, load_edge(row, j, w));
    _mm256_store_ps(x + 8, load_edge(row, j + 8, w));
    split_even_odd(x, 0, even + i, odd + i);
  }
}

}  // namespace

void depthwise3x3_plane_avx2(const float* in, int64_t h, int64_t in_w, int64_t ph, int64_t pw, int64_t oh_count,
                             int64_t ow_count, int stride, int dil, const float* w, float bias, float* out,
                             const float* clamp) {
  if (stride != 2 || dil != 1) {  // a padded copy (readable 16 floats past the last tap), the padded kernel
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
  stride2_loop(oh_count, ow_count, make_params(w, bias, clamp), out,
               [&](int64_t i, int64_t c0, int64_t width, float* even, float* odd) {
                 i -= ph;  // padded row i is plane row i - ph; padded column 2 (c0 + k) is 2 (c0 + k) - pw
                 if (i < 0 || i >= h) return false;
                 split_even_odd_plane(in + i * in_w, 2 * c0 - pw, in_w, width, even, odd);
                 return true;
               });
  _mm256_zeroupper();  // see depthwise3x3_avx2
}

}  // namespace seedcore

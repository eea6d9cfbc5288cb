// The trainer's own forward of conv2d with groups 1 (im2col image by image into one
// reused buffer, W packed once per call; a relu that alone reads the output runs in the
// GEMM's epilogue; the backward pass rebuilds what it needs from the input, which is
// cheaper than writing a batch-sized im2col out to memory) and of max_pool2d (the
// position of each maximum, so the backward pass is a scatter). Same results as the executor's
// ops up to float summation order (the GEMM's K order is the same: c, kh, kw).
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#include "train/trainer_internal.h"

namespace seedcore::train {

using graph::Node;
using graph::Op;
using graph::Value;

namespace {

constexpr int64_t kMaxColFloats = int64_t(1) << 26;  // 256 MiB of one image's im2col: above, the executor's path

bool out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int64_t& out) {
  const int64_t span = d * (k - 1) + 1;
  if (in + 2 * p < span) return false;
  out = (in + 2 * p - span) / s + 1;
  return true;
}

}  // namespace

namespace {
// The KH * KW im2col rows of one padded plane (stride 1, dilation 1), by value so that
// nothing is reloaded through the lambda's references in the copy loop.
void im2col_taps_s1(const float* padded, int64_t Wp, int64_t KH, int64_t KW, int64_t OH, int64_t OW, int64_t pieces,
                    float* dst) {
  const int64_t P = OH * OW;
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw, dst += P) {
      const float* src = padded + kh * Wp + kw;
      for (int64_t oh = 0; oh + 1 < OH; ++oh)
        for (int64_t q = 0; q < pieces; ++q) std::memcpy(dst + oh * OW + 4 * q, src + oh * Wp + 4 * q, 16);
      std::memcpy(dst + (OH - 1) * OW, src + (OH - 1) * Wp, size_t(OW) * sizeof(float));
    }
}
}  // namespace

void pad_plane_into(const float* plane, int64_t H, int64_t W, int64_t ph, int64_t pw, float* p) {
  const int64_t Hp = H + 2 * ph, Wp = W + 2 * pw;
  std::fill(p, p + ph * Wp, 0.0f);
  for (int64_t h = 0; h < H; ++h) {
    float* row = p + (h + ph) * Wp;
    std::fill(row, row + pw, 0.0f);
    std::memcpy(row + pw, plane + h * W, size_t(W) * sizeof(float));
    std::fill(row + pw + W, row + Wp, 0.0f);
  }
  std::fill(p + (H + ph) * Wp, p + Hp * Wp, 0.0f);
}

float* padded_plane(std::vector<float>& buf, const float* plane, int64_t H, int64_t W, int64_t ph, int64_t pw,
                    int64_t slack) {
  const int64_t n = (H + 2 * ph) * (W + 2 * pw);
  if (buf.size() < size_t(n + slack)) buf.resize(size_t(n + slack));
  pad_plane_into(plane, H, W, ph, pw, buf.data());
  std::fill(buf.data() + n, buf.data() + n + slack, 0.0f);
  return buf.data();
}

void im2col_batch(const float* xp, int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t OH,
                  int64_t OW, const int64_t* stride, const int64_t* padding, const int64_t* dilation, float* cols,
                  TaskRunner* runner) {
  const int64_t P = OH * OW, Kg = C * KH * KW;
  const int64_t sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1], dh = dilation[0], dw = dilation[1];
  if (sh == 1 && sw == 1 && dh == 1 && dw == 1 && OW >= 4) {
    // The common case, without the per-row bounds work (which cost more than the copies
    // for LeNet's 28- and 10-float rows): a zero-padded copy of the plane, then each
    // output row is OW floats at a fixed offset, copied in whole 4-float pieces (a
    // row's overrun lands on the next row of the same task, written after it; the last
    // row of each kernel tap is copied exactly: the next one may belong to another task).
    const int64_t Wp = W + 2 * pw, pieces = OW / 4 * 4 == OW ? OW / 4 : OW / 4 + 1;
    runner->run(size_t(N * C), [&](size_t t, unsigned) {
      const int64_t img = int64_t(t) / C, c = int64_t(t) % C;
      thread_local std::vector<float> buf;
      const float* padded = padded_plane(buf, xp + (img * C + c) * H * W, H, W, ph, pw, 4);
      im2col_taps_s1(padded, Wp, KH, KW, OH, OW, pieces, cols + (img * Kg + c * KH * KW) * P);
    });
    return;
  }
  // one (image, channel) per task: its KH * KW rows of that image's block, written in order
  runner->run(size_t(N * C), [&](size_t t, unsigned) {
    const int64_t img = int64_t(t) / C, c = int64_t(t) % C;
    const float* plane = xp + (img * C + c) * H * W;
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw) {
        const int64_t r = (c * KH + kh) * KW + kw;
        const int64_t off = kw * dw - pw;
        // ow in [lo, hi) reads inside the row
        const int64_t lo = std::min<int64_t>(OW, off >= 0 ? 0 : (-off + sw - 1) / sw);
        const int64_t hi = std::max<int64_t>(lo, std::min<int64_t>(OW, W - off > 0 ? (W - off + sw - 1) / sw : 0));
        float* dst = cols + (img * Kg + r) * P;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t ih = oh * sh - ph + kh * dh;
          float* drow = dst + oh * OW;
          if (ih < 0 || ih >= H) {
            std::fill(drow, drow + OW, 0.0f);
            continue;
          }
          const float* srow = plane + ih * W + off;
          // plain loops: rows are short (28 or 10 floats in a LeNet), a memmove call each cost more
          for (int64_t ow = 0; ow < lo; ++ow) drow[ow] = 0.0f;
          if (sw == 1)
            for (int64_t ow = lo; ow < hi; ++ow) drow[ow] = srow[ow];
          else
            for (int64_t ow = lo; ow < hi; ++ow) drow[ow] = srow[ow * sw];
          for (int64_t ow = hi; ow < OW; ++ow) drow[ow] = 0.0f;
        }
      }
  });
}

void max_pool_2x2_row_reference(const float* r0, int64_t w, int32_t base, int64_t ow_count, float* dst,
                                int32_t* arg) {
  const float* r1 = r0 + w;
  for (int64_t ow = 0; ow < ow_count; ++ow) {
    const float v[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};
    const int32_t at[4] = {0, 1, int32_t(w), int32_t(w) + 1};
    float m = v[0];
    int32_t best = 0;
    for (int k = 1; k < 4; ++k)
      if (v[k] > m || (v[k] != v[k] && m == m)) {  // first maximum; NaN propagates, as torch
        m = v[k];
        best = at[k];
      }
    dst[ow] = m;
    arg[ow] = base + int32_t(2 * ow) + best;
  }
}

// Four outputs per step: "v replaces m" is (m == m) && !(v <= m) (v > m, or v NaN while
// m is not) as a lane mask, then bitwise selects: the reference's choices, without its
// branches (on the maxima of random data they were a coin toss: ~10% of a LeNet step).
void max_pool_2x2_row(const float* r0, int64_t w, int32_t base, int64_t ow_count, float* dst, int32_t* arg) {
  int64_t ow = 0;
#if defined(__SSE2__)
  const float* r1 = r0 + w;
  const __m128i at1 = _mm_set1_epi32(1), at2 = _mm_set1_epi32(int32_t(w)), at3 = _mm_set1_epi32(int32_t(w) + 1);
  const __m128i lane2 = _mm_setr_epi32(0, 2, 4, 6);
  auto pick = [](__m128 t, __m128 a, __m128 b) { return _mm_or_ps(_mm_and_ps(t, a), _mm_andnot_ps(t, b)); };
  auto picki = [](__m128 t, __m128i a, __m128i b) {
    const __m128i ti = _mm_castps_si128(t);
    return _mm_or_si128(_mm_and_si128(ti, a), _mm_andnot_si128(ti, b));
  };
  for (; ow + 4 <= ow_count; ow += 4) {
    const __m128 a0 = _mm_loadu_ps(r0 + 2 * ow), a1 = _mm_loadu_ps(r0 + 2 * ow + 4);
    const __m128 b0 = _mm_loadu_ps(r1 + 2 * ow), b1 = _mm_loadu_ps(r1 + 2 * ow + 4);
    const __m128 v0 = _mm_shuffle_ps(a0, a1, _MM_SHUFFLE(2, 0, 2, 0)), v1 = _mm_shuffle_ps(a0, a1, _MM_SHUFFLE(3, 1, 3, 1));
    const __m128 v2 = _mm_shuffle_ps(b0, b1, _MM_SHUFFLE(2, 0, 2, 0)), v3 = _mm_shuffle_ps(b0, b1, _MM_SHUFFLE(3, 1, 3, 1));
    __m128 m = v0;
    __m128i best = _mm_setzero_si128();
    __m128 t = _mm_and_ps(_mm_cmpeq_ps(m, m), _mm_cmpnle_ps(v1, m));
    m = pick(t, v1, m);
    best = picki(t, at1, best);
    t = _mm_and_ps(_mm_cmpeq_ps(m, m), _mm_cmpnle_ps(v2, m));
    m = pick(t, v2, m);
    best = picki(t, at2, best);
    t = _mm_and_ps(_mm_cmpeq_ps(m, m), _mm_cmpnle_ps(v3, m));
    m = pick(t, v3, m);
    best = picki(t, at3, best);
    _mm_storeu_ps(dst + ow, m);
    const __m128i off = _mm_add_epi32(_mm_set1_epi32(base + int32_t(2 * ow)), lane2);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(arg + ow), _mm_add_epi32(off, best));
  }
#elif defined(__ARM_NEON)
  const float* r1 = r0 + w;
  const int32x4_t at1 = vdupq_n_s32(1), at2 = vdupq_n_s32(int32_t(w)), at3 = vdupq_n_s32(int32_t(w) + 1);
  const int32_t lanes[4] = {0, 2, 4, 6};
  const int32x4_t lane2 = vld1q_s32(lanes);
  for (; ow + 4 <= ow_count; ow += 4) {
    const float32x4x2_t a = vld2q_f32(r0 + 2 * ow), b = vld2q_f32(r1 + 2 * ow);
    float32x4_t m = a.val[0];
    int32x4_t best = vdupq_n_s32(0);
    uint32x4_t t = vandq_u32(vceqq_f32(m, m), vmvnq_u32(vcleq_f32(a.val[1], m)));
    m = vbslq_f32(t, a.val[1], m);
    best = vbslq_s32(t, at1, best);
    t = vandq_u32(vceqq_f32(m, m), vmvnq_u32(vcleq_f32(b.val[0], m)));
    m = vbslq_f32(t, b.val[0], m);
    best = vbslq_s32(t, at2, best);
    t = vandq_u32(vceqq_f32(m, m), vmvnq_u32(vcleq_f32(b.val[1], m)));
    m = vbslq_f32(t, b.val[1], m);
    best = vbslq_s32(t, at3, best);
    vst1q_f32(dst + ow, m);
    vst1q_s32(arg + ow, vaddq_s32(vaddq_s32(vdupq_n_s32(base + int32_t(2 * ow)), lane2), best));
  }
#endif
  if (ow < ow_count) max_pool_2x2_row_reference(r0 + 2 * ow, w, base + int32_t(2 * ow), ow_count - ow, dst + ow, arg + ow);
}

namespace {

bool conv_forward(const Node& n, const std::vector<const Value*>& in, graph::RunContext& ctx, NodeAux& aux,
                  Value& out) {
  const Value& x = *in[0];
  const Value& w = *in[1];
  const Value* b = in.size() > 2 ? in[2] : nullptr;
  const graph::Attrs& a = n.attrs;
  if (a.groups != 1 || x.shape.size() != 4 || w.shape.size() != 4 || x.dtype != ElemType::f32) return false;
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OC = w.shape[0], KH = w.shape[2], KW = w.shape[3];
  if (w.shape[1] != C || (b && (b->shape.size() != 1 || b->shape[0] != OC))) return false;
  if (KH == 1 && KW == 1 && a.stride[0] == 1 && a.stride[1] == 1 && a.padding[0] == 0 && a.padding[1] == 0)
    return false;  // pointwise: the executor's straight GEMM, no im2col
  int64_t OH, OW;
  if (!out_size(H, KH, a.stride[0], a.padding[0], a.dilation[0], OH) ||
      !out_size(W, KW, a.stride[1], a.padding[1], a.dilation[1], OW))
    return false;
  const int64_t P = OH * OW, Kg = C * KH * KW;
  if (P * Kg > kMaxColFloats || N * P == 0 || Kg == 0 || OC == 0) return false;
  // image by image: its im2col ([Kg, P], reused: it stays in cache) then
  // y_img[OC, P] = W[OC, Kg] · cols + b, a following relu applied in the GEMM's epilogue
  // (NaN kept, as the executor's relu). The backward pass rebuilds each image's im2col
  // (cheaper than writing the whole batch's out to memory and reading it back).
  aux.cols.resize(size_t(P * Kg));
  out = graph::new_value(ElemType::f32, {N, OC, OH, OW});
  float* yp = graph::mut_f32(out);
  GemmArgs wa;  // W, packed once for all the images
  wa.M = OC; wa.K = Kg;
  wa.a = w.f32(); wa.a_rs = Kg; wa.a_cs = 1;
  const std::vector<float> w_packed = gemm_pack_a(wa, ctx.kernels);
  for (int64_t img = 0; img < N; ++img) {
    im2col_batch(x.f32() + img * C * H * W, 1, C, H, W, KH, KW, OH, OW, a.stride, a.padding, a.dilation,
                 aux.cols.data(), ctx.runner);
    GemmArgs g;
    g.M = OC; g.N = P; g.K = Kg;
    g.a = w.f32(); g.a_rs = Kg; g.a_cs = 1;
    g.a_packed = w_packed.data();
    g.b = aux.cols.data(); g.b_ks = P; g.b_ns = 1;
    g.c = yp + img * OC * P; g.c_rs = P; g.c_cs = 1;
    g.bias_m = b ? b->f32() : nullptr;
    if (aux.relu_after) {
      g.clamp_has_min = true;
      g.clamp_min = 0.0f;
    }
    gemm(g, ctx.kernels, ctx.runner);
  }
  aux.used = true;
  return true;
}

bool max_pool_forward(const Node& n, const Value& x, graph::RunContext& ctx, NodeAux& aux, Value& out) {
  if (x.shape.size() != 4 || x.dtype != ElemType::f32) return false;
  const graph::Attrs& a = n.attrs;
  const int64_t H = x.shape[2], W = x.shape[3];
  int64_t OH, OW;
  if (!out_size(H, a.kernel[0], a.stride[0], a.padding[0], 1, OH) || !out_size(W, a.kernel[1], a.stride[1], a.padding[1], 1, OW))
    return false;
  if (H * W > INT32_MAX) return false;
  const int64_t planes = x.shape[0] * x.shape[1];
  out = graph::new_value(ElemType::f32, {x.shape[0], x.shape[1], OH, OW});
  aux.arg.resize(size_t(planes * OH * OW));
  float* yp = graph::mut_f32(out);
  const float* xp = x.f32();
  const int64_t KH = a.kernel[0], KW = a.kernel[1], sh = a.stride[0], sw = a.stride[1];
  const int64_t ph = a.padding[0], pw = a.padding[1];
  ctx.runner->run(size_t(planes), [&](size_t t, unsigned) {
    const float* src = xp + int64_t(t) * H * W;
    float* dst = yp + int64_t(t) * OH * OW;
    int32_t* arg = aux.arg.data() + int64_t(t) * OH * OW;
    if (KH == 2 && KW == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0) {  // the common 2x2 / 2, same rule
      for (int64_t oh = 0; oh < OH; ++oh)
        max_pool_2x2_row(src + 2 * oh * W, W, int32_t(2 * oh * W), OW, dst + oh * OW, arg + oh * OW);
      return;
    }
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = std::max<int64_t>(0, oh * sh - ph), h1 = std::min<int64_t>(H, oh * sh - ph + KH);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = std::max<int64_t>(0, ow * sw - pw), w1 = std::min<int64_t>(W, ow * sw - pw + KW);
        float m = -std::numeric_limits<float>::infinity();
        int64_t best = h0 * W + w0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const float v = src[ih * W + iw];
            if (v > m || v != v) {  // first maximum; NaN propagates, as torch
              m = v;
              best = ih * W + iw;
            }
          }
        dst[oh * OW + ow] = m;
        arg[oh * OW + ow] = int32_t(best);
      }
    }
  });
  aux.used = true;
  return true;
}

}  // namespace

bool forward_special(const Node& n, const std::vector<const Value*>& in, graph::RunContext& ctx,
                     std::vector<NodeAux>& all, Value& out) {
  NodeAux& aux = all[n.index];
  aux.used = false;
  if (n.op == Op::conv2d) return conv_forward(n, in, ctx, aux, out);
  if (n.op == Op::max_pool2d) return max_pool_forward(n, *in[0], ctx, aux, out);
  if (n.op == Op::relu && aux.relu_of >= 0 && all[size_t(aux.relu_of)].used) {
    out = *in[0];  // the conv already applied it: the same storage
    aux.used = true;
    return true;
  }
  return false;
}

}  // namespace seedcore::train

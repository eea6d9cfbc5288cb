// conv2d (depthwise 3x3 direct, 1x1 straight GEMM, otherwise im2col + GEMM),
// max_pool2d and avg_pool_global, all NCHW.
#include <algorithm>
#include <cstring>
#include <limits>

#include "graph/internal.h"

namespace seedcore {
namespace graph {
namespace {

void need_nchw(const Node& n, const Value& x) {
  if (x.shape.size() != 4)
    node_error(n, "input '" + n.in_names[0] + "' must be 4-D (N, C, H, W), has shape " + shape_string(x.shape));
}

int64_t out_size(const Node& n, int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, const char* axis) {
  const int64_t span = d * (k - 1) + 1;
  if (in + 2 * p < span)
    node_error(n, std::string("input ") + axis + " " + std::to_string(in) + " (padded " + std::to_string(in + 2 * p) +
                      ") is smaller than the kernel's extent " + std::to_string(span));
  return (in + 2 * p - span) / s + 1;
}

// Copies n floats as fixed 32- and 16-byte blocks (the last one overlapping) that the
// compiler inlines: a memcpy call per row of a 7x7 or 14x14 plane cost more than the copy.
inline void copy_row(float* d, const float* s, int64_t n) {
  if (n >= 8) {
    for (int64_t i = 0; i + 8 <= n; i += 8) std::memcpy(d + i, s + i, 32);
    std::memcpy(d + n - 8, s + n - 8, 32);
  } else if (n >= 4) {
    std::memcpy(d, s, 16);
    std::memcpy(d + n - 4, s + n - 4, 16);
  } else {
    for (int64_t i = 0; i < n; ++i) d[i] = s[i];
  }
}

// One channel of a depthwise 3x3 conv. Wide planes with stride 2 and dilation 1 (more
// than kPaddedWidth columns with their padding) run in place (depthwise3x3_plane: no
// padded copy; measured in MobileNetV2 at batch 1, its 112-wide stride-2 planes after the
// fused expansion: 0.76 -> 0.61 ms for the node); the others go through `pad`, a
// per-worker zero-padded copy, to the padded kernel (in place, narrow planes and stride 1
// need masked loads in most blocks: 1.2 to 2x slower than the copy), except under a
// table whose in-place kernels are faster: AVX-512, stride 2 at every width (in a
// microbenchmark of MobileNetV2's stride-2 planes, 56-wide 175 -> 82 us, 28-wide 44 -> 27,
// 14-wide 49 -> 39 against the AVX2 copy + kernel) and stride 1 from 8 output columns
// (MobileNetV2 at batch 1 against onnxruntime 0.93-0.95x -> 0.97-0.98x, three paired
// runs; its 7-wide planes stay with the copy: 36 against 43 us in the microbenchmark,
// 16 lanes for 7 columns). `pad` starts empty:
// it is zeroed once, and later planes of the same node overwrite only its interior, so
// the border and the tail stay zero. Both kernels give the same bits.
constexpr int64_t kPaddedWidth = 64;
void depthwise_plane(const RunContext& ctx, std::vector<float>& pad, const float* src, int64_t H, int64_t W,
                     int64_t ph, int64_t pw, int64_t OH, int64_t OW, int64_t stride, int64_t dil, const float* w,
                     float bias, float* dst, const float* clamp) {
  const int64_t Hp = H + 2 * ph, Wp = W + 2 * pw;
  const bool in_place = ctx.kernels.depthwise3x3_plane != nullptr && dil == 1 &&
                        (ctx.kernels.depthwise_plane_any_width ? stride == 2 || (stride == 1 && OW >= 8)
                                                               : stride == 2 && Wp > kPaddedWidth);
  if (in_place) {
    ctx.kernels.depthwise3x3_plane(src, H, W, ph, pw, OH, OW, int(stride), int(dil), w, bias, dst, clamp);
    return;
  }
  if (pad.empty()) pad.assign(size_t(Hp * Wp + 32), 0.0f);
  for (int64_t h = 0; h < H; ++h) copy_row(&pad[size_t((h + ph) * Wp + pw)], src + h * W, W);
  ctx.kernels.depthwise3x3(pad.data(), Wp, OH, OW, int(stride), int(dil), w, bias, dst, clamp);
}

Value run_conv2d(const Node& n, const std::vector<const Value*>& in, RunContext& ctx) {
  const Value& x = *in[0];
  const Value& w = *in[1];
  const Value* b = in.size() > 2 ? in[2] : nullptr;
  need_nchw(n, x);
  const Attrs& a = n.attrs;
  // The weight may be any value (a graph input or a node output), not only a
  // file tensor checked at load time: check it before indexing its shape.
  if (w.shape.size() != 4)
    node_error(n, "weight '" + n.in_names[1] + "' must be 4-D (OC, C/groups, KH, KW), has shape " +
                      shape_string(w.shape));
  if (a.groups <= 0 || w.shape[0] % a.groups != 0)
    node_error(n, "weight '" + n.in_names[1] + "' has " + std::to_string(w.shape[0]) +
                      " output channels, not a multiple of groups " + std::to_string(a.groups));
  if (b && (b->shape.size() != 1 || b->shape[0] != w.shape[0]))
    node_error(n, "bias '" + n.in_names[2] + "' has shape " + shape_string(b->shape) + ", expected [" +
                      std::to_string(w.shape[0]) + "]");
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OC = w.shape[0], Cg = w.shape[1], KH = w.shape[2], KW = w.shape[3], G = a.groups;
  if (Cg * G != C)
    node_error(n, "input '" + n.in_names[0] + "' has " + std::to_string(C) + " channels, but weight '" + n.in_names[1] +
                      "' " + shape_string(w.shape) + " with groups " + std::to_string(G) + " expects " +
                      std::to_string(Cg * G));
  const int64_t OH = out_size(n, H, KH, a.stride[0], a.padding[0], a.dilation[0], "height");
  const int64_t OW = out_size(n, W, KW, a.stride[1], a.padding[1], a.dilation[1], "width");
  Value y = new_value(ElemType::f32, {N, OC, OH, OW});
  float* yp = mut_f32(y);
  // A fused residual add (Node::fused_residual) goes into the epilogue when it has the
  // output's shape; otherwise (broadcasting) it is added afterwards, as the add node would.
  const Value* res = n.fused_residual ? in[3] : nullptr;
  const bool res_in_epilogue = res != nullptr && res->shape == y.shape;
  const float* rp = res_in_epilogue ? res->f32() : nullptr;
  const float* xp = x.f32();
  const float* wp = w.f32();
  const float* bp = b ? b->f32() : nullptr;
  const int64_t P = OH * OW, OCg = OC / G, Kg = Cg * KH * KW;
  const int64_t sh = a.stride[0], sw = a.stride[1], ph = a.padding[0], pw = a.padding[1];
  const int64_t dh = a.dilation[0], dw = a.dilation[1];

  GemmArgs clamp;  // the fused clamp's bounds, in the form the GEMM epilogue takes
  if (n.fused_clamp) {
    clamp.clamp_has_min = a.has_min;
    clamp.clamp_min = float(a.min);
    clamp.clamp_has_max = a.has_max;
    clamp.clamp_max = float(a.max);
  }
  const float clamp_bounds[2] = {a.has_min ? float(a.min) : -std::numeric_limits<float>::infinity(),
                                 a.has_max ? float(a.max) : std::numeric_limits<float>::infinity()};

  if (Cg == 1 && OCg == 1 && KH == 3 && KW == 3 && dh == dw && sh == sw) {  // depthwise 3x3, direct
    std::vector<std::vector<float>> pads(ctx.runner->workers());
    ctx.runner->run(size_t(N * C), [&](size_t t, unsigned worker) {
      const int64_t c = int64_t(t) % C;
      float* dst = yp + int64_t(t) * P;
      depthwise_plane(ctx, pads[worker], xp + int64_t(t) * H * W, H, W, ph, pw, OH, OW, sh, dh, wp + c * 9,
                      bp ? bp[c] : 0.0f, dst, n.fused_clamp ? clamp_bounds : nullptr);
      if (rp)
        for (int64_t i = 0; i < P; ++i) dst[i] = dst[i] + rp[int64_t(t) * P + i];
    });
    return res && !res_in_epilogue ? add_broadcast(n, y, *res) : y;
  }

  const bool pointwise = KH == 1 && KW == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
  // The im2col matrix: every element is written below, so a fresh (recycled, not zeroed)
  // block; zero-filling a 1.35 MB std::vector cost ~10% of MobileNetV2's first conv.
  Value col_value = pointwise ? Value{} : new_value(ElemType::f32, {Kg * P});
  float* const col = pointwise ? nullptr : mut_f32(col_value);
  for (int64_t img = 0; img < N; ++img) {
    for (int64_t g = 0; g < G; ++g) {
      const float* xg = xp + (img * C + g * Cg) * H * W;
      const float* B = xg;
      if (!pointwise) {
        ctx.runner->run(size_t(Kg), [&](size_t r, unsigned) {
          const int64_t kw = int64_t(r) % KW, kh = (int64_t(r) / KW) % KH, c = int64_t(r) / (KW * KH);
          float* dst = col + int64_t(r) * P;
          const float* plane = xg + c * H * W;
          // iw = ow * sw - pw + kw * dw is inside [0, W) for ow in [lo, hi): zeros around a
          // branch-free strided copy (the compiler vectorizes it). lo and hi depend on kw
          // only: computed once per row of col (two 64-bit divisions per output row were
          // a third of the first conv of MobileNetV2).
          const int64_t off = kw * dw - pw;
          const int64_t lo = std::min<int64_t>(OW, off >= 0 ? 0 : (-off + sw - 1) / sw);
          const int64_t hi = std::max<int64_t>(lo, std::min<int64_t>(OW, W - off > 0 ? (W - off + sw - 1) / sw : 0));
          for (int64_t oh = 0; oh < OH; ++oh) {
            const int64_t ih = oh * sh - ph + kh * dh;
            float* drow = dst + oh * OW;
            if (ih < 0 || ih >= H) {
              std::fill(drow, drow + OW, 0.0f);
              continue;
            }
            const float* srow = plane + ih * W + off;
            std::fill(drow, drow + lo, 0.0f);
            if (sw == 1)
              for (int64_t ow = lo; ow < hi; ++ow) drow[ow] = srow[ow];
            else if (sw == 2)
              for (int64_t ow = lo; ow < hi; ++ow) drow[ow] = srow[2 * ow];
            else
              for (int64_t ow = lo; ow < hi; ++ow) drow[ow] = srow[ow * sw];
            std::fill(drow + hi, drow + OW, 0.0f);
          }
        });
        B = col;
      }
      GemmArgs ga;
      ga.M = OCg; ga.N = P; ga.K = Kg;
      ga.a = wp + g * OCg * Kg; ga.a_rs = Kg; ga.a_cs = 1;
      if (G == 1 && n.packed_weight && n.packed_for == &ctx.kernels) ga.a_packed = n.packed_weight->data();
      ga.b = B; ga.b_ks = P; ga.b_ns = 1;
      ga.c = yp + (img * OC + g * OCg) * P; ga.c_rs = P; ga.c_cs = 1;
      ga.bias_m = bp ? bp + g * OCg : nullptr;  // added in the GEMM's tiles, no extra pass
      ga.clamp_has_min = clamp.clamp_has_min;
      ga.clamp_min = clamp.clamp_min;
      ga.clamp_has_max = clamp.clamp_has_max;
      ga.clamp_max = clamp.clamp_max;
      ga.residual = rp ? rp + (img * OC + g * OCg) * P : nullptr;
      gemm(ga, ctx.kernels, ctx.runner);
    }
  }
  return res && !res_in_epilogue ? add_broadcast(n, y, *res) : y;
}

// Node::fused_expand: a 1x1 expansion [+ clamp] and the depthwise 3x3 conv reading it.
// The expansion runs for a block of channels at a time (a GEMM over those rows of its
// weight) into a scratch block sized to stay in L2, and their depthwise planes are
// computed from there at once: the expanded tensor (4.8 MB at MobileNetV2's 112x112
// stage) never makes a round trip through L3. Every element gets the operations of the
// two nodes apart (a GEMM's rows do not depend on the other rows), so the same bits.
Value run_expand_depthwise(const Node& n, const std::vector<const Value*>& in, RunContext& ctx) {
  const Value& x = *in[0];
  const Value& we = *in[1];
  const Value* be = in[2];
  const Value& wd = *in[3];
  const Value* bd = in[4];
  need_nchw(n, x);
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  if (we.shape.size() != 4 || we.shape[1] != C || we.shape[2] != 1 || we.shape[3] != 1)
    node_error(n, "expansion weight '" + n.in_names[1] + "' has shape " + shape_string(we.shape) + ", expected [E, " +
                      std::to_string(C) + ", 1, 1]");
  const int64_t E = we.shape[0];
  if (wd.shape != std::vector<int64_t>{E, 1, 3, 3})
    node_error(n, "weight '" + n.in_names[3] + "' has shape " + shape_string(wd.shape) + ", expected [" +
                      std::to_string(E) + ", 1, 3, 3]");
  for (int i : {2, 4})
    if (in[size_t(i)] && in[size_t(i)]->shape != std::vector<int64_t>{E})
      node_error(n, "bias '" + n.in_names[size_t(i)] + "' has shape " + shape_string(in[size_t(i)]->shape) +
                        ", expected [" + std::to_string(E) + "]");
  const Attrs& a = n.attrs;
  const int64_t OH = out_size(n, H, 3, a.stride[0], a.padding[0], a.dilation[0], "height");
  const int64_t OW = out_size(n, W, 3, a.stride[1], a.padding[1], a.dilation[1], "width");
  Value y = new_value(ElemType::f32, {N, E, OH, OW});
  float* yp = mut_f32(y);
  const int64_t P = H * W, OP = OH * OW;
  const int64_t sh = a.stride[0], ph = a.padding[0], pw = a.padding[1], dh = a.dilation[0];
  // Channels per block: a multiple of the micro-kernel height (the packed weight's
  // micro-panels), about 512 KiB of expanded planes.
  const int64_t mr = ctx.kernels.mr;
  const int64_t block = std::min(E, mr * std::max<int64_t>(1, (int64_t(512) << 10) / (P * int64_t(sizeof(float)) * mr)));
  Value scratch_value = new_value(ElemType::f32, {block * P});
  float* const scratch = mut_f32(scratch_value);
  // The packed expansion weight (gemm_pack_a) holds rows c0.. at c0 * C while K fits one chunk.
  const float* packed = n.packed_weight && n.packed_for == &ctx.kernels && C <= ctx.kernels.kc ? n.packed_weight->data() : nullptr;
  const float dw_bounds[2] = {a.has_min ? float(a.min) : -std::numeric_limits<float>::infinity(),
                              a.has_max ? float(a.max) : std::numeric_limits<float>::infinity()};
  std::vector<std::vector<float>> pads(ctx.runner->workers());
  for (int64_t img = 0; img < N; ++img) {
    for (int64_t c0 = 0; c0 < E; c0 += block) {
      const int64_t m = std::min(block, E - c0);
      GemmArgs ga;
      ga.M = m; ga.N = P; ga.K = C;
      ga.a = we.f32() + c0 * C; ga.a_rs = C; ga.a_cs = 1;
      if (packed) ga.a_packed = packed + c0 * C;
      ga.b = x.f32() + img * C * P; ga.b_ks = P; ga.b_ns = 1;
      ga.c = scratch; ga.c_rs = P; ga.c_cs = 1;
      ga.bias_m = be ? be->f32() + c0 : nullptr;
      ga.clamp_has_min = n.expand_has_min;
      ga.clamp_min = float(n.expand_min);
      ga.clamp_has_max = n.expand_has_max;
      ga.clamp_max = float(n.expand_max);
      gemm(ga, ctx.kernels, ctx.runner);
      ctx.runner->run(size_t(m), [&](size_t j, unsigned worker) {
        const int64_t c = c0 + int64_t(j);
        depthwise_plane(ctx, pads[worker], scratch + int64_t(j) * P, H, W, ph, pw, OH, OW, sh, dh, wd.f32() + c * 9,
                        bd ? bd->f32()[c] : 0.0f, yp + (img * E + c) * OP, n.fused_clamp ? dw_bounds : nullptr);
      });
    }
  }
  return y;
}

Value run_max_pool(const Node& n, const Value& x, RunContext& ctx) {
  need_nchw(n, x);
  const Attrs& a = n.attrs;
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OH = out_size(n, H, a.kernel[0], a.stride[0], a.padding[0], 1, "height");
  const int64_t OW = out_size(n, W, a.kernel[1], a.stride[1], a.padding[1], 1, "width");
  Value y = new_value(ElemType::f32, {N, C, OH, OW});
  float* yp = mut_f32(y);
  const float* xp = x.f32();
  ctx.runner->run(size_t(N * C), [&](size_t t, unsigned) {
    const float* src = xp + int64_t(t) * H * W;
    float* dst = yp + int64_t(t) * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t kh = 0; kh < a.kernel[0]; ++kh) {
          const int64_t ih = oh * a.stride[0] - a.padding[0] + kh;
          if (ih < 0 || ih >= H) continue;
          for (int64_t kw = 0; kw < a.kernel[1]; ++kw) {
            const int64_t iw = ow * a.stride[1] - a.padding[1] + kw;
            if (iw < 0 || iw >= W) continue;
            const float v = src[ih * W + iw];
            if (v > m || v != v) m = v;  // NaN propagates, as in torch
          }
        }
        dst[oh * OW + ow] = m;
      }
  });
  return y;
}

Value run_avg_pool_global(const Node& n, const Value& x) {
  need_nchw(n, x);
  const int64_t N = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
  if (HW == 0) node_error(n, "input '" + n.in_names[0] + "' has an empty spatial extent");
  Value y = new_value(ElemType::f32, {N, C, 1, 1});
  float* yp = mut_f32(y);
  const float* xp = x.f32();
  for (int64_t t = 0; t < N * C; ++t) {
    double s = 0.0;
    for (int64_t i = 0; i < HW; ++i) s += xp[t * HW + i];
    yp[t] = float(s / double(HW));
  }
  return y;
}

}  // namespace

Value run_conv(const Node& n, const std::vector<const Value*>& in, RunContext& ctx) {
  switch (n.op) {
    case Op::conv2d: return n.fused_expand ? run_expand_depthwise(n, in, ctx) : run_conv2d(n, in, ctx);
    case Op::max_pool2d: return run_max_pool(n, *in[0], ctx);
    default: return run_avg_pool_global(n, *in[0]);
  }
}

}  // namespace graph
}  // namespace seedcore

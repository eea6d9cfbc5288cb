// Kernels of the native forward pass: GEMM, depthwise 3x3 convolution, GELU and row
// softmax, one implementation per ISA (scalar reference, AVX2+FMA, NEON) behind one table
// (on CPUs with AVX-512, the avx2 table carries AVX-512 GEMM and depthwise kernels).
//
// The GEMM is split in two layers (GotoBLAS / BLIS style):
//   * a micro-kernel (per ISA) that computes one full MR x NR tile of C over kc steps
//     of k from a packed A micro-panel (MR floats per k, so A is read with aligned
//     broadcasts from one stream) and NR contiguous floats of B per k;
//   * a driver (gemm.cpp, ISA-independent) that packs an MC x KC block of A per task
//     (it stays in L2 while the kernel sweeps the B micro-panels, each KC x NR and
//     resident in L1), packs B into KC x NR micro-panels once per call (or reads B in
//     place when it is row-major), handles ragged edges (a ragged last column panel
//     through the columns kernel) and transposed C through a small tile, and splits
//     the work over a thread pool.
// Determinism: K is cut into chunks of the table's fixed kc, each chunk accumulates into
// C in k order, so every element of C sees the same operations whatever the thread
// count, the M/N blocking or the way tiles are handed out.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "seedcore/cpu.h"

namespace seedcore {

// c[i*c_rs + j] = start(i, j) + sum_{k<kc} a[k*MR + i] * b[k*b_ks + j] for the whole tile
// i < MR, j < NR, in k order, where start is c's old value (accumulate), else
// row_bias[i] (row_bias non-null: MR floats), else col_bias[j] (col_bias non-null: NR
// floats, a linear layer's bias), else 0. With `clamp` non-null ({lo, hi})
// each result is then clamped: v < lo -> lo, v > hi -> hi, NaN kept (fused ReLU6; a
// missing bound is -inf / +inf). `a` is a packed A micro-panel; `b` holds NR readable
// floats per k (a packed B micro-panel with b_ks == NR, or row-major B read in place).
// The bias start and the clamp live in the kernel because with the small K of 1x1
// convolutions a separate pass over the tile cost as much as the FMAs; a column bias
// written into C first and loaded back cost ~10% of MiniLM's linear layers (the 64-byte
// loads wait for the narrower stores to drain).
using GemmMicroKernelFn = void (*)(int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c,
                                   ptrdiff_t c_rs, bool accumulate, const float* row_bias, const float* col_bias, const float* clamp);

// The micro-kernel's contract for only the first m rows of the tile (1 <= m <= MR; `a`
// is still a packed micro-panel with MR floats per k, `row_bias` MR floats): the same
// operations per element, so results never depend on which one ran. For batch-1 layers
// (a classifier's M = 1) the full kernel would do MR times the work.
using GemmMicroRowsFn = void (*)(int m, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c,
                                 ptrdiff_t c_rs, bool accumulate, const float* row_bias, const float* col_bias, const float* clamp);

// The micro-kernel's contract for the first n columns of the tile (1 <= n <= NR; all MR
// rows): the same operations per element, reading only n floats of B per k and writing
// only those columns of C (`col_bias` n floats). A ragged last column panel (MobileNetV2's
// 7 x 7 planes: 49 = 32 + 17 columns under the 32-wide AVX-512 tile) then costs what its
// width needs, not a full tile through a buffer, and B may be read in place up to its
// last column.
using GemmMicroColsFn = void (*)(int n, int kc, const float* a, const float* b, ptrdiff_t b_ks, float* c,
                                 ptrdiff_t c_rs, bool accumulate, const float* row_bias, const float* col_bias,
                                 const float* clamp);

// Packs one B panel whose columns are contiguous rows of `w` (a linear layer's weight,
// B = Wᵀ): dst[k*NR + j] = w[j*w_rs + k] for k < K, j < nr, and 0 for nr <= j < NR.
// The GEMM driver packs A's micro-panels of row-major A with it too (NR = nr = MR).
using GemmPackBtFn = void (*)(const float* w, ptrdiff_t w_rs, int64_t K, int nr, int NR, float* dst);

// Depthwise 3x3 convolution of one channel over a zero-padded input plane:
// out[oh*OW + ow] = bias + sum_{kh,kw} w[kh*3+kw] * in[(oh*stride + kh*dil)*in_w + ow*stride + kw*dil].
// `in` must stay readable 16 floats past the last element the formula touches. With
// `clamp` non-null ({lo, hi}) each output is then clamped like the GEMM's epilogue (fused ReLU6).
using Depthwise3x3Fn = void (*)(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count,
                                int stride, int dil, const float* w, float bias, float* out, const float* clamp);
// The same convolution over an unpadded h x in_w plane with ph rows and pw columns of
// zero padding implied on each side: the taps read x(i, j) = in[i*in_w + j] inside the
// plane and 0 outside it (as over a zero-filled padded copy: the same products, the same
// results), and only the plane's h * in_w floats are read. The graph runs wide stride-2
// planes (over 64 columns with their padding) through it, saving the padded copy
// (MobileNetV2's 112-wide ones), and with depthwise_plane_any_width (AVX-512) every
// stride-2 plane and stride-1 ones from 8 output columns; the others through the padded
// kernel. Null in the tables without one (scalar, NEON): those pad every plane. Its
// reference is the scalar padded kernel over a padded copy (test_graph: the same bits as
// the table's own padded kernel).
using Depthwise3x3PlaneFn = void (*)(const float* in, int64_t h, int64_t in_w, int64_t ph, int64_t pw,
                                     int64_t oh_count, int64_t ow_count, int stride, int dil, const float* w,
                                     float bias, float* out, const float* clamp);

// y[i] = 0.5 x[i] (1 + erf(x[i] / sqrt 2)) for i < n (y may be x).
using GeluFn = void (*)(const float* x, float* y, int64_t n);
// Softmax of one contiguous row of n floats: y = exp(x - max x) / sum (y may be x).
using SoftmaxRowFn = void (*)(const float* x, float* y, int64_t n);

// Layer norm of one row of d floats: mean and variance in double, then
// y = (x - float(mean)) * float(1 / sqrt(var + eps)) [* w] [+ b] in float (y may be x).
using LayerNormRowFn = void (*)(const float* x, float* y, int64_t d, const float* w, const float* b, double eps);

struct GraphKernels {
  Isa isa;
  int mr, nr;  // micro-kernel tile
  int kc;      // K chunk: fixed per table, never derived from the thread count
  GemmMicroKernelFn gemm_micro;
  GemmMicroRowsFn gemm_micro_rows;
  GemmMicroColsFn gemm_micro_cols;
  GemmPackBtFn gemm_pack_bt;
  Depthwise3x3Fn depthwise3x3;
  Depthwise3x3PlaneFn depthwise3x3_plane;
  // Stride-2 planes of every width and stride-1 planes of 8 output columns or more
  // (dilation 1) go to depthwise3x3_plane, not only wide stride-2 ones (the AVX-512
  // kernels, whose loads are masked to the plane: no padded copy, no even/odd buffer).
  bool depthwise_plane_any_width;
  GeluFn gelu_erf;          // SIMD ones: polynomial erf/exp, within the tolerances test_graph states
  SoftmaxRowFn softmax_row;
  LayerNormRowFn layer_norm_row;  // SIMD ones: sums in another order, tolerance in test_graph
};

// Throws SeedError when this build/CPU lacks `isa`. On x86 with AVX-512 (F, BW, VL, DQ;
// cpuid + OS ZMM state) the avx2 table carries the AVX-512 GEMM micro-kernel unless
// allow_avx512 is false (tests and benchmarks use that to reach the AVX2 one).
const GraphKernels& graph_kernels(Isa isa, bool allow_avx512 = true);


// Runs fn(task, worker) for task in [0, n); worker < workers(). Implemented by the
// executor's thread pool; a null runner means "run inline".
class TaskRunner {
 public:
  virtual ~TaskRunner() = default;
  virtual unsigned workers() const = 0;
  virtual void run(size_t n, const std::function<void(size_t, unsigned)>& fn) = 0;
};

// C(i, j) = [C(i, j) when accumulate] + [bias_m[i]] + [bias_n[j]] + sum_k A(i, k) * B(k, j),
// i < M, j < N, added in that order, with A(i, k) = a[i*a_rs + k*a_cs],
// B(k, j) = b[k*b_ks + j*b_ns], C(i, j) = c[i*c_rs + j*c_cs]. The biases (optional)
// are written into each C tile just before its first K chunk, so they cost no pass.
struct GemmArgs {
  int64_t M = 0, N = 0, K = 0;
  const float* a = nullptr; ptrdiff_t a_rs = 0, a_cs = 1;
  const float* b = nullptr; ptrdiff_t b_ks = 0, b_ns = 1;
  float* c = nullptr; ptrdiff_t c_rs = 0, c_cs = 1;
  const float* bias_m = nullptr;  // per row of C (a convolution's output channel)
  const float* bias_n = nullptr;  // per column of C (a linear layer's output feature)
  // Optional: B already packed by gemm_pack_b for the same kernels (b, b_ks, b_ns are then
  // unused). For weights that stay fixed across runs, packing once at load saves the
  // per-call transposing pack (about a quarter of a linear layer's GEMM time here).
  const float* b_packed = nullptr;
  // Optional: A already packed by gemm_pack_a for the same kernels (a, a_rs, a_cs are then
  // unused). A convolution's weight is its A side: packing it once at load saves a
  // strided 12-stream copy per call (~10% of MobileNetV2, whose N is often 49 or 196).
  const float* a_packed = nullptr;
  bool accumulate = false;
  // Optional epilogue, applied to each C element after its last K chunk (while the tile
  // is in L1) instead of a separate pass: C = min(max(C, clamp_min), clamp_max), NaN
  // kept (a conv2d followed by ReLU6, fused at graph load).
  bool clamp_has_min = false, clamp_has_max = false;
  float clamp_min = 0.0f, clamp_max = 0.0f;
  // Optional epilogue after the clamp: row_epilogue(row, row, n) on each C tile row after
  // its last K chunk (a linear followed by GELU, fused at graph load: the GELU runs on
  // the tile in L1 instead of a pass over a 4096 x 1536 tensor).
  void (*row_epilogue)(const float* x, float* y, int64_t n) = nullptr;
  // Optional, last: C(i, j) += residual[i*c_rs + j*c_cs] (a convolution followed by a
  // residual add, fused at graph load: the sum is formed while the tile is in L1).
  const float* residual = nullptr;
};
void gemm(const GemmArgs& args, const GraphKernels& kernels, TaskRunner* runner);

// B (args.K x args.N, from args.b / b_ks / b_ns) as the panels gemm reads with
// args.b_packed: ceil(N / nr) panels of K x nr floats, columns past N zero.
std::vector<float> gemm_pack_b(const GemmArgs& args, const GraphKernels& kernels);

// The epilogue clamp of GemmArgs (and of the graph's clamp op): v < lo -> lo, v > hi -> hi,
// NaN passes through.
inline void gemm_clamp_row(const GemmArgs& g, float* row, int64_t n) {
  if (g.clamp_has_min) {
    const float lo = g.clamp_min;
    for (int64_t j = 0; j < n; ++j) row[j] = row[j] < lo ? lo : row[j];
  }
  if (g.clamp_has_max) {
    const float hi = g.clamp_max;
    for (int64_t j = 0; j < n; ++j) row[j] = row[j] > hi ? hi : row[j];
  }
}

// A (args.M x args.K, from args.a / a_rs / a_cs) as the micro-panels gemm reads with
// args.a_packed: for each K chunk pc (the table's kc, the last one shorter) a region of
// ceil(M / mr) * mr rows, starting at pc * that many rows; in it, rows r0..r0+mr as one
// micro-panel of kc x mr floats at r0 * kc (rows past M zero).
std::vector<float> gemm_pack_a(const GemmArgs& args, const GraphKernels& kernels);

// Straight triple loop in k order (double-free, float accumulation): the test oracle.
void gemm_reference(const GemmArgs& args);

}  // namespace seedcore

// Kernels of the native forward pass: GEMM and depthwise 3x3 convolution, one
// implementation per ISA (scalar reference, AVX2+FMA, NEON) behind one table.
//
// The GEMM is split in two layers:
//   * a micro-kernel (per ISA) that computes one mr x NR tile of C over kc steps of
//     k, reading A by broadcasting single elements (any strides, so A is never
//     packed) and B as contiguous NR-float rows of a panel;
//   * a driver (gemm.cpp, ISA-independent) that blocks M, N and K, hands B panels to
//     the micro-kernel directly when B is row-major (packing only the ragged last
//     panel, or all of B when its columns are strided), and splits the work over a
//     thread pool.
// Determinism: K is cut into chunks of a fixed kGemmKc, each chunk accumulates into
// C in k order, so every element of C sees the same operations whatever the thread
// count or the way tiles are handed out.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

#include "seedcore/cpu.h"

namespace seedcore {

// c[i*c_rs + j] (+)= sum_{k<kc} a[i*a_rs + k*a_cs] * b[k*b_ks + j], i < mr, j < nr.
// b must hold NR readable floats per k; c must hold NR writable floats per row.
using GemmMicroKernelFn = void (*)(int mr, int kc, const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs,
                                   const float* b, ptrdiff_t b_ks, float* c, ptrdiff_t c_rs,
                                   bool accumulate);

// Depthwise 3x3 convolution of one channel over a zero-padded input plane:
// out[oh*OW + ow] = bias + sum_{kh,kw} w[kh*3+kw] * in[(oh*stride + kh*dil)*in_w + ow*stride + kw*dil].
// `in` must stay readable 16 floats past the last element the formula touches.
using Depthwise3x3Fn = void (*)(const float* in, int64_t in_w, int64_t oh_count, int64_t ow_count,
                                int stride, int dil, const float* w, float bias, float* out);

struct GraphKernels {
  Isa isa;
  int mr, nr;  // micro-kernel tile
  GemmMicroKernelFn gemm_micro;
  Depthwise3x3Fn depthwise3x3;
};

// Throws SeedError when this build/CPU lacks `isa`.
const GraphKernels& graph_kernels(Isa isa);

constexpr int kGemmKc = 256;  // K chunk: fixed, never derived from the thread count

// Runs fn(task, worker) for task in [0, n); worker < workers(). Implemented by the
// executor's thread pool; a null runner means "run inline".
class TaskRunner {
 public:
  virtual ~TaskRunner() = default;
  virtual unsigned workers() const = 0;
  virtual void run(size_t n, const std::function<void(size_t, unsigned)>& fn) = 0;
};

// C(i, j) = sum_k A(i, k) * B(k, j) (+ C(i, j) when accumulate), i < M, j < N, with
// A(i, k) = a[i*a_rs + k*a_cs], B(k, j) = b[k*b_ks + j*b_ns], C(i, j) = c[i*c_rs + j*c_cs].
struct GemmArgs {
  int64_t M = 0, N = 0, K = 0;
  const float* a = nullptr; ptrdiff_t a_rs = 0, a_cs = 1;
  const float* b = nullptr; ptrdiff_t b_ks = 0, b_ns = 1;
  float* c = nullptr; ptrdiff_t c_rs = 0, c_cs = 1;
  bool accumulate = false;
};
void gemm(const GemmArgs& args, const GraphKernels& kernels, TaskRunner* runner);

// Straight triple loop in k order (double-free, float accumulation): the test oracle.
void gemm_reference(const GemmArgs& args);

}  // namespace seedcore

// stats: a deterministic pseudo-random tensor with given mean, std, sparsity and
// leading singular values (format.md 3.5).
#include <cmath>
#include <cstring>
#include <vector>

#include "../kernels/scalar_helpers.h"
#include "codec_traits.h"
#include "seedcore/error.h"

namespace seedcore {
namespace {

void parse_stats_params(TensorSpec& spec, const JsonDocument& doc, uint32_t params, const std::string& ctx) {
  require_exact_keys(doc, params, {"k", "seed"}, ctx);
  StatsParams& p = spec.stats;
  if (spec.shape.size() >= 2) {
    p.rows = spec.shape[0];
    // rows = 0 means n = 0; cols is then 0 too (the spec's n / rows is undefined).
    p.cols = p.rows == 0 ? 0 : spec.n / p.rows;
  } else {
    p.rows = 1;
    p.cols = spec.n;
  }
  // k ≤ min(64, rows, cols), and k = 0 for tensors of fewer than 2 dimensions.
  const int64_t kmax = spec.shape.size() >= 2 ? int64_t(std::min<uint64_t>({64, p.rows, p.cols})) : 0;
  p.k = uint32_t(require_int_param(doc, params, "k", 0, kmax, ctx));
  p.seed = uint32_t(require_int_param(doc, params, "seed", 0, int64_t(0xFFFFFFFFu), ctx));
}

uint64_t stats_expected_length(const TensorSpec& spec) { return 4 * (3 + uint64_t(spec.stats.k)); }

float payload_f32(const uint8_t* payload, size_t i) { return f32_from_bits(load_u32_le_bytes(payload + 4 * i)); }

void check_stats_payload(const TensorSpec& spec, const uint8_t* payload, const std::string& ctx) {
  static const char* const kNames[] = {"mean", "std", "sparsity"};
  const size_t count = 3 + spec.stats.k;
  for (size_t i = 0; i < count; ++i)
    if (!std::isfinite(payload_f32(payload, i)))
      throw SeedError(ctx + ": " + (i < 3 ? std::string(kNames[i]) : "sigma_" + std::to_string(i - 2)) +
                      " is not finite");
  // |value| <= 2^100 keeps every intermediate of the decoding finite (format.md 3.5).
  for (size_t i = 0; i < count; ++i)
    if (!(std::fabs(payload_f32(payload, i)) <= 0x1p100f))
      throw SeedError(ctx + ": " + (i < 3 ? std::string(kNames[i]) : "sigma_" + std::to_string(i - 2)) +
                      " exceeds 2^100 in magnitude");
  if (!(payload_f32(payload, 1) >= 0.0f)) throw SeedError(ctx + ": std is negative");
  const float sparsity = payload_f32(payload, 2);
  if (!(sparsity >= 0.0f && sparsity <= 1.0f)) throw SeedError(ctx + ": sparsity is outside [0, 1]");
  for (uint32_t i = 0; i < spec.stats.k; ++i) {
    const float s = payload_f32(payload, 3 + i);
    if (!(s >= 0.0f)) throw SeedError(ctx + ": sigma_" + std::to_string(i + 1) + " is negative");
    if (i > 0 && !(payload_f32(payload, 2 + i) >= s))
      throw SeedError(ctx + ": sigma_" + std::to_string(i + 1) + " is larger than sigma_" + std::to_string(i) +
                      " (singular values must not increase)");
  }
}

// The binary64 constants of format.md 3.5, rounded to binary32.
StatsPlan make_stats_plan(const TensorSpec& spec, const uint8_t* payload) {
  StatsPlan plan;
  plan.rows = spec.stats.rows;
  plan.cols = spec.stats.cols;
  plan.k = spec.stats.k;
  plan.seed = spec.stats.seed;
  plan.mean = payload_f32(payload, 0);
  const double n = double(spec.n);
  const double sd = double(payload_f32(payload, 1));
  double sigma_sq_sum = 0.0;
  for (uint32_t i = 0; i < plan.k; ++i) {
    const double s = double(payload_f32(payload, 3 + i));
    sigma_sq_sum += s * s;
  }
  double var = sd * sd - sigma_sq_sum / n;
  if (!(var > 0.0)) var = 0.0;
  plan.noise = float(std::sqrt(var));
  for (uint32_t i = 0; i < plan.k; ++i)
    plan.c[i] = float(double(payload_f32(payload, 3 + i)) / std::sqrt(n));
  const double t = std::floor(double(payload_f32(payload, 2)) * 4294967296.0);
  plan.zero_threshold = t >= 4294967295.0 ? 0xFFFFFFFFu : uint32_t(t);
  return plan;
}

// A block is one row of the rows × cols view: every element is a function of its
// own indices, so any run of rows decodes on its own.
uint64_t stats_block_elems(const TensorSpec& spec) { return std::max<uint64_t>(1, spec.stats.cols); }

// Column gaussians for a tile of columns are computed once per range and reused by
// every row of it; the tile is narrow enough (k·width ≤ 16 Ki floats) to stay in L1/L2.
void decode_stats_range(const RangeDecodePlan& plan_in, uint64_t first_row, uint64_t rows, void* out) {
  const StatsPlan plan = make_stats_plan(*plan_in.spec, plan_in.payload);
  const DecodeKernels& k = *plan_in.kernels;
  const uint64_t r0 = first_row, r1 = first_row + rows;
  float* dst = static_cast<float*>(out) + r0 * plan.cols;
  if (rows == 0 || plan.cols == 0) return;
  if (plan.k == 0) {
    k.generate_stats_tile(plan, nullptr, 0, plan.cols, r0, r1, dst);
    return;
  }
  const uint64_t tile = std::min<uint64_t>(plan.cols, std::max<uint64_t>(8, 16384 / plan.k));
  std::vector<float> col_gauss(size_t(tile) * plan.k);
  for (uint64_t c0 = 0; c0 < plan.cols; c0 += tile) {
    const uint64_t width = std::min<uint64_t>(tile, plan.cols - c0);
    for (uint32_t i = 0; i < plan.k; ++i)
      k.stats_gauss_run(stats_key(plan.seed, 3 + 2 * i), uint32_t(c0), size_t(width),
                        col_gauss.data() + i * width);
    k.generate_stats_tile(plan, col_gauss.data(), c0, width, r0, r1, dst + c0);
  }
}

}  // namespace

const CodecTraits kStatsCodec = {Codec::stats, "stats", parse_stats_params, stats_expected_length,
                                 check_stats_payload, stats_block_elems, nullptr, decode_stats_range, nullptr};

}  // namespace seedcore

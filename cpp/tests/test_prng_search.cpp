// The prng encoder's exact seed search, natively: every lower-bound scan kernel
// available here (AVX2 on x86_64, NEON on aarch64) against scan_lb_scalar, and
// prng_search's codes (seed, exponent, mantissas, error) bit for bit across scan
// ISAs, thread counts and shortlist sizes, plus against a brute force over all
// seeds with quantize_block. The search tables are built here in float64 from
// docs/format.md 3.4 (LFSR basis, modified Gram-Schmidt, normal-equation
// pseudo-inverse), independently of the Python encoder.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../src/encode/prng_search.h"
#include "test_util.h"

using namespace seedcore::encode;
using namespace seedtest;

namespace {

// ------------------------------------------------------------------ tables

std::uint32_t taps(int K) {
  switch (K) {
    case 8: return 0xB8;
    case 9: return 0x110;
    case 10: return 0x240;
    case 11: return 0x500;
    case 12: return 0xE08;
    case 13: return 0x1C80;
    case 14: return 0x3802;
    case 15: return 0x6000;
    default: return 0xB400;
  }
}

std::uint32_t lfsr_step(std::uint32_t v, int K) {
  const std::uint32_t lsb = v & 1u;
  v >>= 1;
  if (lsb) v ^= taps(K);
  return v;
}

struct OwnedTables {
  std::vector<float> q;
  std::vector<std::int16_t> basis;
  std::vector<double> pinv;
  PrngTables t;
  int degenerate = 0;  // seeds whose basis is rank deficient (only U = 0 is handled)
};

// Solves the P x P symmetric positive definite system G X = B (B: P x C, row-major),
// Cholesky in double. Returns false if G is not numerically positive definite.
bool cholesky_solve(std::vector<double>& G, int P, std::vector<double>& B, int C) {
  for (int j = 0; j < P; ++j) {
    double d = G[j * P + j];
    for (int k = 0; k < j; ++k) d -= G[j * P + k] * G[j * P + k];
    if (!(d > 0.0)) return false;
    const double l = std::sqrt(d);
    G[j * P + j] = l;
    for (int r = j + 1; r < P; ++r) {
      double s = G[r * P + j];
      for (int k = 0; k < j; ++k) s -= G[r * P + k] * G[j * P + k];
      G[r * P + j] = s / l;
    }
  }
  for (int c = 0; c < C; ++c) {  // forward then back substitution per column of B
    for (int r = 0; r < P; ++r) {
      double s = B[r * C + c];
      for (int k = 0; k < r; ++k) s -= G[r * P + k] * B[k * C + c];
      B[r * C + c] = s / G[r * P + r];
    }
    for (int r = P - 1; r >= 0; --r) {
      double s = B[r * C + c];
      for (int k = r + 1; k < P; ++k) s -= G[k * P + r] * B[k * C + c];
      B[r * C + c] = s / G[r * P + r];
    }
  }
  return true;
}

void build_tables(int C, int P, int K, OwnedTables& o) {
  const std::size_t n = (std::size_t(1) << K) - 1;
  const std::size_t padded = (n + 7) / 8 * 8;
  const int CP = C * P;
  const double half = double(1 << (K - 1));
  o.q.assign(padded * CP, 0.0f);
  o.basis.assign(n * CP, 0);
  o.pinv.assign(n * CP, 0.0);
  o.degenerate = 0;
  std::vector<double> u(CP), qd(CP), G(P * P), B(P * C);
  for (std::size_t index = 0; index < n; ++index) {
    std::uint32_t v = std::uint32_t(index + 1);
    for (int k = 0; k < CP; ++k) {  // state k = j*C + i
      const int j = k / C, i = k % C;
      const int val = int(v) - (1 << (K - 1));
      o.basis[index * CP + i * P + j] = std::int16_t(val);
      u[i * P + j] = val / half;  // U / 2^(K-1), [i][j]
      v = lfsr_step(v, K);
    }
    // Modified Gram-Schmidt on the columns of U/2^(K-1) (two passes for accuracy).
    bool deficient = false, all_zero = true;
    for (int x = 0; x < CP; ++x) all_zero &= u[x] == 0.0;
    for (int j = 0; j < P; ++j) {
      double col_norm2 = 0.0;
      for (int i = 0; i < C; ++i) {
        qd[i * P + j] = u[i * P + j];
        col_norm2 += u[i * P + j] * u[i * P + j];
      }
      for (int pass = 0; pass < 2; ++pass)
        for (int k = 0; k < j; ++k) {
          double r = 0.0;
          for (int i = 0; i < C; ++i) r += qd[i * P + k] * qd[i * P + j];
          for (int i = 0; i < C; ++i) qd[i * P + j] -= r * qd[i * P + k];
        }
      double nrm = 0.0;
      for (int i = 0; i < C; ++i) nrm += qd[i * P + j] * qd[i * P + j];
      if (!(nrm > 1e-20 * col_norm2) || nrm == 0.0) {
        deficient = true;
        for (int i = 0; i < C; ++i) qd[i * P + j] = 0.0;
        continue;
      }
      nrm = std::sqrt(nrm);
      for (int i = 0; i < C; ++i) qd[i * P + j] /= nrm;
    }
    const std::size_t g = index / 8, l = index % 8;
    for (int j = 0; j < P; ++j)
      for (int i = 0; i < C; ++i)
        o.q[g * (CP * 8) + std::size_t(j * C + i) * 8 + l] = float(qd[i * P + j]);
    // pinv = (U^T U)^-1 U^T, [j][i].
    if (deficient) {
      ++o.degenerate;
      // Only the all-zero basis (C = P = 1, seed 2^(K-1)) is expected here; its
      // Moore-Penrose inverse is 0, which quantize_block turns into m = 0.
      CHECK_MSG(all_zero, "rank-deficient non-zero basis C=%d P=%d K=%d seed=%zu", C, P, K, index + 1);
      continue;
    }
    for (int a = 0; a < P; ++a)
      for (int b = 0; b < P; ++b) {
        double s = 0.0;
        for (int i = 0; i < C; ++i) s += u[i * P + a] * u[i * P + b];
        G[a * P + b] = s;
      }
    for (int j = 0; j < P; ++j)
      for (int i = 0; i < C; ++i) B[j * C + i] = u[i * P + j];
    const bool ok = cholesky_solve(G, P, B, C);
    CHECK_MSG(ok, "U^T U not positive definite C=%d P=%d K=%d seed=%zu", C, P, K, index + 1);
    for (int x = 0; x < CP; ++x) o.pinv[index * CP + x] = B[x];
  }
  o.t.C = C;
  o.t.P = P;
  o.t.K = K;
  o.t.num_seeds = n;
  o.t.q = o.q.data();
  o.t.q_stride = padded;
  o.t.basis = o.basis.data();
  o.t.pinv = o.pinv.data();
}

// Sanity of the tables themselves: Q orthonormal and spanning U, pinv * U = I.
void check_tables(const OwnedTables& o) {
  const PrngTables& t = o.t;
  const int C = t.C, P = t.P, CP = C * P;
  const double half = double(1 << (t.K - 1));
  double worst_orth = 0.0, worst_pinv = 0.0, worst_span = 0.0;
  for (std::size_t index = 0; index < t.num_seeds; ++index) {
    const std::int16_t* u = t.basis + index * CP;
    bool zero = true;
    for (int x = 0; x < CP; ++x) zero &= u[x] == 0;
    if (zero) continue;
    auto qv = [&](int i, int j) {
      return double(t.q[(index / 8) * (CP * 8) + std::size_t(j * C + i) * 8 + index % 8]);
    };
    for (int a = 0; a < P; ++a)
      for (int b = 0; b < P; ++b) {
        double s = 0.0, pu = 0.0;
        for (int i = 0; i < C; ++i) {
          s += qv(i, a) * qv(i, b);
          pu += t.pinv[index * CP + a * C + i] * (u[i * P + b] / half);
        }
        worst_orth = std::max(worst_orth, std::fabs(s - (a == b)));
        worst_pinv = std::max(worst_pinv, std::fabs(pu - (a == b)));
      }
    for (int j = 0; j < P; ++j) {  // column j of U minus its projection on Q
      double res = 0.0, nrm = 0.0;
      for (int i = 0; i < C; ++i) {
        double proj = 0.0;
        for (int k = 0; k < P; ++k) {
          double d = 0.0;
          for (int r = 0; r < C; ++r) d += qv(r, k) * (u[r * P + j] / half);
          proj += qv(i, k) * d;
        }
        const double x = u[i * P + j] / half;
        res += (x - proj) * (x - proj);
        nrm += x * x;
      }
      worst_span = std::max(worst_span, std::sqrt(res / nrm));
    }
  }
  for (std::size_t index = t.num_seeds; index < t.q_stride; ++index)
    for (int x = 0; x < CP; ++x) CHECK(t.q[(index / 8) * (CP * 8) + std::size_t(x) * 8 + index % 8] == 0.0f);
  CHECK_MSG(worst_orth < 1e-5, "Q not orthonormal: %g (C=%d P=%d K=%d)", worst_orth, C, P, t.K);
  CHECK_MSG(worst_pinv < 1e-6, "pinv*U != I: %g (C=%d P=%d K=%d)", worst_pinv, C, P, t.K);
  CHECK_MSG(worst_span < 1e-5, "Q does not span U: %g (C=%d P=%d K=%d)", worst_span, C, P, t.K);
}

// ------------------------------------------------------------------ blocks

const char* isa_name(ScanIsa isa) {
  switch (isa) {
    case ScanIsa::avx2: return "avx2";
    case ScanIsa::neon: return "neon";
    default: return "scalar";
  }
}

using ScanFn = void (*)(const ScanArgs&);
ScanFn scan_of(ScanIsa isa) {
  switch (isa) {
    case ScanIsa::avx2: return scan_lb_avx2;
    case ScanIsa::neon: return scan_lb_neon;
    default: return scan_lb_scalar;
  }
}

enum Kind { kGauss, kZero, kConst, kOutlier, kTiny, kNumKinds };
const char* kind_name(int k) {
  static const char* names[] = {"gauss", "zero", "const", "outlier", "tiny"};
  return names[k];
}

// One block of C floats of the given kind.
void fill_block(Rng& rng, int kind, int C, float* w) {
  std::normal_distribution<double> nd(0.0, 1.0);
  switch (kind) {
    case kGauss:
      for (int i = 0; i < C; ++i) w[i] = float(0.05 * nd(rng));
      break;
    case kZero:
      for (int i = 0; i < C; ++i) w[i] = 0.0f;
      break;
    case kConst: {
      const float c = float(0.05 * nd(rng));
      for (int i = 0; i < C; ++i) w[i] = c;
      break;
    }
    case kOutlier: {
      for (int i = 0; i < C; ++i) w[i] = float(0.002 * nd(rng));
      w[rng() % C] = float((rng() & 1 ? 1.0 : -1.0) * (0.2 + 0.3 * double(rng() % 1000) / 1000.0));
      break;
    }
    default:
      for (int i = 0; i < C; ++i) w[i] = float(1e-6 * nd(rng));
      break;
  }
}

// Kinds in proportion: mostly gaussian, some of every other kind.
int pick_kind(Rng& rng) {
  const unsigned r = unsigned(rng() % 20);
  if (r < 10) return kGauss;
  if (r < 12) return kZero;
  if (r < 14) return kConst;
  if (r < 17) return kOutlier;
  return kTiny;
}

// As prng.py's choose_exp_bias.
int choose_exp_bias(const std::vector<float>& w) {
  double amax = 0.0;
  for (float x : w) amax = std::max(amax, double(std::fabs(x)));
  if (amax == 0.0) return 0;
  return std::min(100, std::max(-100, int(std::ceil(std::log2(amax))) - 12));
}

std::string block_str(const float* w, int C) {
  std::string s = "[";
  char buf[32];
  for (int i = 0; i < C; ++i) {
    std::snprintf(buf, sizeof buf, "%s%.9g", i ? ", " : "", double(w[i]));
    s += buf;
  }
  return s + "]";
}

std::string code_str(const PrngBlockCode& c, int P) {
  char buf[256];
  int n = std::snprintf(buf, sizeof buf, "seed=%u E=%u m=[", c.seed, unsigned(c.exponent));
  for (int j = 0; j < P; ++j) n += std::snprintf(buf + n, sizeof buf - n, "%s%d", j ? "," : "", int(c.mantissa[j]));
  std::snprintf(buf + n, sizeof buf - n, "] err=%.17g eval=%u", c.error, c.evaluated);
  return buf;
}

bool same_code(const PrngBlockCode& a, const PrngBlockCode& b, int P) {
  if (a.seed != b.seed || a.exponent != b.exponent) return false;
  for (int j = 0; j < P; ++j)
    if (a.mantissa[j] != b.mantissa[j]) return false;
  return std::memcmp(&a.error, &b.error, sizeof(double)) == 0;
}

// The broadcast layout the scan reads: [b][i][8] floats, and ww as the search sums it.
void broadcast(const float* w, int nblk, int C, std::vector<float>& wb, std::vector<float>& ww) {
  wb.assign(std::size_t(nblk) * C * 8, 0.0f);
  ww.assign(nblk, 0.0f);
  for (int b = 0; b < nblk; ++b) {
    float s = 0.0f;
    for (int i = 0; i < C; ++i) {
      const float x = w[b * C + i];
      s += x * x;
      for (int l = 0; l < 8; ++l) wb[(std::size_t(b) * C + i) * 8 + l] = x;
    }
    ww[b] = s;
  }
}

struct Stats {
  long scan_calls = 0, scan_values = 0, searches = 0, blocks = 0, brute = 0;
  double worst_rel = 0.0;
};

// ------------------------------------------------------------------ 2. scan kernels

void test_scan(const OwnedTables& o, const std::vector<ScanIsa>& simd, Rng& rng, Stats& st) {
  const PrngTables& t = o.t;
  const int C = t.C;
  const std::size_t padded = t.q_stride;
  std::vector<std::pair<std::size_t, std::size_t>> tiles = {
      {0, padded}, {0, 8}, {8, 16}, {padded - 8, 8}, {padded / 2, padded / 2}, {40, padded - 48}, {96, 64}};
  std::vector<float> w, wb, ww;
  for (ScanIsa isa : simd) {
    const ScanFn fn = scan_of(isa);
    for (int nblk = 1; nblk <= 4; ++nblk) {
      for (const auto& tile : tiles) {
        const std::size_t s0 = tile.first, count = tile.second;
        for (int rep = 0; rep < 3; ++rep) {
          w.assign(std::size_t(nblk) * C, 0.0f);
          for (int b = 0; b < nblk; ++b) fill_block(rng, rep == 0 && b == 1 ? kZero : pick_kind(rng), C, &w[b * C]);
          broadcast(w.data(), nblk, C, wb, ww);
          std::vector<float> lb_ref(nblk * count), lb(nblk * count);
          std::vector<std::uint8_t> bits_ref(nblk * count / 8), bits(nblk * count / 8);
          // First pass with thr = +inf to learn a finite middle threshold per block.
          for (int th = 0; th < 3; ++th) {
            std::vector<float> thr(nblk);
            for (int b = 0; b < nblk; ++b) {
              if (th == 0) thr[b] = std::numeric_limits<float>::infinity();
              else if (th == 2) thr[b] = -std::numeric_limits<float>::infinity();
              else {
                std::vector<float> row(lb_ref.begin() + b * count, lb_ref.begin() + (b + 1) * count);
                std::nth_element(row.begin(), row.begin() + count / 2, row.end());
                thr[b] = row[count / 2];
              }
            }
            std::fill(bits_ref.begin(), bits_ref.end(), 0xA5);
            std::fill(bits.begin(), bits.end(), 0x5A);
            std::fill(lb.begin(), lb.end(), std::numeric_limits<float>::quiet_NaN());
            ScanArgs a_ref{&t, wb.data(), ww.data(), thr.data(), nblk, s0, count, lb_ref.data(), bits_ref.data()};
            ScanArgs a{&t, wb.data(), ww.data(), thr.data(), nblk, s0, count, lb.data(), bits.data()};
            scan_lb_scalar(a_ref);
            fn(a);
            st.scan_calls += 2;
            int bad_lb = 0, bad_bits = 0;
            for (int b = 0; b < nblk; ++b) {
              const double tol = 1e-4 * double(ww[b]);
              for (std::size_t s = 0; s < count; ++s) {
                const std::size_t at = std::size_t(b) * count + s;
                const double d = std::fabs(double(lb[at]) - double(lb_ref[at]));
                ++st.scan_values;
                if (ww[b] > 0.0f) st.worst_rel = std::max(st.worst_rel, d / double(ww[b]));
                if (!(d <= tol)) {
                  if (bad_lb++ < 3)
                    std::fprintf(stderr, "  %s C=%d P=%d K=%d nblk=%d s0=%zu count=%zu block %d seed %zu: lb %.9g vs scalar %.9g (ww %.9g) w=%s\n",
                                 isa_name(isa), C, t.P, t.K, nblk, s0, count, b, s0 + s + 1, double(lb[at]),
                                 double(lb_ref[at]), double(ww[b]), block_str(&w[b * C], C).c_str());
                }
                const bool want = lb[at] < thr[b], want_ref = lb_ref[at] < thr[b];
                const bool got = (bits[at / 8] >> (at % 8)) & 1, got_ref = (bits_ref[at / 8] >> (at % 8)) & 1;
                if (got != want || got_ref != want_ref) {
                  if (bad_bits++ < 3)
                    std::fprintf(stderr, "  %s C=%d P=%d K=%d nblk=%d s0=%zu count=%zu block %d seed %zu thr %.9g: bit %d (lb %.9g), scalar bit %d (lb %.9g)\n",
                                 isa_name(isa), C, t.P, t.K, nblk, s0, count, b, s0 + s + 1, double(thr[b]), int(got),
                                 double(lb[at]), int(got_ref), double(lb_ref[at]));
                }
              }
            }
            CHECK_MSG(bad_lb == 0, "%s scan: %d lower bounds differ from scalar beyond 1e-4|w|^2", isa_name(isa), bad_lb);
            CHECK_MSG(bad_bits == 0, "%s scan: %d below bits inconsistent with lb < thr", isa_name(isa), bad_bits);
          }
        }
      }
    }
  }
  // The scalar kernel alone: its bits against its own lb (covered above when a SIMD
  // ISA exists; repeated here so a scalar-only machine still checks it).
  if (simd.empty()) {
    for (int nblk = 1; nblk <= 4; ++nblk) {
      w.assign(std::size_t(nblk) * C, 0.0f);
      for (int b = 0; b < nblk; ++b) fill_block(rng, pick_kind(rng), C, &w[b * C]);
      broadcast(w.data(), nblk, C, wb, ww);
      std::vector<float> lb(nblk * padded), thr(nblk, 0.0f);
      std::vector<std::uint8_t> bits(nblk * padded / 8);
      for (int b = 0; b < nblk; ++b) thr[b] = ww[b] * 0.5f;
      ScanArgs a{&t, wb.data(), ww.data(), thr.data(), nblk, 0, padded, lb.data(), bits.data()};
      scan_lb_scalar(a);
      for (std::size_t at = 0; at < lb.size(); ++at) CHECK(bool((bits[at / 8] >> (at % 8)) & 1) == (lb[at] < thr[at / padded]));
    }
  }
}

// ------------------------------------------------------------------ 3. search

// The decoded block's squared error recomputed from the code as the format
// decodes it (f32(acc) * 2^(E + e0 - (K-1)), both factors and the product exact).
double decoded_error(const PrngTables& t, const PrngBlockCode& c, const float* w, int exp_bias) {
  const std::int16_t* u = t.basis + std::size_t(c.seed - 1) * t.C * t.P;
  const float scale = std::ldexp(1.0f, int(c.exponent) + exp_bias - (t.K - 1));
  double err = 0.0;
  for (int i = 0; i < t.C; ++i) {
    std::int32_t acc = 0;
    for (int j = 0; j < t.P; ++j) acc += std::int32_t(u[i * t.P + j]) * c.mantissa[j];
    const double d = double(w[i]) - double(float(acc) * scale);
    err += d * d;
  }
  return err;
}

void test_search(const OwnedTables& o, const std::vector<ScanIsa>& simd, Rng& rng, const char* label,
                 const std::vector<float>& w, const std::vector<int>& kinds, int brute_blocks, Stats& st) {
  const PrngTables& t = o.t;
  const int C = t.C, P = t.P;
  const std::size_t nb = w.size() / C;
  const int e0 = choose_exp_bias(w);
  std::vector<PrngBlockCode> ref(nb), got(nb);
  prng_search(t, w.data(), nb, e0, 32, ScanIsa::scalar, 1, ref.data());
  ++st.searches;
  st.blocks += long(nb);
  // Basic validity of the reference codes.
  int bad_valid = 0;
  for (std::size_t b = 0; b < nb; ++b) {
    const PrngBlockCode& c = ref[b];
    bool ok = c.seed >= 1 && c.seed <= t.num_seeds && c.exponent <= 15;
    for (int j = 0; j < P; ++j) ok &= c.mantissa[j] >= -8 && c.mantissa[j] <= 7;
    ok = ok && decoded_error(t, c, &w[b * C], e0) == c.error;
    if (!ok && bad_valid++ < 3)
      std::fprintf(stderr, "  %s C=%d P=%d K=%d block %zu (%s): invalid code %s (decoded error %.17g) w=%s\n", label, C, P,
                   t.K, b, kind_name(kinds[b]), code_str(c, P).c_str(),
                   c.seed >= 1 && c.seed <= t.num_seeds ? decoded_error(t, c, &w[b * C], e0) : -1.0,
                   block_str(&w[b * C], C).c_str());
  }
  CHECK_MSG(bad_valid == 0, "%s C=%d P=%d K=%d: %d invalid codes", label, C, P, t.K, bad_valid);

  std::vector<ScanIsa> isas = {ScanIsa::scalar};
  isas.insert(isas.end(), simd.begin(), simd.end());
  for (ScanIsa isa : isas)
    for (int threads : {1, 3})
      for (int cand : {1, 4, 32}) {
        if (isa == ScanIsa::scalar && threads == 1 && cand == 32) continue;
        std::fill(got.begin(), got.end(), PrngBlockCode{});
        prng_search(t, w.data(), nb, e0, cand, isa, threads, got.data());
        ++st.searches;
        st.blocks += long(nb);
        int bad = 0;
        for (std::size_t b = 0; b < nb; ++b) {
          if (same_code(got[b], ref[b], P)) continue;
          if (bad++ < 3)
            std::fprintf(stderr,
                         "  MISMATCH %s isa=%s threads=%d candidates=%d C=%d P=%d K=%d exp_bias=%d block %zu (%s) w=%s\n"
                         "    got    %s\n    scalar %s (threads=1 candidates=32)\n",
                         label, isa_name(isa), threads, cand, C, P, t.K, e0, b, kind_name(kinds[b]),
                         block_str(&w[b * C], C).c_str(), code_str(got[b], P).c_str(), code_str(ref[b], P).c_str());
        }
        CHECK_MSG(bad == 0, "%s isa=%s threads=%d candidates=%d C=%d P=%d K=%d: %d of %zu blocks differ", label,
                  isa_name(isa), threads, cand, C, P, t.K, bad, nb);
      }

  // Brute force over all seeds for a few blocks (at least one of every kind present),
  // and every ISA's lower bounds (less the search's margin) below every quantised error.
  std::vector<std::size_t> pick;
  for (int k = 0; k < kNumKinds; ++k)
    for (std::size_t b = 0; b < nb; ++b)
      if (kinds[b] == k) { pick.push_back(b); break; }
  while (int(pick.size()) < brute_blocks && pick.size() < nb) {
    const std::size_t b = std::size_t(rng() % nb);
    if (std::find(pick.begin(), pick.end(), b) == pick.end()) pick.push_back(b);
  }
  std::vector<double> wd(C);
  std::vector<float> wb, ww;
  std::vector<float> lb(t.q_stride);
  std::vector<std::uint8_t> bits(t.q_stride / 8);
  for (std::size_t b : pick) {
    ++st.brute;
    double norm2 = 0.0;
    for (int i = 0; i < C; ++i) {
      wd[i] = w[b * C + i];
      norm2 += wd[i] * wd[i];
    }
    const double margin = 1e-5 * norm2 + 1e-37;
    std::vector<double> err(t.num_seeds);
    PrngBlockCode best;
    best.error = std::numeric_limits<double>::infinity();
    for (std::size_t index = 0; index < t.num_seeds; ++index) {
      const PrngBlockCode c = quantize_block(t, index, wd.data(), e0);
      err[index] = c.error;
      if (c.error < best.error) best = c;  // ascending seeds: ties keep the smallest
    }
    CHECK_MSG(same_code(best, ref[b], P), "%s C=%d P=%d K=%d exp_bias=%d block %zu (%s) w=%s: search %s, brute force %s",
              label, C, P, t.K, e0, b, kind_name(kinds[b]), block_str(&w[b * C], C).c_str(),
              code_str(ref[b], P).c_str(), code_str(best, P).c_str());
    broadcast(&w[b * C], 1, C, wb, ww);
    const float thr = std::numeric_limits<float>::infinity();
    for (ScanIsa isa : isas) {
      ScanArgs a{&t, wb.data(), ww.data(), &thr, 1, 0, t.q_stride, lb.data(), bits.data()};
      scan_of(isa)(a);
      int bad = 0;
      for (std::size_t index = 0; index < t.num_seeds; ++index)
        if (!(double(lb[index]) - margin <= err[index]) && bad++ < 3)
          std::fprintf(stderr, "  %s %s C=%d P=%d K=%d block %zu seed %zu: lb %.9g - margin %.3g > error %.17g\n", label,
                       isa_name(isa), C, P, t.K, b, index + 1, double(lb[index]), margin, err[index]);
      CHECK_MSG(bad == 0, "%s %s C=%d P=%d K=%d block %zu: %d lower bounds above the quantised error", label,
                isa_name(isa), C, P, t.K, b, bad);
    }
  }
}

}  // namespace

int main() {
  std::vector<ScanIsa> simd;
  for (ScanIsa isa : {ScanIsa::avx2, ScanIsa::neon})
    if (scan_isa_available(isa)) simd.push_back(isa);
  std::printf("test_prng_search: scan ISAs: scalar");
  for (ScanIsa isa : simd) std::printf(" %s", isa_name(isa));
  std::printf("\n");

  struct Config { int C, P; };
  const Config configs[] = {{8, 3}, {8, 4}, {12, 4}, {6, 2}, {1, 1}};
  Rng rng(20240611);
  Stats st;
  for (int K : {8, 10}) {
    for (const Config& cfg : configs) {
      OwnedTables o;
      build_tables(cfg.C, cfg.P, K, o);
      check_tables(o);
      test_scan(o, simd, rng, st);

      // A mixed tensor (exp_bias from all of it, so tiny blocks quantise to zero),
      // and a tensor of tiny blocks only (exp_bias from the tiny values).
      const int nb = K == 8 ? 240 : 160;
      std::vector<float> w(std::size_t(nb) * cfg.C);
      std::vector<int> kinds(nb);
      for (int b = 0; b < nb; ++b) {
        kinds[b] = b < kNumKinds ? b : pick_kind(rng);
        fill_block(rng, kinds[b], cfg.C, &w[std::size_t(b) * cfg.C]);
      }
      test_search(o, simd, rng, "mixed", w, kinds, 20, st);

      const int nt = 24;
      std::vector<float> wt(std::size_t(nt) * cfg.C);
      std::vector<int> kt(nt, kTiny);
      for (int b = 0; b < nt; ++b) fill_block(rng, kTiny, cfg.C, &wt[std::size_t(b) * cfg.C]);
      test_search(o, simd, rng, "tiny", wt, kt, 4, st);
      std::printf("  C=%-2d P=%d K=%-2d seeds=%zu%s\n", cfg.C, cfg.P, K, o.t.num_seeds,
                  o.degenerate ? " (degenerate seeds: U = 0)" : "");
    }
  }
  std::printf("test_prng_search: %ld scan calls (%ld bounds, worst |lb - scalar|/|w|^2 = %.2e), %ld searches over %ld blocks, "
              "%ld brute-force blocks\n",
              st.scan_calls, st.scan_values, st.worst_rel, st.searches, st.blocks, st.brute);
  return finish("test_prng_search");
}

// Driver of the prng seed search: shortlist by lower bound, exact quantised
// evaluation in float64, rescan when the shortlist cannot prove optimality.
#include "prng_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace seedcore::encode {

void scan_lb_scalar(const ScanArgs& a) {
    const PrngTables& t = *a.tables;
    for (int b = 0; b < a.nblk; ++b) {
        const float* w = a.wb + static_cast<std::size_t>(b) * t.C * 8;
        for (std::size_t s = 0; s < a.count; ++s) {
            const std::size_t col = a.s0 + s;
            float proj = 0.0f;
            for (int j = 0; j < t.P; ++j) {
                float acc = 0.0f;
                for (int i = 0; i < t.C; ++i)
                    acc += t.q[(col / 8) * (t.C * t.P * 8) + static_cast<std::size_t>(j * t.C + i) * 8 +
                               col % 8] * w[i * 8];
                proj += acc * acc;
            }
            const float v = a.ww[b] - proj;
            a.lb[static_cast<std::size_t>(b) * a.count + s] = v;
            std::uint8_t& bits = a.below[(static_cast<std::size_t>(b) * a.count + s) / 8];
            if (s % 8 == 0) bits = 0;
            if (v < a.thr[b]) bits = static_cast<std::uint8_t>(bits | (1u << (s % 8)));
        }
    }
}

namespace {

constexpr int kMantMin = -8, kMantMax = 7;

// Squared error of block w against the decoded values of (basis, m, e).
// Scaling by an exact power of two (not ldexp, which is a slow libm call).
double block_error(const PrngTables& t, const std::int16_t* u, const int* m, int e,
                   const double* w) {
    const double scale = std::ldexp(1.0, e - (t.K - 1));
    double err = 0.0;
    for (int i = 0; i < t.C; ++i) {
        long acc = 0;
        for (int j = 0; j < t.P; ++j) acc += static_cast<long>(u[i * t.P + j]) * m[j];
        const double x = static_cast<double>(acc) * scale;
        const double d = w[i] - x;
        err += d * d;
    }
    return err;
}

bool clips(const double* c, int P, int e) {
    const double inv = std::ldexp(1.0, -e);
    for (int j = 0; j < P; ++j) {
        const double r = std::nearbyint(c[j] * inv);
        if (r > kMantMax || r < kMantMin) return true;
    }
    return false;
}

}  // namespace

// The quantisation procedure (prng.py's _quantize_all mirrors it exactly):
//  1. c = pinv(U) w in float64 (sequential sums over i);
//  2. e_min = the smallest exponent at which rounding (ties to even) puts every
//     c_j/2^e in [-8, 7]; try e_min - 1 (clipped), e_min, e_min + 1, each clamped
//     to the tensor's range [exp_bias, exp_bias + 15]; keep the lowest error
//     (ties: the smaller exponent);
//  3. two sweeps of coordinate descent: for j = 0..P-1, for d = -1, +1, move m_j
//     by d (staying in [-8, 7]) if that strictly lowers the error.
PrngBlockCode quantize_block(const PrngTables& t, std::size_t index, const double* w,
                             int exp_bias) {
    const int C = t.C, P = t.P;
    const std::int16_t* u = t.basis + index * static_cast<std::size_t>(C * P);
    const double* pinv = t.pinv + index * static_cast<std::size_t>(C * P);
    double c[8];
    double amax = 0.0;
    for (int j = 0; j < P; ++j) {
        double s = 0.0;
        for (int i = 0; i < C; ++i) s += pinv[j * C + i] * w[i];
        c[j] = s;
        amax = std::max(amax, std::fabs(s));
    }
    PrngBlockCode best;
    best.seed = static_cast<std::uint32_t>(index + 1);
    const int e_lo = exp_bias, e_hi = exp_bias + 15;
    int m[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int best_e = e_lo;
    double best_err = std::numeric_limits<double>::infinity();
    if (amax == 0.0) {
        best_err = block_error(t, u, m, e_lo, w);
    } else {
        int e_min = static_cast<int>(std::floor(std::log2(amax))) - 5;
        while (clips(c, P, e_min)) ++e_min;
        int tried[3];
        int ntried = 0;
        for (int e : {e_min - 1, e_min, e_min + 1}) {
            e = std::min(std::max(e, e_lo), e_hi);
            bool seen = false;
            for (int k = 0; k < ntried; ++k) seen |= tried[k] == e;
            if (seen) continue;
            tried[ntried++] = e;
            int mm[8];
            const double inv = std::ldexp(1.0, -e);
            for (int j = 0; j < P; ++j) {
                const double r = std::nearbyint(c[j] * inv);
                mm[j] = static_cast<int>(std::min<double>(std::max<double>(r, kMantMin), kMantMax));
            }
            const double err = block_error(t, u, mm, e, w);
            if (err < best_err || (err == best_err && e < best_e)) {
                best_err = err;
                best_e = e;
                std::copy(mm, mm + P, m);
            }
        }
        for (int sweep = 0; sweep < 2; ++sweep) {
            for (int j = 0; j < P; ++j) {
                for (int d : {-1, 1}) {
                    const int old = m[j];
                    const int nv = old + d;
                    if (nv < kMantMin || nv > kMantMax) continue;
                    m[j] = nv;
                    const double err = block_error(t, u, m, best_e, w);
                    if (err < best_err) best_err = err;
                    else m[j] = old;
                }
            }
        }
    }
    best.exponent = static_cast<std::uint8_t>(best_e - exp_bias);
    for (int j = 0; j < P; ++j) best.mantissa[j] = static_cast<std::int8_t>(m[j]);
    best.error = best_err;
    return best;
}

namespace {

constexpr std::size_t kSeedTile = 2048;  // q tile of C*P*2048 floats stays in L2
constexpr int kBlockGroup = 4;           // blocks sharing one pass over the q tile

struct Shortlist {  // max-heap of the smallest lower bounds seen so far
    std::vector<float> lb;
    std::vector<std::uint32_t> idx;
    std::size_t cap = 0;
    void reset(std::size_t c) { cap = c; lb.clear(); idx.clear(); }
    float threshold() const {
        return lb.size() < cap ? std::numeric_limits<float>::infinity() : lb.front();
    }
    void push(float v, std::uint32_t i) {
        auto less = [&](std::size_t a, std::size_t b) {  // heap order: larger lb on top
            return lb[a] < lb[b] || (lb[a] == lb[b] && idx[a] < idx[b]);
        };
        if (lb.size() < cap) {
            lb.push_back(v);
            idx.push_back(i);
            std::size_t k = lb.size() - 1;
            while (k > 0) {
                std::size_t p = (k - 1) / 2;
                if (!less(p, k)) break;
                std::swap(lb[p], lb[k]);
                std::swap(idx[p], idx[k]);
                k = p;
            }
            return;
        }
        lb[0] = v;
        idx[0] = i;
        std::size_t k = 0, n = lb.size();
        for (;;) {
            std::size_t l = 2 * k + 1, r = l + 1, top = k;
            if (l < n && less(top, l)) top = l;
            if (r < n && less(top, r)) top = r;
            if (top == k) break;
            std::swap(lb[top], lb[k]);
            std::swap(idx[top], idx[k]);
            k = top;
        }
    }
};

using ScanFn = void (*)(const ScanArgs&);

ScanFn scan_fn(ScanIsa isa) {
    switch (isa) {
        case ScanIsa::avx2: return scan_lb_avx2;
        case ScanIsa::neon: return scan_lb_neon;
        default: return scan_lb_scalar;
    }
}

void search_range(const PrngTables& t, const float* w, std::size_t b0, std::size_t b1,
                  int exp_bias, int candidates, ScanFn scan, PrngBlockCode* out) {
    const int C = t.C;
    const std::size_t padded = t.q_stride;
    std::vector<float> wb(static_cast<std::size_t>(kBlockGroup) * C * 8);
    std::vector<float> lb(static_cast<std::size_t>(kBlockGroup) * kSeedTile);
    std::vector<std::uint8_t> below(static_cast<std::size_t>(kBlockGroup) * kSeedTile / 8);
    std::vector<Shortlist> lists(kBlockGroup);
    std::vector<double> wd(C);
    std::vector<std::uint8_t> seen;
    for (std::size_t g = b0; g < b1; g += kBlockGroup) {
        const int nblk = static_cast<int>(std::min<std::size_t>(kBlockGroup, b1 - g));
        float ww[kBlockGroup];
        for (int b = 0; b < nblk; ++b) {
            const float* wrow = w + (g + b) * C;
            float s = 0.0f;
            for (int i = 0; i < C; ++i) {
                s += wrow[i] * wrow[i];
                for (int l = 0; l < 8; ++l) wb[(static_cast<std::size_t>(b) * C + i) * 8 + l] = wrow[i];
            }
            ww[b] = s;
            lists[b].reset(static_cast<std::size_t>(candidates));
        }
        for (std::size_t s0 = 0; s0 < padded; s0 += kSeedTile) {
            const std::size_t count = std::min(kSeedTile, padded - s0);
            float thr[kBlockGroup];
            for (int b = 0; b < nblk; ++b) thr[b] = lists[b].threshold();
            ScanArgs a{&t, wb.data(), ww, thr, nblk, s0, count, lb.data(), below.data()};
            scan(a);
            const std::size_t valid = std::min(count, t.num_seeds > s0 ? t.num_seeds - s0 : 0);
            for (int b = 0; b < nblk; ++b) {
                Shortlist& sl = lists[b];
                const float* row = lb.data() + static_cast<std::size_t>(b) * count;
                const std::uint8_t* bits = below.data() + static_cast<std::size_t>(b) * count / 8;
                float cur = sl.threshold();
                for (std::size_t k = 0; k < count / 8; ++k) {
                    if (!bits[k]) continue;
                    for (std::size_t s = k * 8; s < k * 8 + 8 && s < valid; ++s) {
                        if (row[s] < cur) {
                            sl.push(row[s], static_cast<std::uint32_t>(s0 + s));
                            cur = sl.threshold();
                        }
                    }
                }
            }
        }
        for (int b = 0; b < nblk; ++b) {
            const float* wrow = w + (g + b) * C;
            double norm2 = 0.0;
            for (int i = 0; i < C; ++i) {
                wd[i] = wrow[i];
                norm2 += wd[i] * wd[i];
            }
            // float32 lower bounds carry rounding error; a margin keeps them bounds.
            const double margin = 1e-5 * norm2 + 1e-37;
            Shortlist& sl = lists[b];
            std::vector<std::size_t> order(sl.lb.size());
            for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
            std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
                return sl.lb[x] < sl.lb[y] || (sl.lb[x] == sl.lb[y] && sl.idx[x] < sl.idx[y]);
            });
            PrngBlockCode best;
            best.error = std::numeric_limits<double>::infinity();
            std::uint32_t evaluated = 0;
            bool proven = false;
            auto consider = [&](std::uint32_t index) {
                PrngBlockCode c = quantize_block(t, index, wd.data(), exp_bias);
                ++evaluated;
                if (c.error < best.error || (c.error == best.error && c.seed < best.seed)) best = c;
            };
            for (std::size_t k : order) {
                if (static_cast<double>(sl.lb[k]) - margin >= best.error || best.error == 0.0) {
                    proven = true;
                    break;
                }
                consider(sl.idx[k]);
            }
            if (!proven && sl.lb.size() == sl.cap && !sl.lb.empty() &&
                static_cast<double>(sl.lb.front()) - margin >= best.error)
                proven = true;
            if (!proven && best.error != 0.0 && sl.lb.size() == sl.cap) {
                // The shortlist was too short to prove optimality: rescan this block
                // and evaluate every other seed whose bound is below the best error.
                seen.assign(t.num_seeds, 0);
                for (std::uint32_t i : sl.idx) seen[i] = 1;
                std::vector<float> one_lb(kSeedTile);
                std::vector<std::uint8_t> one_below(kSeedTile / 8);
                const float one_ww = ww[b];
                const float one_thr = static_cast<float>(best.error + 2 * margin);
                for (std::size_t s0 = 0; s0 < padded; s0 += kSeedTile) {
                    const std::size_t count = std::min(kSeedTile, padded - s0);
                    ScanArgs a{&t,     wb.data() + static_cast<std::size_t>(b) * C * 8,
                               &one_ww, &one_thr, 1, s0, count, one_lb.data(), one_below.data()};
                    scan(a);
                    const std::size_t valid = std::min(count, t.num_seeds > s0 ? t.num_seeds - s0 : 0);
                    for (std::size_t s = 0; s < valid; ++s) {
                        const std::size_t index = s0 + s;
                        if (!seen[index] && static_cast<double>(one_lb[s]) - margin < best.error)
                            consider(static_cast<std::uint32_t>(index));
                    }
                }
            }
            best.evaluated = evaluated;
            out[g + b] = best;
        }
    }
}

}  // namespace

void prng_search(const PrngTables& t, const float* w, std::size_t nblocks, int exp_bias,
                 int candidates, ScanIsa isa, int threads, PrngBlockCode* out) {
    ScanFn scan = scan_fn(isa);
    candidates = std::max(1, candidates);
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const std::size_t per = (nblocks + threads - 1) / std::max(1, threads);
    if (threads == 1 || nblocks < 2 * static_cast<std::size_t>(kBlockGroup)) {
        search_range(t, w, 0, nblocks, exp_bias, candidates, scan, out);
        return;
    }
    std::vector<std::thread> pool;
    for (int k = 0; k < threads; ++k) {
        const std::size_t b0 = std::min(nblocks, k * per), b1 = std::min(nblocks, (k + 1) * per);
        if (b0 >= b1) break;
        pool.emplace_back(search_range, std::cref(t), w, b0, b1, exp_bias, candidates, scan, out);
    }
    for (auto& th : pool) th.join();
}

}  // namespace seedcore::encode

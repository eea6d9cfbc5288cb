// NEON lower-bound scan: 4 seeds per vector; like the AVX2 kernel, the P
// projections of up to two blocks are accumulated side by side.
#include <arm_neon.h>

#include "prng_search.h"

namespace seedcore::encode {

namespace {
template <int NB, int P>
void scan_pair(const ScanArgs& a, int b0) {
    const PrngTables& t = *a.tables;
    const int C = t.C;
    static const uint32_t lane_bits[4] = {1, 2, 4, 8};
    const uint32x4_t lane_mask = vld1q_u32(lane_bits);
    const float* wb = a.wb + static_cast<std::size_t>(b0) * C * 8;
    for (std::size_t s = 0; s < a.count; s += 4) {
        const float* qcol = t.q + (a.s0 + s) / 8 * (C * P * 8) + (a.s0 + s) % 8;
        float32x4_t acc[NB][P];
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b)
#pragma GCC unroll 8
            for (int j = 0; j < P; ++j) acc[b][j] = vdupq_n_f32(0.0f);
        for (int i = 0; i < C; ++i) {
            float32x4_t wv[NB];
#pragma GCC unroll 8
            for (int b = 0; b < NB; ++b) wv[b] = vdupq_n_f32(wb[(static_cast<std::size_t>(b) * C + i) * 8]);
#pragma GCC unroll 8
            for (int j = 0; j < P; ++j) {
                const float32x4_t q = vld1q_f32(qcol + (j * C + i) * 8);
#pragma GCC unroll 8
                for (int b = 0; b < NB; ++b) acc[b][j] = vfmaq_f32(acc[b][j], q, wv[b]);
            }
        }
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b) {
            float32x4_t proj = vmulq_f32(acc[b][0], acc[b][0]);
#pragma GCC unroll 8
            for (int j = 1; j < P; ++j) proj = vfmaq_f32(proj, acc[b][j], acc[b][j]);
            const float32x4_t lb = vsubq_f32(vdupq_n_f32(a.ww[b0 + b]), proj);
            const std::size_t at = static_cast<std::size_t>(b0 + b) * a.count + s;
            vst1q_f32(a.lb + at, lb);
            // lane l of this group of 4 is bit (s % 8) + l of the group-of-8 byte
            const uint32x4_t lt = vcltq_f32(lb, vdupq_n_f32(a.thr[b0 + b]));
            const unsigned m = vaddvq_u32(vandq_u32(lt, lane_mask));
            std::uint8_t& bits = a.below[at / 8];
            bits = static_cast<std::uint8_t>(s % 8 == 0 ? m : (bits | (m << 4)));
        }
    }
}

template <int P>
void scan_p(const ScanArgs& a) {
    int b = 0;
    for (; b + 2 <= a.nblk; b += 2) scan_pair<2, P>(a, b);
    if (b < a.nblk) scan_pair<1, P>(a, b);
}
}  // namespace

void scan_lb_neon(const ScanArgs& a) {
    switch (a.tables->P) {
        case 1: scan_p<1>(a); break;
        case 2: scan_p<2>(a); break;
        case 3: scan_p<3>(a); break;
        case 4: scan_p<4>(a); break;
        case 5: scan_p<5>(a); break;
        case 6: scan_p<6>(a); break;
        case 7: scan_p<7>(a); break;
        default: scan_p<8>(a); break;
    }
}

}  // namespace seedcore::encode

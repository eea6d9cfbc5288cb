// AVX2/FMA lower-bound scan: 8 seeds per vector. The P projections of up to two
// blocks are accumulated side by side, so 2P independent FMA chains hide the
// FMA latency. Rounding differs from the scalar twin (FMA); the search adds a
// margin to every bound, so both return the same codes.
#include <immintrin.h>

#include "prng_search.h"

namespace seedcore::encode {

namespace {
template <int NB, int P>
void scan_pair(const ScanArgs& a, int b0) {
    const PrngTables& t = *a.tables;
    const int C = t.C;
    __m256 ww[NB], thr[NB];
    for (int b = 0; b < NB; ++b) {
        ww[b] = _mm256_set1_ps(a.ww[b0 + b]);
        thr[b] = _mm256_set1_ps(a.thr[b0 + b]);
    }
    const float* wb = a.wb + static_cast<std::size_t>(b0) * C * 8;
    for (std::size_t s = 0; s < a.count; s += 8) {
        const float* qcol = t.q + (a.s0 + s) * (C * P);  // group (s0+s)/8 starts here
        __m256 acc[NB][P];
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b)
#pragma GCC unroll 8
            for (int j = 0; j < P; ++j) acc[b][j] = _mm256_setzero_ps();
        for (int i = 0; i < C; ++i) {
            __m256 wv[NB];
#pragma GCC unroll 8
            for (int b = 0; b < NB; ++b) wv[b] = _mm256_loadu_ps(wb + (static_cast<std::size_t>(b) * C + i) * 8);
#pragma GCC unroll 8
            for (int j = 0; j < P; ++j) {
                const __m256 q = _mm256_loadu_ps(qcol + (j * C + i) * 8);
#pragma GCC unroll 8
                for (int b = 0; b < NB; ++b) acc[b][j] = _mm256_fmadd_ps(q, wv[b], acc[b][j]);
            }
        }
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b) {
            __m256 proj = _mm256_mul_ps(acc[b][0], acc[b][0]);
#pragma GCC unroll 8
            for (int j = 1; j < P; ++j) proj = _mm256_fmadd_ps(acc[b][j], acc[b][j], proj);
            const __m256 lb = _mm256_sub_ps(ww[b], proj);
            const std::size_t at = static_cast<std::size_t>(b0 + b) * a.count + s;
            _mm256_storeu_ps(a.lb + at, lb);
            a.below[at / 8] = static_cast<std::uint8_t>(_mm256_movemask_ps(_mm256_cmp_ps(lb, thr[b], _CMP_LT_OQ)));
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

void scan_lb_avx2(const ScanArgs& a) {
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

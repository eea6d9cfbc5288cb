// Which lower-bound scan kernels this build and CPU can run. The kernels of the
// other architecture are not compiled (see CMakeLists.txt), so stubs stand in.
#include <cstdlib>

#include "prng_search.h"

namespace seedcore::encode {

bool scan_isa_available(ScanIsa isa) {
    switch (isa) {
        case ScanIsa::scalar: return true;
        case ScanIsa::avx2:
#if defined(__x86_64__) || defined(_M_X64)
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
            return false;
#endif
        case ScanIsa::neon:
#if defined(__aarch64__)
            return true;
#else
            return false;
#endif
    }
    return false;
}

#if !(defined(__x86_64__) || defined(_M_X64))
void scan_lb_avx2(const ScanArgs& a) { scan_lb_scalar(a); }
#endif
#if !defined(__aarch64__)
void scan_lb_neon(const ScanArgs& a) { scan_lb_scalar(a); }
#endif

}  // namespace seedcore::encode

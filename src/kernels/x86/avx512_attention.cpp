// Paged attention on AVX-512 F (kernels/attention_driver.h over 16-float vectors; vscalefps
// applies the exponent of exp).
//
// GCC 12's 512-bit intrinsics pass _mm512_undefined_ps() as the unused merge source, which its
// -Wuninitialized flags once inlined (a known false positive); silenced for this unit only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/attention_driver.h"
#include "kernels/isa_tables.h"
#include "kernels/x86/x86_common.h"

namespace lightboat::kernels::detail {
namespace {

struct Avx512Ops {
  using V = __m512;
  static constexpr int kLanes = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static void store(float* p, V x) { _mm512_storeu_ps(p, x); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V round(V x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scale_pow2(V p, V n) { return _mm512_scalef_ps(p, n); }
  static float reduce_add(V x) { return _mm512_reduce_add_ps(x); }
  static __m256 fold(V x) {  // the two 256-bit halves added
    return _mm256_add_ps(_mm512_castps512_ps256(x), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
  }
  static void reduce4(V a, V b, V c, V d, float* out) {
    const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(fold(a), fold(b)), _mm256_hadd_ps(fold(c), fold(d)));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
  }
  static float half(uint16_t h) { return _cvtsh_ss(h); }
};

}  // namespace

void add_avx512_attention(KernelTable& t) {
  set_attention<Avx512Ops>(t);
}

}  // namespace lightboat::kernels::detail

// Paged attention and SwiGLU/GEGLU on AVX-512 F (kernels/attention_driver.h and activations_driver.h
// over 16-float vectors; vscalefps applies the exponent of exp).
//
// GCC 12's 512-bit intrinsics pass _mm512_undefined_ps() as the unused merge source, which its
// -Wuninitialized flags once inlined (a known false positive); silenced for this unit only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/activations_driver.h"
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
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V select_neg(V x, V a, V b) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero(), _CMP_LT_OQ), b, a); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V round(V x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scale_pow2(V p, V n) { return _mm512_scalef_ps(p, n); }
  static float reduce_add(V x) { return _mm512_reduce_add_ps(x); }
  static float reduce_max(V x) { return _mm512_reduce_max_ps(x); }
  // The sums of 16 vectors at once, in a transposing tree: 15 adds and 30 shuffles for 16 sums
  // (4 vectors at a time through 256-bit folds and hadd cost 80 instructions for 16).
  static constexpr int kQueryRegs = 8;
  static constexpr int kScoreGroup = 16;
  static V pair_lanes(V a, V b) {  // per 128-bit lane: a0+a2, b0+b2, a1+a3, b1+b3
    return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  }
  static V quad_lanes(V ab, V cd) {  // per 128-bit lane k: the lane-k sums of a, b, c, d
    const __m512d x = _mm512_castps_pd(ab), y = _mm512_castps_pd(cd);
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  static V halve(V x, V y) {  // lanes (x.0+x.1, x.2+x.3, y.0+y.1, y.2+y.3) of 128 bits
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  static void reduce_group(const V* a, float* out) {
    V q[4];
    for (int i = 0; i < 4; ++i)
      q[i] = quad_lanes(pair_lanes(a[4 * i], a[4 * i + 1]), pair_lanes(a[4 * i + 2], a[4 * i + 3]));
    _mm512_storeu_ps(out, halve(halve(q[0], q[1]), halve(q[2], q[3])));
  }
  static float half(uint16_t h) { return _cvtsh_ss(h); }
  // table[fp16(x)] widened, per lane (fp16 rounding to nearest even; a 32-bit gather at 2-byte
  // steps, the upper half dropped).
  static V gelu_lookup(V x, const uint16_t* table) {
    const __m256i h = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i g = _mm512_i32gather_epi32(_mm512_cvtepu16_epi32(h), table, 2);
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
  }
};

}  // namespace

void add_avx512_attention(KernelTable& t) {
  set_attention<Avx512Ops>(t);
  set_activations<Avx512Ops>(t);
}

}  // namespace lightboat::kernels::detail

// Paged attention and SwiGLU/GEGLU on ARMv8.2-A NEON with fp16 conversions (kernels/attention_driver.h
// and activations_driver.h over 4-float vectors).
#include <arm_neon.h>

#include "kernels/activations_driver.h"
#include "kernels/attention_driver.h"
#include "kernels/isa_tables.h"

namespace lightboat::kernels::detail {
namespace {

struct NeonOps {
  using V = float32x4_t;
  static constexpr int kLanes = 4;
  static V zero() { return vdupq_n_f32(0.0f); }
  static V set1(float x) { return vdupq_n_f32(x); }
  static V load(const float* p) { return vld1q_f32(p); }
  static V load(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static void store(float* p, V x) { vst1q_f32(p, x); }
  static V add(V a, V b) { return vaddq_f32(a, b); }
  static V sub(V a, V b) { return vsubq_f32(a, b); }
  static V mul(V a, V b) { return vmulq_f32(a, b); }
  static V div(V a, V b) { return vdivq_f32(a, b); }
  static V select_neg(V x, V a, V b) { return vbslq_f32(vcltq_f32(x, zero()), a, b); }
  static V fmadd(V a, V b, V c) { return vfmaq_f32(c, a, b); }
  static V max(V a, V b) { return vmaxq_f32(a, b); }
  static V round(V x) { return vrndnq_f32(x); }
  static V scale_pow2(V p, V n) {
    const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(bits));
  }
  static float reduce_add(V x) { return vaddvq_f32(x); }
  static float reduce_max(V x) { return vmaxvq_f32(x); }
  static constexpr int kQueryRegs = 16;
  static constexpr int kScoreGroup = 4;
  static void reduce_group(const V* a, float* out) {
    vst1q_f32(out, vpaddq_f32(vpaddq_f32(a[0], a[1]), vpaddq_f32(a[2], a[3])));
  }
  static float half(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }
  // table[fp16(x)] widened, per lane (fp16 rounding to nearest even; no gather: four loads).
  static V gelu_lookup(V x, const uint16_t* table) {
    uint16_t h[4];
    vst1_u16(h, vreinterpret_u16_f16(vcvt_f16_f32(x)));
    const uint16_t g[4] = {table[h[0]], table[h[1]], table[h[2]], table[h[3]]};
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(g)));
  }
};

}  // namespace

void add_neon_attention(KernelTable& t) {
  set_attention<NeonOps>(t);
  set_activations<NeonOps>(t);
}

}  // namespace lightboat::kernels::detail

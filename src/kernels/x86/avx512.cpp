// AVX-512 (F, BW, VL) + VNNI kernels. On the 256-bit registers (AVX512VL: 32 of them, so 4 x 4
// tiles fit), vpdpbusd multiplies unsigned by signed bytes and sums groups of 4 into int32 lanes
// in one instruction. Weight quants are made unsigned by a bias (Q8_0: +128, Q4_0: its nibbles
// as stored, i.e. q - 8 + 8; Q5_0: nibble | 5th bit, q - 16 + 16), and the bias times the
// activations' block sum is subtracted up front by starting the accumulation from -bias * sum(x),
// computed once per (token, block) and shared by the tile's rows. Everything else comes from the AVX2 table.
#include "kernels/gemm_driver.h"
#include "kernels/isa_tables.h"
#include "kernels/prefetch.h"
#include "kernels/x86/x86_common.h"

namespace lightboat::kernels::detail {
namespace {

struct Q8_0Biased {
  static constexpr size_t kBytes = kQ8_0Bytes;
  static constexpr char kBias = static_cast<char>(0x80);  // 128 as an unsigned byte
  static __m256i quants(const std::byte* b) { return _mm256_xor_si256(load256(b + 2), _mm256_set1_epi8(kBias)); }
};

struct Q4_0Biased {
  static constexpr size_t kBytes = kQ4_0Bytes;
  static constexpr char kBias = 8;
  static __m256i quants(const std::byte* b) { return nibbles(b + 2); }
};

struct Q5_0Biased {  // q = nibble | 5th bit << 4, stored q - 16 + 16
  static constexpr size_t kBytes = kQ5_0Bytes;
  static constexpr char kBias = 16;
  static __m256i quants(const std::byte* b) { return _mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2)); }
};

template <typename Weights>
struct VnniKernel {
  template <int R, int T>
  static void tile(const GemmArgs& a, int64_t r0, int64_t t0) {
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    const std::byte* wr[R];
    const std::byte* xt[T];
    for (int r = 0; r < R; ++r) wr[r] = a.w_row(r0 + r);
    for (int t = 0; t < T; ++t) xt[t] = a.x_row(t0 + t);
    const __m256i bias = _mm256_set1_epi8(Weights::kBias);
    const int64_t nb = a.n / kQK;
    for (int64_t i = 0; i < nb; ++i) {
      __m256i wq[R];
      float wd[R];
      for (int r = 0; r < R; ++r) {
        const std::byte* b = wr[r] + static_cast<size_t>(i) * Weights::kBytes;
        prefetch_weights(b);
        wq[r] = Weights::quants(b);
        wd[r] = half_at(b);
      }
      for (int t = 0; t < T; ++t) {
        const std::byte* b = xt[t] + static_cast<size_t>(i) * kQ8_0Bytes;
        const __m256i xq = load256(b + 2);
        const float xd = half_at(b);
        const __m256i start = _mm256_sub_epi32(_mm256_setzero_si256(),
                                               _mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, xq));
        for (int r = 0; r < R; ++r) {
          const __m256 s = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(start, wq[r], xq));
          acc[r][t] = _mm256_fmadd_ps(s, _mm256_set1_ps(wd[r] * xd), acc[r][t]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) a.out(r0 + r, t0 + t) = hsum(acc[r][t]);
  }
};

template <typename Kernel>
void set_weight(KernelTable& t, DType type) {
  t.vec_dot[dtype_slot(type)] = vec_dot_by_tile<Kernel>;
  t.gemm[dtype_slot(type)] = gemm_tiled<Kernel, 4, 4>;
}

KernelTable make_table() {
  KernelTable t = avx2_table();
  t.isa = Isa::kAvx512;
  set_weight<VnniKernel<Q8_0Biased>>(t, DType::kQ8_0);
  set_weight<VnniKernel<Q4_0Biased>>(t, DType::kQ4_0);
  set_weight<VnniKernel<Q5_0Biased>>(t, DType::kQ5_0);
  add_avx512_attention(t);
  return t;
}

}  // namespace

const KernelTable& avx512_table() {
  static const KernelTable table = make_table();
  return table;
}

}  // namespace lightboat::kernels::detail

// Every SIMD kernel of every ISA this machine runs, against the scalar reference: quantizers bit
// for bit (random rows, exact ties, sign ties of the extreme, zero and tiny blocks), dot products
// and gemm within fp32 summation-order tolerance, over every length from 0 to 2 x lanes + 1
// blocks and misaligned pointers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/reference/reference.h"
#include "reference_util.h"
#include "tensor/dtype.h"

namespace lightboat::kernels {
namespace {

using reference::test_util::kWeightTypes;
using reference::test_util::random_row;
using tensor::DType;

std::vector<Isa> isas_here() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vbmi, Isa::kAmx, Isa::kNeon}) {
    if (isa_available(isa)) out.push_back(isa);
  }
  return out;
}

std::string label(Isa isa, DType type) {
  return std::string(isa_name(isa)) + "/" + std::string(tensor::dtype_name(type));
}

int64_t block_elems(DType t) { return tensor::dtype_traits(t).block_elems; }

// A byte buffer whose data starts `misalign` bytes past an aligned address.
struct Buffer {
  std::vector<std::byte> storage;
  size_t offset;
  Buffer(size_t bytes, size_t misalign) : storage(bytes + 64), offset(misalign) {}
  std::byte* data() { return storage.data() + offset; }
};

void expect_same_quantization(const KernelTable& k, DType act, const std::vector<float>& x,
                              size_t misalign, const std::string& what) {
  const auto n = static_cast<int64_t>(x.size());
  const size_t bytes = tensor::row_bytes(act, n);
  std::vector<std::byte> want(bytes);
  reference::quantize_row(act, x.data(), want.data(), n);
  // Misaligned input floats too: copy them one float further into a bigger buffer.
  std::vector<float> shifted(x.size() + 1);
  if (!x.empty()) std::memcpy(shifted.data() + 1, x.data(), x.size() * sizeof(float));
  Buffer got(bytes, misalign);
  quantize_row_fn(k, act)(shifted.data() + 1, got.data(), n);
  if (bytes > 0) {
    ASSERT_EQ(std::memcmp(want.data(), got.data(), bytes), 0) << what << " n=" << n;
  }
}

constexpr DType kActTypes[] = {DType::kQ8_0, DType::kQ8_K, DType::kF16, DType::kBF16, DType::kF32};

TEST(Simd, QuantizersMatchTheReferenceBitForBitOnRandomRows) {
  for (Isa isa : isas_here()) {
    const KernelTable& k = kernel_table(isa);
    for (DType act : kActTypes) {
      const int64_t qk = block_elems(act) == 1 ? 8 : block_elems(act);
      // Up to 9 blocks, and past 16 (AVX-512's Q8_0 takes 16 blocks at a time, then one by one).
      for (int64_t nb : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 33, 47}) {
        for (uint32_t seed = 0; seed < 4; ++seed) {
          const int64_t extra = block_elems(act) == 1 ? static_cast<int64_t>(seed) : 0;  // tails
          expect_same_quantization(k, act, random_row(nb * qk + extra, 100 * nb + seed), seed % 3,
                                   label(isa, act));
        }
      }
    }
  }
}

// Blocks built so x * id lands exactly on .5 (Q8_0: amax 127 gives d = 1; Q8_K: an extreme of
// -127 gives iscale = 1, +127 gives -1), extremes repeated with both signs (the first wins in
// Q8_K), all-zero blocks, and tiny and huge magnitudes.
std::vector<float> special_row(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> half_steps(-254, 254);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = 0.5f * static_cast<float>(half_steps(rng));
  for (int64_t b = 0; b + 32 <= n; b += 32) {
    float* xb = x.data() + b;
    switch ((b / 32 + seed) % 6) {
      case 0: xb[3] = 127.0f; xb[9] = -127.0f; break;
      case 1: xb[5] = -127.0f; xb[1] = 127.0f; break;
      case 2: for (int j = 0; j < 32; ++j) xb[j] = 0.0f; break;
      case 3: for (int j = 0; j < 32; ++j) xb[j] *= 1e-30f; break;
      case 4: for (int j = 0; j < 32; ++j) xb[j] *= 1e30f; break;
      default: xb[0] = -0.0f; break;
    }
  }
  return x;
}

TEST(Simd, QuantizersMatchTheReferenceOnTiesAndSpecialBlocks) {
  for (Isa isa : isas_here()) {
    const KernelTable& k = kernel_table(isa);
    for (DType act : kActTypes) {
      for (uint32_t seed = 0; seed < 24; ++seed) {
        const int64_t n = 512 + std::max<int64_t>(32, block_elems(act)) * (seed % 3);  // and 1 or 2 blocks more
        expect_same_quantization(k, act, special_row(n, seed), seed % 2, label(isa, act) + " special");
      }
    }
  }
}

// Quantized weights and activations for one dot product of n elements.
struct DotCase {
  std::vector<uint8_t> w, x;
  double abs_sum = 0.0;  // sum of |w_i x_i| over the dequantized values: the tolerance's scale
};

DotCase make_case(DType wt, int64_t n, uint32_t seed) {
  const DType act = reference::vec_dot_type(wt);
  DotCase c;
  c.w = reference::test_util::quantize(wt, random_row(n, seed));
  c.x = reference::test_util::quantize(act, random_row(n, seed + 7777));
  const auto wf = reference::test_util::dequantize(wt, c.w, n);
  const auto xf = reference::test_util::dequantize(act, c.x, n);
  for (int64_t i = 0; i < n; ++i) c.abs_sum += std::fabs(static_cast<double>(wf[i]) * xf[i]);
  return c;
}

// fp32 sums in another order: a few ulps of the magnitude summed.
double tolerance(double abs_sum) { return 1e-5 * abs_sum + 1e-30; }

TEST(Simd, VecDotMatchesTheReferenceForEveryLengthAndMisalignment) {
  for (Isa isa : isas_here()) {
    const KernelTable& k = kernel_table(isa);
    for (DType wt : kWeightTypes) {
      const int64_t qk = block_elems(wt);
      const int64_t max_n = qk == 1 ? 2 * 16 + 1 : 2 * 8 + 1;  // elements or blocks
      for (int64_t len = 0; len <= max_n; ++len) {
        const int64_t n = qk == 1 ? len : len * qk;
        const DotCase c = make_case(wt, n, static_cast<uint32_t>(len + 31 * static_cast<int>(wt)));
        const float want = reference::vec_dot(wt, n, c.w.data(), c.x.data());
        for (size_t mis = 0; mis < 4; ++mis) {
          Buffer w(c.w.size(), mis), x(c.x.size(), 3 - mis);
          if (n > 0) {  // (memcpy from an empty vector's null data is undefined)
            std::memcpy(w.data(), c.w.data(), c.w.size());
            std::memcpy(x.data(), c.x.data(), c.x.size());
          }
          const float got = vec_dot_fn(k, wt)(n, w.data(), x.data());
          ASSERT_NEAR(got, want, tolerance(c.abs_sum)) << label(isa, wt) << " n=" << n << " misalign=" << mis;
        }
      }
    }
  }
}

// Every tile shape and tail: rows and tokens 1..9 and a token count past the driver's chunk.
TEST(Simd, GemmMatchesPerRowDotProducts) {
  for (Isa isa : isas_here()) {
    const KernelTable& k = kernel_table(isa);
    for (DType wt : kWeightTypes) {
      const DType act = reference::vec_dot_type(wt);
      const int64_t n = block_elems(wt) == 1 ? 72 + 3 : 3 * tensor::dtype_traits(wt).block_elems * (block_elems(wt) == 32 ? 3 : 1);
      for (auto [n_rows, n_tokens] : {std::pair<int64_t, int64_t>{1, 1}, {4, 1}, {5, 3}, {9, 9}, {3, 70}, {8, 8}}) {
        const auto w = reference::test_util::quantize(wt, random_row(n * n_rows, 5));
        const auto x = reference::test_util::quantize(act, random_row(n * n_tokens, 6));
        const size_t wrb = tensor::row_bytes(wt, n), xrb = tensor::row_bytes(act, n);
        const int64_t y_stride = n_rows + 2;
        std::vector<float> y(static_cast<size_t>(n_tokens * y_stride), -12345.0f);
        gemm_fn(k, wt)(n, reinterpret_cast<const std::byte*>(w.data()), wrb, n_rows,
                       reinterpret_cast<const std::byte*>(x.data()), xrb, n_tokens, y.data(), y_stride);
        for (int64_t t = 0; t < n_tokens; ++t) {
          for (int64_t r = 0; r < y_stride; ++r) {
            const float got = y[static_cast<size_t>(t * y_stride + r)];
            if (r >= n_rows) {
              ASSERT_EQ(got, -12345.0f) << label(isa, wt) << " wrote past its rows";
              continue;
            }
            const float want = reference::vec_dot(wt, n, w.data() + r * wrb, x.data() + t * xrb);
            ASSERT_NEAR(got, want, 1e-5 * (std::fabs(want) + 10.0))
                << label(isa, wt) << " rows=" << n_rows << " tokens=" << n_tokens << " r=" << r << " t=" << t;
          }
        }
      }
    }
  }
}

// A token's logits must not depend on the batch it is computed in: for dense weights every
// output of the gemm, whatever tile (rows x tokens, or a remainder tile) produced it, equals the
// table's own vec_dot bit for bit. Lengths cover whole vectors, tails and a tail-only row.
TEST(Simd, DenseGemmOutputsAreBitIdenticalToVecDot) {
  for (Isa isa : isas_here()) {
    const KernelTable& k = kernel_table(isa);
    for (DType wt : {DType::kF32, DType::kF16, DType::kBF16}) {
      const DType act = reference::vec_dot_type(wt);
      for (int64_t n : {int64_t{5}, int64_t{64}, int64_t{75}, int64_t{577}}) {
        const int64_t n_rows = 13, n_tokens = 70;  // remainder tiles in both directions
        const auto w = reference::test_util::quantize(wt, random_row(n * n_rows, 11));
        const auto x = reference::test_util::quantize(act, random_row(n * n_tokens, 12));
        const size_t wrb = tensor::row_bytes(wt, n), xrb = tensor::row_bytes(act, n);
        std::vector<float> y(static_cast<size_t>(n_tokens * n_rows));
        gemm_fn(k, wt)(n, reinterpret_cast<const std::byte*>(w.data()), wrb, n_rows,
                       reinterpret_cast<const std::byte*>(x.data()), xrb, n_tokens, y.data(), n_rows);
        for (int64_t t = 0; t < n_tokens; ++t) {
          for (int64_t r = 0; r < n_rows; ++r) {
            const float want = vec_dot_fn(k, wt)(n, w.data() + r * wrb, x.data() + t * xrb);
            ASSERT_EQ(y[static_cast<size_t>(t * n_rows + r)], want)
                << label(isa, wt) << " n=" << n << " r=" << r << " t=" << t;
          }
        }
      }
    }
  }
}

TEST(Simd, TablesReportTheirIsaAndTheActiveOneIsAvailable) {
  for (Isa isa : isas_here()) EXPECT_EQ(kernel_table(isa).isa, isa);
  EXPECT_TRUE(isa_available(active_isa()));
  EXPECT_EQ(active_kernels().isa, active_isa());
#if defined(__x86_64__)
  EXPECT_TRUE(isa_available(Isa::kAvx2)) << "CI machines are expected to run AVX2";
#endif
}

}  // namespace
}  // namespace lightboat::kernels

// Reference kernels on random data: quantize -> dequantize error per format, dot products against
// double-precision dots of the dequantized rows, the activation quantizers' exact rounding rules,
// and the errors thrown for bad arguments. Hand-built blocks that pin the bit layouts are in
// reference_layout_test.cpp; the comparison with llama.cpp-made GGUF files is in
// reference_gguf_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "base/error.h"
#include "kernels/reference/reference.h"
#include "reference_util.h"
#include "tensor/blocks.h"

namespace lightboat::kernels::reference {
namespace {

using namespace test_util;  // NOLINT: test helpers
using tensor::dtype_name;
using tensor::dtype_traits;

// Row lengths: 1..4 blocks and 4096 elements.
std::vector<int64_t> sizes_for(DType type) {
  const int64_t qk = std::max<int64_t>(dtype_traits(type).block_elems, 32);
  return {qk, 2 * qk, 3 * qk, 4 * qk, 4096};
}

// Root-mean-square error relative to the row's rms for the test data (N(0,1) in groups of 32
// scaled by 0.05..2): measured maxima over 50 seeds at n = 4096, plus about 25% margin.
double rms_error_bound(DType type) {
  switch (type) {
    case DType::kF32: return 0.0;
    case DType::kF16: return 0x1p-11;
    case DType::kBF16: return 0x1p-8;
    case DType::kQ8_0:
    case DType::kQ8_1: return 0.008;
    case DType::kQ8_K: return 0.013;  // one scale per 256: a larger max than per 32
    case DType::kQ4_0: return 0.12;
    case DType::kQ4_1: return 0.10;
    case DType::kQ5_0: return 0.06;
    case DType::kQ5_1: return 0.05;
    case DType::kQ4_K: return 0.09;
    case DType::kQ5_K: return 0.045;
    case DType::kQ6_K: return 0.024;
    case DType::kQ4_0x16:
    case DType::kQ8_0x16:
    case DType::kF16x16:
    case DType::kQ4_Kx16:
      break;  // layouts of Q4_0 / Q8_0 / F16 / Q4_K, not quantizers
  }
  return 0.0;
}

TEST(ReferenceRoundTrip, ErrorWithinBlockBound) {
  for (DType type : kAllTypes) {
    for (int64_t n : sizes_for(type)) {
      SCOPED_TRACE(std::string(dtype_name(type)) + " n=" + std::to_string(n));
      const std::vector<float> x = random_row(n, 1000 + static_cast<uint32_t>(n));
      const std::vector<float> y = dequantize(type, quantize(type, x), n);
      const int64_t block = std::max<int64_t>(dtype_traits(type).block_elems, 32);
      double worst = 0.0, sq_err = 0.0, sq_x = 0.0;
      for (int64_t b = 0; b < n; b += block) {
        double amax = 0.0, max_err = 0.0;
        for (int64_t i = b; i < b + block; ++i) {
          amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
          const double err = std::fabs(static_cast<double>(x[i]) - y[i]);
          max_err = std::max(max_err, err);
          sq_err += err * err;
          sq_x += static_cast<double>(x[i]) * x[i];
        }
        worst = std::max(worst, max_err / amax);
      }
      EXPECT_LE(worst, block_error_bound(type));
      EXPECT_LE(std::sqrt(sq_err / sq_x), rms_error_bound(type));
    }
  }
}

TEST(ReferenceRoundTrip, ZerosStayZero) {
  for (DType type : kAllTypes) {
    SCOPED_TRACE(dtype_name(type));
    const std::vector<float> x(512, 0.0f);
    const std::vector<float> y = dequantize(type, quantize(type, x), 512);
    for (float v : y) ASSERT_EQ(v, 0.0f);
  }
}

TEST(ReferenceRoundTrip, ConstantBlocks) {
  // A constant block is the degenerate case of every scale search (max == min).
  for (DType type : kAllTypes) {
    SCOPED_TRACE(dtype_name(type));
    const std::vector<float> x(512, 0.75f);
    const std::vector<float> y = dequantize(type, quantize(type, x), 512);
    for (float v : y) ASSERT_NEAR(v, 0.75f, 0.75 * block_error_bound(type) + 1e-6);
  }
}

// |dot error| bound relative to ||w|| * ||x|| from quantizing the activations to vec_dot_type.
double activation_tolerance(DType act) {
  switch (act) {
    case DType::kF32: return 1e-6;
    case DType::kF16: return 1e-4;
    case DType::kBF16: return 1e-3;
    default: return 2e-3;  // the Q8 formats
  }
}

TEST(ReferenceDot, MatchesDequantizedDot) {
  for (DType wt : kWeightTypes) {
    const DType xt = vec_dot_type(wt);
    for (int64_t n : sizes_for(wt)) {
      SCOPED_TRACE(std::string(dtype_name(wt)) + " n=" + std::to_string(n));
      const std::vector<float> w = random_row(n, 7 + static_cast<uint32_t>(n));
      const std::vector<float> x = random_row(n, 99 + static_cast<uint32_t>(n));
      const std::vector<uint8_t> wq = quantize(wt, w);
      const std::vector<uint8_t> xq = quantize(xt, x);
      const std::vector<float> wd = dequantize(wt, wq, n);
      const std::vector<float> xd = dequantize(xt, xq, n);
      const double got = vec_dot(wt, n, wq.data(), xq.data());

      // 1. Against the exact dot of what the blocks decode to: only fp32 rounding of the block
      //    sums (and, for Q4_1/Q5_1, the fp16 rounding of Q8_1's precomputed s = d * sum(q)).
      double abs_sum = 0.0;
      for (int64_t i = 0; i < n; ++i) abs_sum += std::fabs(static_cast<double>(wd[i]) * xd[i]);
      const bool offset_sum = wt == DType::kQ4_1 || wt == DType::kQ5_1;
      EXPECT_NEAR(got, dot_double(wd, xd), (offset_sum ? 2e-4 : 1e-6) * abs_sum);

      // 2. Against the dot with the unquantized activations: the activation format's error.
      EXPECT_NEAR(got, dot_double(wd, x), activation_tolerance(xt) * norm(wd) * norm(x));
    }
  }
}

TEST(ReferenceDot, VecDotTypes) {
  EXPECT_EQ(vec_dot_type(DType::kF32), DType::kF32);
  EXPECT_EQ(vec_dot_type(DType::kF16), DType::kF16);
  EXPECT_EQ(vec_dot_type(DType::kBF16), DType::kBF16);
  EXPECT_EQ(vec_dot_type(DType::kQ4_0), DType::kQ8_0);
  EXPECT_EQ(vec_dot_type(DType::kQ5_0), DType::kQ8_0);
  EXPECT_EQ(vec_dot_type(DType::kQ8_0), DType::kQ8_0);
  EXPECT_EQ(vec_dot_type(DType::kQ4_1), DType::kQ8_1);
  EXPECT_EQ(vec_dot_type(DType::kQ5_1), DType::kQ8_1);
  EXPECT_EQ(vec_dot_type(DType::kQ4_K), DType::kQ8_K);
  EXPECT_EQ(vec_dot_type(DType::kQ5_K), DType::kQ8_K);
  EXPECT_EQ(vec_dot_type(DType::kQ6_K), DType::kQ8_K);
}

TEST(ReferenceDot, MisalignedBuffersGiveTheSameResults) {
  for (DType wt : kWeightTypes) {
    SCOPED_TRACE(dtype_name(wt));
    const DType xt = vec_dot_type(wt);
    const int64_t n = 512;
    const std::vector<uint8_t> wq = quantize(wt, random_row(n, 5));
    const std::vector<uint8_t> xq = quantize(xt, random_row(n, 6));
    std::vector<uint8_t> wbuf(wq.size() + 1), xbuf(xq.size() + 3);
    std::memcpy(wbuf.data() + 1, wq.data(), wq.size());
    std::memcpy(xbuf.data() + 3, xq.data(), xq.size());
    EXPECT_EQ(vec_dot(wt, n, wbuf.data() + 1, xbuf.data() + 3), vec_dot(wt, n, wq.data(), xq.data()));
    std::vector<float> a(n), b(n);
    dequantize_row(wt, wbuf.data() + 1, a.data(), n);
    dequantize_row(wt, wq.data(), b.data(), n);
    EXPECT_EQ(a, b);
  }
}

// Q8_0 rounds with roundf (ties away from zero) after multiplying by 1/d.
TEST(ReferenceActivations, Q8_0RoundsHalfAwayFromZero) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // amax 127: d = 1, id = 1
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 3.5f;
  x[4] = 0.49f;
  x[5] = -126.5f;
  const auto q = quantize(DType::kQ8_0, x);
  tensor::BlockQ8_0 b;
  std::memcpy(&b, q.data(), sizeof(b));
  EXPECT_EQ(b.d, 0x3c00);  // fp16 1.0
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -3);
  EXPECT_EQ(b.qs[3], 4);
  EXPECT_EQ(b.qs[4], 0);
  EXPECT_EQ(b.qs[5], -127);
}

TEST(ReferenceActivations, Q8_1StoresScaledSum) {
  std::vector<float> x(32, 0.0f);
  x[0] = -127.0f;
  x[1] = 2.5f;
  x[31] = 10.0f;
  const auto q = quantize(DType::kQ8_1, x);
  tensor::BlockQ8_1 b;
  std::memcpy(&b, q.data(), sizeof(b));
  EXPECT_EQ(b.d, 0x3c00);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[31], 10);
  EXPECT_EQ(tensor::fp16_to_fp32(b.s), -114.0f);  // d * (-127 + 3 + 10)
}

// Q8_K: iscale = -127 / (signed extreme), nearest-even rounding, d = 1 / iscale (negative when the
// extreme is positive), bsums over each 16 quants.
TEST(ReferenceActivations, Q8_KUsesSignedMaxAndNearestEven) {
  std::vector<float> x(256, 0.0f);
  x[0] = 127.0f;  // iscale = -1
  x[1] = 2.5f;
  x[2] = 3.5f;
  x[3] = -2.5f;
  x[17] = 1.0f;
  x[255] = -0.5f;
  const auto q = quantize(DType::kQ8_K, x);
  tensor::BlockQ8_K b;
  std::memcpy(&b, q.data(), sizeof(b));
  EXPECT_EQ(b.d, -1.0f);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[1], -2);  // -2.5 -> -2 (even)
  EXPECT_EQ(b.qs[2], -4);  // -3.5 -> -4 (even)
  EXPECT_EQ(b.qs[3], 2);
  EXPECT_EQ(b.qs[17], -1);
  EXPECT_EQ(b.qs[255], 0);  // 0.5 -> 0 (even)
  EXPECT_EQ(b.bsums[0], -127 - 2 - 4 + 2);
  EXPECT_EQ(b.bsums[1], -1);
  for (int g = 2; g < 16; ++g) EXPECT_EQ(b.bsums[g], 0);
}

TEST(ReferenceDot, EmptyRowsAreZero) {
  for (DType wt : kWeightTypes) {
    SCOPED_TRACE(dtype_name(wt));
    EXPECT_EQ(vec_dot(wt, 0, nullptr, nullptr), 0.0f);
    dequantize_row(wt, nullptr, nullptr, 0);
    quantize_row(wt, nullptr, nullptr, 0);
  }
}

TEST(ReferenceErrors, BadLengthsAndTypesThrow) {
  std::vector<float> x(64, 1.0f);
  std::vector<uint8_t> buf(4096);
  auto expect_kind = [](auto&& fn, ErrorKind kind) {
    try {
      fn();
      ADD_FAILURE() << "expected an Error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), kind) << e.what();
    }
  };
  expect_kind([&] { quantize_row(DType::kQ4_0, x.data(), buf.data(), 33); },
              ErrorKind::kInvalidArgument);
  expect_kind([&] { dequantize_row(DType::kQ4_K, buf.data(), x.data(), 32); },
              ErrorKind::kInvalidArgument);
  expect_kind([&] { (void)vec_dot(DType::kQ8_0, -32, buf.data(), buf.data()); },
              ErrorKind::kInvalidArgument);
  expect_kind([&] { (void)vec_dot(DType::kQ8_K, 256, buf.data(), buf.data()); },
              ErrorKind::kUnsupported);
  expect_kind([&] { (void)vec_dot_type(DType::kQ8_1); }, ErrorKind::kUnsupported);
}

}  // namespace
}  // namespace lightboat::kernels::reference

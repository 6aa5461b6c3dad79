// The transformer ops and matmul checked against straightforward float/double math.
#include "kernels/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/error.h"
#include "kernels/matmul.h"
#include "kernels/matmul_profile.h"
#include "kernels/reference/reference.h"
#include "tensor/dtype.h"

namespace lightboat::kernels {
namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

TEST(Ops, RmsNorm) {
  const auto x = random_vector(100, 1);
  const auto w = random_vector(100, 2);
  std::vector<float> out(100);
  rms_norm(x.data(), w.data(), 100, 1e-5f, out.data());
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const double inv = 1.0 / std::sqrt(ss / 100 + 1e-5);
  for (int i = 0; i < 100; ++i) EXPECT_NEAR(out[i], x[i] * inv * w[i], 1e-5);
}

TEST(Ops, SoftmaxSumsToOneAndIsShiftInvariant) {
  std::vector<float> a = {1.0f, 2.0f, 3.0f, -100.0f};
  std::vector<float> b = {1001.0f, 1002.0f, 1003.0f, 900.0f};
  softmax(a.data(), 4);
  softmax(b.data(), 4);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(-100.0);
  EXPECT_NEAR(a[2], std::exp(3.0) / z, 1e-6);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(a[i], b[i], 1e-6);
}

TEST(Ops, SwiGlu) {
  std::vector<float> g = {-2.0f, 0.0f, 3.0f};
  const std::vector<float> u = {1.5f, 2.0f, -1.0f};
  swiglu(g.data(), u.data(), 3);
  EXPECT_NEAR(g[0], -2.0 / (1 + std::exp(2.0)) * 1.5, 1e-6);
  EXPECT_EQ(g[1], 0.0f);
  EXPECT_NEAR(g[2], 3.0 / (1 + std::exp(-3.0)) * -1.0, 1e-6);
}

TEST(Ops, RopeRotatesPairsByPositionTimesFrequency) {
  const int head_dim = 8, n_rot = 6, pos = 5;
  const float base = 10000.0f;
  const std::vector<float> factors = {1.0f, 2.0f, 4.0f};
  std::vector<float> c(3), s(3);
  rope_angles(pos, n_rot, base, 1.0f, factors.data(), c.data(), s.data());
  const auto x0 = random_vector(2 * head_dim, 3);
  for (RopeMode mode : {RopeMode::kNorm, RopeMode::kNeox}) {
    auto x = x0;
    rope_apply(x.data(), 2, head_dim, n_rot, c.data(), s.data(), mode);
    for (int h = 0; h < 2; ++h) {
      const float* in = &x0[h * head_dim];
      const float* out = &x[h * head_dim];
      for (int i = 0; i < n_rot / 2; ++i) {
        const double theta = pos * std::pow(double(base), -2.0 * i / n_rot) / factors[i];
        const int a = mode == RopeMode::kNorm ? 2 * i : i;
        const int b = mode == RopeMode::kNorm ? 2 * i + 1 : i + n_rot / 2;
        EXPECT_NEAR(out[a], in[a] * std::cos(theta) - in[b] * std::sin(theta), 1e-5);
        EXPECT_NEAR(out[b], in[a] * std::sin(theta) + in[b] * std::cos(theta), 1e-5);
      }
      for (int d = n_rot; d < head_dim; ++d) EXPECT_EQ(out[d], in[d]) << "dims past n_rot pass through";
    }
  }
}

// matmul over every weight type equals a double-precision product of the dequantized weights
// with the activations, within the error of quantizing the activations.
TEST(Matmul, EveryWeightTypeAgainstDequantizedMath) {
  using tensor::DType;
  const int64_t n_cols = 512, n_rows = 9, n_tok = 3;
  const auto wf = random_vector(static_cast<size_t>(n_cols * n_rows), 4, 0.05f);
  const auto x = random_vector(static_cast<size_t>(n_cols * n_tok), 5);
  ThreadPool pool(2);
  MatmulScratch scratch;
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0,
                  DType::kQ5_1, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    SCOPED_TRACE(std::string(tensor::dtype_name(t)));
    const size_t rb = tensor::row_bytes(t, n_cols);
    std::vector<std::byte> wq(rb * n_rows);
    for (int64_t r = 0; r < n_rows; ++r) reference::quantize_row(t, &wf[r * n_cols], &wq[r * rb], n_cols);
    const tensor::MatrixView w{.type = t, .n_cols = n_cols, .n_rows = n_rows, .row_bytes = rb, .data = wq.data()};
    std::vector<float> y(static_cast<size_t>(n_tok * n_rows));
    matmul(w, x.data(), n_cols, n_tok, y.data(), n_rows, scratch, pool);
    std::vector<float> wd(static_cast<size_t>(n_cols));
    for (int64_t r = 0; r < n_rows; ++r) {
      get_row(w, r, wd.data());
      for (int64_t tkn = 0; tkn < n_tok; ++tkn) {
        double want = 0, mag = 0;
        for (int64_t i = 0; i < n_cols; ++i) {
          want += double(wd[i]) * x[tkn * n_cols + i];
          mag += std::abs(double(wd[i]) * x[tkn * n_cols + i]);
        }
        // 8-bit activations: relative error about 1/254 of the summed magnitudes at worst.
        EXPECT_NEAR(y[tkn * n_rows + r], want, 1e-5 + mag * 5e-3) << "row " << r << " token " << tkn;
      }
    }
  }
}

// matmul_shared over matrices of mixed types (Q4_0 and Q8_0 share Q8_0 activations, Q4_K and
// Q6_K share Q8_K, F16 has its own), row counts on and off the thread grains, and token counts
// below and above the packed (AMX) threshold: every output has the bits of a matmul() of its own,
// rows past each target's are untouched; bad calls throw.
TEST(Matmul, SharedInputEqualsSeparateProducts) {
  using tensor::DType;
  const int64_t n_cols = 512;
  ThreadPool pool(2);
  MatmulScratch scratch;
  struct Spec {
    DType type;
    int64_t n_rows;
  };
  const std::vector<Spec> specs = {{DType::kQ4_0, 200}, {DType::kQ4_K, 48}, {DType::kQ8_0, 16},
                                   {DType::kF16, 37}};
  std::vector<std::vector<std::byte>> wq(specs.size());
  std::vector<MatmulTarget> targets;
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto [t, n_rows] = specs[i];
    const auto wf = random_vector(static_cast<size_t>(n_cols * n_rows), 40 + static_cast<uint32_t>(i), 0.05f);
    const size_t rb = tensor::row_bytes(t, n_cols);
    wq[i].resize(rb * static_cast<size_t>(n_rows));
    for (int64_t r = 0; r < n_rows; ++r) reference::quantize_row(t, &wf[r * n_cols], &wq[i][r * rb], n_cols);
    targets.push_back({.w = {.type = t, .n_cols = n_cols, .n_rows = n_rows, .row_bytes = rb, .data = wq[i].data()}});
  }
  for (const auto& order : {std::vector<size_t>{0, 1, 2, 3}, std::vector<size_t>{1, 0, 3, 2}}) {
    std::vector<MatmulTarget> picked;
    for (size_t i : order) picked.push_back(targets[i]);
    for (int64_t n_tok : {1, 3, 7, 40}) {
      SCOPED_TRACE("tokens " + std::to_string(n_tok));
      const auto x = random_vector(static_cast<size_t>(n_cols * n_tok), 7 + static_cast<uint32_t>(n_tok));
      std::vector<std::vector<float>> shared(picked.size()), alone(picked.size());
      for (size_t i = 0; i < picked.size(); ++i) {
        const int64_t stride = picked[i].w.n_rows + 5;
        shared[i].assign(static_cast<size_t>(n_tok * stride), -7.0f);
        alone[i].assign(shared[i].size(), -7.0f);
        picked[i].y = shared[i].data();
        picked[i].y_stride = stride;
        matmul(picked[i].w, x.data(), n_cols, n_tok, alone[i].data(), stride, scratch, pool);
      }
      matmul_shared(picked, x.data(), n_cols, n_tok, scratch, pool);
      for (size_t i = 0; i < picked.size(); ++i) {
        for (size_t j = 0; j < shared[i].size(); ++j) {
          ASSERT_EQ(shared[i][j], alone[i][j]) << tensor::dtype_name(picked[i].w.type) << " at " << j;
        }
      }
    }
  }
  std::vector<MatmulTarget> too_many(kMaxMatmulTargets + 1, targets[0]);
  std::vector<float> y(static_cast<size_t>(200 * 5));
  for (auto& t : too_many) t.y = y.data(), t.y_stride = 200;
  const auto x = random_vector(static_cast<size_t>(n_cols), 3);
  EXPECT_THROW(matmul_shared(too_many, x.data(), n_cols, 1, scratch, pool), Error);
  MatmulTarget narrow = targets[0];
  narrow.w.n_cols = 256;
  const MatmulTarget mixed[] = {too_many[0], narrow};
  EXPECT_THROW(matmul_shared(mixed, x.data(), n_cols, 1, scratch, pool), Error);
}

TEST(Matmul, ProfileCountsCallsPerShape) {
  using tensor::DType;
  const int64_t n_cols = 256;
  ThreadPool pool(2);
  MatmulScratch scratch;
  std::vector<std::vector<std::byte>> wq;
  auto make = [&](DType t, int64_t n_rows) {
    const auto wf = random_vector(static_cast<size_t>(n_cols * n_rows), 60, 0.05f);
    const size_t rb = tensor::row_bytes(t, n_cols);
    wq.emplace_back(rb * static_cast<size_t>(n_rows));
    for (int64_t r = 0; r < n_rows; ++r) reference::quantize_row(t, &wf[r * n_cols], &wq.back()[r * rb], n_cols);
    return tensor::MatrixView{.type = t, .n_cols = n_cols, .n_rows = n_rows, .row_bytes = rb, .data = wq.back().data()};
  };
  wq.reserve(2);
  const tensor::MatrixView a = make(DType::kQ4_0, 64), b = make(DType::kQ8_0, 32);
  const auto x = random_vector(static_cast<size_t>(n_cols * 3), 61);
  std::vector<float> ya(64 * 3), yb(32 * 3);
  auto run_all = [&] {
    matmul(a, x.data(), n_cols, 1, ya.data(), 64, scratch, pool);
    matmul(a, x.data(), n_cols, 3, ya.data(), 64, scratch, pool);
    matmul(a, x.data(), n_cols, 3, ya.data(), 64, scratch, pool);
    const MatmulTarget both[] = {{a, ya.data(), 64}, {b, yb.data(), 32}};
    matmul_shared(both, x.data(), n_cols, 1, scratch, pool);
  };
  matmul_profile_reset();
  run_all();  // not recording: nothing counted
  EXPECT_TRUE(matmul_profile_lines().empty());
  matmul_profile_enable(true);
  EXPECT_TRUE(matmul_profile_enabled());
  run_all();
  matmul_profile_enable(false);
  EXPECT_FALSE(matmul_profile_enabled());
  run_all();  // stopped: the lines stay as they were
  const auto lines = matmul_profile_lines();
  ASSERT_EQ(lines.size(), 3u);
  int64_t seen = 0;
  for (const auto& l : lines) {
    EXPECT_GT(l.seconds, 0.0);
    EXPECT_EQ(l.shape.cols, n_cols);
    if (l.shape.type_label() == "Q4_0+Q8_0") {
      EXPECT_EQ(l.shape.rows, 96);
      EXPECT_EQ(l.shape.tokens, 1);
      EXPECT_EQ(l.calls, 1);
      EXPECT_EQ(l.shape.weight_bytes, a.row_bytes * 64 + b.row_bytes * 32);
      seen += 1;
    } else {
      EXPECT_EQ(l.shape.type_label(), "Q4_0");
      EXPECT_EQ(l.shape.rows, 64);
      EXPECT_EQ(l.calls, l.shape.tokens == 3 ? 2 : 1) << "tokens " << l.shape.tokens;
      EXPECT_EQ(l.shape.weight_bytes, a.row_bytes * 64);
      seen += l.calls;
    }
  }
  EXPECT_EQ(seen, 4);
  for (size_t i = 1; i < lines.size(); ++i) EXPECT_GE(lines[i - 1].seconds, lines[i].seconds) << "largest first";
  matmul_profile_reset();
  EXPECT_TRUE(matmul_profile_lines().empty());
}

}  // namespace
}  // namespace lightboat::kernels

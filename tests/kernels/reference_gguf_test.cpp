// The reference kernels against files made by llama.cpp's llama-quantize (shared fixtures, see
// fixtures/arch/README.md): every quantized tensor decodes to its F32 original within the
// format's error bound, the dot products agree with the decoded rows, and re-quantizing the F32
// rows with our quantizers reproduces llama-quantize's bytes exactly (without an importance
// matrix it uses the reference quantizers, for the K-quants too).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "fixtures.h"
#include "gguf/reader.h"
#include "kernels/reference/reference.h"
#include "reference_util.h"

namespace lightboat::kernels::reference {
namespace {

using namespace test_util;  // NOLINT: test helpers
using tensor::dtype_name;

// `path` is relative to the fixtures folder.
std::shared_ptr<const gguf::Reader> open_fixture(const std::string& path) {
  return gguf::Reader::open((lightboat::testing::fixtures_dir() / path).string());
}

// Every (quantized file, F32 original) pair under test.
struct FilePair {
  std::string quantized;
  std::string original;
};

std::vector<FilePair> fixture_pairs() {
  std::vector<FilePair> pairs;
  for (const char* v : {"F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0"}) {
    pairs.push_back({std::string("arch/tiny-llama-") + v + ".gguf", "arch/tiny-llama-F32.gguf"});
  }
  for (const char* arch : {"llama3", "qwen2", "qwen3", "phi3", "gemma", "gemma2"}) {
    for (const char* v : {"Q8_0", "Q4_0"}) {
      pairs.push_back({std::string("arch/tiny-") + arch + "-" + v + ".gguf",
                       std::string("arch/tiny-") + arch + "-F32.gguf"});
    }
  }
  // A trained model (real weight statistics); its 172-wide ffn_down stays F16.
  for (const char* v : {"Q8_0", "Q4_0"}) {
    pairs.push_back({std::string("stories260K/stories260K-") + v + ".gguf",
                     "stories260K/stories260K-F32.gguf"});
  }
  return pairs;
}

// Calls fn(tensor info, dtype, original F32 tensor) for every non-F32 tensor of `pair`.
template <typename Fn>
void for_each_quantized_tensor(const FilePair& pair, Fn&& fn) {
  const auto q = open_fixture(pair.quantized);
  const auto f = open_fixture(pair.original);
  for (const gguf::TensorInfo& t : q->tensors()) {
    const auto type = tensor::dtype_from_id(t.type_id);
    ASSERT_TRUE(type.has_value()) << pair.quantized << ": " << t.name << " type " << t.type_id;
    if (*type == DType::kF32) continue;
    const gguf::TensorInfo* orig = f->find_tensor(t.name);
    ASSERT_NE(orig, nullptr) << t.name;
    ASSERT_EQ(orig->type_id, 0u) << t.name;
    ASSERT_EQ(orig->ne, t.ne) << t.name;
    SCOPED_TRACE(pair.quantized + ": " + t.name + " (" + std::string(dtype_name(*type)) + ")");
    fn(t, *type, *orig);
  }
}

std::vector<float> f32_row(const gguf::TensorInfo& t, int64_t row) {
  const auto ne0 = static_cast<int64_t>(t.ne[0]);
  std::vector<float> x(static_cast<size_t>(ne0));
  std::memcpy(x.data(), t.data + static_cast<size_t>(row * ne0) * sizeof(float),
              x.size() * sizeof(float));
  return x;
}

TEST(ReferenceGguf, RequantizingReproducesLlamaQuantizeBytes) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  for (const FilePair& pair : fixture_pairs()) {
    for_each_quantized_tensor(pair, [&](const gguf::TensorInfo& t, DType type,
                                        const gguf::TensorInfo& orig) {
      const auto ne0 = static_cast<int64_t>(t.ne[0]);
      const int64_t rows = static_cast<int64_t>(t.n_elements) / ne0;
      const size_t rb = tensor::row_bytes(type, ne0);
      std::vector<uint8_t> mine(rb);
      int64_t differing_rows = 0;
      for (int64_t r = 0; r < rows; ++r) {
        const std::vector<float> x = f32_row(orig, r);
        quantize_row(type, x.data(), mine.data(), ne0);
        if (std::memcmp(mine.data(), t.data + static_cast<size_t>(r) * rb, rb) != 0) ++differing_rows;
      }
      EXPECT_EQ(differing_rows, 0) << "of " << rows << " rows";
    });
  }
}

TEST(ReferenceGguf, DequantizedTensorsMatchF32WithinBound) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  for (const FilePair& pair : fixture_pairs()) {
    for_each_quantized_tensor(pair, [&](const gguf::TensorInfo& t, DType type,
                                        const gguf::TensorInfo& orig) {
      const auto ne0 = static_cast<int64_t>(t.ne[0]);
      const int64_t rows = static_cast<int64_t>(t.n_elements) / ne0;
      const size_t rb = tensor::row_bytes(type, ne0);
      const int64_t block = std::max<int64_t>(tensor::dtype_traits(type).block_elems, 32);
      std::vector<float> y(static_cast<size_t>(ne0));
      double worst = 0.0;
      for (int64_t r = 0; r < rows; ++r) {
        const std::vector<float> x = f32_row(orig, r);
        dequantize_row(type, t.data + static_cast<size_t>(r) * rb, y.data(), ne0);
        for (int64_t b = 0; b + block <= ne0; b += block) {
          double amax = 0.0, max_err = 0.0;
          for (int64_t i = b; i < b + block; ++i) {
            amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
            max_err = std::max(max_err, std::fabs(static_cast<double>(x[i]) - y[i]));
          }
          if (amax > 0) worst = std::max(worst, max_err / amax);
        }
      }
      EXPECT_LE(worst, block_error_bound(type));
    });
  }
}

TEST(ReferenceGguf, DotProductsOnRealRows) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  for (const FilePair& pair : fixture_pairs()) {
    for_each_quantized_tensor(pair, [&](const gguf::TensorInfo& t, DType type,
                                        const gguf::TensorInfo&) {
      const auto ne0 = static_cast<int64_t>(t.ne[0]);
      const int64_t rows = static_cast<int64_t>(t.n_elements) / ne0;
      const size_t rb = tensor::row_bytes(type, ne0);
      const DType xt = vec_dot_type(type);
      const std::vector<float> x = random_row(ne0, 42);
      const std::vector<uint8_t> xq = quantize(xt, x);
      const std::vector<float> xd = dequantize(xt, xq, ne0);
      for (int64_t r = 0; r < std::min<int64_t>(rows, 8); ++r) {
        const std::byte* w = t.data + static_cast<size_t>(r) * rb;
        std::vector<float> wd(static_cast<size_t>(ne0));
        dequantize_row(type, w, wd.data(), ne0);
        double abs_sum = 0.0;
        for (int64_t i = 0; i < ne0; ++i) abs_sum += std::fabs(static_cast<double>(wd[i]) * xd[i]);
        const bool offset_sum = type == DType::kQ4_1 || type == DType::kQ5_1;
        EXPECT_NEAR(vec_dot(type, ne0, w, xq.data()), dot_double(wd, xd),
                    (offset_sum ? 2e-4 : 1e-6) * abs_sum + 1e-30);
      }
    });
  }
}

}  // namespace
}  // namespace lightboat::kernels::reference

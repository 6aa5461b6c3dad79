// Paged attention (kernels/attention.h): the scalar reference against softmax(q·K)·V computed in
// double, and every SIMD variant this machine runs against the scalar reference, for F32 and
// F16 caches, head dims 1 .. 2 x 16 + 1 and real ones, GQA groups of 1 .. 9 heads (9: two
// slices of the kernel's 8), page sizes that do and do not divide the chunk, scattered page
// tables, windows that start mid-page, the soft-cap, and misaligned rows.
//
// Tolerance: outputs are convex combinations of V rows with |v| <= 1, so their error is bounded
// by the weights' error; fp32 rounding of the dot products, the exp polynomial (< 3e-9 relative)
// and the order of additions keep it under kTol = 2e-5 absolute (observed: 7.4e-6 on AVX2 and
// AVX-512, 1.1e-5 on NEON under qemu, on the sharp cases, whose scores of magnitude ~50 carry
// ~3e-6 of fp32 rounding into exp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "kernels/attention.h"
#include "kernels/dispatch.h"
#include "tensor/dtype.h"

namespace lightboat::kernels {
namespace {

using tensor::DType;

constexpr double kTol = 2e-5;

struct Case {
  DType type = DType::kF32;
  int64_t head_dim = 64;
  int64_t n_q = 3;         // query heads sharing the KV head
  int64_t n_kv_heads = 2;  // KV heads in a slot (the one under test is the last)
  int64_t pad = 0;         // extra elements per slot (misaligned rows)
  int64_t page_size = 16;
  int64_t first = 0;
  int64_t n = 40;
  float scale = 0.125f;
  float softcap = 0.0f;
  uint32_t seed = 1;
};

std::string describe(const Case& c) {
  return std::string(tensor::dtype_name(c.type)) + " hd=" + std::to_string(c.head_dim) +
         " n_q=" + std::to_string(c.n_q) + " page=" + std::to_string(c.page_size) +
         " first=" + std::to_string(c.first) + " n=" + std::to_string(c.n) + " pad=" + std::to_string(c.pad) +
         " cap=" + std::to_string(c.softcap);
}

// A paged cache filled with random values, a shuffled page table, and random queries.
struct Fixture {
  Case c;
  int64_t row_stride;
  int64_t kv_offset;
  std::vector<int32_t> pages;
  std::vector<float> k32, v32;     // the cache as fp32 (for F16: the fp16 values, widened)
  std::vector<uint16_t> k16, v16;  // the cache as fp16 (F16 cases)
  std::vector<float> q_storage;    // one float of offset: q is misaligned
  std::vector<float> out;

  explicit Fixture(const Case& cs) : c(cs) {
    row_stride = c.n_kv_heads * c.head_dim + c.pad;
    kv_offset = (c.n_kv_heads - 1) * c.head_dim;
    const int64_t n_pages = (c.first + c.n + c.page_size - 1) / c.page_size + 3;
    pages.resize(static_cast<size_t>(n_pages));
    std::iota(pages.begin(), pages.end(), 0);
    std::mt19937 rng(c.seed);
    std::shuffle(pages.begin(), pages.end(), rng);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    const auto cells = static_cast<size_t>(n_pages * c.page_size * row_stride);
    k32.resize(cells);
    v32.resize(cells);
    k16.resize(cells);
    v16.resize(cells);
    for (size_t i = 0; i < cells; ++i) {
      k16[i] = tensor::fp32_to_fp16(uni(rng));
      v16[i] = tensor::fp32_to_fp16(uni(rng));
      k32[i] = tensor::fp16_to_fp32(k16[i]);
      v32[i] = tensor::fp16_to_fp32(v16[i]);
    }
    q_storage.resize(static_cast<size_t>(c.n_q * c.head_dim + 1));
    for (auto& x : q_storage) x = uni(rng);
    out.assign(static_cast<size_t>(c.n_q * c.head_dim), 0.0f);
  }

  PagedKv kv() const {
    const bool f16 = c.type == DType::kF16;
    return {.k = f16 ? static_cast<const void*>(k16.data()) : k32.data(),
            .v = f16 ? static_cast<const void*>(v16.data()) : v32.data(),
            .type = c.type,
            .row_stride = row_stride,
            .page_size = c.page_size,
            .pages = pages.data()};
  }
  AttentionQuery query() {
    return {.q = q_storage.data() + 1,
            .out = out.data(),
            .n_q = c.n_q,
            .head_dim = c.head_dim,
            .kv_offset = kv_offset,
            .first = c.first,
            .n = c.n,
            .scale = c.scale,
            .softcap = c.softcap};
  }
  std::vector<float> run(AttentionFn fn) {
    std::fill(out.begin(), out.end(), 12345.0f);  // the kernel must overwrite every element
    fn(kv(), query());
    return out;
  }

  // softmax(cap(scale · q·k)) · V in double, over the same (fp16-rounded) cache values.
  std::vector<double> naive() const {
    const int64_t hd = c.head_dim;
    std::vector<double> want(static_cast<size_t>(c.n_q * hd), 0.0);
    const float* q = q_storage.data() + 1;
    for (int64_t g = 0; g < c.n_q; ++g) {
      std::vector<double> s(static_cast<size_t>(c.n));
      std::vector<int64_t> rows(static_cast<size_t>(c.n));
      for (int64_t j = 0; j < c.n; ++j) {
        const int64_t pos = c.first + j;
        const int64_t slot = pages[static_cast<size_t>(pos / c.page_size)] * c.page_size + pos % c.page_size;
        rows[static_cast<size_t>(j)] = slot * row_stride + kv_offset;
        double dot = 0.0;
        for (int64_t d = 0; d < hd; ++d) dot += double{q[g * hd + d]} * k32[static_cast<size_t>(rows[j] + d)];
        double sc = dot * c.scale;
        if (c.softcap > 0.0f) sc = c.softcap * std::tanh(sc / c.softcap);
        s[static_cast<size_t>(j)] = sc;
      }
      const double mx = *std::max_element(s.begin(), s.end());
      double sum = 0.0;
      for (auto& x : s) sum += (x = std::exp(x - mx));
      for (int64_t j = 0; j < c.n; ++j) {
        for (int64_t d = 0; d < hd; ++d) {
          want[static_cast<size_t>(g * hd + d)] +=
              s[static_cast<size_t>(j)] / sum * v32[static_cast<size_t>(rows[j] + d)];
        }
      }
    }
    return want;
  }
};

std::vector<Case> cases() {
  std::vector<Case> out;
  uint32_t seed = 1;
  auto add = [&](Case c) {
    c.seed = seed++;
    out.push_back(c);
  };
  for (DType t : {DType::kF32, DType::kF16}) {
    for (int64_t hd = 1; hd <= 33; ++hd) add({.type = t, .head_dim = hd, .n_q = 1 + hd % 4, .n = 5 + hd});
    for (int64_t hd : {64, 80, 96, 128, 256}) {
      for (int64_t n_q : {1, 2, 3, 4, 7, 8, 9}) add({.type = t, .head_dim = hd, .n_q = n_q, .n = 70});
    }
    for (int64_t page : {1, 7, 16, 64, 256}) {
      for (int64_t n : {1, 2, 15, 16, 17, 63, 64, 65, 300}) {
        add({.type = t, .n_q = 3, .page_size = page, .first = n % 5, .n = n});
      }
    }
    add({.type = t, .head_dim = 64, .n_q = 4, .pad = 3, .first = 9, .n = 100});  // misaligned rows
    add({.type = t, .head_dim = 128, .n_q = 2, .n = 200, .scale = 8.0f});        // sharp weights
    add({.type = t, .head_dim = 256, .n_q = 2, .first = 20, .n = 150, .scale = 0.0625f, .softcap = 50});  // Gemma 2
    add({.type = t, .head_dim = 32, .n_q = 3, .n = 90, .scale = 4.0f, .softcap = 2.0f});
  }
  return out;
}

std::vector<Isa> isas_here() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon}) {
    if (isa_available(isa)) out.push_back(isa);
  }
  return out;
}

TEST(Attention, ReferenceEqualsSoftmaxTimesV) {
  for (const Case& c : cases()) {
    Fixture f(c);
    const std::vector<double> want = f.naive();
    const std::vector<float> got = f.run(reference::attention);
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], kTol) << describe(c) << " at " << i;
    }
  }
}

TEST(Attention, EverySimdVariantMatchesTheReference) {
  for (Isa isa : isas_here()) {
    const KernelTable& table = kernel_table(isa);
    double worst = 0.0;
    for (const Case& c : cases()) {
      Fixture f(c);
      const std::vector<float> want = f.run(reference::attention);
      const std::vector<float> got = f.run(attention_fn(table, c.type));
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], kTol) << isa_name(isa) << " " << describe(c) << " at " << i;
        worst = std::max(worst, std::abs(double{got[i]} - want[i]));
      }
    }
    std::printf("%s: largest difference from the reference %.2e\n", std::string(isa_name(isa)).c_str(), worst);
  }
}

TEST(Attention, SimdTablesHaveTheirOwnEntries) {
  for (Isa isa : isas_here()) {
    if (isa == Isa::kScalar) continue;
    for (DType t : {DType::kF32, DType::kF16}) {
      EXPECT_NE(attention_fn(kernel_table(isa), t), reference::attention) << isa_name(isa);
    }
  }
}

TEST(Attention, UnsupportedKvTypeIsAnError) {
  try {
    attention_fn(active_kernels(), DType::kQ8_0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("Q8_0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lightboat::kernels

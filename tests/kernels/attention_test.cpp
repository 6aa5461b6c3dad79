// Paged attention (kernels/attention.h): the scalar reference against softmax(q·K)·V computed in
// double, and every SIMD variant this machine runs against the scalar reference, for F32 and
// F16 caches, head dims 1 .. 2 x 16 + 1 and real ones, GQA groups of 1 .. 9 heads (9: two
// slices of the kernel's 8), page sizes that do and do not divide the chunk, scattered page
// tables, windows that start mid-page, the soft-cap, and misaligned rows; then tiles of 1 .. 9
// consecutive query tokens (prefill) with ragged causal ends across chunk boundaries, sliding
// windows, and the invariance the model relies on: each token's output is bit-identical
// whether it is computed alone or in any tile, under any page size. Cache slots of positions
// outside what the call may see hold NaN, so reading one would show.
//
// Tolerance: outputs are convex combinations of V rows with |v| <= 1, so their error is bounded
// by the weights' error; fp32 rounding of the dot products, the exp polynomial (< 3e-9 relative)
// and the order of additions keep it under kTol = 2e-5 absolute (observed: 2.8e-7 on AVX2,
// 2.0e-6 on AVX-512, 7.8e-7 on NEON under qemu; the sharp cases, whose scores of magnitude ~50
// carry ~3e-6 of fp32 rounding into exp, dominate).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <utility>
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
  int64_t n_tokens = 1;  // a tile: token i sees first .. first + n - 1 + i (windowed)
  int64_t window = 0;
};

// Token i's visible range [first, first + n) under the case's window.
std::pair<int64_t, int64_t> visible(const Case& c, int64_t i) {
  const int64_t last = c.first + c.n - 1 + i;
  const int64_t first = c.window > 0 ? std::max(c.first, last - c.window + 1) : c.first;
  return {first, last + 1 - first};
}

// A deterministic value in [-1, 1) for element d of position pos (independent of the paging).
float value(uint32_t seed, int64_t pos, int64_t d, int which) {
  uint64_t x = (uint64_t{seed} << 40) ^ (static_cast<uint64_t>(pos) << 20) ^ (static_cast<uint64_t>(d) << 2) ^
               static_cast<uint64_t>(which);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return static_cast<float>(x >> 40) / static_cast<float>(1 << 23) - 1.0f;
}

std::string describe(const Case& c) {
  return std::string(tensor::dtype_name(c.type)) + " hd=" + std::to_string(c.head_dim) +
         " n_q=" + std::to_string(c.n_q) + " page=" + std::to_string(c.page_size) +
         " first=" + std::to_string(c.first) + " n=" + std::to_string(c.n) + " pad=" + std::to_string(c.pad) +
         " cap=" + std::to_string(c.softcap) + " tokens=" + std::to_string(c.n_tokens) +
         " window=" + std::to_string(c.window);
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

  int64_t token_stride;  // n_q · head_dim + 1: later tokens misaligned too
  explicit Fixture(const Case& cs) : c(cs) {
    row_stride = c.n_kv_heads * c.head_dim + c.pad;
    kv_offset = (c.n_kv_heads - 1) * c.head_dim;
    token_stride = c.n_q * c.head_dim + 1;
    const int64_t end = c.first + c.n + c.n_tokens - 1;  // positions the tile may see: first .. end - 1
    const int64_t n_pages = (end + c.page_size - 1) / c.page_size + 3;
    pages.resize(static_cast<size_t>(n_pages));
    std::iota(pages.begin(), pages.end(), 0);
    std::mt19937 rng(c.seed);
    std::shuffle(pages.begin(), pages.end(), rng);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    const auto cells = static_cast<size_t>(n_pages * c.page_size * row_stride);
    const uint16_t nan16 = 0x7e00;
    k16.assign(cells, nan16);  // slots no visible position uses stay NaN
    v16.assign(cells, nan16);
    for (int64_t pos = c.first; pos < end; ++pos) {
      const int64_t slot = pages[static_cast<size_t>(pos / c.page_size)] * c.page_size + pos % c.page_size;
      for (int64_t e = 0; e < row_stride; ++e) {
        const auto i = static_cast<size_t>(slot * row_stride + e);
        k16[i] = tensor::fp32_to_fp16(value(c.seed, pos, e, 0));
        v16[i] = tensor::fp32_to_fp16(value(c.seed, pos, e, 1));
      }
    }
    k32.resize(cells);
    v32.resize(cells);
    for (size_t i = 0; i < cells; ++i) {
      k32[i] = tensor::fp16_to_fp32(k16[i]);
      v32[i] = tensor::fp16_to_fp32(v16[i]);
    }
    q_storage.resize(static_cast<size_t>(c.n_tokens * token_stride + 1));
    for (auto& x : q_storage) x = uni(rng);
    out.assign(static_cast<size_t>(c.n_tokens * token_stride), 0.0f);
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
            .softcap = c.softcap,
            .n_tokens = c.n_tokens,
            .token_stride = token_stride,
            .window = c.window};
  }
  // The outputs, [n_tokens, n_q · head_dim] (the gaps between tokens are checked to be untouched).
  std::vector<float> run(AttentionFn fn) {
    std::fill(out.begin(), out.end(), 12345.0f);  // the kernel must overwrite every element
    fn(kv(), query());
    std::vector<float> got;
    for (int64_t i = 0; i < c.n_tokens; ++i) {
      got.insert(got.end(), out.begin() + i * token_stride, out.begin() + (i + 1) * token_stride - 1);
      EXPECT_EQ(out[static_cast<size_t>((i + 1) * token_stride - 1)], 12345.0f) << "gap after token " << i;
    }
    return got;
  }

  // softmax(cap(scale · q·k)) · V in double, over the same (fp16-rounded) cache values.
  std::vector<double> naive() const {
    const int64_t hd = c.head_dim;
    std::vector<double> want(static_cast<size_t>(c.n_tokens * c.n_q * hd), 0.0);
    for (int64_t t = 0; t < c.n_tokens; ++t) {
      const auto [first, n] = visible(c, t);
      const float* q = q_storage.data() + 1 + t * token_stride;
      double* w = &want[static_cast<size_t>(t * c.n_q * hd)];
      for (int64_t g = 0; g < c.n_q; ++g) {
        std::vector<double> s(static_cast<size_t>(n));
        std::vector<int64_t> rows(static_cast<size_t>(n));
        for (int64_t j = 0; j < n; ++j) {
          const int64_t pos = first + j;
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
        for (int64_t j = 0; j < n; ++j) {
          for (int64_t d = 0; d < hd; ++d) {
            w[g * hd + d] += s[static_cast<size_t>(j)] / sum * v32[static_cast<size_t>(rows[j] + d)];
          }
        }
      }
    }
    return want;
  }
};

// Prefill tiles: 1 .. 9 tokens, ending before, on and across chunk (64) and page boundaries,
// with windows (starting mid-page, shorter and longer than the tile) and the soft-cap.
std::vector<Case> tile_cases() {
  std::vector<Case> out;
  uint32_t seed = 1000;
  auto add = [&](Case c) {
    c.seed = seed++;
    out.push_back(c);
  };
  for (DType t : {DType::kF32, DType::kF16}) {
    for (int64_t nt = 1; nt <= 9; ++nt) {
      for (int64_t n : {1, 5, 60, 64, 125}) {
        add({.type = t, .n_q = 1 + nt % 4, .page_size = nt % 2 != 0 ? 16 : 7, .n = n, .n_tokens = nt});
      }
      add({.type = t, .head_dim = 24 + nt, .n_q = 3, .page_size = 5, .first = 3, .n = 61, .n_tokens = nt});
      add({.type = t, .n_q = 4, .page_size = 16, .first = 30, .n = 40, .n_tokens = nt, .window = 40});
      add({.type = t, .n_q = 3, .page_size = 3, .first = 120, .n = 5, .n_tokens = nt, .window = 5});
    }
    add({.type = t, .n_q = 9, .page_size = 1, .n = 70, .n_tokens = 8});  // 72 rows: three pieces
    add({.type = t,
         .head_dim = 256,
         .n_q = 2,
         .first = 20,
         .n = 150,
         .scale = 0.0625f,
         .softcap = 50,
         .n_tokens = 6,
         .window = 150});                                                                       // Gemma 2
    add({.type = t, .head_dim = 288, .n_q = 2, .n = 70, .n_tokens = 3});                        // F16 K not widened
    add({.type = t, .head_dim = 64, .n_q = 4, .pad = 3, .first = 9, .n = 100, .n_tokens = 5});  // misaligned
  }
  return out;
}

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
  for (const Case& c : tile_cases()) add(c);
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

// What the model's batch invariance rests on (kernels/attention.h): a token's output is the same
// bits alone and in any tile, under any page size.
TEST(Attention, TokensGetTheSameBitsAloneInTilesAndUnderAnyPaging) {
  for (Isa isa : isas_here()) {
    const KernelTable& table = kernel_table(isa);
    for (Case c : tile_cases()) {
      if (c.n_tokens == 1) continue;
      const AttentionFn fn = attention_fn(table, c.type);
      Fixture tile(c);
      const std::vector<float> all = tile.run(fn);
      const auto per_token = static_cast<size_t>(c.n_q * c.head_dim);
      for (int64_t i = 0; i < c.n_tokens; ++i) {
        // Token i alone: the same cache values under another page size, its query copied.
        Case one = c;
        one.page_size = c.page_size == 1 ? 64 : 1;
        one.first = visible(c, i).first;
        one.n = visible(c, i).second;
        one.n_tokens = 1;
        Fixture alone(one);
        std::copy_n(tile.q_storage.begin() + 1 + i * tile.token_stride, per_token, alone.q_storage.begin() + 1);
        const std::vector<float> got = alone.run(fn);
        for (size_t e = 0; e < per_token; ++e) {
          ASSERT_EQ(got[e], all[i * per_token + e])
              << isa_name(isa) << " " << describe(c) << " token " << i << " at " << e;
        }
      }
    }
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

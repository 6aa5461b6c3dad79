// Kernel micro-benchmarks, per ISA this machine runs: vec_dot per weight type, the activation
// quantizers, matmul at real model shapes for decode (1 token; 4: a few streams or speculative
// drafts), a small batch (16 tokens: the AMX threshold) and prefill (64 tokens), decode from DRAM
// beside a linear read of the same memory (MatmulCold, ColdReadBandwidth), and the
// thread pool's per-call overhead; paged attention of one decode token over one layer's cache,
// and of a 512-token prefill in tiles of 1 and 8 tokens. Rates: weights_B/s is weight bytes
// read per second (the decode roofline's unit), FLOP/s counts 2 per multiply-add.
//
//   build/bench/kernels_bench --benchmark_filter='Matmul/.*/tokens:1/' --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "base/thread_pool.h"
#include "cli/bench_machine.h"
#include "kernels/attention.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/reference/reference.h"
#include "tensor/dtype.h"
#include "tensor/interleave.h"
#include "tensor/view.h"

namespace lb = lightboat;
namespace kernels = lightboat::kernels;
using lightboat::tensor::DType;

namespace {

std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal(rng);
  return x;
}

// A weight matrix of n_rows x n_cols: 16 distinct random rows, repeated (quantizing all of a
// 16M-element matrix with the reference quantizers would dominate start-up).
struct Matrix {
  std::vector<std::byte> bytes;
  lb::tensor::MatrixView view;
};

const Matrix& matrix(DType type, int64_t n_rows, int64_t n_cols) {
  static std::map<std::tuple<DType, int64_t, int64_t>, std::unique_ptr<Matrix>> cache;
  auto& slot = cache[{type, n_rows, n_cols}];
  if (!slot &&
      (type == DType::kQ4_0x16 || type == DType::kQ8_0x16 || type == DType::kQ4_Kx16 || type == DType::kF16x16)) {
    // 16 rows interleaved, as models load them
    DType file_type = DType::kF16;
    for (DType t : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K}) {
      if (lb::tensor::interleaving_of(t).type == type) file_type = t;
    }
    const Matrix& file = matrix(file_type, n_rows, n_cols);
    slot = std::make_unique<Matrix>(file);
    lb::tensor::interleaving_of(file_type).fn(file.bytes.data(), file.view.row_bytes, n_rows, n_cols,
                                              slot->bytes.data());
    slot->view.type = type;
    slot->view.data = slot->bytes.data();
  }
  if (!slot) {
    slot = std::make_unique<Matrix>();
    const size_t row_bytes = lb::tensor::row_bytes(type, n_cols);
    slot->bytes.resize(row_bytes * static_cast<size_t>(n_rows));
    constexpr int64_t kDistinct = 16;
    for (int64_t r = 0; r < kDistinct && r < n_rows; ++r) {
      const auto x = random_floats(n_cols, static_cast<uint32_t>(r));
      kernels::reference::quantize_row(type, x.data(), slot->bytes.data() + r * row_bytes, n_cols);
    }
    for (int64_t r = kDistinct; r < n_rows; ++r) {
      std::memcpy(slot->bytes.data() + r * row_bytes, slot->bytes.data() + (r % kDistinct) * row_bytes, row_bytes);
    }
    slot->view = {.type = type, .n_cols = n_cols, .n_rows = n_rows, .row_bytes = row_bytes, .data = slot->bytes.data()};
  }
  return *slot;
}

std::vector<kernels::Isa> isas() {
  std::vector<kernels::Isa> out;
  for (auto isa : {kernels::Isa::kScalar, kernels::Isa::kAvx2, kernels::Isa::kAvx512, kernels::Isa::kAvx512Vbmi,
                   kernels::Isa::kAmx, kernels::Isa::kNeon}) {
    if (kernels::isa_available(isa)) out.push_back(isa);
  }
  return out;
}

std::string name(DType t) { return std::string(lb::tensor::dtype_name(t)); }

void bm_vec_dot(benchmark::State& state, kernels::Isa isa, DType type) {
  constexpr int64_t kN = 4096;
  const DType act = kernels::reference::vec_dot_type(type);
  const Matrix& w = matrix(type, 1, kN);
  std::vector<std::byte> x(lb::tensor::row_bytes(act, kN));
  kernels::reference::quantize_row(act, random_floats(kN, 99).data(), x.data(), kN);
  const kernels::VecDotFn dot = kernels::vec_dot_fn(kernels::kernel_table(isa), type);
  for (auto _ : state) benchmark::DoNotOptimize(dot(kN, w.bytes.data(), x.data()));
  state.counters["weights_B/s"] = benchmark::Counter(static_cast<double>(w.view.row_bytes),
                                                     benchmark::Counter::kIsIterationInvariantRate);
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * kN, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_quantize(benchmark::State& state, kernels::Isa isa, DType act) {
  constexpr int64_t kN = 4096;
  const auto x = random_floats(kN, 5);
  std::vector<std::byte> y(lb::tensor::row_bytes(act, kN));
  const kernels::QuantizeRowFn quantize = kernels::quantize_row_fn(kernels::kernel_table(isa), act);
  for (auto _ : state) {
    quantize(x.data(), y.data(), kN);
    benchmark::ClobberMemory();
  }
  state.counters["floats/s"] = benchmark::Counter(kN, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_matmul(benchmark::State& state, kernels::Isa isa, DType type, int64_t n_rows, int64_t n_cols,
               int64_t n_tokens, int threads) {
  const Matrix& w = matrix(type, n_rows, n_cols);
  const auto x = random_floats(n_tokens * n_cols, 7);
  std::vector<float> y(static_cast<size_t>(n_tokens * n_rows));
  kernels::MatmulScratch scratch;
  lb::ThreadPool pool(threads);
  const kernels::KernelTable& table = kernels::kernel_table(isa);
  for (auto _ : state) {
    kernels::matmul(table, w.view, x.data(), n_cols, n_tokens, y.data(), n_rows, scratch, pool);
    benchmark::ClobberMemory();
  }
  state.counters["weights_B/s"] = benchmark::Counter(static_cast<double>(w.bytes.size()),
                                                     benchmark::Counter::kIsIterationInvariantRate);
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(n_rows * n_cols * n_tokens),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

// One decode token's attention over one layer: n_head_kv KV heads of `group` query heads each,
// head_dim 64, n_ctx cached positions in 16-slot pages (page table reversed, so pages are not
// adjacent), on one thread. KV_B/s counts the K and V bytes read.
void bm_attention(benchmark::State& state, kernels::Isa isa, DType kv_type, int64_t n_head_kv, int64_t group,
                  int64_t n_ctx) {
  constexpr int64_t kHeadDim = 64, kPage = 16;
  const int64_t row = n_head_kv * kHeadDim;  // elements per slot
  const int64_t n_pages = (n_ctx + kPage - 1) / kPage;
  const size_t elem = kv_type == DType::kF16 ? 2 : 4;
  const auto cells = static_cast<size_t>(n_pages * kPage * row);
  std::vector<std::byte> k(cells * elem), v(cells * elem);
  const auto values = random_floats(static_cast<int64_t>(cells), 3);
  kernels::reference::quantize_row(kv_type, values.data(), k.data(), static_cast<int64_t>(cells));
  kernels::reference::quantize_row(kv_type, values.data(), v.data(), static_cast<int64_t>(cells));
  std::vector<int32_t> pages(static_cast<size_t>(n_pages));
  for (int64_t p = 0; p < n_pages; ++p) pages[static_cast<size_t>(p)] = static_cast<int32_t>(n_pages - 1 - p);
  const auto q = random_floats(n_head_kv * group * kHeadDim, 4);
  std::vector<float> out(q.size());
  const kernels::AttentionFn attend = kernels::attention_fn(kernels::kernel_table(isa), kv_type);
  const kernels::PagedKv kv{.k = k.data(), .v = v.data(), .type = kv_type, .row_stride = row, .page_size = kPage,
                            .pages = pages.data()};
  for (auto _ : state) {
    for (int64_t h = 0; h < n_head_kv; ++h) {
      attend(kv, {.q = &q[static_cast<size_t>(h * group * kHeadDim)],
                  .out = &out[static_cast<size_t>(h * group * kHeadDim)],
                  .n_q = group,
                  .head_dim = kHeadDim,
                  .kv_offset = h * kHeadDim,
                  .first = 0,
                  .n = n_ctx,
                  .scale = 0.125f});
    }
    benchmark::ClobberMemory();
  }
  state.counters["KV_B/s"] = benchmark::Counter(2.0 * static_cast<double>(n_ctx * row * static_cast<int64_t>(elem)),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

// A causal prefill's attention over one layer: every one of n_ctx tokens over its positions
// 0 .. itself, in tiles of `tile` consecutive tokens per kernel call (1: a call per token, as
// before tiles), n_head_kv KV heads of `group` query heads, head_dim 64, 16-slot pages, one
// thread. tokens/s counts the prompt tokens.
void bm_attention_prefill(benchmark::State& state, kernels::Isa isa, DType kv_type, int64_t n_head_kv, int64_t group,
                          int64_t n_ctx, int64_t tile) {
  constexpr int64_t kHeadDim = 64, kPage = 16;
  const int64_t row = n_head_kv * kHeadDim;  // elements per slot
  const int64_t n_pages = (n_ctx + kPage - 1) / kPage;
  const size_t elem = kv_type == DType::kF16 ? 2 : 4;
  const auto cells = static_cast<size_t>(n_pages * kPage * row);
  std::vector<std::byte> k(cells * elem), v(cells * elem);
  const auto values = random_floats(static_cast<int64_t>(cells), 3);
  kernels::reference::quantize_row(kv_type, values.data(), k.data(), static_cast<int64_t>(cells));
  kernels::reference::quantize_row(kv_type, values.data(), v.data(), static_cast<int64_t>(cells));
  std::vector<int32_t> pages(static_cast<size_t>(n_pages));
  for (int64_t p = 0; p < n_pages; ++p) pages[static_cast<size_t>(p)] = static_cast<int32_t>(n_pages - 1 - p);
  const int64_t nq = n_head_kv * group * kHeadDim;  // query elements per token
  const auto q = random_floats(n_ctx * nq, 4);
  std::vector<float> out(q.size());
  const kernels::AttentionFn attend = kernels::attention_fn(kernels::kernel_table(isa), kv_type);
  const kernels::PagedKv kv{.k = k.data(), .v = v.data(), .type = kv_type, .row_stride = row, .page_size = kPage,
                            .pages = pages.data()};
  for (auto _ : state) {
    for (int64_t t = 0; t < n_ctx; t += tile) {
      for (int64_t h = 0; h < n_head_kv; ++h) {
        attend(kv, {.q = &q[static_cast<size_t>(t * nq + h * group * kHeadDim)],
                    .out = &out[static_cast<size_t>(t * nq + h * group * kHeadDim)],
                    .n_q = group,
                    .head_dim = kHeadDim,
                    .kv_offset = h * kHeadDim,
                    .first = 0,
                    .n = t + 1,
                    .scale = 0.125f,
                    .n_tokens = std::min(tile, n_ctx - t),
                    .token_stride = nq});
      }
    }
    benchmark::ClobberMemory();
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(n_ctx), benchmark::Counter::kIsIterationInvariantRate);
}

// A GiB of copies of one matrix (beyond the last-level cache of the machines we measure on), for
// decode gemms that read their weights from DRAM as a model's token does: each iteration takes the
// next copy. ColdReadBandwidth is the roofline's probe, so that a kernel's rate can be read as a
// fraction of the memory's in one run (MatmulCold weights_B/s / ColdReadBandwidth bytes/s).
struct ColdArena {
  std::byte* bytes = nullptr;  // kColdBytes, kept for the process's life
  size_t matrix_bytes = 0;
  int64_t copies = 0;
  std::tuple<DType, int64_t, int64_t> key{};
};

constexpr size_t kColdBytes = size_t{1} << 30;

// huge: the arena on transparent huge pages, as a model's weights are after the default load
// (LoadMode::kMmapHuge); else 4 KiB pages, as a plain mapping (--no-huge-pages).
const ColdArena& cold_copies(DType type, int64_t n_rows, int64_t n_cols, bool huge) {
  static ColdArena arenas[2];
  ColdArena& a = arenas[huge ? 1 : 0];
  if (a.bytes == nullptr) {
    a.bytes = static_cast<std::byte*>(std::aligned_alloc(size_t{2} << 20, kColdBytes));
    if (a.bytes == nullptr) std::abort();
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
    madvise(a.bytes, kColdBytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);  // before the first touch
#endif
  }
  if (a.key != std::tuple{type, n_rows, n_cols} || a.copies == 0) {
    const Matrix& w = matrix(type, n_rows, n_cols);
    a.matrix_bytes = w.bytes.size();
    a.copies = static_cast<int64_t>(kColdBytes / a.matrix_bytes);
    for (int64_t c = 0; c < a.copies; ++c) std::memcpy(a.bytes + c * a.matrix_bytes, w.bytes.data(), a.matrix_bytes);
    a.key = {type, n_rows, n_cols};
  }
  return a;
}

void bm_matmul_cold(benchmark::State& state, kernels::Isa isa, DType type, int64_t n_rows, int64_t n_cols,
                    int threads, bool huge) {
  const ColdArena& arena = cold_copies(type, n_rows, n_cols, huge);
  lb::tensor::MatrixView view = matrix(type, n_rows, n_cols).view;
  const auto x = random_floats(n_cols, 7);
  std::vector<float> y(static_cast<size_t>(n_rows));
  kernels::MatmulScratch scratch;
  lb::ThreadPool pool(threads);
  const kernels::KernelTable& table = kernels::kernel_table(isa);
  int64_t next = 0;
  for (auto _ : state) {
    view.data = arena.bytes + next * arena.matrix_bytes;
    next = (next + 1) % arena.copies;
    kernels::matmul(table, view, x.data(), n_cols, 1, y.data(), n_rows, scratch, pool);
    benchmark::ClobberMemory();
  }
  state.counters["weights_B/s"] = benchmark::Counter(static_cast<double>(arena.matrix_bytes),
                                                     benchmark::Counter::kIsIterationInvariantRate);
}

// The read bandwidth `lightboat bench` divides by (cli/bench_machine.cpp: its own buffer of the same
// size, huge-page backed where the kernel allows, vector loads), the best of three passes.
void bm_read_bandwidth(benchmark::State& state, int threads) {
  lb::ThreadPool pool(threads);
  double best = 0;
  for (auto _ : state) best = std::max(best, lb::cli::measure_read_bandwidth(pool, kColdBytes, 3).best_gbps);
  state.counters["bytes/s"] = best * 1e9;
}

// A call of `chunks` one-item chunks (a decode matmul's call has four per thread): the pool's
// own cost per call.
void bm_parallel_for(benchmark::State& state, int threads, int chunks) {
  lb::ThreadPool pool(threads);
  std::vector<int64_t> sink(static_cast<size_t>(chunks) * 16);
  for (auto _ : state) {
    pool.parallel_for(chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) sink[static_cast<size_t>(i) * 16] += 1;
    });
  }
}

void register_all() {
  const DType kDotTypes[] = {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K,
                             DType::kF16,  DType::kBF16, DType::kF32};
  const DType kMatmulTypes[] = {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K, DType::kF16};
  // rows x cols; 512 x 2048 stays in the L2 cache (0.6-1.1 MB quantized) and so measures a
  // kernel's own instruction throughput, the ceiling it would reach with free memory bandwidth.
  const std::pair<int64_t, int64_t> kShapes[] = {{512, 2048}, {2048, 2048}, {8192, 2048}};
  const int hw = std::min(2, lb::ThreadPool::hardware_threads());
  for (auto isa : isas()) {
    const std::string i(kernels::isa_name(isa));
    for (DType t : kDotTypes) benchmark::RegisterBenchmark(("VecDot/" + name(t) + "/" + i).c_str(), bm_vec_dot, isa, t);
    for (DType t : {DType::kQ8_0, DType::kQ8_K, DType::kF16}) {
      benchmark::RegisterBenchmark(("QuantizeRow/" + name(t) + "/" + i).c_str(), bm_quantize, isa, t);
    }
    // SmolLM2-135M (3 KV heads x 3) and Llama-3.2-1B (8 KV heads x 4) layers.
    for (auto [kv_heads, group] : {std::pair<int64_t, int64_t>{3, 3}, {8, 4}}) {
      for (DType t : {DType::kF16, DType::kF32}) {
        for (int64_t ctx : {64, 512, 4096}) {
          const std::string n = "Attention/" + name(t) + "/kv_heads:" + std::to_string(kv_heads) +
                                "/group:" + std::to_string(group) + "/ctx:" + std::to_string(ctx) + "/" + i;
          benchmark::RegisterBenchmark(n.c_str(), bm_attention, isa, t, kv_heads, group, ctx)
              ->Unit(benchmark::kMicrosecond);
        }
        for (int64_t tile : {1, 8}) {
          const std::string n = "AttentionPrefill/" + name(t) + "/kv_heads:" + std::to_string(kv_heads) +
                                "/group:" + std::to_string(group) + "/ctx:512/tile:" + std::to_string(tile) + "/" + i;
          benchmark::RegisterBenchmark(n.c_str(), bm_attention_prefill, isa, t, kv_heads, group, 512, tile)
              ->Unit(benchmark::kMillisecond);
        }
      }
    }
    // A 16384-row slice of Llama-3.2-1B's tied output head (Q6_K in its Q4_0 / Q4_K_M files,
    // 128256 x 2048): decode and batched decode (2 and 4 tokens: below the AMX threshold).
    for (int64_t tokens : {int64_t{1}, int64_t{2}, int64_t{4}}) {
      const std::string n = "Matmul/Q6_K/16384x2048/tokens:" + std::to_string(tokens) + "/threads:1/" + i;
      benchmark::RegisterBenchmark(n.c_str(), bm_matmul, isa, DType::kQ6_K, 16384, 2048, tokens, 1)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
    std::vector<DType> matmul_types(std::begin(kMatmulTypes), std::end(kMatmulTypes));
    if (kernels::kernel_table(isa).interleaves()) {  // the layouts that table has gemms for (it binds some)
      matmul_types.insert(matmul_types.end(), {DType::kQ4_0x16, DType::kQ8_0x16, DType::kQ4_Kx16, DType::kF16x16});
    }
    for (DType t : matmul_types) {
      for (auto [rows, cols] : kShapes) {
        for (int64_t tokens : {int64_t{1}, int64_t{4}, int64_t{16}, int64_t{64}}) {
          for (int threads = 1; threads <= hw; ++threads) {
            const std::string n = "Matmul/" + name(t) + "/" + std::to_string(rows) + "x" + std::to_string(cols) +
                                  "/tokens:" + std::to_string(tokens) + "/threads:" + std::to_string(threads) + "/" + i;
            benchmark::RegisterBenchmark(n.c_str(), bm_matmul, isa, t, rows, cols, tokens, threads)->UseRealTime()->Unit(benchmark::kMicrosecond);
          }
        }
      }
    }
    // A 512-token prompt (pp512) over SmolLM2-135M's QKV + gate/up shape (3072 x 576), its FFN-down
    // (576 x 1536) and a Llama-3.2-1B square (2048 x 2048), for the prefill gemms of the 8-bit and
    // 4-bit types.
    for (DType t : matmul_types) {
      if (t != DType::kQ4_0 && t != DType::kQ8_0 && t != DType::kQ4_0x16 && t != DType::kQ8_0x16 && t != DType::kQ4_K &&
          t != DType::kQ4_Kx16) {
        continue;
      }
      for (auto [rows, cols] : {std::pair<int64_t, int64_t>{3072, 576}, {576, 1536}, {2048, 2048}}) {
        if (cols % lb::tensor::dtype_traits(t).block_elems != 0) continue;  // K-quants: 2048 x 2048 only
        const std::string n = "Matmul/" + name(t) + "/" + std::to_string(rows) + "x" + std::to_string(cols) +
                              "/tokens:512/threads:1/" + i;
        benchmark::RegisterBenchmark(n.c_str(), bm_matmul, isa, t, rows, cols, 512, 1)->UseRealTime()->Unit(benchmark::kMicrosecond);
      }
    }
    // SmolLM2-135M's FFN shapes at prefill sizes, for the F16 prefill gemms (AVX-512 and AMX-BF16).
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1536, 576}, {576, 1536}}) {
      for (int64_t tokens : {int64_t{64}, int64_t{512}}) {
        const std::string n = "Matmul/F16/" + std::to_string(rows) + "x" + std::to_string(cols) +
                              "/tokens:" + std::to_string(tokens) + "/threads:1/" + i;
        benchmark::RegisterBenchmark(n.c_str(), bm_matmul, isa, DType::kF16, rows, cols, tokens, 1)->UseRealTime()->Unit(benchmark::kMicrosecond);
      }
    }
  }
  // Decode from DRAM, the active table only, beside the linear read of the same arena:
  //   kernels_bench --benchmark_filter='Cold' --benchmark_min_time=1
  for (int threads = 1; threads <= hw; ++threads) {
    const std::string t = "/threads:" + std::to_string(threads);
    std::vector<DType> cold_types = {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K, DType::kF16};
    if (kernels::active_kernels().interleaves()) {
      cold_types.insert(cold_types.begin() + 1, DType::kQ4_0x16);
      cold_types.insert(cold_types.begin() + 3, DType::kQ8_0x16);
      cold_types.insert(cold_types.begin() + 5, DType::kQ4_Kx16);
      cold_types.push_back(DType::kF16x16);
    }
    for (DType type : cold_types) {
      for (auto [rows, cols] : {std::pair<int64_t, int64_t>{2048, 2048}, {2048, 8192}}) {
        for (bool huge : {false, true}) {
          const std::string n = "MatmulCold/" + name(type) + "/" + std::to_string(rows) + "x" + std::to_string(cols) +
                                t + (huge ? "/pages:huge/" : "/pages:4k/") +
                                std::string(kernels::isa_name(kernels::active_isa()));
          benchmark::RegisterBenchmark(n.c_str(), bm_matmul_cold, kernels::active_isa(), type, rows, cols, threads, huge)
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
    benchmark::RegisterBenchmark(("ColdReadBandwidth" + t).c_str(), bm_read_bandwidth, threads)->Iterations(2);
  }
  for (int threads = 2; threads <= std::max(2, lb::ThreadPool::hardware_threads()); threads *= 2) {
    for (int chunks : {threads, 4 * threads}) {
      benchmark::RegisterBenchmark(
          ("ThreadPool/parallel_for/threads:" + std::to_string(threads) + "/chunks:" + std::to_string(chunks)).c_str(),
          bm_parallel_for, threads, chunks)
          ->UseRealTime();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

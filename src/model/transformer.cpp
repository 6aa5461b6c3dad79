#include "model/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <optional>

#include "base/error.h"
#include "kernels/activations.h"

namespace lightboat::model {
namespace {

std::string blk(int il, const char* name) { return "blk." + std::to_string(il) + "." + name; }

}  // namespace

Transformer::Transformer(std::shared_ptr<const gguf::Reader> reader, const std::string& arch,
                         const ModelSettings& settings, bool tied_only)
    : Model(read_hparams(*reader, arch), settings),
      reader_(std::move(reader)),
      weights_(*reader_, settings.interleave) {
  Hparams& h = hparams_;
  const gguf::TensorInfo* embd = reader_->find_tensor("token_embd.weight");
  check(embd != nullptr, ErrorKind::kNotFound, "tensor 'token_embd.weight' is missing from the model file");
  check(embd->ne.size() == 2 && embd->ne[1] <= (uint64_t{1} << 31), ErrorKind::kFormat,
        "tensor 'token_embd.weight' must be 2-D with at most 2^31 rows");
  h.n_vocab = static_cast<int64_t>(embd->ne[1]);

  output_norm_ = weights_.vector("output_norm.weight", h.n_embd);
  output_ = tied_only ? tensor::MatrixView{} : weights_.optional_matmul_matrix("output.weight", h.n_embd, h.n_vocab);
  if (output_.data == nullptr) {  // tied embeddings: the output matmul reads the table in a matmul layout
    token_embd_ = weights_.matmul_matrix("token_embd.weight", h.n_embd, h.n_vocab);
    output_ = token_embd_;
  } else {
    token_embd_ = weights_.matrix("token_embd.weight", h.n_embd, h.n_vocab);
  }

  const kernels::KernelTable& isa = kernels::active_kernels();
  kv_elem_bytes_ = kv_type_ == tensor::DType::kF32 ? 4 : 2;
  kv_store_ = kv_type_ == tensor::DType::kF32 ? nullptr : kernels::quantize_row_fn(isa, kv_type_);
  attend_ = kernels::attention_fn(isa, kv_type_);
  const auto kv_bytes = static_cast<size_t>(kv_pages_ * kv_page_size_ * h.n_embd_kv() * kv_elem_bytes_);
  for (int64_t il = 0; il < h.n_layer; ++il) {
    k_cache_.emplace_back(static_cast<std::byte*>(::operator new(kv_bytes, std::align_val_t{64})));
    v_cache_.emplace_back(static_cast<std::byte*>(::operator new(kv_bytes, std::align_val_t{64})));
  }

  const auto b = static_cast<size_t>(max_batch_);
  x_.resize(b * h.n_embd);
  xn_.resize(b * h.n_embd);
  tmp_.resize(b * h.n_embd);
  out_rows_.resize(b * h.n_embd);
  q_.resize(b * h.n_embd_q());
  k_.resize(b * h.n_embd_kv());
  v_.resize(b * h.n_embd_kv());
  if (reader_->find_tensor("blk.0.attn_qkv.weight") != nullptr) qkv_.resize(b * (h.n_embd_q() + 2 * h.n_embd_kv()));
  attn_.resize(b * h.n_embd_q());
  gate_.resize(b * 2 * h.n_ff);
  up_.resize(b * h.n_ff);
  rope_cos_.resize(b * h.n_rot / 2);
  rope_sin_.resize(b * h.n_rot / 2);
  // Room for the largest batch in every weight type's activation layouts (the packed ones differ:
  // F16's AMX-BF16 layout takes 128 bytes per 32 elements), so no forward pass grows it.
  const int64_t max_cols = std::max({h.n_embd, 2 * h.n_ff, h.n_embd_q()});
  matmul_scratch_.reserve(max_batch_, max_cols);
  for (const gguf::TensorInfo& t : reader_->tensors()) {
    const std::optional<tensor::DType> type = tensor::dtype_from_id(t.type_id);
    if (t.ne.size() == 2 && type) matmul_scratch_.reserve(max_batch_, max_cols, isa, *type);
  }
}

void Transformer::AlignedDelete::operator()(std::byte* p) const { ::operator delete(p, std::align_val_t{64}); }

AttentionWeights Transformer::bind_attention(int il) const {
  const Hparams& h = hparams_;
  AttentionWeights a;
  a.wqkv = weights_.optional_matmul_matrix(blk(il, "attn_qkv.weight"), h.n_embd, h.n_embd_q() + 2 * h.n_embd_kv());
  if (a.wqkv.data == nullptr) {
    a.wq = weights_.matmul_matrix(blk(il, "attn_q.weight"), h.n_embd, h.n_embd_q());
    a.wk = weights_.matmul_matrix(blk(il, "attn_k.weight"), h.n_embd, h.n_embd_kv());
    a.wv = weights_.matmul_matrix(blk(il, "attn_v.weight"), h.n_embd, h.n_embd_kv());
    a.bq = weights_.optional_vector(blk(il, "attn_q.bias"), h.n_embd_q());
    a.bk = weights_.optional_vector(blk(il, "attn_k.bias"), h.n_embd_kv());
    a.bv = weights_.optional_vector(blk(il, "attn_v.bias"), h.n_embd_kv());
  }
  a.q_norm = weights_.optional_vector(blk(il, "attn_q_norm.weight"), h.head_dim);
  a.k_norm = weights_.optional_vector(blk(il, "attn_k_norm.weight"), h.head_dim);
  a.wo = weights_.matmul_matrix(blk(il, "attn_output.weight"), h.n_embd_q(), h.n_embd);
  return a;
}

FfnWeights Transformer::bind_ffn(int il) const {
  const Hparams& h = hparams_;
  FfnWeights f;
  f.gate = weights_.optional_matmul_matrix(blk(il, "ffn_gate.weight"), h.n_embd, h.n_ff);
  f.up = weights_.matmul_matrix(blk(il, "ffn_up.weight"), h.n_embd, f.gate.data != nullptr ? h.n_ff : 2 * h.n_ff);
  f.down = weights_.matmul_matrix(blk(il, "ffn_down.weight"), h.n_ff, h.n_embd);
  return f;
}

void Transformer::validate(const Batch& batch) const {
  const size_t n = batch.tokens.size();
  check(n > 0 && n <= static_cast<size_t>(max_batch_), ErrorKind::kInvalidArgument, [&] {
    return "forward: a batch holds 1 to " + std::to_string(max_batch_) + " tokens, not " + std::to_string(n);
  });
  check(batch.positions.size() == n && batch.seq.size() == n, ErrorKind::kInvalidArgument,
        "forward: tokens, positions and seq differ in length");
  check(batch.logit_rows.size() <= n, ErrorKind::kInvalidArgument, "forward: more logit rows than tokens");
  check(batch.hidden_rows.size() <= n && (batch.hidden_rows.empty() || batch.hidden != nullptr),
        ErrorKind::kInvalidArgument, "forward: more hidden rows than tokens, or no hidden output buffer");
  for (size_t i = 0; i < batch.hidden_rows.size(); ++i) {
    const int32_t r = batch.hidden_rows[i];
    check(r >= 0 && static_cast<size_t>(r) < n && (i == 0 || r > batch.hidden_rows[i - 1]),
          ErrorKind::kInvalidArgument, "forward: hidden_rows must be ascending indices into the batch");
  }
  for (size_t i = 0; i < batch.logit_rows.size(); ++i) {
    const int32_t r = batch.logit_rows[i];
    check(r >= 0 && static_cast<size_t>(r) < n && (i == 0 || r > batch.logit_rows[i - 1]), ErrorKind::kInvalidArgument,
          "forward: logit_rows must be ascending indices into the batch");
  }
  for (size_t i = 0; i < n; ++i) {
    const int32_t t = batch.tokens[i];
    check(t >= 0 && t < hparams_.n_vocab, ErrorKind::kInvalidArgument, [&] {
      return "token id " + std::to_string(t) + " is outside the vocabulary (" + std::to_string(hparams_.n_vocab) + ")";
    });
    const int32_t s = batch.seq[i];
    check(s >= 0 && static_cast<size_t>(s) < batch.page_tables.size(), ErrorKind::kInvalidArgument, [&] {
      return "forward: token " + std::to_string(i) + " names sequence " + std::to_string(s) +
             ", which has no page table";
    });
    const int64_t pos = batch.positions[i];
    check(pos >= 0 && pos < n_ctx_, ErrorKind::kInvalidArgument, [&] {
      return "forward: position " + std::to_string(pos) + " is outside the context (" + std::to_string(n_ctx_) + ")";
    });
    const std::span<const int32_t> pages = batch.page_tables[static_cast<size_t>(s)];
    const auto page = static_cast<size_t>(pos / kv_page_size_);
    check(page < pages.size() && pages[page] >= 0 && pages[page] < kv_pages_, ErrorKind::kInvalidArgument, [&] {
      return "forward: sequence " + std::to_string(s) + " has no valid KV page for position " + std::to_string(pos);
    });
  }
}

void Transformer::forward_batch(const Batch& batch, float* logits, ThreadPool& pool) {
  validate(batch);
  pool_ = &pool;
  forward_step(batch, logits);
  pool_ = nullptr;
}

void Transformer::embed(const Batch& batch, float scale) {
  const std::span<const int32_t> tokens = batch.tokens;
  const Hparams& h = hparams_;
  const int64_t half_rot = h.n_rot / 2;
  const float* factors = attention_.rope_factors.empty() ? nullptr : attention_.rope_factors.data();
  for (size_t t = 0; t < tokens.size(); ++t) {
    float* x = &x_[t * h.n_embd];
    kernels::get_row(token_embd_, tokens[t], x);
    if (scale != 1.0f) {
      for (int64_t i = 0; i < h.n_embd; ++i) x[i] *= scale;
    }
    float* c = &rope_cos_[t * half_rot];
    float* s = &rope_sin_[t * half_rot];
    kernels::rope_angles(batch.positions[t], static_cast<int>(h.n_rot), h.rope_base, h.rope_freq_scale, factors, c,
                         s);
    if (attention_.rope_attn_factor != 1.0f) {
      for (int64_t i = 0; i < half_rot; ++i) {
        c[i] *= attention_.rope_attn_factor;
        s[i] *= attention_.rope_attn_factor;
      }
    }
  }
}

void Transformer::norm(const float* in, const std::vector<float>& weight, float* out, int64_t n) const {
  const int64_t d = hparams_.n_embd;
  for (int64_t t = 0; t < n; ++t) kernels::rms_norm(in + t * d, weight.data(), d, hparams_.rms_eps, out + t * d);
}

void Transformer::project_qkv(const AttentionWeights& w, const float* xn, int64_t n) {
  float* k_new = k_.data();  // [n, n_embd_kv]
  float* v_new = v_.data();
  const Hparams& h = hparams_;
  const int64_t nq = h.n_embd_q(), nkv = h.n_embd_kv();
  if (w.wqkv.data != nullptr) {
    // Fused rows are [Q | K | V]; split them into Q and the cache rows.
    const int64_t width = nq + 2 * nkv;
    kernels::matmul(w.wqkv, xn, h.n_embd, n, qkv_.data(), width, matmul_scratch_, *pool_);
    for (int64_t t = 0; t < n; ++t) {
      const float* row = &qkv_[t * width];
      std::memcpy(&q_[t * nq], row, sizeof(float) * nq);
      std::memcpy(k_new + t * nkv, row + nq, sizeof(float) * nkv);
      std::memcpy(v_new + t * nkv, row + nq + nkv, sizeof(float) * nkv);
    }
  } else {
    const kernels::MatmulTarget qkv[] = {{w.wq, q_.data(), nq}, {w.wk, k_new, nkv}, {w.wv, v_new, nkv}};
    kernels::matmul_shared(qkv, xn, h.n_embd, n, matmul_scratch_, *pool_);
  }
  for (int64_t t = 0; t < n; ++t) {
    if (!w.bq.empty()) kernels::add(&q_[t * nq], w.bq.data(), nq);
    if (!w.bk.empty()) kernels::add(k_new + t * nkv, w.bk.data(), nkv);
    if (!w.bv.empty()) kernels::add(v_new + t * nkv, w.bv.data(), nkv);
  }
}

void Transformer::attention(int il, const AttentionWeights& w, const Batch& batch, const float* xn, float* out,
                            int64_t window) {
  const Hparams& h = hparams_;
  const auto n = static_cast<int64_t>(batch.tokens.size());
  const int64_t nq = h.n_embd_q(), nkv = h.n_embd_kv(), hd = h.head_dim;
  std::byte* k_cache = k_cache_[static_cast<size_t>(il)].get();  // [kv_pages · page_size, n_embd_kv] of kv_type
  std::byte* v_cache = v_cache_[static_cast<size_t>(il)].get();
  project_qkv(w, xn, n);

  // Per-head RMSNorm of Q and K (Qwen3), RoPE, then K and V to their page slots (as fp16 unless
  // the cache is fp32).
  const int64_t half_rot = h.n_rot / 2;
  const auto row_bytes = static_cast<size_t>(nkv * kv_elem_bytes_);
  for (int64_t t = 0; t < n; ++t) {
    float* q = &q_[t * nq];
    float* k = &k_[t * nkv];
    if (!w.q_norm.empty()) {
      for (int64_t hh = 0; hh < h.n_head; ++hh) kernels::rms_norm(q + hh * hd, w.q_norm.data(), hd, h.rms_eps, q + hh * hd);
    }
    if (!w.k_norm.empty()) {
      for (int64_t hh = 0; hh < h.n_head_kv; ++hh) {
        kernels::rms_norm(k + hh * hd, w.k_norm.data(), hd, h.rms_eps, k + hh * hd);
      }
    }
    const float* c = &rope_cos_[t * half_rot];
    const float* s = &rope_sin_[t * half_rot];
    kernels::rope_apply(q, static_cast<int>(h.n_head), static_cast<int>(hd), static_cast<int>(h.n_rot), c, s,
                        attention_.rope_mode);
    kernels::rope_apply(k, static_cast<int>(h.n_head_kv), static_cast<int>(hd), static_cast<int>(h.n_rot), c, s,
                        attention_.rope_mode);
    const int64_t at = slot(batch.page_tables[static_cast<size_t>(batch.seq[static_cast<size_t>(t)])],
                            batch.positions[static_cast<size_t>(t)]) * kv_elem_bytes_;  // bytes
    if (kv_store_ != nullptr) {
      kv_store_(k, k_cache + at, nkv);
      kv_store_(&v_[t * nkv], v_cache + at, nkv);
    } else {
      std::memcpy(k_cache + at, k, row_bytes);
      std::memcpy(v_cache + at, &v_[t * nkv], row_bytes);
    }
  }

  // Visible keys of a token at pos: causal, and within the sliding window when there is one
  // (pos-window+1 .. pos).
  auto first_visible = [&](int64_t t) {
    const int64_t pos = batch.positions[static_cast<size_t>(t)];
    return window > 0 ? std::max<int64_t>(0, pos - window + 1) : int64_t{0};
  };
  // K and V bytes the batch reads: small ones run on this thread (waking the pool costs more).
  int64_t kv_read = 0;
  for (int64_t t = 0; t < n; ++t) kv_read += batch.positions[static_cast<size_t>(t)] + 1 - first_visible(t);
  kv_read *= 2 * nkv * kv_elem_bytes_;
  constexpr int64_t kInlineBytes = int64_t{64} << 10;

  // Work items: (tile, KV head, slice of the KV head's query heads). A tile is up to kTile
  // batch entries from a multiple of kTile; the kernel is called once per run of consecutive
  // positions of one sequence in it (a prefill chunk), so each K/V row is read once for the
  // run's tokens and the group's heads. Tiles are cut by batch index only (not by thread count),
  // and the kernel's result per token does not depend on its tile anyway (kernels/attention.h).
  // When there are too few items to keep the threads busy (a decode step over few KV heads:
  // SmolLM2's 3 on 2 threads would split 2:1), items are single heads instead: the pool's
  // contiguous chunks still keep a KV head's heads on one thread, except at a chunk boundary,
  // where two threads each read that KV head (3 KV heads of 3 heads on 2 threads: 5 and 4
  // heads, 2 KV-head reads each; whole groups: 6 heads and 2 reads on one thread, 3 and 1 on
  // the other).
  constexpr int64_t kTile = 8;  // tokens: 8 x a group of 3 or 4 heads fill the kernel's 32 rows
  const int64_t n_tiles = (n + kTile - 1) / kTile;
  const int64_t group = h.n_head / h.n_head_kv;  // consecutive query heads share a KV head
  const int64_t threads = pool_->size();
  const bool few = kv_read >= kInlineBytes && threads > 1 && n_tiles * h.n_head_kv < 2 * threads;
  const int64_t per_item = few ? 1 : group;
  const int64_t n_slices = group / per_item;
  const int64_t n_items = n_tiles * h.n_head_kv * n_slices;
  const float scale = attention_.q_scale != 0.0f ? attention_.q_scale : 1.0f / std::sqrt(static_cast<float>(hd));
  auto run = [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t tile = i / (h.n_head_kv * n_slices);
      const int64_t kv_head = (i / n_slices) % h.n_head_kv;
      const int64_t g0 = (i % n_slices) * per_item;
      const int64_t head = kv_head * group + g0;  // first query head of the item
      const int64_t t_end = std::min(n, (tile + 1) * kTile);
      for (int64_t t = tile * kTile; t < t_end;) {
        const int32_t seq = batch.seq[static_cast<size_t>(t)];
        const int64_t pos = batch.positions[static_cast<size_t>(t)];
        int64_t run_len = 1;  // consecutive positions of one sequence
        while (t + run_len < t_end && batch.seq[static_cast<size_t>(t + run_len)] == seq &&
               batch.positions[static_cast<size_t>(t + run_len)] == pos + run_len) {
          ++run_len;
        }
        const int64_t first = first_visible(t);
        const kernels::PagedKv kv{.k = k_cache,
                                  .v = v_cache,
                                  .type = kv_type_,
                                  .row_stride = nkv,
                                  .page_size = kv_page_size_,
                                  .pages = batch.page_tables[static_cast<size_t>(seq)].data()};
        attend_(kv, {.q = &q_[t * nq + head * hd],
                     .out = &attn_[t * nq + head * hd],
                     .n_q = std::min(per_item, group - g0),
                     .head_dim = hd,
                     .kv_offset = kv_head * hd,
                     .first = first,
                     .n = pos + 1 - first,
                     .scale = scale,
                     .softcap = attention_.softcap,
                     .n_tokens = run_len,
                     .token_stride = nq,
                     .window = window});
        t += run_len;
      }
    }
  };
  if (kv_read < kInlineBytes) {
    run(0, n_items);
  } else {
    pool_->parallel_for(n_items, 1, run);
  }
  kernels::matmul(w.wo, attn_.data(), nq, n, out, h.n_embd, matmul_scratch_, *pool_);
}

void Transformer::ffn(const FfnWeights& w, const float* xn, float* out, int64_t n, FfnActivation act) {
  const Hparams& h = hparams_;
  const int64_t n_ff = h.n_ff;
  const bool fused = w.gate.data == nullptr;
  // Unfused: gate_ [n, n_ff] and up_ [n, n_ff]. Fused: gate_ [n, 2·n_ff], gate then up per row.
  const int64_t stride = fused ? 2 * n_ff : n_ff;
  if (fused) {
    kernels::matmul(w.up, xn, h.n_embd, n, gate_.data(), stride, matmul_scratch_, *pool_);
  } else {
    const kernels::MatmulTarget gate_up[] = {{w.gate, gate_.data(), stride}, {w.up, up_.data(), n_ff}};
    kernels::matmul_shared(gate_up, xn, h.n_embd, n, matmul_scratch_, *pool_);
  }
  const kernels::SwigluFn swiglu = kernels::swiglu_fn(kernels::active_kernels());
  const kernels::GegluFn geglu = kernels::geglu_fn(kernels::active_kernels());
  for (int64_t t = 0; t < n; ++t) {
    float* g = &gate_[t * stride];
    const float* u = fused ? g + n_ff : &up_[t * n_ff];
    if (act == FfnActivation::kSilu) {
      swiglu(g, u, n_ff);
    } else {
      geglu(g, u, n_ff);
    }
  }
  kernels::matmul(w.down, gate_.data(), stride, n, out, h.n_embd, matmul_scratch_, *pool_);
}

void Transformer::output(const Batch& batch, float* logits) {
  const Hparams& h = hparams_;
  for (size_t i = 0; i < batch.hidden_rows.size(); ++i) {
    const int64_t t = batch.hidden_rows[i];
    kernels::rms_norm(&x_[t * h.n_embd], output_norm_.data(), h.n_embd, h.rms_eps,
                      batch.hidden + static_cast<int64_t>(i) * h.n_embd);
  }
  const auto n_rows = static_cast<int64_t>(batch.logit_rows.size());
  if (n_rows == 0) return;
  for (int64_t i = 0; i < n_rows; ++i) {
    const int64_t t = batch.logit_rows[static_cast<size_t>(i)];
    kernels::rms_norm(&x_[t * h.n_embd], output_norm_.data(), h.n_embd, h.rms_eps, &out_rows_[i * h.n_embd]);
  }
  kernels::matmul(output_, out_rows_.data(), h.n_embd, n_rows, logits, h.n_vocab, matmul_scratch_, *pool_);
  if (output_softcap_ > 0.0f) kernels::softcap(logits, n_rows * h.n_vocab, output_softcap_);
}

void Transformer::logits_from_hidden(const float* hidden, int64_t n_rows, float* logits, ThreadPool& pool) {
  const Hparams& h = hparams_;
  check(n_rows >= 0 && n_rows <= max_batch_, ErrorKind::kInvalidArgument, [&] {
    return "logits_from_hidden: 0 to " + std::to_string(max_batch_) + " rows, not " + std::to_string(n_rows);
  });
  if (n_rows == 0) return;
  kernels::matmul(output_, hidden, h.n_embd, n_rows, logits, h.n_vocab, matmul_scratch_, pool);
  if (output_softcap_ > 0.0f) kernels::softcap(logits, n_rows * h.n_vocab, output_softcap_);
}

}  // namespace lightboat::model

// The machinery every decoder-only architecture shares: weight binding for attention and
// feed-forward blocks (separate or fused tensors), the KV cache, scratch memory sized at load,
// and the blocks themselves. Each architecture file (llama.cpp, qwen2.cpp, …) derives from
// Transformer and writes its forward pass as straight-line calls to these blocks.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "model/weights.h"
#include "tensor/view.h"

namespace lightboat::model {

struct AttentionWeights {
  tensor::MatrixView wq;     // [n_embd_q rows of n_embd]
  tensor::MatrixView wk;     // [n_embd_kv rows of n_embd]
  tensor::MatrixView wv;     // [n_embd_kv rows of n_embd]
  tensor::MatrixView wqkv;   // fused [n_embd_q + 2·n_embd_kv rows of n_embd] (Phi-3); else empty
  std::vector<float> bq, bk, bv;        // biases (Qwen2), empty when absent
  std::vector<float> q_norm, k_norm;    // per-head RMSNorm weights [head_dim] (Qwen3), or empty
  tensor::MatrixView wo;     // [n_embd rows of n_embd_q]
};

struct FfnWeights {
  tensor::MatrixView gate;   // [n_ff rows of n_embd]; empty when fused into up
  tensor::MatrixView up;     // [n_ff rows of n_embd], or [2·n_ff rows]: gate rows then up rows (Phi-3)
  tensor::MatrixView down;   // [n_embd rows of n_ff]
};

enum class FfnActivation { kSilu, kGelu };

// How an architecture runs attention; fixed at load.
struct AttentionConfig {
  kernels::RopeMode rope_mode = kernels::RopeMode::kNorm;
  std::vector<float> rope_factors;  // [n_rot/2] frequency divisors, empty = all 1
  float rope_attn_factor = 1.0f;    // scales cos and sin (Phi-3 long-rope)
  float q_scale = 0.0f;             // multiplies Q before QKᵀ; 0 = 1/sqrt(head_dim)
  float softcap = 0.0f;             // attention-logit soft-cap (Gemma 2); 0 = off
};

class Transformer : public Model {
 public:
  void forward_batch(const Batch& batch, float* logits, ThreadPool& pool) final;
  void logits_from_hidden(const float* hidden, int64_t n_rows, float* logits, ThreadPool& pool) final;

  // How attention runs (RoPE pairing and factors, scaling, soft-cap): set once by the
  // architecture's loader right after construction, before the first forward().
  void configure_attention(AttentionConfig config) { attention_ = std::move(config); }

 protected:
  // Reads the hyper-parameters of `arch`, binds the token embedding, output norm and output
  // head (tied to the embedding when output.weight is absent, or always when tied_only), and
  // sizes the KV cache and scratch memory.
  Transformer(std::shared_ptr<const gguf::Reader> reader, const std::string& arch, const ModelSettings& settings,
              bool tied_only = false);

  // Binds blk.<il>.attn_* (fused attn_qkv when present; optional biases and Q/K norms).
  AttentionWeights bind_attention(int il) const;
  // Binds blk.<il>.ffn_{gate,up,down} (gate fused into up when ffn_gate is absent).
  FfnWeights bind_ffn(int il) const;

  // The forward pass of one validated batch (at most max_batch_ tokens); writes the logits of
  // its logit_rows. Implemented per architecture as straight-line calls to the blocks below.
  virtual void forward_step(const Batch& batch, float* logits) = 0;

  // ---- Blocks, over the n tokens of the current batch. Buffers are [n, width] row-major. ----

  // x_ = token embeddings · scale; also computes the RoPE tables of the batch's positions.
  void embed(const Batch& batch, float scale = 1.0f);
  // out = RMSNorm(in) · weight, row by row over n rows of n_embd.
  void norm(const float* in, const std::vector<float>& weight, float* out, int64_t n) const;
  // out = Attention(xn) projected back to n_embd (wo applied); K and V of the batch are written
  // to their page slots of layer il. window > 0 limits each query to the last `window` positions.
  void attention(int il, const AttentionWeights& w, const Batch& batch, const float* xn, float* out,
                 int64_t window = 0);
  // out = down(act(gate(xn)) · up(xn)).
  void ffn(const FfnWeights& w, const float* xn, float* out, int64_t n, FfnActivation act);
  // Final norm over the batch's logit_rows of x_, then the output head into logits (soft-capped
  // by output_softcap_ when > 0); the final norm of its hidden_rows into batch.hidden.
  void output(const Batch& batch, float* logits);

  std::shared_ptr<const gguf::Reader> reader_;  // keeps the mapped weights alive
  WeightBinder weights_;
  ThreadPool* pool_ = nullptr;  // the caller's pool, set for the duration of forward_batch()

  tensor::MatrixView token_embd_;    // [n_vocab rows of n_embd]
  std::vector<float> output_norm_;   // [n_embd]
  tensor::MatrixView output_;        // [n_vocab rows of n_embd]; token_embd_ when tied
  float output_softcap_ = 0.0f;      // > 0: soft-caps the logits (Gemma 2); set by the loader

  // Scratch, sized at load for max_batch_ tokens.
  std::vector<float> x_;    // [max_batch, n_embd] residual stream
  std::vector<float> xn_;   // [max_batch, n_embd] normed input of a block
  std::vector<float> tmp_;  // [max_batch, n_embd] a block's output before the residual add

 private:
  void project_qkv(const AttentionWeights& w, const float* xn, int64_t n);
  void validate(const Batch& batch) const;
  // Element offset of the K (or V) slot of a token at `pos` of a sequence with page table `pages`.
  int64_t slot(std::span<const int32_t> pages, int64_t pos) const {
    return (static_cast<int64_t>(pages[static_cast<size_t>(pos / kv_page_size_)]) * kv_page_size_ +
            pos % kv_page_size_) * hparams_.n_embd_kv();
  }

  AttentionConfig attention_;
  // KV cache: per layer [kv_pages · kv_page_size slots, n_embd_kv] elements of kv_type_ (fp16
  // by default), 64-byte aligned and left untouched until written, so RSS grows with the slots
  // used rather than the pool's size.
  struct AlignedDelete {
    void operator()(std::byte* p) const;
  };
  using KvBuffer = std::unique_ptr<std::byte[], AlignedDelete>;
  std::vector<KvBuffer> k_cache_;
  std::vector<KvBuffer> v_cache_;
  int64_t kv_elem_bytes_ = 0;                  // 2 (F16) or 4 (F32)
  kernels::QuantizeRowFn kv_store_ = nullptr;  // fp32 row -> fp16 slot; null for F32 (memcpy)
  kernels::AttentionFn attend_ = nullptr;      // the paged attention kernel for kv_type_

  std::vector<float> q_;         // [max_batch, n_embd_q]
  std::vector<float> k_;         // [max_batch, n_embd_kv] K of the batch before it goes to its slots
  std::vector<float> v_;         // [max_batch, n_embd_kv]
  std::vector<float> out_rows_;  // [max_batch, n_embd] normed rows of the logit_rows
  std::vector<float> qkv_;       // [max_batch, n_embd_q + 2·n_embd_kv] fused projection output
  std::vector<float> attn_;      // [max_batch, n_embd_q] attention output before wo
  std::vector<float> gate_;      // [max_batch, 2·n_ff] (fused gate+up needs both halves)
  std::vector<float> up_;        // [max_batch, n_ff]
  std::vector<float> rope_cos_;  // [max_batch, n_rot/2]
  std::vector<float> rope_sin_;  // [max_batch, n_rot/2]
  kernels::MatmulScratch matmul_scratch_;
};

}  // namespace lightboat::model

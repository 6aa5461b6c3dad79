// The Llama architecture (Llama 2/3.x, SmolLM2, TinyStories …): pre-norm decoder blocks of
// grouped-query attention with RoPE and a SwiGLU feed-forward network.
#pragma once

#include <memory>
#include <vector>

#include "kernels/matmul.h"
#include "model/model.h"
#include "tensor/view.h"

namespace lightboat::model {

struct LlamaLayer {
  std::vector<float> attn_norm;  // [n_embd]
  tensor::MatrixView wq;         // [n_embd_q rows of n_embd]
  tensor::MatrixView wk;         // [n_embd_kv rows of n_embd]
  tensor::MatrixView wv;         // [n_embd_kv rows of n_embd]
  tensor::MatrixView wo;         // [n_embd rows of n_embd_q]
  std::vector<float> ffn_norm;   // [n_embd]
  tensor::MatrixView ffn_gate;   // [n_ff rows of n_embd]
  tensor::MatrixView ffn_up;     // [n_ff rows of n_embd]
  tensor::MatrixView ffn_down;   // [n_embd rows of n_ff]
};

class LlamaModel final : public Model {
 public:
  LlamaModel(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings);

  void forward(std::span<const int32_t> tokens, int64_t n_logits, float* logits, ThreadPool& pool) override;

 private:
  // One chunk of at most max_batch_ tokens; logits of the chunk's last n_logits tokens.
  void forward_chunk(std::span<const int32_t> tokens, int64_t n_logits, float* logits, ThreadPool& pool);
  void attention(int il, int64_t n_tokens, ThreadPool& pool);

  std::shared_ptr<const gguf::Reader> reader_;  // keeps the mapped weights alive
  int64_t max_batch_;

  tensor::MatrixView token_embd_;  // [n_vocab rows of n_embd]
  std::vector<float> output_norm_; // [n_embd]
  tensor::MatrixView output_;      // [n_vocab rows of n_embd]; token_embd_ when tied
  std::vector<float> rope_factors_;  // [n_rot/2] Llama 3 frequency factors, empty when absent
  std::vector<LlamaLayer> layers_;

  // KV cache, fp32: per layer [n_ctx, n_embd_kv].
  std::vector<std::vector<float>> k_cache_;
  std::vector<std::vector<float>> v_cache_;

  // Scratch, sized at load for max_batch_ tokens.
  std::vector<float> x_;        // [max_batch, n_embd] residual stream
  std::vector<float> xn_;       // [max_batch, n_embd] normed input of a block
  std::vector<float> q_;        // [max_batch, n_embd_q]
  std::vector<float> attn_;     // [max_batch, n_embd_q] attention output
  std::vector<float> gate_;     // [max_batch, n_ff]
  std::vector<float> up_;       // [max_batch, n_ff]
  std::vector<float> scores_;   // [n_head, n_ctx] attention weights, one row per head
  std::vector<float> rope_cos_; // [max_batch, n_rot/2]
  std::vector<float> rope_sin_; // [max_batch, n_rot/2]
  kernels::MatmulScratch matmul_scratch_;
};

}  // namespace lightboat::model

// The Llama family of pre-norm decoders: x += Attn(RMSNorm(x)); x += FFN(RMSNorm(x)).
// Llama 2/3.x and SmolLM2 run it as is; Qwen2 (Q/K/V biases), Qwen3 (per-head Q/K norms),
// Phi-3 (fused QKV and gate+up, long-rope) and Gemma 1 (scaled embeddings, GELU) differ only
// in the weights bound and in AttentionConfig / LlamaOptions, set by their own files.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/transformer.h"

namespace lightboat::model {

struct LlamaOptions {
  bool scale_embeddings = false;             // Gemma: embeddings · sqrt(n_embd)
  FfnActivation activation = FfnActivation::kSilu;
  bool tied_only = false;                    // Gemma never reads output.weight
};

class LlamaModel final : public Transformer {
 public:
  LlamaModel(std::shared_ptr<const gguf::Reader> reader, const std::string& arch, const ModelSettings& settings,
             const LlamaOptions& options = {});

 private:
  struct Layer {
    std::vector<float> attn_norm;  // [n_embd]
    AttentionWeights attn;
    std::vector<float> ffn_norm;   // [n_embd]
    FfnWeights ffn;
  };

  void forward_step(const Batch& batch, float* logits) override;

  LlamaOptions options_;
  std::vector<Layer> layers_;
};

}  // namespace lightboat::model

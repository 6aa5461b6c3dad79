// Gemma (v1): the Llama block with embeddings scaled by sqrt(n_embd), a GELU-gated FFN
// (GEGLU, with ggml's fp16 GELU table), NEOX RoPE and an output head always tied to the
// embedding. Norm weights are used as stored (the converter already added Gemma's +1).
#include "model/architectures.h"
#include "model/llama.h"

namespace lightboat::model {

std::unique_ptr<Model> load_gemma(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings) {
  auto model = std::make_unique<LlamaModel>(
      std::move(reader), "gemma", settings,
      LlamaOptions{.scale_embeddings = true, .activation = FfnActivation::kGelu, .tied_only = true});
  model->configure_attention({.rope_mode = kernels::RopeMode::kNeox});
  return model;
}

}  // namespace lightboat::model

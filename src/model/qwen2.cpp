// Qwen2 / Qwen2.5: the Llama block with biases on the Q, K and V projections (bound when
// present by Transformer::bind_attention) and NEOX RoPE (dims i and i + n_rot/2 rotate together).
#include "model/architectures.h"
#include "model/llama.h"

namespace lightboat::model {

std::unique_ptr<Model> load_qwen2(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings) {
  auto model = std::make_unique<LlamaModel>(std::move(reader), "qwen2", settings);
  model->configure_attention({.rope_mode = kernels::RopeMode::kNeox});
  return model;
}

}  // namespace lightboat::model

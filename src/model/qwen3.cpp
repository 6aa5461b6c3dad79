// Qwen3: the Llama block with an RMSNorm on each head of Q and K before RoPE (attn_q_norm /
// attn_k_norm, head_dim weights shared by all heads), head_dim independent of n_embd
// (attention.key_length), and NEOX RoPE.
#include "base/error.h"
#include "model/architectures.h"
#include "model/llama.h"

namespace lightboat::model {

std::unique_ptr<Model> load_qwen3(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings) {
  const int64_t n_layer = read_hparams(*reader, "qwen3").n_layer;
  for (int64_t il = 0; il < n_layer; ++il) {
    for (const char* name : {"attn_q_norm.weight", "attn_k_norm.weight"}) {
      const std::string full = "blk." + std::to_string(il) + "." + name;
      check(reader->find_tensor(full) != nullptr, ErrorKind::kNotFound,
            [&] { return "tensor '" + full + "' is missing from the model file (qwen3 needs per-head Q/K norms)"; });
    }
  }
  auto model = std::make_unique<LlamaModel>(std::move(reader), "qwen3", settings);
  model->configure_attention({.rope_mode = kernels::RopeMode::kNeox});
  return model;
}

}  // namespace lightboat::model

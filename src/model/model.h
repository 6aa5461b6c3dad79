// A loaded model instance: weights bound to the GGUF file's bytes, a KV cache and the scratch
// memory of its forward pass, all sized at load. One architecture per file under model/; this
// interface is what the tools and the runtime see.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "gguf/reader.h"
#include "model/hparams.h"

namespace lightboat::model {

// Engine settings that shape an instance (process-level choices, not model facts).
struct ModelSettings {
  int64_t n_ctx = 0;        // tokens of KV cache; 0 = the model's training context, capped at 4096
  int64_t max_batch = 512;  // tokens per forward chunk; scratch memory is sized for this
};

// Names the architectures this build runs ("llama", ...), for error messages and `info`.
std::vector<std::string> supported_architectures();

class Model {
 public:
  virtual ~Model() = default;

  const Hparams& hparams() const { return hparams_; }
  int64_t n_ctx() const { return n_ctx_; }
  // Tokens already in the KV cache (positions 0 .. n_past-1).
  int64_t n_past() const { return n_past_; }

  // Evaluates `tokens` at positions n_past() .. n_past()+size-1, appending them to the KV cache,
  // and writes the logits of the last n_logits tokens to logits ([n_logits, n_vocab], fp32).
  // Throws Error(kInvalidArgument) when the context would overflow or a token id is out of range.
  virtual void forward(std::span<const int32_t> tokens, int64_t n_logits, float* logits, ThreadPool& pool) = 0;

  // Forgets the KV cache from position `pos` on (0 clears it).
  void truncate(int64_t pos);

 protected:
  Model(Hparams hparams, int64_t n_ctx) : hparams_(std::move(hparams)), n_ctx_(n_ctx) {}

  Hparams hparams_;
  int64_t n_ctx_;
  int64_t n_past_ = 0;
};

// Loads the architecture named by general.architecture. The model keeps `reader` (and so the
// mapped file) alive. Throws Error(kUnsupported) naming an unknown architecture and listing ours.
std::unique_ptr<Model> load_model(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings);

}  // namespace lightboat::model

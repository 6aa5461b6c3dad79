// Model hyper-parameters, read once from GGUF metadata ("<arch>.*" keys) and immutable after.
#pragma once

#include <cstdint>
#include <string>

#include "gguf/reader.h"

namespace lightboat::model {

struct Hparams {
  std::string arch;          // general.architecture
  int64_t n_vocab = 0;       // tokens (rows of token_embd)
  int64_t n_ctx_train = 0;   // tokens the model was trained on
  int64_t n_embd = 0;        // width of the residual stream
  int64_t n_layer = 0;
  int64_t n_head = 0;        // query heads
  int64_t n_head_kv = 0;     // key/value heads (GQA when < n_head)
  int64_t head_dim = 0;      // dims per head (key_length; n_embd / n_head by default)
  int64_t n_ff = 0;          // hidden width of the feed-forward block
  int64_t n_rot = 0;         // dims rotated by RoPE (rope.dimension_count; head_dim by default)
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor for linear scaling

  int64_t n_embd_q() const { return n_head * head_dim; }     // width of Q and attention output
  int64_t n_embd_kv() const { return n_head_kv * head_dim; } // width of K and V
};

// Reads the "<arch>.*" keys of a llama-family model, validating them (positive, consistent,
// n_head a multiple of n_head_kv). n_vocab comes from the token embedding's shape.
Hparams read_hparams(const gguf::Reader& reader, const std::string& arch);

}  // namespace lightboat::model

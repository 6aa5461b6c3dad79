// A loaded model instance: weights bound to the GGUF file's bytes, a paged KV cache and the
// scratch memory of its forward pass, all sized at load. One architecture per file under
// model/; this interface is what the tools and the runtime see.
//
// KV cache: per layer, n_kv_pages pages of kv_page_size token slots for K and for V. A sequence
// is a page table: its token at position i lives in page table[i / kv_page_size], slot
// i % kv_page_size. Who owns which page is the caller's business (runtime/kv_pages); the
// convenience API forward() runs one sequence over pages 0, 1, 2 … and tracks n_past itself.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "gguf/reader.h"
#include "model/hparams.h"
#include "tensor/dtype.h"

namespace lightboat::model {

// Engine settings that shape an instance (process-level choices, not model facts).
struct ModelSettings {
  int64_t n_ctx = 0;         // max tokens per sequence; 0 = the training context, capped at 4096
  int64_t max_batch = 512;   // tokens per forward step; scratch memory is sized for this
  int64_t kv_page_size = 16; // token slots per KV page
  int64_t kv_pages = 0;      // pages in the pool; 0 = enough for one sequence of n_ctx tokens
  // KV cache elements: kF32, or kF16 (half the memory and bandwidth). F32 by default for now:
  // the llama.cpp references of the conformance checks were made with an F32 cache, and fp16
  // rounding of K/V moves quantized fixtures' logits past their tolerance (docs/performance.md).
  tensor::DType kv_type = tensor::DType::kF32;
  // Q4_0, Q8_0 and F16 matrices in the Q4_0x16 / Q8_0x16 / F16x16 layouts (tensor/interleave.h),
  // and Q4_K ones with rows of up to 2048 elements in Q4_Kx16, where the active kernel table reads
  // them faster (KernelTable::interleave); the same outputs
  // bit for bit (F16: within fp32 rounding, the order of additions differs). A
  // mapped file gives its copy back (FileBytes::discard), so that costs no memory; read mode
  // (--no-mmap) keeps both copies.
  bool interleave = true;
};

// Bytes of KV cache per token slot (K and V, all layers) with elements of kv_type (F16 or F32):
// what a pool budget divides by before a model is loaded.
inline int64_t kv_bytes_per_token(const Hparams& h, tensor::DType kv_type) {
  return 2 * h.n_layer * h.n_embd_kv() * (kv_type == tensor::DType::kF32 ? 4 : 2);
}

// Names the architectures this build runs ("llama", ...), for error messages and `info`.
std::vector<std::string> supported_architectures();

// One forward step over tokens of one or more sequences. Every sequence's tokens in the batch
// must be at consecutive positions following the ones already in its pages, and its page table
// must cover them (checked: Error(kInvalidArgument)).
struct Batch {
  std::span<const int32_t> tokens;                    // [n] token ids
  std::span<const int32_t> positions;                 // [n] position of each token in its sequence
  std::span<const int32_t> seq;                       // [n] index into page_tables
  std::span<const std::span<const int32_t>> page_tables;  // per sequence: its KV page ids
  std::span<const int32_t> logit_rows;                // ascending indices into tokens whose logits are wanted
  // Ascending indices into tokens whose final hidden states (after the output norm: the rows the
  // output head reads) are wanted, for embeddings and for scoring in bounded chunks; they are
  // written to `hidden` ([hidden_rows.size(), n_embd], fp32), which must be set when any are.
  std::span<const int32_t> hidden_rows;
  float* hidden = nullptr;
};

class Model {
 public:
  virtual ~Model() = default;

  const Hparams& hparams() const { return hparams_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t max_batch() const { return max_batch_; }
  int64_t kv_page_size() const { return kv_page_size_; }
  int64_t kv_pages() const { return kv_pages_; }
  // Bytes of KV cache per token slot (K and V, all layers).
  tensor::DType kv_type() const { return kv_type_; }
  int64_t kv_bytes_per_token() const { return model::kv_bytes_per_token(hparams_, kv_type_); }

  // The step: writes the K/V of every batch token into its page slot, and the logits of the
  // logit_rows tokens to logits ([logit_rows.size(), n_vocab], fp32). At most max_batch() tokens.
  virtual void forward_batch(const Batch& batch, float* logits, ThreadPool& pool) = 0;
  // The output head alone: logits [n_rows, n_vocab] of final hidden states [n_rows, n_embd] as
  // Batch::hidden returns them. Lets a caller score many positions without a logits buffer of
  // [tokens, n_vocab]: hidden rows in the step, then the head over a few rows at a time.
  virtual void logits_from_hidden(const float* hidden, int64_t n_rows, float* logits, ThreadPool& pool) = 0;

  // ---- Single-sequence convenience over pages 0, 1, 2 … (do not mix with forward_batch) ----

  // Tokens already in the cache (positions 0 .. n_past-1).
  int64_t n_past() const { return n_past_; }
  // Evaluates `tokens` at positions n_past() .. n_past()+size-1 (in steps of max_batch()) and
  // writes the logits of the last n_logits tokens ([n_logits, n_vocab]). Throws
  // Error(kInvalidArgument) when the context would overflow or a token id is out of range.
  void forward(std::span<const int32_t> tokens, int64_t n_logits, float* logits, ThreadPool& pool);
  // Forgets the KV cache from position `pos` on (0 clears it).
  void truncate(int64_t pos);

 protected:
  Model(Hparams hparams, const ModelSettings& settings);

  Hparams hparams_;
  int64_t n_ctx_ = 0;
  int64_t max_batch_ = 0;
  int64_t kv_page_size_ = 0;
  int64_t kv_pages_ = 0;
  tensor::DType kv_type_ = tensor::DType::kF16;

 private:
  int64_t n_past_ = 0;
  std::vector<int32_t> own_pages_;  // 0, 1, 2 … for the convenience API
  std::vector<int32_t> positions_;  // [max_batch] scratch of the convenience API
  std::vector<int32_t> seq_;        // [max_batch] zeros
  std::vector<int32_t> rows_;       // [max_batch]
};

// Loads the architecture named by general.architecture. The model keeps `reader` (and so the
// mapped file) alive. Throws Error(kUnsupported) naming an unknown architecture and listing ours.
std::unique_ptr<Model> load_model(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings);

}  // namespace lightboat::model

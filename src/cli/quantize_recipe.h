// Which type each tensor gets when a model is quantized: llama-quantize's file types ("Q4_K_M"),
// its per-tensor mixture rules and its shape fallbacks, reimplemented so that `lightboat quantize`
// picks, tensor for tensor, the type llama.cpp (commit 3f545bec) picks. Pure functions of names,
// shapes and model facts: no I/O, no tensor data.
//
// The rules, in the order llama.cpp applies them to a tensor:
//   1. Only weights are quantized: 2-D and 3-D tensors whose name ends in "weight", minus norms
//      ("_norm.weight"), MoE routers and a list of small special tensors. Everything else (1-D
//      norms, biases, rope factor tensors) keeps its stored type and bytes.
//   2. For F32/F16/BF16 file types every quantizable tensor gets that type, with no mixture.
//   3. For quantized file types: a --tensor-type pattern that matches the name wins; otherwise
//      (unless --pure) the mixture: output.weight — and token_embd.weight when the model has no
//      output.weight (tied embeddings) — gets Q6_K (Q8_0 stays Q8_0; Q8_0 too when its row length
//      is not a multiple of the file type's block); Q4_K_M/Q5_K_M give Q6_K to attn_v and
//      ffn_down of the layers use_more_bits() picks; Q4_K_S gives Q5_K to the first attn_v
//      tensors and ffn_down layers; MoE (8 experts), 70B and Falcon special cases.
//   4. A type whose block does not divide the row length falls back: Q4_K→Q5_0, Q5_K→Q5_1,
//      Q6_K→Q8_0, and to F16 when even that does not divide it; other types have no fallback
//      (an error that names the tensor).
#pragma once

#include <cstdint>
#include <optional>
#include <regex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tensor/dtype.h"

namespace lightboat::cli {

using tensor::DType;

// A llama_ftype: the name llama-quantize takes and writes into general.file_type.
struct FileType {
  std::string_view name;  // canonical name, "Q4_K_M"
  uint32_t id;            // general.file_type (llama_ftype)
  DType base;             // the type most tensors get
};

// The file type for a name, case-insensitive; "Q4_K" and "Q5_K" are llama-quantize's aliases of
// Q4_K_M and Q5_K_M. nullopt for anything else.
std::optional<FileType> find_file_type(std::string_view name);
// "Q8_0, Q4_0, …" for help texts and errors.
std::string file_type_names();
// A tensor type by its ggml name ("q8_0", "F16"), case-insensitive, for --tensor-type and the
// output/token-embedding options; nullopt when Lightboat cannot write it.
std::optional<DType> find_tensor_type(std::string_view name);

// --tensor-type PATTERN=TYPE: the first pattern found (std::regex_search) in a tensor's name
// decides its type, before any mixture rule (llama-quantize's behaviour).
struct TypeOverride {
  std::string pattern;
  std::regex regex;
  DType type;
};
// Parses "PATTERN=TYPE"; throws Error(kInvalidArgument) naming the text when malformed.
TypeOverride parse_type_override(std::string_view text);

struct RecipeOptions {
  FileType file_type;
  bool pure = false;                     // --pure: no mixture rules, fallbacks still apply
  std::vector<TypeOverride> overrides;   // --tensor-type, in command-line order
  std::optional<DType> output_type;      // --output-tensor-type
  std::optional<DType> token_embd_type;  // --token-embedding-type
};

// What the mixture rules need to know about the model (from its metadata).
struct ModelFacts {
  std::string arch;       // general.architecture
  int64_t n_layer = 0;    // <arch>.block_count
  int64_t n_head = 0;     // <arch>.attention.head_count (0 when absent)
  int64_t n_head_kv = 0;  // <arch>.attention.head_count_kv (0 when absent)
  int64_t n_expert = 0;   // <arch>.expert_count (0 when absent)
};

struct TensorDesc {
  std::string name;
  std::vector<uint64_t> ne;  // ne[0] = row length
  uint32_t type_id = 0;      // stored ggml type id (possibly one Lightboat cannot convert)
};

struct TensorChoice {
  uint32_t type_id = 0;   // the type to write; equal to the stored one means "copy bytes"
  bool fallback = false;  // the mixture's type did not fit the row length
  std::string note;       // the fallback, said in words ("Q6_K -> Q8_0 for rows of 64")
};

// llama.cpp's tensor order (its loader's map): tensors outside blocks first, then block by block
// (numerically), by name within each group. Quantized files list tensors in this order, and the
// per-layer counters of the mixture rules count in it.
bool llama_tensor_order(const std::string& a, const std::string& b);

// The type of every tensor, given in llama_tensor_order. Throws Error(kInvalidArgument) naming
// the tensor when its row length fits neither the chosen type nor any fallback.
std::vector<TensorChoice> choose_tensor_types(const ModelFacts& model, std::span<const TensorDesc> tensors,
                                              const RecipeOptions& options);

// True when llama.cpp would quantize this tensor at all (rule 1).
bool tensor_is_quantizable(const TensorDesc& t);

}  // namespace lightboat::cli

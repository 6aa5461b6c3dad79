// `lightboat quantize`: rewrites a GGUF model with its weights in another type, choosing each
// tensor's type as llama-quantize does (quantize_recipe.h) and quantizing with the reference
// quantizers, which are llama.cpp's bit for bit. The output equals llama-quantize's for the same
// input and type: same tensors in the same order, same types, same bytes, same metadata (the input's,
// with general.quantization_version and general.file_type set last).
//
// Sources may be F32, F16 or BF16; tensors of other types are dequantized first (llama-quantize's
// --allow-requantize; quality is lower) and a warning says so. Tensors that keep their type are
// copied byte for byte. Rows are quantized in parallel on the given pool.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/thread_pool.h"
#include "cli/quantize_recipe.h"
#include "gguf/reader.h"
#include "gguf/writer.h"

namespace lightboat::cli {

struct QuantizeReport {
  int64_t n_tensors = 0;
  int64_t n_converted = 0;   // tensors whose type changed
  int64_t n_fallback = 0;    // tensors that took a fallback type (see TensorChoice)
  bool requantized = false;  // some converted tensor came from a quantized type
  uint64_t bytes_in = 0;     // tensor data, bytes
  uint64_t bytes_out = 0;
};

// A quantized model ready to be written: the writer borrows tensor bytes from the input mapping
// (copied tensors) and from `buffers` (converted ones), both held here.
struct QuantizedModel {
  std::shared_ptr<const gguf::Reader> input;
  std::vector<std::vector<std::byte>> buffers;
  gguf::Writer writer;
  QuantizeReport report;
};

// Called with each warning line (fallbacks, requantization) as it happens; may be empty.
using QuantizeLog = std::function<void(std::string_view)>;

// The model facts the mixture rules read, from `<arch>.*` metadata. Throws Error(kNotFound)
// when general.architecture or <arch>.block_count is absent.
ModelFacts model_facts(const gguf::Reader& reader);

// Quantizes every tensor of `input` as `options` says. Throws Error naming the tensor when a
// row length fits no type, a source type cannot be converted, or a value is not finite.
QuantizedModel quantize_model(std::shared_ptr<const gguf::Reader> input, const RecipeOptions& options, ThreadPool& pool,
                              const QuantizeLog& log = {});

}  // namespace lightboat::cli

// Facts about a model file that `lightboat bench` reports: how many bytes of weights one
// generated token reads (the denominator of the bandwidth roofline), the parameter count and the
// file's quantization type. Computed from the GGUF tensor directory alone, no model needed.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "gguf/reader.h"

namespace lightboat::cli {

// Bytes of weights the forward pass reads to produce one token during decoding:
//  * every tensor of the file (layer matrices, norms, the output head) counts fully: a decode
//    step reads each of them once;
//  * the token embedding `token_embd.weight` counts as ONE row (a lookup of the token's vector)
//    when the model has its own `output.weight`; when `output.weight` is absent the embedding is
//    tied and the output head reads the whole matrix once, so it counts fully.
// A row of token_embd is n_bytes / ne[1] (rows are whole blocks in every ggml type).
// Throws Error(kFormat) when token_embd.weight is not a matrix.
uint64_t weight_bytes_per_token(std::span<const gguf::TensorInfo> tensors);

// Sum of the elements of every tensor (what llama.cpp calls the parameter count).
uint64_t parameter_count(std::span<const gguf::TensorInfo> tensors);

// llama.cpp's name of the file's quantization mix ("Q4_K_M", "Q8_0", "F16" ...) from
// general.file_type; when the key is absent or unknown, the ggml type holding the most bytes of
// matrices (e.g. "Q4_0"), or "?" when no type is known.
std::string model_type_name(const gguf::Reader& reader);

// A short model label: general.name, else the file name without folder and ".gguf".
std::string model_label(const gguf::Reader& reader, const std::string& path);

}  // namespace lightboat::cli

// The loaders of every supported architecture, one per file under model/. model.cpp picks one
// by general.architecture.
#pragma once

#include <memory>

#include "model/model.h"

namespace lightboat::model {

std::unique_ptr<Model> load_llama(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings);
std::unique_ptr<Model> load_qwen2(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings);
std::unique_ptr<Model> load_qwen3(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings);
std::unique_ptr<Model> load_phi3(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings);
std::unique_ptr<Model> load_gemma(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings);
std::unique_ptr<Model> load_gemma2(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings);

}  // namespace lightboat::model

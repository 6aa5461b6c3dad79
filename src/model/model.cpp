#include "model/model.h"

#include <utility>

#include "base/error.h"
#include "model/architectures.h"

namespace lightboat::model {
namespace {

using Loader = std::unique_ptr<Model> (*)(std::shared_ptr<const gguf::Reader>, const ModelSettings&);

struct Architecture {
  const char* name;  // general.architecture
  Loader load;
};

constexpr Architecture kArchitectures[] = {
    {"llama", &load_llama}, {"qwen2", &load_qwen2},   {"qwen3", &load_qwen3},
    {"phi3", &load_phi3},   {"gemma", &load_gemma},   {"gemma2", &load_gemma2},
};

}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> names;
  for (const Architecture& a : kArchitectures) names.emplace_back(a.name);
  return names;
}

void Model::truncate(int64_t pos) {
  check(pos >= 0 && pos <= n_past_, ErrorKind::kInvalidArgument,
        "cannot truncate the KV cache to " + std::to_string(pos) + " of " + std::to_string(n_past_) + " tokens");
  n_past_ = pos;
}

std::unique_ptr<Model> load_model(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings) {
  const std::string arch = reader->get_string("general.architecture");
  for (const Architecture& a : kArchitectures) {
    if (arch == a.name) return a.load(std::move(reader), settings);
  }
  std::string list;
  for (const Architecture& a : kArchitectures) list += (list.empty() ? "" : ", ") + std::string(a.name);
  throw Error(ErrorKind::kUnsupported, "architecture '" + arch + "' is not supported (supported: " + list + ")");
}

}  // namespace lightboat::model

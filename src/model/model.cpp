#include "model/model.h"

#include <algorithm>

#include "base/error.h"
#include "model/llama.h"

namespace lightboat::model {

std::vector<std::string> supported_architectures() { return {"llama"}; }

void Model::truncate(int64_t pos) {
  check(pos >= 0 && pos <= n_past_, ErrorKind::kInvalidArgument,
        "cannot truncate the KV cache to " + std::to_string(pos) + " of " + std::to_string(n_past_) + " tokens");
  n_past_ = pos;
}

std::unique_ptr<Model> load_model(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings) {
  const std::string arch = reader->get_string("general.architecture");
  if (arch == "llama") return std::make_unique<LlamaModel>(std::move(reader), settings);
  std::string list;
  for (const auto& a : supported_architectures()) list += (list.empty() ? "" : ", ") + a;
  throw Error(ErrorKind::kUnsupported, "architecture '" + arch + "' is not supported (supported: " + list + ")");
}

}  // namespace lightboat::model

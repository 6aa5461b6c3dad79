// Where a model named on the command line lives. Every sub-command that takes a model goes
// through resolve_model_path(), so the built-in default model (no -m) and, later, store names
// (-m NAME[:TAG]) work the same everywhere.
#pragma once

#include <string>

namespace lightboat::cli {

// The built-in default model's name, as `serve` reports it and as the store lists it.
inline constexpr const char* kDefaultModelName = "lightboat-home";

struct ResolvedModel {
  std::string path;      // a GGUF file that exists
  bool builtin = false;  // true when `given` was empty and the built-in default model was chosen
};

// `given` empty: the built-in default model ($LIGHTBOAT_DEFAULT_MODEL if set, else
// models/lightboat-home.gguf beside the build or install tree). Otherwise `given` as a path.
// Throws kNotFound naming every place it looked when nothing is there.
ResolvedModel resolve_model_path(const std::string& given);

// The list of places the built-in default model is looked for, in order (for errors and docs).
std::string default_model_candidates();

}  // namespace lightboat::cli

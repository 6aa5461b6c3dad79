// Where a model named on the command line lives. Every sub-command that takes a model goes
// through resolve_model_path(), so the built-in default model (no -m) and store names
// (-m NAME[:TAG], store/store.h) work the same everywhere.
#pragma once

#include <string>

namespace lightboat::cli {

// The built-in default model's name, as `serve` reports it and as the store lists it.
inline constexpr const char* kDefaultModelName = "lightboat-home";

struct ResolvedModel {
  std::string path;       // a GGUF file that exists
  bool builtin = false;   // true when `given` was empty and the built-in default model was chosen
  std::string store_ref;  // "name:tag" when `given` named a model of the store; "" otherwise
  std::string digest;     // the store blob's "sha256:<hex>" when store_ref is set
};

// `given` empty: the built-in default model ($LIGHTBOAT_DEFAULT_MODEL if set, else
// models/lightboat-home.gguf beside the build or install tree). `given` naming an existing file
// (or directory, which the loader then refuses): that path. Otherwise, when `given` reads as
// NAME[:TAG] (store/names.h; the tag defaults to "latest"), the blob that tag names in the store
// at Store::default_root() ($LIGHTBOAT_HOME); anything else is returned as a path for the
// loader to report. Throws kNotFound naming every place it looked when nothing is there.
ResolvedModel resolve_model_path(const std::string& given);

// The list of places the built-in default model is looked for, in order (for errors and docs).
std::string default_model_candidates();

}  // namespace lightboat::cli

// Model names in the store: NAME[:TAG]. Both parts are lowercase letters, digits, '.', '_' and
// '-', starting with a letter or digit, at most 128 characters; no '/', so a name never reads as
// a path. The tag defaults to "latest".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lightboat::store {

inline constexpr const char* kDefaultTag = "latest";

struct ModelRef {
  std::string name;
  std::string tag = kDefaultTag;

  std::string str() const { return name + ":" + tag; }
  bool operator==(const ModelRef&) const = default;
};

// nullopt when `text` is not NAME[:TAG] as above (upper case is refused, not folded: a name is
// exactly what `lightboat models` prints).
std::optional<ModelRef> try_parse_ref(std::string_view text);

// As try_parse_ref, throwing Error(kInvalidArgument) that explains the grammar.
ModelRef parse_ref(std::string_view text);

// The default name of a file pulled without --name: the file name without ".gguf", lowercased,
// other characters replaced by '-'. A trailing quantization ("-Q4_0", "-q8_0", ".F16",
// "-Q4_K_M", "-IQ2_XS", "-BF16") becomes the tag, otherwise the tag is "latest":
// "tiny-llama-Q4_K_M.gguf" -> tiny-llama:q4_k_m, "model.gguf" -> model:latest.
ModelRef default_ref_for_file(std::string_view file_name);

// A pull source as a URL: "hf:ORG/REPO/PATH/FILE.gguf" becomes
// "https://huggingface.co/ORG/REPO/resolve/main/PATH/FILE.gguf"; http:// and https:// URLs are
// returned as given; anything else throws Error(kInvalidArgument).
std::string source_url(std::string_view source);

// The last path segment of a URL, without query or fragment ("" when there is none).
std::string url_file_name(std::string_view url);

}  // namespace lightboat::store

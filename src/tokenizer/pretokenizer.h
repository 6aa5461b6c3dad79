// Pre-tokenizers of byte-level BPE vocabularies: the regexes, applied in sequence, that cut text
// into words before merges run, chosen by the GGUF key tokenizer.ggml.pre. Each regex splits every
// piece the previous one produced into its matches and the unmatched gaps between them (both
// kept), which is how llama.cpp applies them; the same regexes and the same splits are produced
// here with PCRE2.
//
// How \s, \p{L} … agree with llama.cpp: llama.cpp matches with std::regex over text in which every
// non-ASCII White_Space code point has been replaced by U+000B, so \s means exactly the White_Space
// set, \p{L}/\p{N}/\p{P} mean the Unicode general categories, and (for the Llama 3 and GPT-2
// patterns) hand-written matchers implement the same rules. We do the same replacement and compile
// without PCRE2_UCP, so PCRE2's \s is the ASCII set plus U+000B standing in for the rest, while
// \p{..} still tests real Unicode properties. Case-insensitive contractions are spelled '[sS]
// rather than (?i:'s) so Unicode case folding (ſ -> s, K -> k) cannot widen them.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lightboat::tokenizer {

// What a tokenizer.ggml.pre name selects.
struct PreTokenizerSpec {
  std::string_view name;
  std::vector<std::string_view> regexes;  // applied in order
  bool ignore_merges = false;             // a word that is itself a token is emitted whole (Llama 3)
  bool add_bos = false;                   // default for tokenizer.ggml.add_bos_token when absent
};

// nullptr when llama.cpp's name is not one we implement.
const PreTokenizerSpec* find_pre_tokenizer(std::string_view name);

class PreTokenizer {
 public:
  // Compiles the regexes of `name` ("" means "default"). Throws Error(kUnsupported) naming an
  // unknown pre-tokenizer.
  explicit PreTokenizer(std::string_view name);

  // The words of `text`, as UTF-8. Invalid input bytes come back as U+FFFD, as in llama.cpp.
  // Thread-safe: match state is per call.
  std::vector<std::string> split(std::string_view text) const;

  const PreTokenizerSpec& spec() const { return *spec_; }

 private:
  struct Compiled;  // one PCRE2 pattern
  const PreTokenizerSpec* spec_;
  std::vector<std::shared_ptr<const Compiled>> regexes_;
};

}  // namespace lightboat::tokenizer

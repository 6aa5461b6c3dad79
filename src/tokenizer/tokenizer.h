// Text <-> token ids for the vocabularies GGUF files carry, matching llama.cpp id for id:
//
//  * tokenizer.ggml.model = "llama": SentencePiece-style BPE over scores (llama.cpp's
//    llm_tokenizer_spm). Spaces become U+2581, a space is prefixed to each run of text that starts
//    the input or follows a special token (tokenizer.ggml.add_space_prefix, default true), and
//    characters no token covers fall back to <0xXX> byte tokens.
//  * tokenizer.ggml.model = "gpt2": byte-level BPE with tokenizer.ggml.merges ranks, after the
//    pre-tokenizer named by tokenizer.ggml.pre has cut the text into words (pretokenizer.h).
//
// Special tokens: CONTROL (and UNKNOWN) tokens written in the text are recognised only when
// encode() is asked to parse_special; USER_DEFINED tokens are always recognised, as in llama.cpp
// and Hugging Face tokenizers. Longer special tokens are matched first.
//
// Everything is read from the GGUF once; encode and token_to_piece are const and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/reader.h"
#include "tokenizer/pretokenizer.h"

namespace lightboat::tokenizer {

inline constexpr int32_t kNoToken = -1;

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

enum class ModelType { kSpm, kBpe };

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* from `reader`. Throws Error(kNotFound) for a missing required key,
  // kFormat for a malformed one (wrong type, array lengths that disagree, duplicate tokens), and
  // kUnsupported naming an unknown tokenizer.ggml.model or tokenizer.ggml.pre.
  static Tokenizer from_gguf(const gguf::Reader& reader);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of `text` (any bytes). add_special adds BOS / EOS as add_bos() / add_eos() say;
  // parse_special recognises CONTROL tokens written in the text.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes token `id` stands for: U+2581 -> space and <0xXX> -> that byte for SPM, GPT-2's
  // unicode -> byte inverse for BPE. CONTROL and UNKNOWN tokens render as "" unless render_special
  // (llama_token_to_piece with special=false). May be an incomplete UTF-8 sequence; see
  // StreamDecoder. Throws Error(kInvalidArgument) for an id outside [0, n_vocab).
  std::string token_to_piece(int32_t id, bool render_special = false) const;
  // Concatenated pieces of `ids`.
  std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const;

  int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
  const std::string& token_text(int32_t id) const;  // as stored in the GGUF
  float token_score(int32_t id) const;
  TokenType token_type(int32_t id) const;  // as stored in the GGUF
  bool is_control(int32_t id) const;       // CONTROL, including tokens promoted to it (EOG texts)
  std::optional<int32_t> find_token(std::string_view text) const;

  // Special ids, kNoToken when the vocabulary has none.
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t eot() const { return eot_; }
  int32_t eom() const { return eom_; }
  int32_t pad() const { return pad_; }
  int32_t unk() const { return unk_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  // End of generation: EOS, EOT, EOM and tokens llama.cpp recognises by text ("<|eot_id|>",
  // "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>" …).
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const { return eog_ids_; }  // sorted

  ModelType model_type() const { return type_; }
  const std::string& model_name() const { return model_name_; }  // "llama" or "gpt2"
  const std::string& pre_name() const { return pre_name_; }      // tokenizer.ggml.pre ("" if absent)

 private:
  struct Token {
    std::string text;
    float score = 0.0f;
    TokenType type = TokenType::kUndefined;
    uint32_t attr = 0;  // kAttr* bits below
  };
  enum : uint32_t {
    kAttrUndefined = 1u << 0,
    kAttrUnknown = 1u << 1,
    kAttrUnused = 1u << 2,
    kAttrNormal = 1u << 3,
    kAttrControl = 1u << 4,
    kAttrUserDefined = 1u << 5,
    kAttrByte = 1u << 6,
    kAttrLstrip = 1u << 8,
    kAttrRstrip = 1u << 9,
  };
  // A run of input text or an already recognised special token.
  struct Fragment {
    int32_t token = kNoToken;       // kNoToken for text
    size_t offset = 0, length = 0;  // bytes of the input, for text
  };

  Tokenizer() = default;
  void load_vocab(const gguf::Reader& reader);
  void load_merges(const gguf::Reader& reader);
  void load_special_ids(const gguf::Reader& reader);
  void mark_special_by_text();
  void finish_special_cache(const gguf::Reader& reader);

  int32_t lookup(std::string_view text) const;  // kNoToken when absent
  // Id of a text for merging: its token id, or an id >= n_vocab for a merge part that is no token.
  int32_t piece_id(std::string_view text) const;
  std::vector<Fragment> partition_special(std::string_view text, bool parse_special) const;
  void encode_spm(std::string_view text, std::vector<int32_t>& out) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void encode_bpe_word(const std::string& word, std::vector<int32_t>& out) const;
  const Token& at(int32_t id) const;

  ModelType type_ = ModelType::kSpm;
  std::string model_name_;
  std::string pre_name_;
  std::vector<Token> tokens_;                                 // [n_vocab]
  std::unordered_map<std::string_view, int32_t> text_to_id_;  // views into tokens_[i].text
  std::unordered_map<std::string, int32_t> extra_piece_ids_;  // merge texts that are no token
  std::unordered_map<uint64_t, int32_t> merges_;              // (left id << 32 | right id) -> rank
  std::vector<int32_t> special_cache_;  // CONTROL | USER_DEFINED | UNKNOWN ids, longest text first
  std::vector<int32_t> eog_ids_;
  int32_t byte_tokens_[256] = {};      // SPM byte fallback: id of <0xXX> per byte (kNoToken if none)
  std::unique_ptr<PreTokenizer> pre_;  // BPE only

  int32_t bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken, eom_ = kNoToken;
  int32_t unk_ = kNoToken, pad_ = kNoToken, sep_ = kNoToken;
  int32_t fim_pad_ = kNoToken, fim_rep_ = kNoToken, fim_sep_ = kNoToken;
  int32_t fim_pre_ = kNoToken, fim_suf_ = kNoToken, fim_mid_ = kNoToken;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false, ignore_merges_ = false;
};

// Turns a stream of token ids into text without ever splitting a UTF-8 character: push() returns
// the bytes that are complete now and holds back a trailing multi-byte sequence that the next
// token may finish. Bytes that can never become valid (a stray continuation byte, a broken lead)
// are passed through, not held.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool render_special = false)
      : tokenizer_(&tokenizer), render_special_(render_special) {}

  std::string push(int32_t id);
  std::string flush();  // whatever is still held back, even if incomplete

 private:
  const Tokenizer* tokenizer_;
  bool render_special_;
  std::string pending_;  // bytes of an incomplete trailing sequence
};

// How many leading bytes of `bytes` can be emitted without cutting a UTF-8 sequence that more
// bytes could still complete.
size_t utf8_complete_prefix(std::string_view bytes);

}  // namespace lightboat::tokenizer

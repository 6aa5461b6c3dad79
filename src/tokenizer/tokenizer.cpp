// Loading a Tokenizer from GGUF metadata, with llama.cpp's defaults and its by-text recognition of
// special tokens; accessors and detokenization. Encoding is in encode.cpp.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <iterator>
#include <span>

#include "base/error.h"
#include "tokenizer/special_texts.h"
#include "tokenizer/unicode.h"

namespace lightboat::tokenizer {

using namespace special_texts;

namespace {

constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";
constexpr std::string_view kScoresKey = "tokenizer.ggml.scores";
constexpr std::string_view kTypesKey = "tokenizer.ggml.token_type";
constexpr std::string_view kMergesKey = "tokenizer.ggml.merges";

const gguf::Array& array_of(const gguf::Reader& reader, std::string_view key, gguf::ValueType elem) {
  const gguf::Array& arr = reader.get_array(key);
  check(arr.elem_type == elem, ErrorKind::kFormat, [&] {
    return std::string(key) + ": expected an array of " + std::string(gguf::value_type_name(elem)) + ", found " +
           std::string(gguf::value_type_name(arr.elem_type));
  });
  return arr;
}

template <typename List>
bool contains(const List& list, std::string_view text) {
  return std::find(std::begin(list), std::end(list), text) != std::end(list);
}

uint32_t attr_of_type(int64_t type) {
  switch (type) {
    case 1:
      return 1u << 3;  // normal
    case 2:
      return 1u << 1;  // unknown
    case 3:
      return 1u << 4;  // control
    case 4:
      return 1u << 5;  // user defined
    case 5:
      return 1u << 2;  // unused
    case 6:
      return 1u << 6;  // byte
    default:
      return 1u << 0;  // undefined
  }
}

}  // namespace

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_gguf(const gguf::Reader& reader) {
  Tokenizer t;
  t.model_name_ = reader.get_string("tokenizer.ggml.model");
  t.pre_name_ = reader.try_string("tokenizer.ggml.pre").value_or("");
  if (t.model_name_ == "llama") {
    t.type_ = ModelType::kSpm;
    t.bos_ = 1, t.eos_ = 2, t.unk_ = 0;  // llama.cpp's defaults for SPM vocabularies
    t.add_space_prefix_ = true;
    t.add_bos_ = true;
  } else if (t.model_name_ == "gpt2") {
    t.type_ = ModelType::kBpe;
    t.bos_ = 11, t.eos_ = 11;                              // llama.cpp's defaults for BPE vocabularies
    t.pre_ = std::make_unique<PreTokenizer>(t.pre_name_);  // throws kUnsupported for unknown names
    t.ignore_merges_ = t.pre_->spec().ignore_merges;
    t.add_bos_ = t.pre_->spec().add_bos;
  } else if (t.model_name_ == "bert") {
    throw Error(ErrorKind::kUnsupported, "tokenizer.ggml.model 'bert' (WordPiece) is not supported");
  } else {
    throw Error(ErrorKind::kUnsupported, "tokenizer.ggml.model '" + t.model_name_ + "' is not supported");
  }
  if (auto v = reader.try_bool("tokenizer.ggml.add_space_prefix")) t.add_space_prefix_ = *v;

  t.load_vocab(reader);
  if (t.type_ == ModelType::kBpe) t.load_merges(reader);
  t.load_special_ids(reader);
  t.mark_special_by_text();
  t.finish_special_cache(reader);
  return t;
}

void Tokenizer::load_vocab(const gguf::Reader& reader) {
  const gguf::Array& texts = array_of(reader, kTokensKey, gguf::ValueType::kString);
  const size_t n = texts.items.size();
  check(n > 0 && n < (1u << 31), ErrorKind::kFormat,
        [&] { return std::string(kTokensKey) + ": bad token count " + std::to_string(n); });

  const gguf::Array* scores = nullptr;
  if (reader.find(kScoresKey) != nullptr) {
    scores = &reader.get_array(kScoresKey);
    check(scores->elem_type == gguf::ValueType::kFloat32 || scores->elem_type == gguf::ValueType::kInt32,
          ErrorKind::kFormat, [&] { return std::string(kScoresKey) + ": expected float32 or int32 items"; });
    check(scores->items.size() >= n, ErrorKind::kFormat, [&] {
      return std::string(kScoresKey) + ": " + std::to_string(scores->items.size()) + " scores for " +
             std::to_string(n) + " tokens";
    });
  }
  const gguf::Array* types = nullptr;
  if (reader.find(kTypesKey) != nullptr) {
    types = &array_of(reader, kTypesKey, gguf::ValueType::kInt32);
    check(types->items.size() >= n, ErrorKind::kFormat, [&] {
      return std::string(kTypesKey) + ": " + std::to_string(types->items.size()) + " types for " + std::to_string(n) +
             " tokens";
    });
  }

  tokens_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    Token& tok = tokens_[i];
    tok.text = texts.items[i].as_string(kTokensKey);
    if (tok.text.empty()) tok.text = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp renames them
    if (scores != nullptr) tok.score = static_cast<float>(scores->items[i].as_float(kScoresKey));
    if (types != nullptr) {
      const int64_t ty = types->items[i].as_int(kTypesKey);
      tok.type = (ty >= 0 && ty <= 6) ? static_cast<TokenType>(ty) : TokenType::kUndefined;
      tok.attr = attr_of_type(ty);
    } else {
      tok.type = TokenType::kNormal;
      tok.attr = kAttrNormal;
    }
  }
  // Keys are views into tokens_, which is never resized again.
  text_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto [it, inserted] = text_to_id_.emplace(tokens_[i].text, static_cast<int32_t>(i));
    const int32_t first = it->second;  // (Clang before 16 cannot capture a structured binding)
    check(inserted, ErrorKind::kFormat, [&] {
      return std::string(kTokensKey) + ": duplicate token '" + tokens_[i].text + "' at ids " + std::to_string(first) +
             " and " + std::to_string(i);
    });
  }

  for (int b = 0; b < 256; ++b) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    const char name[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    const char raw = static_cast<char>(b);
    int32_t id = lookup(std::string_view(name, 6));
    if (id == kNoToken) id = lookup(std::string_view(&raw, 1));  // a vocabulary with raw byte tokens
    byte_tokens_[b] = id;
  }
}

void Tokenizer::load_merges(const gguf::Reader& reader) {
  const gguf::Array& merges = array_of(reader, kMergesKey, gguf::ValueType::kString);
  merges_.reserve(merges.items.size());
  for (size_t i = 0; i < merges.items.size(); ++i) {
    const std::string& line = merges.items[i].as_string(kMergesKey);
    const size_t space = line.find(' ', 1);  // "A B"; a leading space would belong to A
    if (space == std::string::npos) continue;
    const std::string_view left(line.data(), space);
    const std::string_view right(line.data() + space + 1, line.size() - space - 1);
    auto id_of = [this](std::string_view text) {
      const int32_t id = piece_id(text);
      if (id != kNoToken) return id;
      const auto next = static_cast<int32_t>(tokens_.size() + extra_piece_ids_.size());
      return extra_piece_ids_.emplace(std::string(text), next).first->second;
    };
    const int32_t l = id_of(left);
    const int32_t r = id_of(right);
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
    merges_.try_emplace(key, static_cast<int32_t>(i));  // the first rank wins
  }
}

void Tokenizer::load_special_ids(const gguf::Reader& reader) {
  const auto n = static_cast<int64_t>(tokens_.size());
  // A default outside the vocabulary is dropped; a stored id outside it is ignored (llama.cpp
  // warns and keeps the default), which is how files mark "none" with 0xFFFFFFFF.
  auto read_id = [&](std::string_view key, int32_t& id) {
    if (id >= n) id = kNoToken;
    const gguf::Value* v = reader.find(key);
    if (v == nullptr) return;
    check(v->is_integer(), ErrorKind::kFormat, [&] { return std::string(key) + ": expected an integer token id"; });
    const int64_t value = v->type == gguf::ValueType::kUint64
                              ? static_cast<int64_t>(std::min<uint64_t>(v->as_uint(key), uint64_t{1} << 62))
                              : v->as_int(key);
    if (value >= 0 && value < n) id = static_cast<int32_t>(value);
  };
  read_id("tokenizer.ggml.bos_token_id", bos_);
  read_id("tokenizer.ggml.eos_token_id", eos_);
  read_id("tokenizer.ggml.eot_token_id", eot_);
  read_id("tokenizer.ggml.eom_token_id", eom_);
  read_id("tokenizer.ggml.unknown_token_id", unk_);
  read_id("tokenizer.ggml.seperator_token_id", sep_);  // sic: llama.cpp's key name
  read_id("tokenizer.ggml.padding_token_id", pad_);
  read_id("tokenizer.ggml.fim_pre_token_id", fim_pre_);
  read_id("tokenizer.ggml.fim_suf_token_id", fim_suf_);
  read_id("tokenizer.ggml.fim_mid_token_id", fim_mid_);
  read_id("tokenizer.ggml.fim_pad_token_id", fim_pad_);
  read_id("tokenizer.ggml.fim_rep_token_id", fim_rep_);
  read_id("tokenizer.ggml.fim_sep_token_id", fim_sep_);
  read_id("tokenizer.ggml.prefix_token_id", fim_pre_);  // deprecated spellings
  read_id("tokenizer.ggml.suffix_token_id", fim_suf_);
  read_id("tokenizer.ggml.middle_token_id", fim_mid_);

  if (auto v = reader.try_bool("tokenizer.ggml.add_bos_token")) add_bos_ = *v;
  if (auto v = reader.try_bool("tokenizer.ggml.add_eos_token")) add_eos_ = *v;
  check(!add_bos_ || bos_ != kNoToken, ErrorKind::kFormat,
        "tokenizer.ggml.add_bos_token is true but tokenizer.ggml.bos_token_id names no token");
  check(!add_eos_ || eos_ != kNoToken, ErrorKind::kFormat,
        "tokenizer.ggml.add_eos_token is true but tokenizer.ggml.eos_token_id names no token");
}

// llama.cpp finds EOT, EOM and FIM tokens by their text when the metadata does not name them, and
// promotes every token it so recognises to CONTROL. That promotion matters beyond is_eog: a
// CONTROL token renders as "" and is not matched in text unless parse_special.
void Tokenizer::mark_special_by_text() {
  const auto n = static_cast<int32_t>(tokens_.size());
  // llama.cpp takes whichever candidate its hash map yields first; we take the first text of the
  // list that the vocabulary has ("<|eot_id|>" over "<|end_of_text|>"), which is what it reports
  // for the common vocabularies.
  auto adopt = [&](int32_t& role, std::span<const std::string_view> texts) {
    if (role != kNoToken) return;
    for (std::string_view text : texts) {
      if (const int32_t id = lookup(text); id != kNoToken) {
        role = id;
        tokens_[id].attr |= kAttrControl;
        return;
      }
    }
  };
  adopt(eot_, kEotTexts);
  adopt(eom_, kEomTexts);
  adopt(fim_pre_, kFimPreTexts);
  adopt(fim_suf_, kFimSufTexts);
  adopt(fim_mid_, kFimMidTexts);
  adopt(fim_pad_, kFimPadTexts);
  adopt(fim_rep_, kFimRepTexts);
  adopt(fim_sep_, kFimSepTexts);
  for (Token& tok : tokens_) {  // control tokens named "unused" are unused
    if ((tok.attr & kAttrControl) && tok.text.find("unused") != std::string::npos) tok.attr |= kAttrUnused;
  }

  std::vector<int32_t> eog;
  for (int32_t id : {fim_pad_, fim_rep_, fim_sep_}) {
    if (id != kNoToken) eog.push_back(id);
  }
  for (int32_t id = 0; id < n; ++id) {
    if (contains(kEogTexts, tokens_[id].text)) {
      eog.push_back(id);
      tokens_[id].attr |= kAttrControl;
    }
    // gpt-oss channel markers are always rendered, as plain user-defined tokens.
    if (contains(kAlwaysRenderedTexts, tokens_[id].text)) {
      tokens_[id].attr = kAttrUserDefined;
    }
  }
  for (int32_t id : {eos_, eot_, eom_}) {
    if (id != kNoToken) eog.push_back(id);
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());

  // Harmony-style vocabularies (<|return|> and <|call|>, or <|calls|> and <|flush|>) use <|end|>
  // between messages, not to stop; Gemma 4 style ones (<|tool_response>) do not stop on </s>.
  auto has = [&](std::string_view text) {
    return std::any_of(eog.begin(), eog.end(), [&](int32_t id) { return tokens_[id].text == text; });
  };
  auto drop = [&](std::string_view text, uint32_t new_attr) {
    for (auto it = eog.begin(); it != eog.end(); ++it) {
      if (tokens_[*it].text == text) {
        tokens_[*it].attr = new_attr;
        eog.erase(it);
        return;
      }
    }
  };
  if (has("<|end|>") && ((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>")))) {
    drop("<|end|>", kAttrUserDefined);
  }
  if (has("<|tool_response>") && has("</s>")) drop("</s>", kAttrNormal);
  eog_ids_ = std::move(eog);
}

void Tokenizer::finish_special_cache(const gguf::Reader& reader) {
  for (int32_t id = 0; id < n_vocab(); ++id) {
    if (tokens_[id].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) special_cache_.push_back(id);
  }
  // Longest text first, so a special token that contains another wins; ties keep id order.
  std::stable_sort(special_cache_.begin(), special_cache_.end(),
                   [&](int32_t a, int32_t b) { return tokens_[a].text.size() > tokens_[b].text.size(); });

  // Phi-3's special tokens swallow the whitespace after them (llama.cpp keys this on the name).
  std::string name = reader.try_string("general.name").value_or("");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id : special_cache_) tokens_[id].attr |= kAttrRstrip;
    if (int32_t id = lookup("</s>"); id != kNoToken) tokens_[id].attr |= kAttrRstrip;
    for (std::string_view text : {"<unk>", "<s>", "<|endoftext|>"}) {
      if (int32_t id = lookup(text); id != kNoToken) tokens_[id].attr &= ~kAttrRstrip;
    }
  } else if (name.find("modern-bert") != std::string::npos) {
    if (int32_t id = lookup("[MASK]"); id != kNoToken) tokens_[id].attr |= kAttrLstrip;
  }
}

int32_t Tokenizer::lookup(std::string_view text) const {
  const auto it = text_to_id_.find(text);
  return it == text_to_id_.end() ? kNoToken : it->second;
}

int32_t Tokenizer::piece_id(std::string_view text) const {
  if (const int32_t id = lookup(text); id != kNoToken) return id;
  if (extra_piece_ids_.empty()) return kNoToken;
  const auto it = extra_piece_ids_.find(std::string(text));
  return it == extra_piece_ids_.end() ? kNoToken : it->second;
}

const Tokenizer::Token& Tokenizer::at(int32_t id) const {
  check(id >= 0 && id < n_vocab(), ErrorKind::kInvalidArgument, [&] {
    return "token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(n_vocab()) + ")";
  });
  return tokens_[id];
}

const std::string& Tokenizer::token_text(int32_t id) const {
  return at(id).text;
}
float Tokenizer::token_score(int32_t id) const {
  return at(id).score;
}
TokenType Tokenizer::token_type(int32_t id) const {
  return at(id).type;
}
bool Tokenizer::is_control(int32_t id) const {
  return (at(id).attr & kAttrControl) != 0;
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const int32_t id = lookup(text);
  if (id == kNoToken) return std::nullopt;
  return id;
}

bool Tokenizer::is_eog(int32_t id) const {
  return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  const Token& tok = at(id);
  if (!render_special && (tok.attr & (kAttrUnknown | kAttrControl))) return {};
  if (tok.attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return tok.text;
  if (tok.attr & kAttrNormal) {
    std::string out;
    if (type_ == ModelType::kSpm) {
      // U+2581 (E2 96 81) stands for a space.
      out.reserve(tok.text.size());
      for (size_t i = 0; i < tok.text.size(); ++i) {
        if (tok.text.compare(i, 3, "\xE2\x96\x81") == 0) {
          out.push_back(' ');
          i += 2;
        } else {
          out.push_back(tok.text[i]);
        }
      }
      return out;
    }
    for (uint32_t cpt : decode_utf8_lenient(tok.text)) {
      if (const auto byte = gpt2_unicode_to_byte(cpt)) {
        out.push_back(static_cast<char>(*byte));
      } else {
        // llama.cpp's marker for a character outside GPT-2's byte alphabet.
        std::string utf8;
        append_utf8(cpt, utf8);
        out += "[UNK_BYTE_0x";
        for (unsigned char c : utf8) {
          static constexpr char kHex[] = "0123456789abcdef";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        }
        out += tok.text + "]";
      }
    }
    return out;
  }
  if (tok.attr & kAttrByte) {
    // "<0xXX>"
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    if (tok.text.size() == 6 && nibble(tok.text[3]) >= 0 && nibble(tok.text[4]) >= 0) {
      return std::string(1, static_cast<char>(nibble(tok.text[3]) * 16 + nibble(tok.text[4])));
    }
    return {};
  }
  return {};  // unused / undefined tokens render as nothing
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string out;
  for (int32_t id : ids) out += token_to_piece(id, render_special);
  return out;
}

size_t utf8_complete_prefix(std::string_view bytes) {
  // Only the last 3 bytes can belong to a sequence still waiting for bytes.
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<uint8_t>(bytes[n - back]);
    if ((c & 0xC0) == 0x80) continue;     // continuation: look further back for its lead
    if (c < 0xC0 || c >= 0xF8) return n;  // ASCII or a byte that never leads: nothing to wait for
    const size_t need = utf8_sequence_length(static_cast<char>(c));
    return need > back ? n - back : n;
  }
  return n;  // only continuation bytes at the end: they cannot be completed
}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tokenizer_->token_to_piece(id, render_special_);
  const size_t ready = utf8_complete_prefix(pending_);
  std::string out = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace lightboat::tokenizer

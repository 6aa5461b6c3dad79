#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <utility>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace lightboat::tokenizer {

namespace {

// The regexes, as llama.cpp's llm_tokenizer_bpe lists them per pre-tokenizer type.

// GPT-2's pattern (without its final \s+: an unmatched lone space becomes a gap piece anyway).
constexpr std::string_view kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";

// Llama 3's pattern with the (?i:...) contractions spelled out case by case.
constexpr std::string_view kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Qwen2: Llama 3's pattern with single digits.
constexpr std::string_view kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr std::string_view kNewline = R"([\r\n])";
constexpr std::string_view kEachDigit = R"(\p{N})";
constexpr std::string_view kDigitRuns = R"(\p{N}+)";
constexpr std::string_view kThreeAsciiDigits = R"([0-9][0-9][0-9])";
// CJK ideographs U+4E00..U+9FA5, U+0800..U+4E00 and Hangul U+AC00..U+D7FF, as DeepSeek lists them.
constexpr std::string_view kDeepseekCjk = R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

// DeepSeek LLM's letters: a fixed list of cased-letter ranges (a subset of Lu/Ll/Lt), written with
// code point escapes so that look-alike characters (Ohm sign, Kelvin sign) cannot be mistyped.
constexpr std::string_view kDeepseekLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293})"
    R"(\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A})"
    R"(\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556})"
    R"(\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF})"
    R"(\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D})"
    R"(\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D})"
    R"(\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3})"
    R"(\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
    R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D})"
    R"(\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184})"
    R"(\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D})"
    R"(\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF})"
    R"(\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F})"
    R"(\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})"
    R"(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
// ASCII and full-width punctuation, quotes U+2018..U+201F and U+3000..U+3002.
constexpr std::string_view kDeepseekPunct =
    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";

const std::array<PreTokenizerSpec, 31>& spec_table() {
  using V = std::vector<std::string_view>;
  const V llama3{kLlama3};
  const V gpt2{kGpt2};
  const V starcoder{kEachDigit, kGpt2};
  const V qwen2{kQwen2};
  static const std::array<PreTokenizerSpec, 31> table{{
      {"default", {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, kDigitRuns, kThreeAsciiDigits}, false, false},
      {"llama-bpe", llama3, true, true},
      {"llama3", llama3, true, true},
      {"llama-v3", llama3, true, true},
      {"falcon3", llama3, true, true},
      {"falcon-h1", llama3, true, true},
      {"pixtral", llama3, true, true},
      {"midm-2.0", llama3, true, true},
      {"lfm2", llama3, true, true},
      {"dbrx", llama3, false, false},
      {"smaug-bpe", llama3, false, false},
      {"deepseek-llm", {kNewline, kDeepseekLetters, kDeepseekPunct, R"(\s+$)", kDeepseekCjk, kDigitRuns}, false, false},
      {"deepseek-coder", {kNewline, R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk, kEachDigit}, false, false},
      {"falcon", {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, kThreeAsciiDigits}, false, false},
      {"gpt-2", gpt2, false, false},
      {"mpt", gpt2, false, false},
      {"phi-2", gpt2, false, false},
      {"olmo", gpt2, false, false},
      {"gigachat", gpt2, false, false},
      {"starcoder", starcoder, false, false},
      {"refact", starcoder, false, false},
      {"smollm", starcoder, false, false},
      {"command-r", starcoder, false, false},
      {"codeshell", starcoder, false, false},
      {"exaone", starcoder, false, false},
      {"minerva-7b", starcoder, false, false},
      {"qwen2", qwen2, false, false},
      {"deepseek-r1-qwen", qwen2, false, false},
      {"megrez", qwen2, false, false},
      {"stablelm2", qwen2, false, false},
      {"mellum2", starcoder, false, false},
  }};
  return table;
}

}  // namespace

const PreTokenizerSpec* find_pre_tokenizer(std::string_view name) {
  for (const PreTokenizerSpec& spec : spec_table()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  explicit Compiled(std::string_view pattern) {
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    // UTF without UCP (see the header), $ only at the very end as in ECMAScript.
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_DOLLAR_ENDONLY,
                         &err, &err_offset, nullptr);
    if (code == nullptr) {
      std::array<PCRE2_UCHAR, 256> msg{};
      pcre2_get_error_message(err, msg.data(), msg.size());
      throw Error(ErrorKind::kInternal, "pre-tokenizer regex does not compile at offset " + std::to_string(err_offset) +
                                            ": " + reinterpret_cast<const char*>(msg.data()));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // best effort: the interpreter works without it
  }
  ~Compiled() { pcre2_code_free(code); }
  Compiled(const Compiled&) = delete;
  Compiled& operator=(const Compiled&) = delete;
};

PreTokenizer::PreTokenizer(std::string_view name) : spec_(find_pre_tokenizer(name.empty() ? "default" : name)) {
  if (spec_ == nullptr) {
    throw Error(ErrorKind::kUnsupported,
                "tokenizer.ggml.pre '" + std::string(name) + "' is not a pre-tokenizer Lightboat implements");
  }
  for (std::string_view pattern : spec_->regexes) regexes_.push_back(std::make_shared<const Compiled>(pattern));
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  const std::vector<uint32_t> cpts = decode_utf8_lenient(text);
  const size_t n_cpts = cpts.size();

  // The subject the regexes see: non-ASCII whitespace as U+000B (so \s is White_Space exactly),
  // lone surrogates (which lenient decoding lets through) as U+FFFD to keep it valid UTF-8.
  std::string subject;
  subject.reserve(text.size());
  std::vector<size_t> cpt_byte(n_cpts + 1);  // [n_cpts + 1] byte offset of each code point in subject
  for (size_t i = 0; i < n_cpts; ++i) {
    cpt_byte[i] = subject.size();
    uint32_t c = cpts[i];
    if (c > 0x7F && is_unicode_whitespace(c)) c = 0x0B;
    if (c >= 0xD800 && c <= 0xDFFF) c = kReplacementChar;
    append_utf8(c, subject);
  }
  cpt_byte[n_cpts] = subject.size();
  std::vector<uint32_t> byte_cpt(subject.size() + 1, 0);  // [bytes + 1] code point index at each char start
  for (size_t i = 0; i <= n_cpts; ++i) byte_cpt[cpt_byte[i]] = static_cast<uint32_t>(i);

  // Pieces as [begin, end) code point ranges.
  std::vector<std::pair<size_t, size_t>> pieces;
  if (n_cpts > 0) pieces.emplace_back(0, n_cpts);
  std::vector<std::pair<size_t, size_t>> next;
  for (const auto& regex : regexes_) {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(regex->code, nullptr), &pcre2_match_data_free);
    if (!md) throw Error(ErrorKind::kInternal, "out of memory for regex match data");
    next.clear();
    for (const auto& [begin, end] : pieces) {
      const size_t base = cpt_byte[begin];
      const size_t len = cpt_byte[end] - base;  // bytes
      const auto* piece = reinterpret_cast<PCRE2_SPTR>(subject.data() + base);
      auto emit = [&](size_t from, size_t to) {  // byte offsets within the piece
        next.emplace_back(byte_cpt[base + from], byte_cpt[base + to]);
      };
      size_t pos = 0;   // where the next search starts
      size_t last = 0;  // end of the last emitted piece
      while (pos < len) {
        const int rc = pcre2_match(regex->code, piece, len, pos, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          throw Error(ErrorKind::kInvalidArgument, "pre-tokenizer '" + std::string(spec_->name) +
                                                       "' gave up on the text (PCRE2 error " + std::to_string(rc) +
                                                       ")");
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
        const size_t m_begin = ov[0], m_end = ov[1];
        if (m_end == m_begin) {  // an empty match splits nothing: step over one character
          pos = m_begin + utf8_sequence_length(subject[base + m_begin]);
          continue;
        }
        if (m_begin > last) emit(last, m_begin);  // the unmatched gap is a piece of its own
        emit(m_begin, m_end);
        last = pos = m_end;
      }
      if (last < len) emit(last, len);
    }
    pieces.swap(next);
  }

  // Words are rebuilt from the decoded code points, as llama.cpp does.
  std::vector<std::string> words;
  words.reserve(pieces.size());
  for (const auto& [begin, end] : pieces) {
    std::string& word = words.emplace_back();
    for (size_t i = begin; i < end; ++i) append_utf8(cpts[i], word);
  }
  return words;
}

}  // namespace lightboat::tokenizer

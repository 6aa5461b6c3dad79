// Tokenizer behaviour beyond the vectors: stories260K against llama.cpp's reference.json, special
// token parsing, EOG detection, detokenization and streaming, and load-time errors on in-memory
// GGUF files.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file_bytes.h"
#include "fixtures.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "tokenizer/tokenizer.h"

namespace lightboat::tokenizer {
namespace {

using Ids = std::vector<int32_t>;

Tokenizer load_fixture(const std::string& relative) {
  const auto reader = gguf::Reader::open((testing::fixtures_dir() / relative).string());
  return Tokenizer::from_gguf(*reader);
}

TEST(Stories260K, PromptIdsAndGreedyPiecesMatchReference) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const Tokenizer tok = load_fixture("stories260K/stories260K-F32.gguf");
  EXPECT_EQ(tok.model_type(), ModelType::kSpm);
  EXPECT_EQ(tok.n_vocab(), 512);
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_EQ(tok.eos(), 2);
  EXPECT_EQ(tok.pad(), kNoToken);  // stored as 0xFFFFFFFF: "none"
  EXPECT_TRUE(tok.add_bos());
  EXPECT_TRUE(tok.is_eog(2));

  std::ifstream in(testing::fixtures_dir() / "stories260K" / "reference.json");
  const nlohmann::json ref = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& c : ref.at("cases")) {
    if (c.at("prompt").is_null()) continue;
    const auto& r = c.at("result");
    const std::string prompt = c.at("prompt");
    const Ids ids = tok.encode(prompt, /*add_special=*/true, /*parse_special=*/false);
    EXPECT_EQ(ids, r.at("prompt_ids").get<Ids>()) << prompt;
    const auto prompt_pieces = r.at("prompt_pieces").get<std::vector<std::string>>();
    ASSERT_EQ(prompt_pieces.size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(tok.token_to_piece(ids[i]), prompt_pieces[i]) << prompt;

    const auto& greedy = r.at("greedy");
    const Ids gen = greedy.at("ids").get<Ids>();
    const auto pieces = greedy.at("pieces").get<std::vector<std::string>>();
    ASSERT_EQ(pieces.size(), gen.size());
    std::string streamed;
    StreamDecoder stream(tok);
    for (size_t i = 0; i < gen.size(); ++i) {
      EXPECT_EQ(tok.token_to_piece(gen[i]), pieces[i]) << "token " << gen[i];
      streamed += stream.push(gen[i]);
    }
    streamed += stream.flush();
    EXPECT_EQ(tok.decode(gen), greedy.at("text").get<std::string>());
    EXPECT_EQ(streamed, greedy.at("text").get<std::string>());
    ++checked;
  }
  EXPECT_EQ(checked, 9);
}

TEST(Stories260K, OnceUponATime) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const Tokenizer tok = load_fixture("stories260K/stories260K-F32.gguf");
  EXPECT_EQ(tok.encode("Once upon a time", true, false), (Ids{1, 403, 407, 261, 378}));
  EXPECT_EQ(tok.encode("Once upon a time", false, false), (Ids{403, 407, 261, 378}));
  EXPECT_EQ(tok.encode("", true, false), (Ids{1}));
  EXPECT_EQ(tok.encode("", false, false), Ids{});
  // "<s>" is a control token: text unless parse_special, and then the space prefix restarts.
  EXPECT_EQ(tok.encode("<s>Once", false, true), (Ids{1, 403}));
  EXPECT_NE(tok.encode("<s>Once", false, false).front(), 1);
  EXPECT_EQ(tok.token_to_piece(1), "");
  EXPECT_EQ(tok.token_to_piece(1, /*render_special=*/true), "<s>");
}

TEST(LlamaBpe, SpecialTokensAndEndOfGeneration) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const Tokenizer tok = load_fixture("tokenizer/ggml-vocab-llama-bpe.gguf");
  EXPECT_EQ(tok.model_type(), ModelType::kBpe);
  EXPECT_EQ(tok.model_name(), "gpt2");
  EXPECT_EQ(tok.pre_name(), "llama-bpe");
  EXPECT_EQ(tok.bos(), 128000);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_FALSE(tok.add_eos());

  EXPECT_EQ(tok.encode("<|begin_of_text|>", false, true), (Ids{128000}));
  const Ids parsed = tok.encode("<|begin_of_text|>Hello<|eot_id|>", true, true);
  ASSERT_EQ(parsed.size(), 4u);
  EXPECT_EQ(parsed[0], 128000);  // BOS added
  EXPECT_EQ(parsed[1], 128000);  // and the one written in the text
  EXPECT_EQ(parsed[3], 128009);
  // Without parse_special the marker is plain text.
  const Ids plain = tok.encode("<|begin_of_text|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok.decode(plain), "<|begin_of_text|>");

  EXPECT_EQ(tok.eot(), 128009);  // found by its text, "<|eot_id|>"
  EXPECT_EQ(tok.eom(), 128008);
  EXPECT_TRUE(tok.is_eog(128001));  // EOS
  EXPECT_TRUE(tok.is_eog(128009));
  EXPECT_TRUE(tok.is_eog(128008));
  EXPECT_FALSE(tok.is_eog(128000));
  EXPECT_FALSE(tok.is_eog(9906));
  EXPECT_EQ(tok.token_to_piece(128009), "");
  EXPECT_EQ(tok.token_to_piece(128009, true), "<|eot_id|>");
}

TEST(LlamaBpe, DecodeInvertsEncode) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const Tokenizer tok = load_fixture("tokenizer/ggml-vocab-llama-bpe.gguf");
  for (const std::string s : {"Hello world", "  leading and trailing  ", "tabs\tand\nnewlines\r\n",
                              "\xC3\xA4pfel \xE2\x82\xAC 12345 \xF0\x9F\xA6\x99", "I'VE it's"}) {
    EXPECT_EQ(tok.decode(tok.encode(s, false, false)), s);
  }
}

// Random text from a mix of scripts, digits, punctuation and every kind of whitespace (not U+2581,
// which SPM decodes as a space by design).
std::string random_text(std::mt19937& rng, size_t n_chars) {
  static const std::vector<std::string> alphabet = {"a",
                                                    "Z",
                                                    "q",
                                                    "7",
                                                    "0",
                                                    " ",
                                                    " ",
                                                    "  ",
                                                    "\t",
                                                    "\n",
                                                    "\r\n",
                                                    "'",
                                                    "'s",
                                                    "!",
                                                    ".",
                                                    ",",
                                                    "$",
                                                    "<",
                                                    "|",
                                                    "\xC3\xA9",
                                                    "\xC3\x84",
                                                    "\xC2\xA0",
                                                    "\xE3\x80\x80",
                                                    "\xE2\x80\xAF",
                                                    "\xE4\xBD\xA0",
                                                    "\xED\x95\x9C",
                                                    "\xD0\xB6",
                                                    "\xE0\xB8\x81",
                                                    "\xF0\x9F\xA6\x99",
                                                    "\xF0\x9F\x98\x81",
                                                    "\xEF\xBC\x81",
                                                    "\xC2\x85"};
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::string s;
  for (size_t i = 0; i < n_chars; ++i) s += alphabet[pick(rng)];
  return s;
}

TEST(RoundTrip, DecodeOfEncodeGivesTheTextBack) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  std::mt19937 rng(1234);
  for (const char* vocab : {"gpt-2", "llama-bpe", "deepseek-llm", "falcon", "llama-spm"}) {
    const Tokenizer tok = load_fixture(std::string("tokenizer/ggml-vocab-") + vocab + ".gguf");
    for (int round = 0; round < 40; ++round) {
      const std::string text = random_text(rng, 1 + round);
      const std::string back = tok.decode(tok.encode(text, false, false));
      // SPM prefixes a space; everything else is byte-exact.
      EXPECT_EQ(back, tok.model_type() == ModelType::kSpm ? " " + text : text) << vocab;
    }
  }
}

TEST(RoundTrip, ArbitraryBytesNeverThrow) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const char* vocab : {"llama-bpe", "deepseek-coder", "phi-3"}) {
    const Tokenizer tok = load_fixture(std::string("tokenizer/ggml-vocab-") + vocab + ".gguf");
    for (int round = 0; round < 30; ++round) {
      std::string bytes;
      for (int i = 0; i < 3 * round; ++i) bytes.push_back(static_cast<char>(byte(rng)));
      const Ids ids = tok.encode(bytes, true, true);
      for (int32_t id : ids) {
        ASSERT_GE(id, 0);
        ASSERT_LT(id, tok.n_vocab());
      }
      (void)tok.decode(ids, true);
    }
  }
}

TEST(SpecialTokens, UserDefinedTokensMatchWithoutParseSpecial) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  // MPT's user-defined tokens are runs of spaces; deepseek-coder's include "<|User|>".
  const Tokenizer mpt = load_fixture("tokenizer/ggml-vocab-mpt.gguf");
  const auto four = mpt.find_token("    ");
  ASSERT_TRUE(four.has_value());
  EXPECT_EQ(mpt.token_type(*four), TokenType::kUserDefined);
  EXPECT_EQ(mpt.encode("a    b", false, false)[1], *four);

  const Tokenizer coder = load_fixture("tokenizer/ggml-vocab-deepseek-coder.gguf");
  const auto user = coder.find_token("<|User|>");
  ASSERT_TRUE(user.has_value());
  EXPECT_EQ(coder.encode("x<|User|>y", false, false).size(), 3u);
  EXPECT_EQ(coder.encode("x<|User|>y", false, false)[1], *user);
  EXPECT_EQ(coder.token_to_piece(*user), "<|User|>");  // user-defined tokens always render
  // FIM tokens are promoted to control by their text: matched only when parsing specials.
  const auto fim = coder.find_token(
      "<\xEF\xBD\x9C"
      "fim\xE2\x96\x81"
      "hole\xEF\xBD\x9C>");
  ASSERT_TRUE(fim.has_value());
  EXPECT_TRUE(coder.is_control(*fim));
  EXPECT_EQ(coder.encode("<\xEF\xBD\x9C"
                         "fim\xE2\x96\x81"
                         "hole\xEF\xBD\x9C>",
                         false, true),
            (Ids{*fim}));
  EXPECT_NE(coder.encode("<\xEF\xBD\x9C"
                         "fim\xE2\x96\x81"
                         "hole\xEF\xBD\x9C>",
                         false, false),
            (Ids{*fim}));
}

TEST(SpecialTokens, Phi3ControlTokensEatFollowingWhitespace) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const Tokenizer tok = load_fixture("tokenizer/ggml-vocab-phi-3.gguf");
  EXPECT_EQ(tok.eos(), 32000);
  EXPECT_TRUE(tok.is_eog(32007));  // "<|end|>"
  const Ids with_space = tok.encode("<|user|>\nHi<|end|>", false, true);
  const Ids without = tok.encode("<|user|>Hi<|end|>", false, true);
  EXPECT_EQ(with_space, without);
  EXPECT_EQ(with_space.front(), 32010);
  EXPECT_EQ(with_space.back(), 32007);
}

TEST(StreamDecoder, HoldsBackSplitUtf8) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const Tokenizer tok = load_fixture("tokenizer/ggml-vocab-llama-spm.gguf");
  // The llama emoji has no token: it falls back to its four bytes, one token each.
  const Ids ids = tok.encode("\xF0\x9F\xA6\x99!", false, false);
  ASSERT_GE(ids.size(), 5u);
  StreamDecoder stream(tok);
  std::vector<std::string> outs;
  for (int32_t id : ids) outs.push_back(stream.push(id));
  std::string all;
  for (const auto& o : outs) all += o;
  all += stream.flush();
  EXPECT_EQ(all, " \xF0\x9F\xA6\x99!");
  // No output ever ends inside the emoji.
  for (const auto& o : outs) EXPECT_EQ(utf8_complete_prefix(o), o.size()) << o;
}

TEST(StreamDecoder, CompletePrefix) {
  EXPECT_EQ(utf8_complete_prefix(""), 0u);
  EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8_complete_prefix("ab\xC3"), 2u);
  EXPECT_EQ(utf8_complete_prefix("ab\xC3\xA9"), 4u);
  EXPECT_EQ(utf8_complete_prefix("a\xE2\x82"), 1u);
  EXPECT_EQ(utf8_complete_prefix("a\xF0\x9F\xA6"), 1u);
  EXPECT_EQ(utf8_complete_prefix("a\xF0\x9F\xA6\x99"), 5u);
  EXPECT_EQ(utf8_complete_prefix("a\x80"), 2u);  // a stray continuation byte never completes
  EXPECT_EQ(utf8_complete_prefix("a\xFF"), 2u);  // nor does an invalid lead
}

// ---- load errors on in-memory GGUF files -------------------------------------------------------

gguf::Value int32_array(const std::vector<int32_t>& v) {
  std::vector<gguf::Value> items;
  for (int32_t x : v) items.push_back(gguf::make_int(gguf::ValueType::kInt32, x));
  return gguf::make_array(gguf::ValueType::kInt32, std::move(items));
}

gguf::Value float_array(const std::vector<float>& v) {
  std::vector<gguf::Value> items;
  for (float x : v) items.push_back(gguf::make_float(gguf::ValueType::kFloat32, x));
  return gguf::make_array(gguf::ValueType::kFloat32, std::move(items));
}

std::shared_ptr<const gguf::Reader> in_memory(const gguf::Writer& w) {
  const std::vector<std::byte> bytes = w.to_bytes();
  return gguf::Reader::parse(FileBytes::from_memory(bytes));
}

// A tiny SPM vocabulary: <unk>, <s>, </s>, 256 byte tokens, then `extra` normal tokens.
gguf::Writer tiny_spm(const std::vector<std::string>& extra) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.emplace_back(name);
    types.push_back(6);
  }
  for (const auto& e : extra) {
    tokens.push_back(e);
    types.push_back(1);
  }
  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set("tokenizer.ggml.scores", float_array(std::vector<float>(tokens.size(), 0.0f)));
  w.set("tokenizer.ggml.token_type", int32_array(types));
  return w;
}

gguf::Writer tiny_bpe(const std::string& pre) {
  const std::vector<std::string> tokens = {"a", "b", "ab", "<|endoftext|>"};
  const std::vector<std::string> merges = {"a b"};
  gguf::Writer w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", pre);
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set("tokenizer.ggml.token_type", int32_array({1, 1, 1, 3}));
  w.set_string_array("tokenizer.ggml.merges", merges);
  w.set_uint32("tokenizer.ggml.eos_token_id", 3);
  w.set_uint32("tokenizer.ggml.bos_token_id", 3);
  return w;
}

void expect_error(const gguf::Writer& w, ErrorKind kind, const std::string& needle) {
  const auto reader = in_memory(w);
  try {
    (void)Tokenizer::from_gguf(*reader);
    ADD_FAILURE() << "no error; expected one mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(TokenizerLoad, TinyBpeWorks) {
  const auto reader = in_memory(tiny_bpe("gpt-2"));
  const Tokenizer tok = Tokenizer::from_gguf(*reader);
  EXPECT_EQ(tok.encode("abab", false, false), (Ids{2, 2}));
  EXPECT_EQ(tok.encode("ab", true, false), (Ids{2}));  // gpt-2: no BOS unless the file asks
  EXPECT_TRUE(tok.is_eog(3));
}

TEST(TokenizerLoad, TinySpmSplitCharacterStreams) {
  const auto reader =
      in_memory(tiny_spm({"\xE2\x96\x81"
                          "a"}));
  const Tokenizer tok = Tokenizer::from_gguf(*reader);
  // "é" has no token: its two bytes come out as <0xC3> <0xA9>, each half a character.
  const Ids ids = tok.encode("a\xC3\xA9", false, false);
  ASSERT_EQ(ids.size(), 3u);
  StreamDecoder stream(tok);
  EXPECT_EQ(stream.push(ids[0]), " a");
  EXPECT_EQ(stream.push(ids[1]), "");
  EXPECT_EQ(stream.push(ids[2]), "\xC3\xA9");
  EXPECT_EQ(stream.flush(), "");
  EXPECT_EQ(stream.push(ids[1]), "");
  EXPECT_EQ(stream.flush(), "\xC3");
}

TEST(TokenizerLoad, UnknownPreTokenizerIsUnsupported) {
  expect_error(tiny_bpe("no-such-pre"), ErrorKind::kUnsupported, "no-such-pre");
}

TEST(TokenizerLoad, UnknownModelIsUnsupported) {
  gguf::Writer w = tiny_bpe("gpt-2");
  w.set_string("tokenizer.ggml.model", "t5");
  expect_error(w, ErrorKind::kUnsupported, "t5");
  w.set_string("tokenizer.ggml.model", "bert");
  expect_error(w, ErrorKind::kUnsupported, "WordPiece");
}

TEST(TokenizerLoad, MalformedVocabularies) {
  gguf::Writer w = tiny_bpe("gpt-2");
  w.remove("tokenizer.ggml.merges");
  expect_error(w, ErrorKind::kNotFound, "tokenizer.ggml.merges");

  gguf::Writer dup = tiny_bpe("gpt-2");
  const std::vector<std::string> tokens = {"a", "b", "a", "x"};
  dup.set_string_array("tokenizer.ggml.tokens", tokens);
  expect_error(dup, ErrorKind::kFormat, "duplicate");

  gguf::Writer short_types = tiny_spm({});
  short_types.set("tokenizer.ggml.token_type", int32_array({2, 3}));
  expect_error(short_types, ErrorKind::kFormat, "tokenizer.ggml.token_type");

  gguf::Writer no_bos = tiny_bpe("gpt-2");
  no_bos.remove("tokenizer.ggml.bos_token_id");
  no_bos.set_uint32("tokenizer.ggml.bos_token_id", 99);  // outside: keeps the default, 11, also outside
  no_bos.set_bool("tokenizer.ggml.add_bos_token", true);
  expect_error(no_bos, ErrorKind::kFormat, "add_bos_token");

  gguf::Writer missing = tiny_spm({});
  missing.remove("tokenizer.ggml.model");
  expect_error(missing, ErrorKind::kNotFound, "tokenizer.ggml.model");
}

TEST(TokenizerLoad, BadIdsAreRejectedAtUse) {
  const auto reader = in_memory(tiny_bpe("gpt-2"));
  const Tokenizer tok = Tokenizer::from_gguf(*reader);
  EXPECT_THROW((void)tok.token_to_piece(4), Error);
  EXPECT_THROW((void)tok.token_to_piece(-1), Error);
  EXPECT_FALSE(tok.is_eog(-1));
}

}  // namespace
}  // namespace lightboat::tokenizer

// Pre-tokenizer splits on chosen strings, including the ones no vector file covers (qwen2,
// smollm), and the Unicode details where a naive PCRE2 translation would differ from llama.cpp.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"

namespace lightboat::tokenizer {
namespace {

using Words = std::vector<std::string>;

Words split(const char* pre, const std::string& text) {
  return PreTokenizer(pre).split(text);
}

TEST(PreTokenizer, Qwen2SplitsDigitsOneByOne) {
  EXPECT_EQ(split("qwen2", "abc 12345"), (Words{"abc", " ", "1", "2", "3", "4", "5"}));
  EXPECT_EQ(split("qwen2", "I'M here's"), (Words{"I", "'M", " here", "'s"}));
  EXPECT_EQ(split("qwen2", "x\n\n  y"), (Words{"x", "\n\n", " ", " y"}));
  EXPECT_EQ(split("qwen2", "hi!!\n"), (Words{"hi", "!!\n"}));
}

TEST(PreTokenizer, Llama3GroupsDigitsByThree) {
  EXPECT_EQ(split("llama-bpe", "abc 1234567"), (Words{"abc", " ", "123", "456", "7"}));
  EXPECT_EQ(split("llama3", "I'VE"), (Words{"I", "'VE"}));  // contractions ignore case
  EXPECT_EQ(split("llama-v3", "a   b"), (Words{"a", "  ", " b"}));
}

TEST(PreTokenizer, SmollmAndStarcoderSplitDigitsThenGpt2) {
  for (const char* pre : {"smollm", "starcoder", "refact"}) {
    EXPECT_EQ(split(pre, "abc 12345"), (Words{"abc", " ", "1", "2", "3", "4", "5"})) << pre;
    EXPECT_EQ(split(pre, "I'M it's"), (Words{"I", "'", "M", " it", "'s"})) << pre;  // case-sensitive
  }
}

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split("gpt-2", "Hello, world!  x 42"), (Words{"Hello", ",", " world", "!", " ", " x", " 42"}));
}

TEST(PreTokenizer, DefaultWhenAbsent) {
  EXPECT_EQ(PreTokenizer("").spec().name, "default");
  EXPECT_EQ(split("default", "a+b 12345"), (Words{"a", "+", "b", " ", "123", "45"}));
}

TEST(PreTokenizer, NonAsciiWhitespaceIsWhitespace) {
  // Two no-break spaces before a letter: \s+(?!\S) takes one, the other leads the word. Were
  // U+00A0 not \s, [^\s\p{L}\p{N}]+ would have taken both.
  EXPECT_EQ(split("llama-bpe",
                  "a\xC2\xA0\xC2\xA0"
                  "b"),
            (Words{"a", "\xC2\xA0",
                   "\xC2\xA0"
                   "b"}));
  EXPECT_EQ(split("qwen2",
                  "a\xE3\x80\x80\xE3\x80\x80"
                  "b"),
            (Words{"a", "\xE3\x80\x80",
                   "\xE3\x80\x80"
                   "b"}));
  // ...but not a letter: ideographic space U+3000 ends a DeepSeek punctuation run.
  EXPECT_EQ(split("deepseek-llm", "!!\xE3\x80\x80"), (Words{"!!", "\xE3\x80\x80"}));
}

TEST(PreTokenizer, DeepseekTrailingWhitespaceAndCjk) {
  EXPECT_EQ(split("deepseek-llm", "ab  "), (Words{"ab", "  "}));
  EXPECT_EQ(split("deepseek-llm",
                  "\xE4\xBD\xA0\xE5\xA5\xBD"
                  "ab"),
            (Words{"\xE4\xBD\xA0\xE5\xA5\xBD", "ab"}));
  EXPECT_EQ(split("deepseek-coder", "x1 23"), (Words{"x", "1", " ", "2", "3"}));
}

TEST(PreTokenizer, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(split("gpt-2",
                  "a\xFF"
                  "b"),
            (Words{"a", "\xEF\xBF\xBD", "b"}));
  EXPECT_EQ(split("llama-bpe", "\xC3"), (Words{"\xEF\xBF\xBD"}));
  EXPECT_EQ(split("gpt-2", ""), Words{});
}

TEST(PreTokenizer, UnknownNameIsUnsupported) {
  try {
    PreTokenizer p("made-up");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("made-up"), std::string::npos);
  }
  EXPECT_EQ(find_pre_tokenizer("made-up"), nullptr);
  ASSERT_NE(find_pre_tokenizer("llama-bpe"), nullptr);
  EXPECT_TRUE(find_pre_tokenizer("llama-bpe")->ignore_merges);
  EXPECT_FALSE(find_pre_tokenizer("qwen2")->ignore_merges);
}

TEST(Unicode, Gpt2ByteMapRoundTrips) {
  for (int b = 0; b < 256; ++b) {
    const std::string img(gpt2_byte_to_unicode(static_cast<uint8_t>(b)));
    const auto cpts = decode_utf8_lenient(img);
    ASSERT_EQ(cpts.size(), 1u);
    EXPECT_EQ(gpt2_unicode_to_byte(cpts[0]), static_cast<uint8_t>(b));
  }
  EXPECT_EQ(gpt2_byte_to_unicode(' '), "\xC4\xA0");  // U+0120, the familiar "Ġ"
  EXPECT_FALSE(gpt2_unicode_to_byte(0x4E00).has_value());
}

TEST(Unicode, LenientDecoding) {
  EXPECT_EQ(decode_utf8_lenient("a\xC3\xA9"), (std::vector<uint32_t>{'a', 0xE9}));
  EXPECT_EQ(decode_utf8_lenient("\xE2\x82"), (std::vector<uint32_t>{kReplacementChar, kReplacementChar}));
  EXPECT_EQ(decode_utf8_lenient("\x80z"), (std::vector<uint32_t>{kReplacementChar, 'z'}));
}

}  // namespace
}  // namespace lightboat::tokenizer

// The few Unicode facts the tokenizers need, with llama.cpp's exact conventions where they differ
// from a strict reading of UTF-8: lenient decoding (bad bytes become U+FFFD, one byte at a time),
// the White_Space set the pre-tokenizer regexes treat as \s, and GPT-2's byte <-> unicode map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lightboat::tokenizer {

inline constexpr uint32_t kReplacementChar = 0xFFFD;

// Bytes in the UTF-8 sequence that `lead` starts, judged from its high bits only (1 for a
// continuation byte or 0xF8..0xFF), as llama.cpp splits text into symbols.
inline size_t utf8_sequence_length(char lead) {
  static constexpr size_t kByHighNibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kByHighNibble[static_cast<uint8_t>(lead) >> 4];
}

// Decodes `text` the way llama.cpp does before pre-tokenizing: each well-formed lead+continuation
// sequence gives its code point (overlong forms and surrogates are not rejected), any other byte
// gives U+FFFD and decoding resumes at the next byte. Values above U+10FFFF also become U+FFFD
// (llama.cpp throws there).
std::vector<uint32_t> decode_utf8_lenient(std::string_view text);

// Appends the UTF-8 encoding of `cpt` (<= 0x10FFFF; surrogates are encoded like any other value).
void append_utf8(uint32_t cpt, std::string& out);

// The Unicode White_Space property: what every pre-tokenizer regex means by \s.
bool is_unicode_whitespace(uint32_t cpt);

// GPT-2 byte-level BPE maps each byte to a printable code point so that merges never see raw
// control bytes or spaces: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.
// Returns the UTF-8 text of that code point (1 or 2 bytes).
std::string_view gpt2_byte_to_unicode(uint8_t byte);
// The inverse, for one code point; nullopt when `cpt` is not one of the 256 images.
std::optional<uint8_t> gpt2_unicode_to_byte(uint32_t cpt);

}  // namespace lightboat::tokenizer

#include "tokenizer/unicode.h"

#include <array>

namespace lightboat::tokenizer {

namespace {

bool is_continuation(uint8_t b) {
  return (b & 0xC0) == 0x80;
}

// The 256-entry GPT-2 table, built once. `images[b]` is the code point byte b maps to.
struct Gpt2ByteTable {
  std::array<uint32_t, 256> images{};
  std::array<std::string, 256> utf8;

  Gpt2ByteTable() {
    auto kept = [](int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); };
    uint32_t next = 256;  // unprintable bytes take U+0100, U+0101, ... in byte order
    for (int b = 0; b < 256; ++b) {
      images[b] = kept(b) ? static_cast<uint32_t>(b) : next++;
      append_utf8(images[b], utf8[b]);
    }
  }
};

const Gpt2ByteTable& gpt2_table() {
  static const Gpt2ByteTable table;
  return table;
}

}  // namespace

std::vector<uint32_t> decode_utf8_lenient(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t b0 = p[i];
    size_t len = 0;
    uint32_t cpt = 0;
    if (b0 < 0x80) {
      len = 1, cpt = b0;
    } else if ((b0 & 0xE0) == 0xC0) {
      len = 2, cpt = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3, cpt = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4, cpt = b0 & 0x07;
    }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = is_continuation(p[i + k]);
      cpt = (cpt << 6) | (p[i + k] & 0x3F);
    }
    if (ok && cpt <= 0x10FFFF) {
      out.push_back(cpt);
      i += len;
    } else {
      out.push_back(kReplacementChar);
      i += 1;
    }
  }
  return out;
}

void append_utf8(uint32_t cpt, std::string& out) {
  if (cpt <= 0x7F) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt <= 0x7FF) {
    out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt <= 0xFFFF) {
    out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | ((cpt >> 18) & 0x07)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

bool is_unicode_whitespace(uint32_t cpt) {
  if (cpt <= 0x20) return cpt == 0x20 || (cpt >= 0x09 && cpt <= 0x0D);
  switch (cpt) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cpt >= 0x2000 && cpt <= 0x200A;
  }
}

std::string_view gpt2_byte_to_unicode(uint8_t byte) {
  return gpt2_table().utf8[byte];
}

std::optional<uint8_t> gpt2_unicode_to_byte(uint32_t cpt) {
  if (cpt < 256) {
    const uint32_t b = cpt;
    if (gpt2_table().images[b] == cpt) return static_cast<uint8_t>(b);
    return std::nullopt;
  }
  // Images above 0xFF are assigned in byte order to the bytes not kept as themselves.
  static const std::array<int16_t, 80> moved = [] {
    std::array<int16_t, 80> m{};
    m.fill(-1);
    for (int b = 0; b < 256; ++b) {
      const uint32_t img = gpt2_table().images[b];
      if (img >= 256 && img - 256 < m.size()) m[img - 256] = static_cast<int16_t>(b);
    }
    return m;
  }();
  if (cpt - 256 < moved.size() && moved[cpt - 256] >= 0) return static_cast<uint8_t>(moved[cpt - 256]);
  return std::nullopt;
}

}  // namespace lightboat::tokenizer

// Text -> token ids: special-token partitioning, then SentencePiece-style or byte-level BPE over
// each run of plain text, each the same algorithm (and tie-breaks) as llama.cpp's.
#include <algorithm>
#include <queue>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace lightboat::tokenizer {

namespace {

// isspace in the "C" locale, which llama.cpp uses for LSTRIP/RSTRIP.
bool is_c_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

// One symbol of a word being merged: a byte range of the word that grows as merges absorb the
// symbol to its right, in a doubly linked list of the symbols still alive.
struct Symbol {
  size_t start = 0;
  size_t n = 0;  // bytes; 0 once merged into its left neighbour
  int prev = -1;
  int next = -1;
  int32_t id = kNoToken;  // BPE: token or merge-only id of the current text
};

// Cuts `text` into symbols of one UTF-8 sequence each (judged by the lead byte, as llama.cpp).
std::vector<Symbol> initial_symbols(std::string_view text) {
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t offset = 0; offset < text.size();) {
    Symbol s;
    s.start = offset;
    s.n = std::min(utf8_sequence_length(text[offset]), text.size() - offset);
    offset += s.n;
    s.prev = static_cast<int>(symbols.size()) - 1;
    s.next = offset == text.size() ? -1 : static_cast<int>(symbols.size()) + 1;
    symbols.push_back(s);
  }
  return symbols;
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const std::vector<Fragment> fragments = partition_special(text, parse_special);
  std::vector<int32_t> out;
  if (add_special && add_bos_) out.push_back(bos_);
  if (type_ == ModelType::kSpm) {
    // A run of text gets the space prefix when it starts the input or follows a special token.
    bool prev_special = true;
    std::string run;
    for (const Fragment& f : fragments) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      run.clear();
      if (add_space_prefix_ && prev_special) run.push_back(' ');
      run.append(text.substr(f.offset, f.length));
      encode_spm(run, out);
      prev_special = false;
    }
  } else {
    for (const Fragment& f : fragments) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
      } else {
        encode_bpe(text.substr(f.offset, f.length), out);
      }
    }
  }
  if (add_special && add_eos_) out.push_back(eos_);
  return out;
}

// For each special token, longest first, every text fragment is cut at each occurrence of it.
std::vector<Tokenizer::Fragment> Tokenizer::partition_special(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({kNoToken, 0, text.size()});
  std::vector<Fragment> next;
  for (const int32_t id : special_cache_) {
    const Token& special = tokens_[id];
    // CONTROL and UNKNOWN tokens only when asked; USER_DEFINED ones always.
    if (!parse_special && (special.attr & (kAttrControl | kAttrUnknown))) continue;
    const std::string_view needle = special.text;
    next.clear();
    bool changed = false;
    for (const Fragment& f : fragments) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t base = f.offset;
      size_t len = f.length;
      while (len > 0) {
        const size_t match = text.substr(0, base + len).find(needle, base);
        if (match == std::string_view::npos) {
          next.push_back({kNoToken, base, len});
          break;
        }
        changed = true;
        size_t left = match - base;
        if (special.attr & kAttrLstrip) {
          while (left > 0 && is_c_space(text[base + left - 1])) --left;
        }
        if (left > 0) next.push_back({kNoToken, base, left});
        next.push_back({id, 0, 0});
        size_t right = base + len - (match + needle.size());
        size_t right_at = match + needle.size();
        if (special.attr & kAttrRstrip) {
          while (right > 0 && is_c_space(text[right_at])) ++right_at, --right;
        }
        base = right_at;
        len = right;
      }
    }
    if (changed) fragments.swap(next);
  }
  return fragments;
}

void Tokenizer::encode_spm(std::string_view raw, std::vector<int32_t>& out) const {
  // Spaces are written as U+2581 (E2 96 81) in SentencePiece vocabularies.
  std::string text;
  text.reserve(raw.size() + raw.size() / 2);
  for (char c : raw) {
    if (c == ' ') {
      text += "\xE2\x96\x81";
    } else {
      text.push_back(c);
    }
  }
  std::vector<Symbol> symbols = initial_symbols(text);

  // Repeatedly merge the adjacent pair whose concatenation is the highest-scoring token; on equal
  // scores the leftmost pair wins.
  struct Bigram {
    int left, right;
    float score;
    size_t size;  // bytes of the merged text, to detect pairs made stale by other merges
  };
  auto lower = [](const Bigram& a, const Bigram& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(lower)> queue(lower);
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t size = symbols[left].n + symbols[right].n;
    const int32_t id = lookup(std::string_view(text).substr(symbols[left].start, size));
    if (id == kNoToken) return;
    queue.push({left, right, tokens_[id].score, size});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  // A symbol that is no token is a single character the vocabulary lacks: its bytes fall back to
  // <0xXX> tokens (and to UNK where even those are missing, where llama.cpp would throw).
  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = std::string_view(text).substr(symbols[i].start, symbols[i].n);
    if (const int32_t id = lookup(piece); id != kNoToken) {
      out.push_back(id);
      continue;
    }
    for (char c : piece) {
      const int32_t byte_id = byte_tokens_[static_cast<uint8_t>(c)];
      if (byte_id != kNoToken) {
        out.push_back(byte_id);
      } else if (unk_ != kNoToken) {
        out.push_back(unk_);
      }
    }
  }
}

void Tokenizer::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  std::string encoded;
  for (const std::string& word : pre_->split(text)) {
    encoded.clear();
    for (char c : word) encoded += gpt2_byte_to_unicode(static_cast<uint8_t>(c));
    encode_bpe_word(encoded, out);
  }
}

void Tokenizer::encode_bpe_word(const std::string& word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const int32_t id = lookup(word); id != kNoToken) {
      out.push_back(id);
      return;
    }
  }
  std::vector<Symbol> symbols = initial_symbols(word);
  for (Symbol& s : symbols) s.id = piece_id(std::string_view(word).substr(s.start, s.n));

  // Repeatedly apply the lowest-ranked merge among adjacent pairs; equal ranks go leftmost first.
  struct Bigram {
    int left, right;
    int32_t rank;
    size_t size;  // bytes of the merged text, to detect stale pairs
  };
  auto later = [](const Bigram& a, const Bigram& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(later)> queue(later);
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const int32_t l = symbols[left].id, r = symbols[right].id;
    if (l == kNoToken || r == kNoToken) return;
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
    const auto it = merges_.find(key);
    if (it == merges_.end()) return;
    queue.push({left, right, it->second, symbols[left].n + symbols[right].n});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    // Every text a merge uses as a part has an id (a token's, or one load_merges gave it), so a
    // text without one can take part in no further merge.
    l.id = piece_id(std::string_view(word).substr(l.start, l.n));
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  for (int i = 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (s.id != kNoToken && s.id < n_vocab()) {
      out.push_back(s.id);
      continue;
    }
    // No token for this text: llama.cpp looks up each of its bytes as a one-byte token and drops
    // the bytes that are none (only printable ASCII can match, the text being byte-encoded).
    for (char c : word.substr(s.start, s.n)) {
      if (const int32_t id = lookup(std::string_view(&c, 1)); id != kNoToken) out.push_back(id);
    }
  }
}

}  // namespace lightboat::tokenizer

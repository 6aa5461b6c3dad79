#include "runtime/kv_pages.h"

#include <algorithm>
#include <string>

#include "base/error.h"

namespace lightboat::runtime {
namespace {

// Key of the (non-existent) page before the first one: any fixed value works.
constexpr uint64_t kRootKey = 0x6c62272e07bb0142ull;

// splitmix64's finaliser: a cheap full-avalanche mix, so nearby token ids spread over all bits.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

[[noreturn]] void internal(const std::string& what) {
  throw Error(ErrorKind::kInternal, "KvPages: " + what);
}

}  // namespace

KvPages::KvPages(const KvPagesConfig& config)
    : n_pages_(config.n_pages), page_size_(config.page_size), hash_mask_(config.hash_mask) {
  check(n_pages_ >= 1, ErrorKind::kInvalidArgument,
        [&] { return "KvPages: n_pages must be >= 1, got " + std::to_string(n_pages_); });
  check(page_size_ >= 1, ErrorKind::kInvalidArgument,
        [&] { return "KvPages: page_size must be >= 1, got " + std::to_string(page_size_); });
  pages_.resize(static_cast<size_t>(n_pages_));
  page_tokens_.resize(static_cast<size_t>(n_pages_) * static_cast<size_t>(page_size_));
  free_.reserve(static_cast<size_t>(n_pages_));
  // Highest id at the bottom of the stack, so pages are handed out 0, 1, 2, ... at first
  // (predictable in tests, and the first pages of the pool are touched first).
  for (PageId p = n_pages_ - 1; p >= 0; --p) free_.push_back(p);
}

SeqId KvPages::create() {
  const SeqId id = next_seq_++;
  seqs_.emplace(id, Seq{});
  return id;
}

KvPages::Seq& KvPages::seq_at(SeqId seq) {
  auto it = seqs_.find(seq);
  check(it != seqs_.end(), ErrorKind::kInvalidArgument,
        [&] { return "KvPages: unknown sequence " + std::to_string(seq); });
  return it->second;
}

const KvPages::Seq& KvPages::seq_at(SeqId seq) const {
  auto it = seqs_.find(seq);
  check(it != seqs_.end(), ErrorKind::kInvalidArgument,
        [&] { return "KvPages: unknown sequence " + std::to_string(seq); });
  return it->second;
}

uint64_t KvPages::chain_key(uint64_t prev_key, std::span<const TokenId> page_tokens) const {
  uint64_t h = mix64(prev_key + 0x9e3779b97f4a7c15ull);
  for (TokenId t : page_tokens) h = mix64(h ^ static_cast<uint32_t>(t));
  return h & hash_mask_;
}

PageId KvPages::lookup(uint64_t key, PageId parent, std::span<const TokenId> page_tokens) const {
  auto it = index_.find(key);
  if (it == index_.end()) return -1;
  const PageId c = it->second;
  const Page& page = pages_[static_cast<size_t>(c)];
  // The hash only finds a candidate; identity of the parent and equality of the tokens decide.
  if (page.parent != parent) return -1;
  if (parent >= 0 && page.parent_gen != pages_[static_cast<size_t>(parent)].gen) return -1;
  const TokenId* stored = &page_tokens_[static_cast<size_t>(c) * static_cast<size_t>(page_size_)];
  if (!std::equal(page_tokens.begin(), page_tokens.end(), stored)) return -1;
  return c;
}

int32_t KvPages::peek_prefix(std::span<const TokenId> tokens) const {
  if (tokens.empty()) return 0;
  const size_t ps = static_cast<size_t>(page_size_);
  const size_t max_pages = (tokens.size() - 1) / ps;  // leave >= 1 token to compute
  uint64_t key = kRootKey;
  PageId parent = -1;
  size_t i = 0;
  for (; i < max_pages; ++i) {
    const auto page_tokens = tokens.subspan(i * ps, ps);
    key = chain_key(key, page_tokens);
    const PageId c = lookup(key, parent, page_tokens);
    if (c < 0) break;
    parent = c;
  }
  return static_cast<int32_t>(i * ps);
}

int32_t KvPages::match_prefix(SeqId seq, std::span<const TokenId> tokens) {
  Seq& s = seq_at(seq);
  check(s.pages.empty(), ErrorKind::kInvalidArgument,
        [&] { return "KvPages::match_prefix: sequence " + std::to_string(seq) + " is not empty"; });
  prefix_query_tokens_ += static_cast<int64_t>(tokens.size());
  if (tokens.empty()) return 0;
  const size_t ps = static_cast<size_t>(page_size_);
  const size_t max_pages = (tokens.size() - 1) / ps;
  uint64_t key = kRootKey;
  PageId parent = -1;
  for (size_t i = 0; i < max_pages; ++i) {
    const auto page_tokens = tokens.subspan(i * ps, ps);
    key = chain_key(key, page_tokens);
    const PageId c = lookup(key, parent, page_tokens);
    if (c < 0) break;
    Page& page = pages_[static_cast<size_t>(c)];
    if (page.ref == 0) lru_remove(c);
    ++page.ref;
    s.pages.push_back(c);
    s.keys.push_back(key);
    s.tokens.insert(s.tokens.end(), page_tokens.begin(), page_tokens.end());
    parent = c;
  }
  prefix_hit_tokens_ += static_cast<int64_t>(s.tokens.size());
  return static_cast<int32_t>(s.tokens.size());
}

int32_t KvPages::pages_needed(SeqId seq, int32_t n_tokens) const {
  check(n_tokens >= 0, ErrorKind::kInvalidArgument,
        [&] { return "KvPages: token count must be >= 0, got " + std::to_string(n_tokens); });
  const Seq& s = seq_at(seq);
  const int64_t target = static_cast<int64_t>(s.tokens.size()) + n_tokens;
  const int64_t pages = (target + page_size_ - 1) / page_size_;
  return static_cast<int32_t>(std::clamp<int64_t>(pages - static_cast<int64_t>(s.pages.size()), 0, INT32_MAX));
}

KvStatus KvPages::reserve(SeqId seq, int32_t n_tokens) {
  const int32_t need = pages_needed(seq, n_tokens);
  if (need > available_pages()) return KvStatus::kNoPages;
  Seq& s = seq_at(seq);
  for (int32_t i = 0; i < need; ++i) s.pages.push_back(allocate());
  return KvStatus::kOk;
}

PageId KvPages::allocate() {
  PageId p;
  if (!free_.empty()) {
    p = free_.back();
    free_.pop_back();
  } else {
    if (lru_head_ < 0) internal("allocate() with no available page");
    p = lru_head_;
    uncache(p);
    ++evictions_;
  }
  Page& page = pages_[static_cast<size_t>(p)];
  ++page.gen;  // new content: children registered under the old content must no longer match
  page.ref = 1;
  page.parent = -1;
  return p;
}

void KvPages::commit(SeqId seq, std::span<const TokenId> tokens) {
  Seq& s = seq_at(seq);
  const size_t capacity = s.pages.size() * static_cast<size_t>(page_size_);
  check(s.tokens.size() + tokens.size() <= capacity, ErrorKind::kInvalidArgument, [&] {
    return "KvPages::commit: sequence " + std::to_string(seq) + " would hold " +
           std::to_string(s.tokens.size() + tokens.size()) + " tokens but has room for " + std::to_string(capacity);
  });
  const size_t full_before = s.tokens.size() / static_cast<size_t>(page_size_);
  s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
  const size_t full_after = s.tokens.size() / static_cast<size_t>(page_size_);
  for (size_t i = full_before; i < full_after; ++i) register_full_page(s, i);
}

void KvPages::register_full_page(Seq& s, size_t index) {
  const size_t ps = static_cast<size_t>(page_size_);
  const auto page_tokens = std::span<const TokenId>(s.tokens).subspan(index * ps, ps);
  const uint64_t key = chain_key(index == 0 ? kRootKey : s.keys[index - 1], page_tokens);
  s.keys.push_back(key);
  const PageId p = s.pages[index];
  Page& page = pages_[static_cast<size_t>(p)];
  if (page.cached) return;
  const PageId parent = index == 0 ? -1 : s.pages[index - 1];
  // A page after an uncached one could never be reached by match_prefix: keep it private.
  if (parent >= 0 && !pages_[static_cast<size_t>(parent)].cached) return;
  // Key taken: the same prefix computed by two sequences at once, or a hash collision. Either
  // way the existing entry stays and this page stays private (freed, not cached, on release).
  if (!index_.emplace(key, p).second) return;
  page.cached = true;
  page.key = key;
  page.parent = parent;
  page.parent_gen = parent >= 0 ? pages_[static_cast<size_t>(parent)].gen : 0;
  std::copy(page_tokens.begin(), page_tokens.end(), page_tokens_.begin() + static_cast<std::ptrdiff_t>(p * ps));
}

int32_t KvPages::truncate(SeqId seq, int32_t n_tokens) {
  Seq& s = seq_at(seq);
  check(n_tokens >= 0 && static_cast<size_t>(n_tokens) <= s.tokens.size(), ErrorKind::kInvalidArgument, [&] {
    return "KvPages::truncate: sequence " + std::to_string(seq) + " has " + std::to_string(s.tokens.size()) +
           " tokens, cannot keep " + std::to_string(n_tokens);
  });
  size_t keep = static_cast<size_t>(n_tokens);
  const size_t ps = static_cast<size_t>(page_size_);
  size_t keep_pages = (keep + ps - 1) / ps;
  if (keep % ps != 0) {
    // The kept tokens end inside this page, which will be written again from slot keep % ps.
    const PageId last = s.pages[keep_pages - 1];
    Page& page = pages_[static_cast<size_t>(last)];
    if (page.cached && page.ref > 1) {
      --keep_pages;  // shared and read-only: give it up, cut back to the page boundary
      keep = keep_pages * ps;
    } else if (page.cached) {
      uncache(last);  // ours alone: it stops being a cache entry and becomes writable again
    }
  }
  while (s.pages.size() > keep_pages) {
    unref(s.pages.back());
    s.pages.pop_back();
  }
  s.tokens.resize(keep);
  s.keys.resize(keep / ps);
  return static_cast<int32_t>(keep);
}

void KvPages::release(SeqId seq) {
  Seq& s = seq_at(seq);
  // Deepest page first: the LRU list then evicts the tail of a prefix before its head, so a
  // shorter prefix stays matchable as long as possible.
  for (auto it = s.pages.rbegin(); it != s.pages.rend(); ++it) unref(*it);
  seqs_.erase(seq);
}

void KvPages::unref(PageId p) {
  Page& page = pages_[static_cast<size_t>(p)];
  if (page.ref <= 0) internal("reference count of page " + std::to_string(p) + " would go negative");
  if (--page.ref > 0) return;
  if (page.cached) {
    lru_push_back(p);
  } else {
    free_.push_back(p);
  }
}

void KvPages::uncache(PageId p) {
  Page& page = pages_[static_cast<size_t>(p)];
  index_.erase(page.key);
  page.cached = false;
  ++page.gen;
  if (page.ref == 0) lru_remove(p);
}

void KvPages::lru_push_back(PageId p) {
  Page& page = pages_[static_cast<size_t>(p)];
  page.lru_prev = lru_tail_;
  page.lru_next = -1;
  if (lru_tail_ >= 0) {
    pages_[static_cast<size_t>(lru_tail_)].lru_next = p;
  } else {
    lru_head_ = p;
  }
  lru_tail_ = p;
  ++n_lru_;
}

void KvPages::lru_remove(PageId p) {
  Page& page = pages_[static_cast<size_t>(p)];
  if (page.lru_prev >= 0) {
    pages_[static_cast<size_t>(page.lru_prev)].lru_next = page.lru_next;
  } else {
    lru_head_ = page.lru_next;
  }
  if (page.lru_next >= 0) {
    pages_[static_cast<size_t>(page.lru_next)].lru_prev = page.lru_prev;
  } else {
    lru_tail_ = page.lru_prev;
  }
  page.lru_prev = page.lru_next = -1;
  --n_lru_;
}

std::span<const PageId> KvPages::page_table(SeqId seq) const {
  return seq_at(seq).pages;
}
std::span<const TokenId> KvPages::tokens(SeqId seq) const {
  return seq_at(seq).tokens;
}
int32_t KvPages::n_tokens(SeqId seq) const {
  return static_cast<int32_t>(seq_at(seq).tokens.size());
}
int32_t KvPages::capacity(SeqId seq) const {
  return static_cast<int32_t>(seq_at(seq).pages.size()) * page_size_;
}

int32_t KvPages::exclusive_pages(SeqId seq) const {
  const Seq& s = seq_at(seq);
  return static_cast<int32_t>(
      std::count_if(s.pages.begin(), s.pages.end(), [&](PageId p) { return pages_[static_cast<size_t>(p)].ref == 1; }));
}

int32_t KvPages::ref_count(PageId page) const {
  check(page >= 0 && page < n_pages_, ErrorKind::kInvalidArgument,
        [&] { return "KvPages: no page " + std::to_string(page); });
  return pages_[static_cast<size_t>(page)].ref;
}

bool KvPages::is_cached(PageId page) const {
  check(page >= 0 && page < n_pages_, ErrorKind::kInvalidArgument,
        [&] { return "KvPages: no page " + std::to_string(page); });
  return pages_[static_cast<size_t>(page)].cached;
}

KvStats KvPages::stats() const {
  KvStats st{.n_pages = n_pages_, .page_size = page_size_};
  st.free = static_cast<int32_t>(free_.size());
  st.cached = n_lru_;
  for (const Page& page : pages_) {
    if (page.ref > 0) ++st.in_use;
    if (page.ref > 1) ++st.shared;
  }
  st.n_sequences = static_cast<int32_t>(seqs_.size());
  st.prefix_hit_tokens = prefix_hit_tokens_;
  st.prefix_query_tokens = prefix_query_tokens_;
  st.evictions = evictions_;
  return st;
}

void KvPages::check_invariants() const {
  const size_t n = static_cast<size_t>(n_pages_);
  std::vector<int32_t> refs(n, 0);
  for (const auto& [id, s] : seqs_) {
    for (PageId p : s.pages) {
      if (p < 0 || p >= n_pages_) internal("sequence " + std::to_string(id) + " holds bad page " + std::to_string(p));
      ++refs[static_cast<size_t>(p)];
    }
    if (s.tokens.size() > s.pages.size() * static_cast<size_t>(page_size_)) {
      internal("sequence " + std::to_string(id) + " holds more tokens than its pages");
    }
    if (s.keys.size() != s.tokens.size() / static_cast<size_t>(page_size_)) {
      internal("sequence " + std::to_string(id) + " has a wrong number of page keys");
    }
  }
  std::vector<char> listed(n, 0);  // 1 = free list, 2 = LRU list
  for (PageId p : free_) {
    const Page& page = pages_[static_cast<size_t>(p)];
    if (listed[static_cast<size_t>(p)] != 0) internal("page " + std::to_string(p) + " listed twice");
    if (page.ref != 0 || page.cached) internal("free page " + std::to_string(p) + " is referenced or cached");
    listed[static_cast<size_t>(p)] = 1;
  }
  int32_t n_lru = 0;
  for (PageId p = lru_head_, prev = -1; p >= 0; prev = p, p = pages_[static_cast<size_t>(p)].lru_next) {
    const Page& page = pages_[static_cast<size_t>(p)];
    if (listed[static_cast<size_t>(p)] != 0) internal("page " + std::to_string(p) + " listed twice");
    if (page.ref != 0 || !page.cached) internal("LRU page " + std::to_string(p) + " is referenced or not cached");
    if (page.lru_prev != prev) internal("LRU links broken at page " + std::to_string(p));
    listed[static_cast<size_t>(p)] = 2;
    ++n_lru;
  }
  if (n_lru != n_lru_) internal("LRU count is " + std::to_string(n_lru_) + ", list holds " + std::to_string(n_lru));
  size_t n_cached = 0;
  for (size_t p = 0; p < n; ++p) {
    const Page& page = pages_[p];
    if (page.ref != refs[p]) {
      internal("page " + std::to_string(p) + " has reference count " + std::to_string(page.ref) + ", page tables say " +
               std::to_string(refs[p]));
    }
    if (page.ref == 0 && listed[p] == 0) internal("page " + std::to_string(p) + " is leaked (unreferenced, unlisted)");
    if (page.cached) {
      ++n_cached;
      auto it = index_.find(page.key);
      if (it == index_.end() || it->second != static_cast<PageId>(p)) {
        internal("cached page " + std::to_string(p) + " is not in the index under its key");
      }
    }
  }
  if (n_cached != index_.size()) internal("index holds entries for pages that are not cached");
}

}  // namespace lightboat::runtime

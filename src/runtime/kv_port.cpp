#include "runtime/kv_port.h"

#include <algorithm>
#include <string>

#include "base/error.h"

namespace lightboat::runtime {

SeqId KvPagesPort::seq(RequestId id) const {
  auto it = seqs_.find(id);
  check(it != seqs_.end(), ErrorKind::kInvalidArgument,
        [&] { return "KvPagesPort: request " + std::to_string(id) + " has no open KV sequence"; });
  return it->second;
}

int32_t KvPagesPort::open(RequestId id, int32_t n_known) {
  check(!is_open(id), ErrorKind::kInvalidArgument,
        [&] { return "KvPagesPort: request " + std::to_string(id) + " is already open"; });
  const std::span<const TokenId> tokens = known_tokens_(id);
  check(static_cast<int64_t>(tokens.size()) == n_known, ErrorKind::kInternal, [&] {
    return "KvPagesPort: request " + std::to_string(id) + " has " + std::to_string(tokens.size()) +
           " known tokens, the scheduler counts " + std::to_string(n_known);
  });
  const SeqId s = kv_.create();
  seqs_.emplace(id, s);
  const size_t limit = match_limit_ ? std::min(tokens.size(), static_cast<size_t>(std::max(0, match_limit_(id))))
                                    : tokens.size();
  return kv_.match_prefix(s, tokens.first(limit));
}

int32_t KvPagesPort::pages_needed(RequestId id, int32_t n_tokens) const {
  return kv_.pages_needed(seq(id), n_tokens);
}

bool KvPagesPort::grow(RequestId id, int32_t n_tokens) {
  return kv_.reserve(seq(id), n_tokens) == KvStatus::kOk;
}

int32_t KvPagesPort::exclusive_pages(RequestId id) const {
  return kv_.exclusive_pages(seq(id));
}

void KvPagesPort::close(RequestId id) {
  kv_.release(seq(id));
  seqs_.erase(id);
}

}  // namespace lightboat::runtime

// A tag's manifest: manifests/<name>/<tag>.json in the store, one small JSON object naming the
// blob the tag points at and the facts `lightboat models` lists without opening the blob.
#pragma once

#include <cstdint>
#include <string>

#include "store/names.h"

namespace lightboat::store {

inline constexpr int kManifestSchema = 1;

struct Manifest {
  ModelRef ref;              // name:tag (also the file's place in the store)
  std::string digest;        // "sha256:<64 lowercase hex>" of the blob
  uint64_t size = 0;         // bytes of the blob
  std::string architecture;  // general.architecture ("llama", "qwen2" ...)
  std::string quantization;  // the ggml type holding most matrix bytes ("Q4_0", "F32" ...)
  std::string source;        // the URL it was pulled from ("" for a tag made by `lightboat tag`)
  std::string created;       // when the tag was written, UTC, "2026-11-26T13:18:49Z"

  // The 64 hex digits of digest.
  std::string hex() const;
};

std::string manifest_to_json(const Manifest& m);  // one line, keys as the fields above
// Throws Error(kFormat) naming `where` and the field at fault.
Manifest manifest_from_json(const std::string& text, const std::string& where);

// A byte count for people: "862.0 KiB", "1.21 GiB".
std::string format_size(uint64_t bytes);

// Now as "YYYY-MM-DDTHH:MM:SSZ".
std::string utc_now_iso();

}  // namespace lightboat::store

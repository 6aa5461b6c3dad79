// lightboat pull: download a GGUF into the store over HTTP(S) (libcurl), resumable and verified.
//
// The bytes go to partial/<key>.part (key = SHA-256 of the URL), never to blobs/ directly. An
// interrupted download (dropped connection, kill -9, reboot) resumes from the partial file's
// length with a Range request (If-Range on the ETag/Last-Modified seen first, so a changed file
// restarts); the server must answer 206 with a matching Content-Range, a 200 restarts from zero.
// Transient failures (connection reset, stall, 5xx, 429) are retried with exponential back-off,
// each retry resuming where the last one stopped. When complete, the file's SHA-256 is checked
// against --sha256 (a mismatch deletes the partial file), the GGUF is validated by gguf::Reader,
// and only then is it admitted as a blob and the tag pointed at it (store/store.h).
// Two processes pulling the same URL serialise on partial/<key>.lock: the second waits and then
// reuses the blob the first admitted, so one blob results and its bytes come down once.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "store/manifest.h"
#include "store/names.h"
#include "store/store.h"

namespace lightboat::store {

struct PullProgress {
  uint64_t done = 0;       // bytes of the file on disk so far (resumed bytes included)
  uint64_t total = 0;      // bytes of the whole file; 0 while unknown
  double bytes_per_s = 0;  // average over this run's received bytes
  double eta_s = -1;       // seconds left; -1 while unknown
  bool finished = false;   // the last call of a download
};

struct PullOptions {
  std::string source;           // http(s):// URL or hf:ORG/REPO/FILE.gguf
  std::optional<ModelRef> ref;  // the tag to write; default_ref_for_file(URL's file name)
  std::string sha256;           // expected hex digest; "" = none given (the digest is still computed)
  int max_retries = 5;          // consecutive failed attempts that made no progress
  int retry_delay_ms = 1000;    // first back-off; doubled each retry, capped at 30 s
  int connect_timeout_s = 30;
  int stall_timeout_s = 60;                              // an attempt receiving nothing for this long is retried
  std::function<void(const PullProgress&)> on_progress;  // ~10 calls a second at most
  std::function<void(const std::string&)> on_note;       // one-line notes: resume, retry, reuse
};

struct PullResult {
  Manifest manifest;
  std::string url;            // the URL fetched (hf: resolved)
  uint64_t resumed_from = 0;  // bytes already in the partial file when this run started
  uint64_t received = 0;      // bytes received over the network by this run
  int retries = 0;            // attempts after the first
  bool reused = false;        // the blob was already in the store: nothing was downloaded
};

// Throws Error: kInvalidArgument (bad source/name/digest), kNotFound (HTTP 404/410),
// kFormat (digest mismatch, not a valid GGUF), kIo (403, DNS, TLS, disk space, retries exhausted).
PullResult pull(Store& store, const PullOptions& options);

// The partial-file key of a URL (hex SHA-256 of it): partial/<key>.part.
std::string partial_key(const std::string& url);

}  // namespace lightboat::store

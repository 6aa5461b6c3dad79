#include "store/pull.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "store/fs.h"
#include "store/sha256.h"

namespace lightboat::store {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return std::string(s);
}

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

// One HTTP attempt's state, filled by libcurl's callbacks (which must not throw).
struct Attempt {
  int fd = -1;           // the partial file, opened for append
  uint64_t offset = 0;   // bytes on disk when the attempt started
  uint64_t written = 0;  // body bytes appended by this attempt
  long status = 0;       // of the last response's status line (redirects reset it)
  std::string content_range, etag, last_modified;
  uint64_t content_length = 0;
  bool body_started = false;
  bool restarted = false;  // a 200 to a range request: the file was truncated
  uint64_t total = 0;      // whole-file bytes once known
  std::string fault;       // set when a callback aborted the transfer (disk space, write error, bad range)
  bool bad_range = false;  // the 206 did not continue at our offset: restart from zero
  ErrorKind fault_kind = ErrorKind::kIo;
  std::string disk_dir;  // where free space is checked
  const PullOptions* options = nullptr;
  Clock::time_point run_start, last_report;
  uint64_t run_received_before = 0;  // bytes received by earlier attempts of this run
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* a = static_cast<Attempt*>(user);
  const std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {  // a new response (after a redirect or 100-continue)
    const size_t sp = line.find(' ');
    a->status =
        sp == std::string_view::npos ? 0 : std::strtol(std::string(line.substr(sp + 1, 3)).c_str(), nullptr, 10);
    a->content_range.clear();
    a->etag.clear();
    a->last_modified.clear();
    a->content_length = 0;
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  const std::string key = lower(std::string(line.substr(0, colon)));
  const std::string value = trim(line.substr(colon + 1));
  if (key == "content-range") a->content_range = value;
  if (key == "etag") a->etag = value;
  if (key == "last-modified") a->last_modified = value;
  if (key == "content-length") a->content_length = std::strtoull(value.c_str(), nullptr, 10);
  return size * n;
}

// Checks the response before the first body byte is written: a 206 must continue exactly at our
// offset; a 200 means the whole file comes again (restart from zero); and the disk must hold it.
bool start_body(Attempt& a) {
  if (a.status == 206) {
    // "bytes START-END/TOTAL"
    unsigned long long start = 0, end = 0, total = 0;
    if (std::sscanf(a.content_range.c_str(), "bytes %llu-%llu/%llu", &start, &end, &total) != 3 || start != a.offset ||
        end + 1 != total) {
      a.fault = "the server answered the range request for bytes " + std::to_string(a.offset) +
                "- with Content-Range '" + a.content_range + "' (restarting from zero)";
      a.bad_range = true;
      return false;
    }
    a.total = total;
  } else if (a.status == 200) {
    if (a.offset > 0) {
      if (::ftruncate(a.fd, 0) != 0 || ::lseek(a.fd, 0, SEEK_SET) != 0) {
        a.fault = std::string("cannot truncate the partial file: ") + std::strerror(errno);
        return false;
      }
      a.restarted = true;
      a.offset = 0;
    }
    a.total = a.content_length;
  } else {
    a.fault = "unexpected HTTP status " + std::to_string(a.status);
    return false;
  }
  struct statvfs sv {};
  if (a.total > a.offset && ::statvfs(a.disk_dir.c_str(), &sv) == 0) {
    const uint64_t free_bytes = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
    const uint64_t need = a.total - a.offset;
    if (free_bytes < need) {
      a.fault = "not enough disk space in " + a.disk_dir + ": the download needs " + mib(need) + ", " +
                mib(free_bytes) + " free";
      return false;
    }
  }
  a.body_started = true;
  return true;
}

void report(Attempt& a, bool finished) {
  if (!a.options->on_progress) return;
  const auto now = Clock::now();
  if (!finished && now - a.last_report < std::chrono::milliseconds(100)) return;
  a.last_report = now;
  PullProgress p;
  p.done = a.offset + a.written;
  p.total = a.total;
  const double secs = std::chrono::duration<double>(now - a.run_start).count();
  const uint64_t received = a.run_received_before + a.written;
  p.bytes_per_s = secs > 0 ? static_cast<double>(received) / secs : 0;
  if (p.total > p.done && p.bytes_per_s > 0) p.eta_s = static_cast<double>(p.total - p.done) / p.bytes_per_s;
  if (p.total == p.done && p.total > 0) p.eta_s = 0;
  p.finished = finished;
  a.options->on_progress(p);
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* a = static_cast<Attempt*>(user);
  if (!a->body_started && !start_body(*a)) return 0;  // 0 aborts the transfer (CURLE_WRITE_ERROR)
  // Straight to the file with write(2), no user-space buffer: after a kill -9 everything
  // received so far is in the partial file (the page cache survives the process).
  const char* p = data;
  size_t left = size * n;
  while (left > 0) {
    const ssize_t w = ::write(a->fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      a->fault = std::string("cannot write the partial file: ") + std::strerror(errno);
      return 0;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  a->written += size * n;
  report(*a, false);
  return size * n;
}

bool transient_curl(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

bool tls_curl(CURLcode rc) {
  switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
      return true;
    default:
      return false;
  }
}

// What one attempt ended with, when it did not complete the file.
struct Failure {
  bool transient = false;
  ErrorKind kind = ErrorKind::kIo;
  std::string message;
};

void curl_global() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Runs one GET from a.offset; nullopt when the file is complete.
std::optional<Failure> attempt(const std::string& url, const std::string& validator, Attempt& a) {
  CURL* curl = curl_easy_init();
  check(curl != nullptr, ErrorKind::kInternal, "libcurl: cannot create a handle");
  char errbuf[CURL_ERROR_SIZE] = {0};
  struct curl_slist* headers = nullptr;
  if (a.offset > 0 && !validator.empty()) headers = curl_slist_append(headers, ("If-Range: " + validator).c_str());
  const std::string range = std::to_string(a.offset) + "-";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "lightboat-pull/1");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, static_cast<long>(a.options->connect_timeout_s));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);                                            // bytes/s ...
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(a.options->stall_timeout_s));  // ... for s
  if (a.offset > 0) curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
  if (headers) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);

  const std::string detail = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  if (rc == CURLE_OK) {
    if (!a.body_started && (status == 200 || status == 206)) {
      // An empty body: a 0-byte file, or a range that ends where we already are.
      if (!start_body(a)) return Failure{.transient = false, .kind = a.fault_kind, .message = a.fault};
    }
    if (a.total > 0 && a.offset + a.written != a.total) {
      return Failure{.transient = true,
                     .message = "the body ended after " + std::to_string(a.offset + a.written) + " of " +
                                std::to_string(a.total) + " bytes"};
    }
    return std::nullopt;
  }
  if (rc == CURLE_WRITE_ERROR && !a.fault.empty()) {
    return Failure{.transient = a.bad_range, .kind = a.fault_kind, .message = a.fault};
  }
  if (rc == CURLE_HTTP_RETURNED_ERROR) {
    const std::string what = "HTTP " + std::to_string(status) + " from " + url;
    if (status == 416 && a.offset > 0) {
      // "bytes */TOTAL": when TOTAL is what we hold, an earlier run got every byte but stopped
      // before admitting them (killed while verifying).
      unsigned long long total = 0;
      if (std::sscanf(a.content_range.c_str(), "bytes */%llu", &total) == 1 && total == a.offset) {
        a.total = total;
        return std::nullopt;
      }
      a.bad_range = true;
      return Failure{
          .transient = true, .kind = ErrorKind::kIo, .message = "range not satisfiable (restarting from zero)"};
    }
    if (status == 404 || status == 410) return Failure{.kind = ErrorKind::kNotFound, .message = what + " (not found)"};
    if (status == 401 || status == 403) {
      return Failure{.kind = ErrorKind::kIo, .message = what + " (access denied; a gated model needs credentials)"};
    }
    if (status >= 500 || status == 429 || status == 408) return Failure{.transient = true, .message = what};
    return Failure{.kind = ErrorKind::kIo, .message = what};
  }
  if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY) {
    return Failure{.kind = ErrorKind::kIo, .message = "cannot resolve the host of " + url + " (DNS): " + detail};
  }
  if (tls_curl(rc)) return Failure{.kind = ErrorKind::kIo, .message = "TLS failure with " + url + ": " + detail};
  if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
    return Failure{.kind = ErrorKind::kInvalidArgument, .message = "bad URL " + url + ": " + detail};
  }
  return Failure{.transient = transient_curl(rc), .kind = ErrorKind::kIo, .message = detail};
}

uint64_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(n);
}

}  // namespace

std::string partial_key(const std::string& url) {
  Sha256 h;
  h.update(url);
  return h.hex_final();
}

namespace {
PullResult pull_once(Store& store, const PullOptions& o, PullResult& result);
}  // namespace

PullResult pull(Store& store, const PullOptions& o) {
  PullResult result;
  try {
    pull_once(store, o, result);
  } catch (...) {
    store.record_pull(result.received, false);
    throw;
  }
  store.record_pull(result.received, true);
  return result;
}

namespace {

// One pull; `result` is filled as it goes (received bytes count even when it throws).
PullResult pull_once(Store& store, const PullOptions& o, PullResult& result) {
  result.url = source_url(o.source);
  const ModelRef ref = o.ref ? *o.ref : default_ref_for_file(url_file_name(result.url));
  const std::string want = lower(o.sha256);
  check(want.empty() || is_sha256_hex(want), ErrorKind::kInvalidArgument,
        "--sha256 '" + o.sha256 + "' is not 64 hex digits");
  auto note = [&](const std::string& s) {
    if (o.on_note) o.on_note(s);
  };
  if (!want.empty() && store.has_blob(want)) {
    result.manifest = store.link(ref, want, result.url);
    result.reused = true;
    note("sha256:" + want.substr(0, 12) + " is already in the store; nothing to download");
    return result;
  }

  curl_global();
  const std::string dir = store.partial_dir();
  make_dirs(dir);
  const std::string key = partial_key(result.url);
  const std::string part = dir + "/" + key + ".part", meta = dir + "/" + key + ".meta";
  FileLock lock(dir + "/" + key + ".lock", true);
  if (!lock.held()) {
    note("another lightboat is pulling " + result.url + "; waiting for it");
    std::optional<Manifest> done;
    {
      FileLock wait(dir + "/" + key + ".lock");
      // It has finished (or died): reuse what it admitted from this URL.
      for (const Manifest& m : store.list()) {
        if (m.source == result.url && store.has_blob(m.hex()) && (want.empty() || m.hex() == want)) done = m;
      }
      if (done) result.manifest = store.link(ref, done->hex(), result.url);
    }
    if (!done) return pull_once(store, o, result);  // it failed: try ourselves (the lock is free now)
    result.reused = true;
    note("reusing " + done->digest.substr(0, 19) + " that the other process pulled");
    return result;
  }

  // The validator of the partial file's first response: a resume asks for the same version.
  std::string validator;
  if (file_size_or_zero(part) > 0) {
    try {
      validator = trim(read_small_file(meta));
    } catch (const Error&) {
      validator.clear();  // no meta (crash before it was written): Content-Range still guards
    }
  }
  const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  check(fd >= 0, ErrorKind::kIo, "cannot open " + part + ": " + std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  result.resumed_from = file_size_or_zero(part);
  if (result.resumed_from > 0) note("resuming at " + mib(result.resumed_from) + " from an earlier pull");

  const auto run_start = Clock::now();
  int failures = 0;  // consecutive attempts without progress
  for (int n_attempt = 0;; ++n_attempt) {
    Attempt a;
    a.fd = fd;
    a.offset = file_size_or_zero(part);
    a.disk_dir = dir;
    a.options = &o;
    a.run_start = run_start;
    a.run_received_before = result.received;
    const std::optional<Failure> f = attempt(result.url, validator, a);
    result.received += a.written;
    if (a.body_started && (a.offset == 0 || a.restarted)) {
      validator = !a.etag.empty() ? a.etag : a.last_modified;
      atomic_write_file(meta, validator + "\n");
    }
    if (!f) {
      report(a, true);
      break;
    }
    if (!f->transient) {
      if (f->kind == ErrorKind::kNotFound) {  // nothing to resume from a URL that is gone
        ::unlink(part.c_str());
        ::unlink(meta.c_str());
      }
      throw Error(f->kind, f->message);
    }
    if (a.written > 0) failures = 0;
    if (++failures > o.max_retries) {
      throw Error(ErrorKind::kIo, "download of " + result.url + " failed after " + std::to_string(o.max_retries) +
                                      " retries: " + f->message + " (run the same pull again to resume at " +
                                      mib(file_size_or_zero(part)) + ")");
    }
    if (a.bad_range) {
      check(::ftruncate(fd, 0) == 0, ErrorKind::kIo, "cannot truncate " + part + ": " + std::strerror(errno));
      validator.clear();
    }
    const int delay = std::min(30'000, o.retry_delay_ms << std::min(failures - 1, 15));  // ms
    note(f->message + "; retry " + std::to_string(failures) + "/" + std::to_string(o.max_retries) + " in " +
         std::to_string(delay) + " ms from byte " + std::to_string(file_size_or_zero(part)));
    ++result.retries;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
  }

  // Complete: verify before anything is admitted.
  const std::string got = sha256_file(part);
  if (!want.empty() && got != want) {
    ::unlink(part.c_str());
    ::unlink(meta.c_str());
    throw Error(ErrorKind::kFormat, "SHA-256 mismatch for " + result.url + ": expected " + want + ", got " + got +
                                        "; the download was deleted and nothing was added to the store");
  }
  try {
    inspect_gguf(part);
  } catch (const Error& e) {
    ::unlink(part.c_str());
    ::unlink(meta.c_str());
    throw Error(ErrorKind::kFormat, result.url + " is not a valid GGUF file (" + e.what() +
                                        "); the download was deleted and nothing was added to the store");
  }
  result.manifest = store.admit(part, got, ref, result.url);
  ::unlink(meta.c_str());
  return result;
}

}  // namespace

}  // namespace lightboat::store

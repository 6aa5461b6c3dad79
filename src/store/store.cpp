#include "store/store.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "gguf/reader.h"
#include "gguf/types.h"
#include "store/fs.h"
#include "store/sha256.h"

namespace lightboat::store {
namespace {

namespace fs = std::filesystem;

constexpr const char* kBlobPrefix = "sha256-";

std::string digest_of(const std::string& hex) {
  return "sha256:" + hex;
}

void unlink_durably(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    throw Error(ErrorKind::kIo, "cannot remove " + path + ": " + std::strerror(errno));
  }
  fsync_dir(fs::path(path).parent_path().string());
}

}  // namespace

GgufFacts inspect_gguf(const std::string& path) {
  const auto reader = gguf::Reader::open(path, LoadMode::kMmap);
  GgufFacts facts;
  facts.architecture = reader->try_string("general.architecture").value_or("");
  std::unordered_map<uint32_t, uint64_t> bytes_by_type;  // bytes of the matrices per ggml type
  for (const auto& t : reader->tensors()) {
    if (t.ne.size() >= 2) bytes_by_type[t.type_id] += t.n_bytes;
  }
  const auto best = std::max_element(bytes_by_type.begin(), bytes_by_type.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  const auto geometry = best == bytes_by_type.end() ? std::nullopt : gguf::tensor_type_geometry(best->first);
  facts.quantization = geometry ? std::string(geometry->name) : "unknown";
  return facts;
}

Store::Store(std::string root) : root_(std::move(root)) {}

std::string Store::default_root() {
  if (const char* home = std::getenv("LIGHTBOAT_HOME"); home && *home) return home;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) return std::string(xdg) + "/lightboat";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.local/share/lightboat";
  throw Error(ErrorKind::kNotFound, "no model store: set LIGHTBOAT_HOME (or HOME)");
}

std::string Store::blob_path(const std::string& hex) const {
  return root_ + "/blobs/" + kBlobPrefix + hex;
}
std::string Store::manifest_path(const ModelRef& ref) const {
  return root_ + "/manifests/" + ref.name + "/" + ref.tag + ".json";
}
std::string Store::partial_dir() const {
  return root_ + "/partial";
}
std::string Store::lock_path() const {
  return root_ + "/lock";
}

bool Store::has_blob(const std::string& hex) const {
  std::error_code ec;
  return fs::is_regular_file(blob_path(hex), ec);
}

namespace {
PullStats parse_pull_stats(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text);
  return {.pulls = j.value("pulls", int64_t{0}),
          .failures = j.value("failures", int64_t{0}),
          .bytes = j.value("bytes", int64_t{0})};
}
}  // namespace

PullStats Store::pull_stats() const {
  try {
    return parse_pull_stats(read_small_file(root_ + "/pull-stats.json"));
  } catch (const std::exception&) {
    return {};
  }
}

void Store::record_pull(uint64_t bytes, bool ok) noexcept {
  try {
    ensure_dirs();
    FileLock lock(lock_path());
    PullStats s = pull_stats();
    (ok ? s.pulls : s.failures) += 1;
    s.bytes += static_cast<int64_t>(bytes);
    const nlohmann::json j = {{"pulls", s.pulls}, {"failures", s.failures}, {"bytes", s.bytes}};
    atomic_write_file(root_ + "/pull-stats.json", j.dump() + "\n");
  } catch (const std::exception&) {
    // statistics only
  }
}

void Store::ensure_dirs() const {
  make_dirs(root_ + "/blobs");
  make_dirs(root_ + "/manifests");
  make_dirs(partial_dir());
}

std::optional<Manifest> Store::find(const ModelRef& ref) const {
  const std::string path = manifest_path(ref);
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  std::string text;
  try {
    text = read_small_file(path);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kNotFound) return std::nullopt;  // removed since the check
    throw;
  }
  return manifest_from_json(text, path);
}

Resolved Store::resolve(const ModelRef& ref) const {
  std::optional<Manifest> m = find(ref);
  check(m.has_value(), ErrorKind::kNotFound,
        "model " + ref.str() + " is not in the store at " + root_ + " (get it with `lightboat pull URL --name " +
            ref.str() + "`; `lightboat models` lists what is there)");
  Resolved r{.path = blob_path(m->hex()), .manifest = *m};
  check(has_blob(m->hex()), ErrorKind::kNotFound,
        "model " + ref.str() + ": its blob " + r.path + " is missing (pull it again)");
  return r;
}

std::vector<Manifest> Store::list() const {
  std::vector<Manifest> out;
  std::error_code ec;
  const fs::path dir = root_ + "/manifests";
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& name_dir : fs::directory_iterator(dir, ec)) {
    if (!name_dir.is_directory(ec)) continue;
    for (const auto& file : fs::directory_iterator(name_dir.path(), ec)) {
      const std::string fname = file.path().filename().string();
      if (!fname.ends_with(".json")) continue;  // temp files end in .tmp-PID-N
      const auto ref = try_parse_ref(name_dir.path().filename().string() + ":" + fname.substr(0, fname.size() - 5));
      if (!ref) continue;
      try {
        if (auto m = find(*ref)) out.push_back(std::move(*m));
      } catch (const Error&) {
        // A corrupt manifest is not listed; `show` of it reports the fault.
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const Manifest& a, const Manifest& b) { return a.ref.str() < b.ref.str(); });
  return out;
}

void Store::write_manifest_locked(const Manifest& m) {
  const std::string path = manifest_path(m.ref);
  const std::string dir = fs::path(path).parent_path().string();
  const bool new_dir = !fs::is_directory(dir);
  make_dirs(dir);
  if (new_dir) fsync_dir(root_ + "/manifests");
  atomic_write_file(path, manifest_to_json(m));
}

bool Store::remove_blob_if_orphan_locked(const std::string& hex) {
  const std::string digest = digest_of(hex);
  for (const Manifest& m : list()) {
    if (m.digest == digest) return false;
  }
  if (!has_blob(hex)) return false;
  unlink_durably(blob_path(hex));
  return true;
}

TagChange Store::repoint_locked(const Manifest& m) {
  TagChange change{.ref = m.ref, .before = "", .after = m.digest};
  const std::optional<Manifest> old = find(m.ref);
  if (old) change.before = old->digest;
  write_manifest_locked(m);
  if (old && old->digest != m.digest) remove_blob_if_orphan_locked(old->hex());
  return change;
}

Manifest Store::admit(const std::string& file, const std::string& hex, const ModelRef& ref, const std::string& source) {
  check(is_sha256_hex(hex), ErrorKind::kInvalidArgument, "admit: '" + hex + "' is not a SHA-256");
  ensure_dirs();
  const GgufFacts facts = inspect_gguf(file);
  Manifest m{.ref = ref,
             .digest = digest_of(hex),
             .size = 0,
             .architecture = facts.architecture,
             .quantization = facts.quantization,
             .source = source,
             .created = utc_now_iso()};
  std::error_code ec;
  m.size = fs::file_size(file, ec);
  check(!ec, ErrorKind::kIo, "cannot stat " + file + ": " + ec.message());
  TagChange change;
  {
    FileLock lock(lock_path());
    if (has_blob(hex)) {
      unlink_durably(file);  // same content already admitted (another pull, another name)
    } else {
      fsync_file(file);  // the bytes are durable before the name says "complete"
      if (::rename(file.c_str(), blob_path(hex).c_str()) != 0) {
        throw Error(ErrorKind::kIo, "cannot move " + file + " into " + blob_path(hex) + ": " + std::strerror(errno));
      }
      fsync_dir(root_ + "/blobs");
      fsync_dir(fs::path(file).parent_path().string());
    }
    change = repoint_locked(m);
  }
  if (change.before != change.after) notify(change);
  return m;
}

Manifest Store::link(const ModelRef& ref, const std::string& hex, const std::string& source) {
  check(has_blob(hex), ErrorKind::kNotFound, "blob sha256:" + hex + " is not in the store at " + root_);
  const std::string path = blob_path(hex);
  const GgufFacts facts = inspect_gguf(path);
  std::error_code ec;
  Manifest m{.ref = ref,
             .digest = digest_of(hex),
             .size = fs::file_size(path, ec),
             .architecture = facts.architecture,
             .quantization = facts.quantization,
             .source = source,
             .created = utc_now_iso()};
  TagChange change;
  {
    FileLock lock(lock_path());
    check(has_blob(hex), ErrorKind::kNotFound, "blob sha256:" + hex + " was removed meanwhile");
    change = repoint_locked(m);
  }
  if (change.before != change.after) notify(change);
  return m;
}

Manifest Store::tag(const ModelRef& src, const ModelRef& dst) {
  ensure_dirs();
  Manifest m;
  TagChange change;
  {
    FileLock lock(lock_path());
    m = resolve(src).manifest;
    m.ref = dst;
    m.created = utc_now_iso();
    change = repoint_locked(m);
  }
  if (change.before != change.after) notify(change);
  return m;
}

RemoveResult Store::remove(const ModelRef& ref) {
  RemoveResult result;
  {
    FileLock lock(lock_path());
    const std::optional<Manifest> m = find(ref);
    check(m.has_value(), ErrorKind::kNotFound, "model " + ref.str() + " is not in the store at " + root_);
    result.digest = m->digest;
    // Manifest first: a crash between the two unlinks leaves an orphan blob, never a dangling tag.
    unlink_durably(manifest_path(ref));
    std::error_code ec;
    fs::remove(fs::path(manifest_path(ref)).parent_path(), ec);  // only succeeds when empty
    result.blob_removed = remove_blob_if_orphan_locked(m->hex());
  }
  notify({.ref = ref, .before = result.digest, .after = ""});
  return result;
}

int Store::cleanup() {
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) return 0;
  FileLock lock(lock_path());
  int removed = 0;
  Snapshot snap = snapshot();
  std::vector<std::string> referenced;
  for (const auto& [ref, digest] : snap) referenced.push_back(digest);
  for (const char* sub : {"/blobs", "/manifests"}) {
    for (const auto& e : fs::recursive_directory_iterator(root_ + sub, ec)) {
      const std::string fname = e.path().filename().string();
      const bool tmp = fname.find(".tmp-") != std::string::npos;
      const bool orphan = std::string(sub) == "/blobs" && fname.starts_with(kBlobPrefix) &&
                          std::find(referenced.begin(), referenced.end(),
                                    digest_of(fname.substr(std::strlen(kBlobPrefix)))) == referenced.end();
      if ((tmp || orphan) && e.is_regular_file(ec) && fs::remove(e.path(), ec)) ++removed;
    }
  }
  return removed;
}

Snapshot Store::snapshot() const {
  Snapshot s;
  for (const Manifest& m : list()) s[m.ref.str()] = m.digest;
  return s;
}

std::vector<TagChange> Store::diff(const Snapshot& before, const Snapshot& after) {
  std::vector<TagChange> out;
  auto add = [&](const std::string& key, const std::string& b, const std::string& a) {
    if (b != a) out.push_back({.ref = parse_ref(key), .before = b, .after = a});
  };
  for (const auto& [key, digest] : before) {
    auto it = after.find(key);
    add(key, digest, it == after.end() ? "" : it->second);
  }
  for (const auto& [key, digest] : after) {
    if (!before.contains(key)) add(key, "", digest);
  }
  return out;
}

void Store::on_change(std::function<void(const TagChange&)> listener) {
  std::lock_guard<std::mutex> g(listeners_mu_);
  listeners_.push_back(std::move(listener));
}

void Store::notify(const TagChange& change) {
  std::vector<std::function<void(const TagChange&)>> copy;
  {
    std::lock_guard<std::mutex> g(listeners_mu_);
    copy = listeners_;
  }
  for (const auto& l : copy) l(change);
}

}  // namespace lightboat::store

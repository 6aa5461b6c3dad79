#include "store/manifest.h"

#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "store/sha256.h"

namespace lightboat::store {

std::string Manifest::hex() const {
  return digest.starts_with("sha256:") ? digest.substr(7) : digest;
}

std::string manifest_to_json(const Manifest& m) {
  const nlohmann::json j = {{"schema", kManifestSchema},
                            {"name", m.ref.name},
                            {"tag", m.ref.tag},
                            {"digest", m.digest},
                            {"size", m.size},
                            {"architecture", m.architecture},
                            {"quantization", m.quantization},
                            {"source", m.source},
                            {"created", m.created}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Manifest manifest_from_json(const std::string& text, const std::string& where) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  check(j.is_object(), ErrorKind::kFormat, where + ": not a JSON object");
  auto str = [&](const char* key) -> std::string {
    check(j.contains(key) && j[key].is_string(), ErrorKind::kFormat, where + ": '" + key + "' missing or not a string");
    return j[key].get<std::string>();
  };
  check(j.contains("schema") && j["schema"].is_number_integer() && j["schema"].get<int>() == kManifestSchema,
        ErrorKind::kFormat, where + ": 'schema' is not " + std::to_string(kManifestSchema));
  Manifest m;
  m.ref.name = str("name");
  m.ref.tag = str("tag");
  check(try_parse_ref(m.ref.str()).has_value(), ErrorKind::kFormat, where + ": '" + m.ref.str() + "' is not a name");
  m.digest = str("digest");
  check(m.digest.starts_with("sha256:") && is_sha256_hex(m.digest.substr(7)), ErrorKind::kFormat,
        where + ": 'digest' is not sha256:<64 hex digits>");
  check(j.contains("size") && j["size"].is_number_unsigned(), ErrorKind::kFormat,
        where + ": 'size' missing or not a byte count");
  m.size = j["size"].get<uint64_t>();
  m.architecture = str("architecture");
  m.quantization = str("quantization");
  m.source = str("source");
  m.created = str("created");
  return m;
}

std::string format_size(uint64_t bytes) {
  char buf[32];
  const double d = static_cast<double>(bytes);
  if (bytes >= (uint64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", d / (uint64_t{1} << 30));
  } else if (bytes >= (uint64_t{1} << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", d / (uint64_t{1} << 20));
  } else if (bytes >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", d / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  }
  return buf;
}

std::string utc_now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace lightboat::store

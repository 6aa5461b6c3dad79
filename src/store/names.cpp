#include "store/names.h"

#include <cctype>

#include "base/error.h"

namespace lightboat::store {
namespace {

constexpr size_t kMaxPart = 128;  // characters

bool valid_part(std::string_view s) {
  if (s.empty() || s.size() > kMaxPart) return false;
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_alnum(s.front())) return false;
  for (char c : s) {
    if (!lower_alnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

// "q4_0", "q4_k_m", "iq2_xs", "f16", "bf16", "f32": what llama.cpp puts at the end of file names.
bool looks_like_quant(std::string_view s) {
  if (s == "f16" || s == "f32" || s == "bf16" || s == "f64") return true;
  size_t i = 0;
  if (s.starts_with("iq")) {
    i = 2;
  } else if (s.starts_with("q")) {
    i = 1;
  } else {
    return false;
  }
  if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

}  // namespace

std::optional<ModelRef> try_parse_ref(std::string_view text) {
  const size_t colon = text.find(':');
  ModelRef ref;
  ref.name = std::string(text.substr(0, colon));
  if (colon != std::string_view::npos) ref.tag = std::string(text.substr(colon + 1));
  if (!valid_part(ref.name) || !valid_part(ref.tag)) return std::nullopt;
  return ref;
}

ModelRef parse_ref(std::string_view text) {
  std::optional<ModelRef> ref = try_parse_ref(text);
  check(ref.has_value(), ErrorKind::kInvalidArgument,
        "'" + std::string(text) +
            "' is not a model name: NAME[:TAG], each part 1-128 of a-z 0-9 . _ - starting with a letter or digit");
  return *ref;
}

ModelRef default_ref_for_file(std::string_view file_name) {
  std::string stem(file_name);
  if (stem.size() > 5 && (stem.ends_with(".gguf") || stem.ends_with(".GGUF"))) stem.resize(stem.size() - 5);
  std::string clean;
  for (char c : stem) {
    const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '.' || l == '_' || l == '-';
    clean += ok ? l : '-';
  }
  while (!clean.empty() && !std::isalnum(static_cast<unsigned char>(clean.front()))) clean.erase(0, 1);
  if (clean.empty()) clean = "model";
  ModelRef ref{.name = clean, .tag = kDefaultTag};
  const size_t sep = clean.find_last_of("-.");
  if (sep != std::string::npos && sep > 0 && looks_like_quant(std::string_view(clean).substr(sep + 1))) {
    ref.name = clean.substr(0, sep);
    ref.tag = clean.substr(sep + 1);
  }
  if (ref.name.size() > kMaxPart) ref.name.resize(kMaxPart);
  if (ref.tag.size() > kMaxPart) ref.tag.resize(kMaxPart);
  return ref;
}

std::string source_url(std::string_view source) {
  if (source.starts_with("http://") || source.starts_with("https://")) return std::string(source);
  if (source.starts_with("hf:")) {
    const std::string_view rest = source.substr(3);
    // ORG/REPO/FILE at least: two slashes, no empty segment.
    const size_t a = rest.find('/');
    const size_t b = a == std::string_view::npos ? a : rest.find('/', a + 1);
    check(a != std::string_view::npos && b != std::string_view::npos && a > 0 && b > a + 1 && b + 1 < rest.size(),
          ErrorKind::kInvalidArgument, "'" + std::string(source) + "' is not hf:ORG/REPO/FILE.gguf");
    return "https://huggingface.co/" + std::string(rest.substr(0, b)) + "/resolve/main/" +
           std::string(rest.substr(b + 1));
  }
  throw Error(ErrorKind::kInvalidArgument,
              "'" + std::string(source) + "' is not a URL (http://, https://) or hf:ORG/REPO/FILE.gguf");
}

std::string url_file_name(std::string_view url) {
  const size_t end = url.find_first_of("?#");
  std::string_view path = url.substr(0, end);
  const size_t scheme = path.find("://");
  if (scheme != std::string_view::npos) {
    path.remove_prefix(scheme + 3);
    const size_t slash = path.find('/');
    if (slash == std::string_view::npos) return "";
    path.remove_prefix(slash);
  }
  const size_t last = path.find_last_of('/');
  return std::string(last == std::string_view::npos ? path : path.substr(last + 1));
}

}  // namespace lightboat::store

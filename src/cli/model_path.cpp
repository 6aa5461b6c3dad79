#include "cli/model_path.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

#include "base/error.h"
#include "store/names.h"
#include "store/store.h"

namespace lightboat::cli {
namespace {

namespace fs = std::filesystem;

// The running executable's directory; empty when /proc is unavailable (then only the other
// candidates are tried).
fs::path exe_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

std::vector<fs::path> candidates() {
  std::vector<fs::path> out;
  if (const char* env = std::getenv("LIGHTBOAT_DEFAULT_MODEL"); env && *env) {
    out.emplace_back(env);
    return out;  // an explicit choice is not second-guessed by the fallbacks
  }
  const std::string file = std::string(kDefaultModelName) + ".gguf";
  if (const fs::path dir = exe_dir(); !dir.empty()) {
    out.push_back(dir / ".." / "models" / file);                          // build/lightboat in the source tree
    out.push_back(dir / ".." / "share" / "lightboat" / "models" / file);  // an installed prefix
  }
#ifdef LIGHTBOAT_SOURCE_DIR
  out.push_back(fs::path(LIGHTBOAT_SOURCE_DIR) / "models" / file);  // a build directory elsewhere
#endif
  return out;
}

}  // namespace

std::string default_model_candidates() {
  std::string s;
  for (const fs::path& p : candidates()) s += (s.empty() ? "" : ", ") + p.lexically_normal().string();
  return s;
}

ResolvedModel resolve_model_path(const std::string& given) {
  if (!given.empty()) {
    std::error_code ec;
    if (fs::exists(given, ec)) return {.path = given};
    const std::optional<store::ModelRef> ref = store::try_parse_ref(given);
    if (!ref || given.ends_with(".gguf")) return {.path = given};  // a missing file: the loader says so
    const store::Store st(store::Store::default_root());
    const store::Resolved r = st.resolve(*ref);  // kNotFound naming the model, pull and models
    return {.path = r.path, .store_ref = ref->str(), .digest = r.manifest.digest};
  }
  for (const fs::path& p : candidates()) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return {.path = p.lexically_normal().string(), .builtin = true};
  }
  throw Error(ErrorKind::kNotFound, "no model given (-m FILE.gguf) and the built-in default model " +
                                        std::string(kDefaultModelName) + " was not found (looked in " +
                                        default_model_candidates() + ")");
}

}  // namespace lightboat::cli

// lightboat models [--json]: the tags of the local model store ($LIGHTBOAT_HOME), one per line
// with size, architecture, quantization and digest prefix, and LOADED: whether a running
// `lightboat serve` has that tag's blob loaded (what the servers record in <store>/run/,
// store/serve_state.h), "yes (pid N)", else "-".
#include <cstdio>
#include <map>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "store/serve_state.h"
#include "store/store.h"

namespace lightboat::cli {

nlohmann::json manifest_json(const store::Manifest& m, const std::string& blob_path) {
  return {{"model", m.ref.str()},
          {"name", m.ref.name},
          {"tag", m.ref.tag},
          {"digest", m.digest},
          {"size", m.size},
          {"architecture", m.architecture},
          {"quantization", m.quantization},
          {"source", m.source},
          {"created", m.created},
          {"path", blob_path}};
}

namespace {

struct ModelsOptions {
  bool json = false;
};

// Blob digest -> the pids of the live servers that have it loaded (a digest, not a tag: a tag
// re-pointed since the server loaded it is not shown as loaded).
std::map<std::string, std::vector<int64_t>> loaded_digests(const std::string& root) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const store::ServeRecord& r : store::live_serve_records(root)) {
    for (const store::ServedModel& m : r.models) {
      std::vector<int64_t>& pids = out[m.version];
      if (pids.empty() || pids.back() != r.pid) pids.push_back(r.pid);
    }
  }
  return out;
}

std::string loaded_text(const std::vector<int64_t>* pids) {
  if (!pids) return "-";
  std::string list;
  for (int64_t pid : *pids) list += (list.empty() ? "" : ",") + std::to_string(pid);
  return std::string("yes (pid") + (pids->size() > 1 ? "s " : " ") + list + ")";
}

int models_command(const ModelsOptions& o) {
  const store::Store st(store::Store::default_root());
  const std::vector<store::Manifest> all = st.list();
  const std::map<std::string, std::vector<int64_t>> loaded = loaded_digests(st.root());
  auto pids_of = [&](const store::Manifest& m) -> const std::vector<int64_t>* {
    const auto it = loaded.find(m.digest);
    return it == loaded.end() ? nullptr : &it->second;
  };
  if (o.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const store::Manifest& m : all) {
      nlohmann::json j = manifest_json(m, st.blob_path(m.hex()));
      const std::vector<int64_t>* pids = pids_of(m);
      j["loaded"] = pids != nullptr;
      j["loaded_by"] = pids ? nlohmann::json(*pids) : nlohmann::json::array();
      arr.push_back(std::move(j));
    }
    std::printf("%s\n", dump_json({{"store", st.root()}, {"models", arr}}).c_str());
    return 0;
  }
  if (all.empty()) {
    std::fprintf(stderr, "no models in %s (lightboat pull URL adds one)\n", st.root().c_str());
    return 0;
  }
  size_t w = 10;  // width of the NAME:TAG column
  for (const store::Manifest& m : all) w = std::max(w, m.ref.str().size());
  const int width = static_cast<int>(w);
  std::printf("%-*s  %10s  %-10s  %-8s  %-12s  %s\n", width, "NAME:TAG", "SIZE", "ARCH", "QUANT", "DIGEST", "LOADED");
  for (const store::Manifest& m : all) {
    std::printf("%-*s  %10s  %-10s  %-8s  %-12s  %s\n", width, m.ref.str().c_str(), store::format_size(m.size).c_str(),
                m.architecture.c_str(), m.quantization.c_str(), m.hex().substr(0, 12).c_str(),
                loaded_text(pids_of(m)).c_str());
  }
  return 0;
}

}  // namespace

Runner add_models_command(CLI::App& app) {
  auto o = std::make_shared<ModelsOptions>();
  CLI::App* cmd = app.add_subcommand("models", "List the models of the local store ($LIGHTBOAT_HOME)");
  cmd->add_flag("--json", o->json, "Print one JSON object");
  return [o] { return models_command(*o); };
}

}  // namespace lightboat::cli

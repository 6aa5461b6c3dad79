// lightboat models [--json]: the tags of the local model store ($LIGHTBOAT_HOME), one per line
// with size, architecture, quantization and digest prefix. The LOADED column is the server's
// (several models at once, issue 8); the CLI process has nothing loaded and prints "-".
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
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

int models_command(const ModelsOptions& o) {
  const store::Store st(store::Store::default_root());
  const std::vector<store::Manifest> all = st.list();
  if (o.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const store::Manifest& m : all) {
      arr.push_back(manifest_json(m, st.blob_path(m.hex())));
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
                m.architecture.c_str(), m.quantization.c_str(), m.hex().substr(0, 12).c_str(), "-");
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

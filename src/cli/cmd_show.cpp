// lightboat show NAME[:TAG] [--json]: a store tag's manifest (digest, size, source, when), then
// what `lightboat info` says of its blob. --json prints the manifest and the blob's path (the
// file facts are `lightboat info NAME:TAG --json`).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "store/store.h"

namespace lightboat::cli {
namespace {

struct ShowOptions {
  std::string model;
  bool json = false;
};

int show_command(const ShowOptions& o) {
  const store::Store st(store::Store::default_root());
  const store::Resolved r = st.resolve(store::parse_ref(o.model));
  const store::Manifest& m = r.manifest;
  if (o.json) {
    std::printf("%s\n", dump_json(manifest_json(m, r.path)).c_str());
    return 0;
  }
  auto line = [](const char* key, const std::string& value) { std::printf("%-16s %s\n", key, value.c_str()); };
  line("model", m.ref.str());
  line("digest", m.digest);
  line("size", store::format_size(m.size) + " (" + std::to_string(m.size) + " bytes)");
  line("source", m.source.empty() ? "-" : m.source);
  line("created", m.created);
  line("blob", r.path);
  std::fflush(stdout);
  // The file facts, exactly as `lightboat info` prints them (its runner on the blob's path).
  CLI::App sub;
  const Runner info = add_info_command(sub);
  std::vector<std::string> args = {r.path, "info"};  // CLI11 takes the arguments reversed
  sub.parse(args);
  return info();
}

}  // namespace

Runner add_show_command(CLI::App& app) {
  auto o = std::make_shared<ShowOptions>();
  CLI::App* cmd = app.add_subcommand("show", "Show a store model: its manifest and what its GGUF holds");
  cmd->add_option("model", o->model, "NAME[:TAG] (the tag defaults to latest)")->required();
  cmd->add_flag("--json", o->json, "Print the manifest as one JSON object");
  return [o] { return show_command(*o); };
}

}  // namespace lightboat::cli

// lightboat rm NAME[:TAG]...: remove tags from the store; a blob goes with the last tag naming it.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "store/store.h"

namespace lightboat::cli {
namespace {

struct RmOptions {
  std::vector<std::string> models;
};

int rm_command(const RmOptions& o) {
  store::Store st(store::Store::default_root());
  std::vector<store::ModelRef> refs;
  for (const std::string& s : o.models) refs.push_back(store::parse_ref(s));  // all valid before any removal
  for (const store::ModelRef& ref : refs) {
    const store::RemoveResult r = st.remove(ref);
    std::printf("removed %s (%s %s)\n", ref.str().c_str(), r.digest.substr(0, 19).c_str(),
                r.blob_removed ? "deleted" : "kept: another tag names it");
  }
  return 0;
}

}  // namespace

Runner add_rm_command(CLI::App& app) {
  auto o = std::make_shared<RmOptions>();
  CLI::App* cmd = app.add_subcommand("rm", "Remove models from the store (a blob goes with its last tag)");
  cmd->add_option("models", o->models, "NAME[:TAG] ... (the tag defaults to latest)")->required();
  return [o] { return rm_command(*o); };
}

}  // namespace lightboat::cli

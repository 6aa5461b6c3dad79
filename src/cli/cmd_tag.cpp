// lightboat tag SRC DST: DST (NAME[:TAG]) names the same blob as SRC; nothing is copied. An
// existing DST is re-pointed (its old blob goes when no tag names it any more).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "store/store.h"

namespace lightboat::cli {
namespace {

struct TagOptions {
  std::string src, dst;
};

int tag_command(const TagOptions& o) {
  store::Store st(store::Store::default_root());
  const store::ModelRef src = store::parse_ref(o.src), dst = store::parse_ref(o.dst);
  const store::Manifest m = st.tag(src, dst);
  std::printf("tagged %s -> %s (%s)\n", dst.str().c_str(), src.str().c_str(), m.digest.substr(0, 19).c_str());
  return 0;
}

}  // namespace

Runner add_tag_command(CLI::App& app) {
  auto o = std::make_shared<TagOptions>();
  CLI::App* cmd = app.add_subcommand("tag", "Give a store model another NAME[:TAG] (no copy)");
  cmd->add_option("source", o->src, "existing NAME[:TAG]")->required();
  cmd->add_option("target", o->dst, "new NAME[:TAG]")->required();
  return [o] { return tag_command(*o); };
}

}  // namespace lightboat::cli

#include "server/models_api.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "base/error.h"
#include "server/openai_format.h"

namespace lightboat::server {
namespace {

using nlohmann::json;

struct Known {
  std::string name;
  std::string catalog_version;  // from the catalog, for a model not loaded
};

// Names in listing order, each once.
std::vector<Known> known_models(ServerContext& ctx, const std::vector<ModelStatus>& statuses) {
  std::vector<Known> out;
  auto add = [&](const std::string& name, const std::string& version) {
    auto it = std::find_if(out.begin(), out.end(), [&](const Known& k) { return k.name == name; });
    if (it == out.end()) {
      out.push_back({name, version});
    } else if (it->catalog_version.empty()) {
      it->catalog_version = version;
    }
  };
  add(ctx.config.model_id, "");
  for (const std::string& n : ctx.config.preload) add(n, "");
  if (ctx.config.catalog) {
    try {
      for (const CatalogEntry& e : ctx.config.catalog()) add(e.name, e.version);
    } catch (const std::exception&) {
      // An unreadable store lists nothing more; the models the manager holds still show.
    }
  }
  for (const ModelStatus& s : statuses) add(s.name, "");
  return out;
}

json entry_json(ServerContext& ctx, const Known& k, const ModelStatus* s, int64_t created) {
  json j = model_json(k.name, created);
  j["default"] = k.name == ctx.config.model_id;
  if (!s) {
    j["version"] = k.catalog_version;
    j["state"] = model_state_name(ModelState::kUnloaded);
    j["loaded"] = false;
    j["memory_bytes"] = 0;
    j["in_use"] = 0;
    j["loads"] = 0;
    return j;
  }
  j["version"] = s->version.empty() ? k.catalog_version : s->version;
  j["state"] = model_state_name(s->state);
  j["loaded"] = s->state == ModelState::kReady;
  j["memory_bytes"] = s->memory_bytes;
  j["in_use"] = s->in_use;
  j["loads"] = s->loads;
  // As `ollama ps` shows them: the keep-alive in force, and when an idle model goes (unix
  // seconds; null while requests use it, when it is not loaded, or when it is kept forever).
  j["keep_alive"] = format_keep_alive(s->keep_alive);
  j["expires_at"] = nullptr;
  if (s->expires_at) {
    j["expires_at"] = std::chrono::duration<double>(s->expires_at->time_since_epoch()).count();
  }
  if (!s->error.empty()) j["error"] = s->error;
  if (!s->failed_version.empty()) j["failed_version"] = s->failed_version;
  return j;
}

const ModelStatus* find_status(const std::vector<ModelStatus>& statuses, const std::string& name) {
  for (const ModelStatus& s : statuses) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

ApiError not_found(const std::string& id) {
  return ApiError(404, "invalid_request_error", "model_not_found", "model",
                  "the model '" + id + "' does not exist; GET /v1/models lists the models served");
}

}  // namespace

json models_list(ServerContext& ctx, int64_t created) {
  const std::vector<ModelStatus> statuses = ctx.models.list();
  json data = json::array();
  for (const Known& k : known_models(ctx, statuses))
    data.push_back(entry_json(ctx, k, find_status(statuses, k.name), created));
  return {{"object", "list"}, {"data", std::move(data)}};
}

json model_info(ServerContext& ctx, const std::string& id, int64_t created) {
  const std::string name = ctx.model_name(id);
  const std::vector<ModelStatus> statuses = ctx.models.list();
  for (const Known& k : known_models(ctx, statuses)) {
    if (k.name == name) return entry_json(ctx, k, find_status(statuses, name), created);
  }
  throw not_found(id);
}

json reload_model(ServerContext& ctx, const std::string& id, int64_t created) {
  const std::string name = ctx.model_name(id);
  try {
    ctx.models.reload(name);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kNotFound) throw not_found(id);
    throw ApiError(500, "server_error", "reload_failed", "model",
                   "reloading '" + name + "' failed; the previous version keeps serving: " + e.what());
  }
  return model_info(ctx, id, created);
}

}  // namespace lightboat::server

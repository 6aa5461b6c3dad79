// GET /v1/models[/{id}] and POST /v1/models/{id}/reload over the ModelManager. Internal to server/.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "server/context.h"

namespace lightboat::server {

// Every model known: the default first, then the preloaded ones, the catalog (store tags), and
// any other the manager holds. Each: OpenAI's {"id","object","created","owned_by"} and
// "version", "state" (loading, ready, failed, unloaded), "loaded", "memory_bytes", "in_use",
// "loads", "default", and "error" after a failed load or update; for a model the manager has
// seen, "keep_alive" ("5m0s", "forever") and "expires_at" (unix seconds, or null: in use, not
// loaded, or kept forever).
nlohmann::json models_list(ServerContext& ctx, int64_t created);

// One model as in models_list; 404 model_not_found when it is not known (nothing is loaded).
nlohmann::json model_info(ServerContext& ctx, const std::string& id, int64_t created);

// Hot update (ModelManager::reload): 200 with the model's new state; 404 for an unknown model;
// 500 reload_failed naming the error when the new version failed (the old one keeps serving).
// Blocks while the new version loads and warms: the server calls it on its loader thread.
nlohmann::json reload_model(ServerContext& ctx, const std::string& id, int64_t created);

}  // namespace lightboat::server

#include "server/api_error.h"

namespace lightboat::server {

nlohmann::json ApiError::to_json() const {
  nlohmann::json e = {{"message", what()}, {"type", type_}, {"param", nullptr}, {"code", code_}};
  if (!param_.empty()) e["param"] = param_;
  return {{"error", std::move(e)}};
}

ApiError invalid(const std::string& param, const std::string& message, const std::string& code) {
  return ApiError(400, "invalid_request_error", code, param, message);
}

ApiError unsupported(const std::string& param, const std::string& message) {
  return ApiError(400, "invalid_request_error", "unsupported", param, message);
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace lightboat::server

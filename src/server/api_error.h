// OpenAI-style errors: an HTTP status and the body {"error":{"message","type","param","code"}}.
// Request handling throws ApiError; the session turns it into the response (or, on a WebSocket,
// into an {"type":"error"} message). The message always names the field at fault.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace lightboat::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, std::string code, std::string param, const std::string& message)
      : std::runtime_error(message),
        status_(status),
        type_(std::move(type)),
        code_(std::move(code)),
        param_(std::move(param)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }    // "invalid_request_error", "authentication_error" ...
  const std::string& code() const { return code_; }    // "invalid_value", "queue_full" ...
  const std::string& param() const { return param_; }  // the request field at fault; "" when none

  // Seconds for a Retry-After header (429 and 503); 0 = none.
  int retry_after_s() const { return retry_after_s_; }
  ApiError& with_retry_after(int seconds) {
    retry_after_s_ = seconds;
    return *this;
  }

  // {"error":{"message":…,"type":…,"param":…|null,"code":…}}
  nlohmann::json to_json() const;

 private:
  int status_;
  std::string type_, code_, param_;
  int retry_after_s_ = 0;
};

// 400 invalid_request_error naming `param`; code "invalid_value" unless given.
ApiError invalid(const std::string& param, const std::string& message, const std::string& code = "invalid_value");
// 400 for a field this server understands but does not implement (yet).
ApiError unsupported(const std::string& param, const std::string& message);

// JSON text for responses: invalid UTF-8 is replaced (U+FFFD), never thrown on.
std::string dump(const nlohmann::json& j);

}  // namespace lightboat::server

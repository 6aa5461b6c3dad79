// The connection types, internal to server/: Beast and Asio appear only here and in the .cpp
// files that implement them.
#pragma once

#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "server/context.h"

namespace lightboat::server {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

// Serves HTTP/1.1 requests on the socket (keep-alive, SSE) until it closes; hands WebSocket
// upgrades of /v1/ws to a WebSocket session. The socket's executor must be a strand.
void start_http_session(tcp::socket socket, ServerContext& ctx, std::shared_ptr<void> ticket);

// Accepts the upgrade request and runs the /v1/ws protocol until the connection closes.
void start_ws_session(tcp::socket socket, http::request<http::string_body> upgrade, ServerContext& ctx,
                      std::shared_ptr<void> ticket);

}  // namespace lightboat::server

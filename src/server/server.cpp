// The listener, the I/O threads, the warm-up and the shutdown sequence.
#include "server/server.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include "base/error.h"
#include "server/sessions.h"

namespace lightboat::server {

bool is_loopback(const std::string& host) {
  if (host == "localhost") return true;
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  boost::system::error_code ec;
  const net::ip::address a = net::ip::make_address(h, ec);
  return !ec && a.is_loopback();
}

bool authorized(const std::string& authorization, const std::vector<std::string>& keys) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  const std::string_view token = std::string_view(authorization).substr(kScheme.size());
  bool match = false;
  for (const std::string& key : keys) {
    // Constant time for keys of the token's length: the comparison does not stop at a mismatch.
    if (key.size() != token.size()) continue;
    unsigned char diff = 0;
    for (size_t i = 0; i < key.size(); ++i) diff |= static_cast<unsigned char>(key[i] ^ token[i]);
    match = match || diff == 0;
  }
  return match;
}

namespace {

// A fixed answer to a connection over the limit, written at once on the fresh socket.
void refuse_connection(tcp::socket& socket) {
  static const std::string kBody =
      R"({"error":{"message":"too many connections","type":"server_error","param":null,"code":"too_many_connections"}})";
  const std::string res =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
      "Connection: close\r\nContent-Length: " +
      std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
  boost::system::error_code ec;
  net::write(socket, net::buffer(res), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

}  // namespace

struct Server::Impl {
  Impl(ModelManager& models, ServerConfig config)
      : ctx(models, std::move(config)),
        ioc(std::max(1, ctx.config.io_threads)),
        acceptor(ioc),
        signals(ioc, SIGINT, SIGTERM),
        timer(ioc) {
    ctx.empty_bin_soon = [this, gate = ctx.gate] {
      std::lock_guard<std::mutex> lock(gate->mutex);
      if (gate->open) net::post(ioc, [this] { ctx.empty_lease_bin(); });
    };
  }

  // Background: the preloaded models in order; /ready once the default one is loaded and warm.
  void preload() {
    std::vector<std::string> names = ctx.config.preload;
    if (std::find(names.begin(), names.end(), ctx.config.model_id) == names.end())
      names.insert(names.begin(), ctx.config.model_id);
    for (const std::string& name : names) {
      if (ctx.draining) return;
      try {
        const auto t0 = std::chrono::steady_clock::now();
        ModelLease lease = ctx.models.acquire(name);
        std::fprintf(stderr, "lightboat serve: model %s (%s, context %lld, version %s) loaded in %.0f ms\n",
                     name.c_str(), lease.engine().quantization().c_str(),
                     static_cast<long long>(lease.engine().n_ctx()), lease.version().c_str(),
                     std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        if (name == ctx.config.model_id) ctx.ready = true;
      } catch (const std::exception& e) {
        // Not ready: a failed default model stays so until a request loads it (they get its error).
        std::fprintf(stderr, "lightboat serve: model %s failed to load: %s\n", name.c_str(), e.what());
      }
    }
  }

  void accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](boost::system::error_code ec, tcp::socket socket) {
      if (!acceptor.is_open()) return;  // shutting down
      if (!ec) {
        if (ctx.connections.load() >= ctx.config.max_connections) {
          refuse_connection(socket);
        } else {
          start_http_session(std::move(socket), ctx, ctx.connection_ticket());
        }
      }
      accept();
    });
  }

  void begin_shutdown() {
    if (ctx.draining.exchange(true)) return;
    std::fprintf(stderr, "lightboat serve: shutting down (%d generation(s) in flight, grace %lld ms)\n",
                 ctx.open_generations.load(), static_cast<long long>(ctx.config.shutdown_grace.count()));
    boost::system::error_code ec;
    acceptor.close(ec);
    signals.cancel(ec);
    grace_end = std::chrono::steady_clock::now() + ctx.config.shutdown_grace;
    poll_drain();
  }

  // Every 20 ms: done when no generation is open; past the grace, cancel what is left (their
  // streams end with a server_shutdown event); a few seconds later, stop regardless.
  void poll_drain() {
    const auto now = std::chrono::steady_clock::now();
    if (ctx.open_generations.load() == 0) return finish();
    if (!cancelled && now >= grace_end) {
      std::fprintf(stderr, "lightboat serve: grace period over, cancelling %d generation(s)\n",
                   ctx.open_generations.load());
      ctx.cancel_all();
      cancelled = true;
    }
    if (cancelled && now >= grace_end + std::chrono::seconds(5)) return finish();
    timer.expires_after(std::chrono::milliseconds(20));
    timer.async_wait([this](boost::system::error_code ec) {
      if (!ec) poll_drain();
    });
  }

  void finish() {
    {
      std::lock_guard<std::mutex> lock(ctx.gate->mutex);
      ctx.gate->open = false;
    }
    ioc.stop();
  }

  ~Impl() {
    // Loads in progress end first (their sessions need the loop); parked leases go now;
    // handlers still queued (their generations and leases) go with the loop.
    ctx.stop_loader();
    ctx.empty_lease_bin();
  }

  // Destroyed in reverse: the loop (and the sessions its handlers hold) before the context.
  ServerContext ctx;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::signal_set signals;
  net::steady_timer timer;
  std::chrono::steady_clock::time_point grace_end;
  bool cancelled = false;
};

Server::Server(ModelManager& models, ServerConfig config) {
  check(!config.model_id.empty(), ErrorKind::kInvalidArgument, "serve: the model id is empty");
  check(config.io_threads >= 1 && config.io_threads <= 64, ErrorKind::kInvalidArgument,
        "serve: --io-threads must be in [1, 64]");
  check(config.max_connections >= 1, ErrorKind::kInvalidArgument, "serve: --max-connections must be >= 1");
  check(config.max_body_bytes >= 1024, ErrorKind::kInvalidArgument, "serve: --max-body-bytes must be >= 1024");
  check(config.limits.max_tokens >= 1, ErrorKind::kInvalidArgument, "serve: --max-tokens-limit must be >= 1");
  check(config.limits.max_prompt_bytes >= 1, ErrorKind::kInvalidArgument, "serve: --max-prompt-bytes must be >= 1");
  check(!is_loopback(config.host) ? !config.api_keys.empty() || config.insecure_no_auth : true,
        ErrorKind::kInvalidArgument,
        "serve: refusing to listen on the non-loopback address " + config.host +
            " without --api-key (or LIGHTBOAT_API_KEY); pass --insecure-no-auth to do it anyway");
  for (const std::string& k : config.api_keys) {
    check(!k.empty(), ErrorKind::kInvalidArgument, "serve: an API key is empty");
  }
  impl_ = std::make_unique<Impl>(models, std::move(config));
  Impl& s = *impl_;
  boost::system::error_code ec;
  const net::ip::address address =
      net::ip::make_address(s.ctx.config.host == "localhost" ? "127.0.0.1" : s.ctx.config.host, ec);
  check(!ec, ErrorKind::kInvalidArgument, "serve: --host '" + s.ctx.config.host + "' is not an IP address");
  const tcp::endpoint endpoint(address, s.ctx.config.port);
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  check(!ec, ErrorKind::kIo,
        "serve: cannot listen on " + s.ctx.config.host + ":" + std::to_string(s.ctx.config.port) + ": " + ec.message());
}

Server::~Server() = default;

uint16_t Server::port() const {
  return impl_->acceptor.local_endpoint().port();
}

void Server::stop() {
  net::post(impl_->ioc, [s = impl_.get()] { s->begin_shutdown(); });
}

int Server::run() {
  Impl& s = *impl_;
  s.signals.async_wait([&s](boost::system::error_code ec, int) {
    if (!ec) s.begin_shutdown();
  });
  s.accept();
  // The manager warms each version before it takes requests (ModelManagerOptions::warm_up).
  std::thread preload([&s] { s.preload(); });
  std::vector<std::thread> threads;
  for (int i = 1; i < s.ctx.config.io_threads; ++i) {
    threads.emplace_back([&s] {
      mark_io_thread();
      s.ioc.run();
    });
  }
  mark_io_thread();
  s.ioc.run();
  for (auto& t : threads) t.join();
  preload.join();
  s.ctx.empty_lease_bin();
  return 0;
}

}  // namespace lightboat::server

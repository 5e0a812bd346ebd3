#include "server/server.h"

#include <httplib.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "index/fingerprint.h"
#include "index/query.h"
#include "server/access.h"
#include "server/http_util.h"
#include "server/routes.h"

namespace clipfind::server {

namespace {

// Room for the multipart framing around the largest image we accept.
constexpr size_t kMultipartOverhead = 64 * 1024;

// A client that stalls mid-request or stops reading holds a thread this long
// at most; a player reading a video keeps going as long as it reads.
constexpr time_t kReadTimeoutS = 5;
constexpr time_t kWriteTimeoutS = 10;
constexpr time_t kKeepAliveS = 5;
constexpr size_t kKeepAliveRequests = 1000;

std::string model_for(const ServeOptions& o) {
  const index::Catalog catalog(o.index_dir, false);
  return index::query_model(catalog, o.model_dir);
}

// Maps what handlers throw to answers: ours to 4xx/503, the rest to 500
// (logged: a 500 is a bug or a broken file worth a look).
void answer_exception(const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const BadRequest& e) {
    reply_error(res, 400, e.what());
  } catch (const TooLarge& e) {
    reply_error(res, 413, e.what());
  } catch (const Busy& e) {
    res.set_header("Retry-After", "1");
    reply_error(res, 503, e.what());
  } catch (const std::bad_alloc&) {
    reply_error(res, 503, "out of memory");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "clipfind serve: %s %s: %s\n", req.method.c_str(), req.path.c_str(), e.what());
    reply_error(res, 500, e.what());
  } catch (...) {
    reply_error(res, 500, "internal error");
  }
}

// Errors cpp-httplib answers itself (no route, a bad request line, a body
// over the limit) get a body saying so; ours already have one.
httplib::Server::HandlerResponse describe_error(const httplib::Request& req, httplib::Response& res) {
  if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
  std::string what;
  switch (res.status) {
    case 400: what = "malformed request"; break;
    case 404: what = "no such page: " + req.path; break;
    case 405: what = "method not allowed"; break;
    case 413: what = "request too large"; break;
    case 414: what = "URL too long"; break;
    case 416: return httplib::Server::HandlerResponse::Unhandled;  // Content-Range says it all
    default: what = "HTTP error " + std::to_string(res.status); break;
  }
  reply_error(res, res.status, what);
  return httplib::Server::HandlerResponse::Handled;
}

}  // namespace

bool valid_token(const std::string& token) {
  if (token.size() < 16) return false;
  for (const unsigned char c : token) {
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '~' && c != '-') return false;
  }
  return true;
}

struct Server::State {
  ServeOptions options;
  AccessPolicy access;
  std::string model_dir;
  std::unique_ptr<QueryBatcher> encoder;
  std::unique_ptr<IndexWatcher> index;
  std::unique_ptr<ThumbnailCache> thumbnails;
  std::unique_ptr<Context> context;
  int port = 0;
  std::atomic<bool> stop_requested{false};
  httplib::Server http;  // last: stopped and destroyed before what its handlers use

  explicit State(ServeOptions o) : options(std::move(o)), access(options.token) {}
};

Server::Server(ServeOptions o) : state_(std::make_unique<State>(std::move(o))) {
  State& s = *state_;
  const ServeOptions& opt = s.options;
  if (!opt.token.empty() && !valid_token(opt.token)) {
    throw std::runtime_error("--token: use 16 or more letters, digits or ._~- (e.g. `openssl rand -hex 16`)");
  }
  if (opt.token.empty() && !is_loopback_host(opt.host)) {
    throw std::runtime_error("--host " + opt.host +
                             ": serving beyond this machine needs --token (anyone who can reach the port could "
                             "read every indexed video); or bind 127.0.0.1");
  }

  s.model_dir = model_for(opt);
  const std::string fingerprint = index::model_fingerprint(s.model_dir);
  // One engine per device named (--device cuda:all: every GPU), each
  // taking batches of queries from the same queue.
  std::vector<std::unique_ptr<clip::Engine>> engines;
  for (const std::string& device : clip::device_list(opt.engine.device)) {
    clip::EngineOptions e = opt.engine;
    e.device = device;
    engines.push_back(clip::Engine::load(s.model_dir, e));
  }
  s.encoder = std::make_unique<QueryBatcher>(std::move(engines), BatcherOptions{.max_batch = opt.max_batch});
  s.index = std::make_unique<IndexWatcher>(opt.index_dir, fingerprint);
  s.thumbnails = std::make_unique<ThumbnailCache>(opt.index_dir / "thumbnails", opt.thumbnail_width,
                                                  opt.limits.max_concurrent_decodes);
  s.context = std::make_unique<Context>(Context{*s.index, *s.encoder, *s.thumbnails, opt.limits, s.model_dir,
                                                fingerprint, std::chrono::system_clock::now()});

  httplib::Server& http = s.http;
  const int threads = std::max(1, opt.http_threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  // A response goes out in two writes (headers, then body): with Nagle's
  // algorithm the second waits for the client's delayed ACK (~40 ms).
  http.set_tcp_nodelay(true);
  http.set_read_timeout(kReadTimeoutS, 0);
  http.set_write_timeout(kWriteTimeoutS, 0);
  http.set_keep_alive_timeout(kKeepAliveS);
  http.set_keep_alive_max_count(kKeepAliveRequests);
  http.set_payload_max_length(opt.limits.max_upload_bytes + kMultipartOverhead);
  http.set_default_headers(
      {{"X-Content-Type-Options", "nosniff"}, {"Referrer-Policy", "no-referrer"}, {"X-Frame-Options", "DENY"}});
  http.set_pre_routing_handler([&access = s.access](const httplib::Request& req, httplib::Response& res) {
    if (const auto denied = access.check(req)) {
      reply_error(res, denied->first, denied->second);
      // The body of a refused upload was not read: do not parse it as the next request.
      res.set_header("Connection", "close");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_exception_handler(answer_exception);
  http.set_error_handler(httplib::Server::HandlerWithResponse(describe_error));
  if (opt.access_log) {
    http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      // The path only: a query string may hold what someone searched for.
      std::fprintf(stderr, "%s %s %s %d\n", req.remote_addr.c_str(), req.method.c_str(), req.path.c_str(), res.status);
    });
  }
  add_page_routes(http, s.access);
  add_api_routes(http, *s.context);
  add_media_routes(http, *s.context);

  if (opt.port == 0) {
    s.port = http.bind_to_any_port(opt.host);
  } else {
    s.port = http.bind_to_port(opt.host, opt.port) ? opt.port : -1;
  }
  if (s.port <= 0) {
    throw std::runtime_error("cannot listen on " + opt.host + ":" + std::to_string(opt.port) +
                             " (in use, or not an address of this machine)");
  }
}

Server::~Server() = default;

int Server::port() const { return state_->port; }

std::string Server::url() const {
  const std::string& h = state_->options.host;
  const bool v6 = h.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + h + "]" : h) + ":" + std::to_string(state_->port) + "/";
}

std::string Server::summary() const {
  const auto snap = state_->index->current();
  return std::to_string(snap->videos.size()) + " videos, " + std::to_string(snap->table.rows()) + " frames; " +
         state_->model_dir + " on " + state_->encoder->device();
}

void Server::run() {
  // cpp-httplib's stop() does nothing to a server not yet listening: a stop()
  // that came before (a signal while starting) is applied once it listens.
  std::jthread late_stop([this](std::stop_token cancel) {
    while (!cancel.stop_requested() && !state_->http.is_running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (state_->stop_requested) state_->http.stop();
  });
  if (!state_->http.listen_after_bind() && !state_->stop_requested) {
    throw std::runtime_error("the server stopped listening unexpectedly");
  }
}

void Server::stop() {
  state_->stop_requested = true;
  state_->http.stop();
}

}  // namespace clipfind::server

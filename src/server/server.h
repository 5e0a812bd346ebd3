// `clipfind serve`: the HTTP API and web page over one index.
//
//   Server server(options);   // loads the model and index, binds the port
//   std::printf("%s\n", server.url().c_str());
//   server.run();             // until stop(), from another thread or a signal
//
// Routes (JSON unless said):
//   GET  /                        the page
//   GET  /api/search?q=TEXT&k=20&video=ID  results as `clipfind search --json`'s (SigLIP: + "probability")
//   POST /api/search?k=&video=    image (multipart field "image", or the body) or JSON {"q", "k", "video"}
//   GET  /api/videos              every video of the index, with its id
//   GET  /api/status              model, family, device, counts, index age
//   GET  /api/thumbnail/ID?t=MS   JPEG
//   GET  /api/video/ID            the file, with Range support
// Access rules: access.h. Limits: context.h.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "clip/clip.h"
#include "server/context.h"

namespace clipfind::server {

struct ServeOptions {
  std::filesystem::path index_dir = "clipfind-index";
  std::string host = "127.0.0.1";
  int port = 8080;        // 0: any free port (see port())
  std::string token;      // required on /api/*; required to bind a non-loopback host
  std::string model_dir;  // empty: the one the index was built with
  clip::EngineOptions engine;
  int http_threads = 32;  // connections served at once (one thread each, keep-alive included)
  size_t max_batch = 32;  // queued text queries embedded per model call
  int thumbnail_width = 320;
  bool access_log = false;  // a line per request on stderr
  Limits limits;
};

class Server {
 public:
  // Throws (naming the index, model or address) when any of it fails,
  // including binding a non-loopback host without a token.
  explicit Server(ServeOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;
  std::string url() const;      // http://HOST:PORT/
  std::string summary() const;  // "N videos, M frames, model on DEVICE"
  void run();                   // serves until stop(); throws if listening fails
  void stop();                  // thread-safe; returns at once

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Tokens go in a cookie and a URL: 16 or more of [A-Za-z0-9._~-].
bool valid_token(const std::string& token);

}  // namespace clipfind::server

// clipfind serve: the web page and HTTP API over an index (src/server).
#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <thread>

#include "app/commands.h"
#include "server/server.h"

namespace clipfind {

namespace {

struct ServeCommandOptions {
  std::string index = "clipfind-index";  // a string, so --help shows it unquoted
  server::ServeOptions server;
};

// Threads that libraries start before main (OpenBLAS's pool, linked with
// FAISS for the ANN index) do not block the stop signals: one sent to the
// process may land there. This handler, run only in such a thread, passes
// it on to the waiter (pthread_kill is async-signal-safe). It is installed
// before the waiter exists, so a signal in between is kept in g_pending and
// passed on once the waiter starts; otherwise the default action would kill
// the process with no message. Both sides store, then read the other's flag
// (sequentially consistent), so at least one of them forwards the signal.
pthread_t g_waiter;
std::atomic<bool> g_waiter_set{false};
std::atomic<int> g_pending{0};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);
extern "C" void forward_to_waiter(int sig) {
  g_pending = sig;
  if (g_waiter_set) pthread_kill(g_waiter, sig);
}

int run_serve(const ServeCommandOptions& c) {
  server::ServeOptions o = c.server;
  o.index_dir = c.index;

  // SIGINT/SIGTERM go to one thread that stops the server, so every thread
  // (model, HTTP, index watcher) ends through its normal path. Blocked
  // before any thread starts, since threads inherit the mask.
  struct sigaction forward {};
  forward.sa_handler = forward_to_waiter;
  sigaction(SIGINT, &forward, nullptr);
  sigaction(SIGTERM, &forward, nullptr);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client gone mid-answer is an error return, not our death

  // Declared first so it is destroyed last: the waiter, which may be inside
  // srv->stop(), is joined before the server goes away.
  std::optional<server::Server> srv;
  std::atomic<server::Server*> running{nullptr};
  std::atomic<bool> finished{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (finished) return;
    server::Server* server = running;
    if (!server) {  // still loading the model or index: nothing to finish
      std::fprintf(stderr, "clipfind serve: interrupted while starting\n");
      std::_Exit(128 + sig);
    }
    std::fprintf(stderr, "clipfind serve: %s: stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    server->stop();
  });
  g_waiter = waiter.native_handle();
  g_waiter_set = true;
  if (int sig = g_pending.exchange(0)) pthread_kill(g_waiter, sig);  // came before the waiter
  struct Join {
    std::thread& t;
    std::atomic<bool>& finished;
    ~Join() {
      finished = true;
      g_waiter_set = false;
      pthread_kill(t.native_handle(), SIGTERM);  // wakes sigwait if no signal came
      t.join();
    }
  } join{waiter, finished};

  srv.emplace(o);
  running = &*srv;
  std::printf("clipfind serve: %s\n", srv->summary().c_str());
  if (o.token.empty()) {
    std::printf("clipfind serve: listening on %s\n", srv->url().c_str());
  } else {
    std::printf("clipfind serve: listening on %s (open %s?token=%s)\n", srv->url().c_str(), srv->url().c_str(),
                o.token.c_str());
  }
  std::fflush(stdout);
  srv->run();
  return 0;
}

}  // namespace

Command add_serve_command(CLI::App& root) {
  auto c = std::make_shared<ServeCommandOptions>();
  server::ServeOptions* o = &c->server;
  CLI::App* app = root.add_subcommand("serve", "Serve a web page and HTTP API to search, browse and play the hits.");
  app->add_option("--index", c->index, "index folder")->capture_default_str();
  app->add_option("--host", o->host, "address to listen on; other than loopback needs --token")->capture_default_str();
  app->add_option("--port", o->port, "port (0: any free one, printed)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app->add_option("--token", o->token,
                  "require this token on /api/* (Authorization: Bearer T, or open /?token=T once); "
                  "16+ of [A-Za-z0-9._~-]")
      ->envname("CLIPFIND_TOKEN");
  app->add_option("--model", o->model_dir, "model folder (default: the one the index was built with)");
  app->add_option("--http-threads", o->http_threads, "connections served at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app->add_option("--batch", o->max_batch, "most queued text queries embedded in one model call")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app->add_flag("--access-log", o->access_log, "print a line per request on stderr");
  add_engine_options(*app, o->engine);
  allow_several_gpus(*app, "an engine on each; batches of queries go to whichever is free");
  app->footer(
      "Example: clipfind serve --index clipfind-index, then open http://127.0.0.1:8080/\n"
      "The index may be updated by `clipfind index` meanwhile: changes show within seconds.\n"
      "Search results carry a score (cosine similarity, -1 to 1) and, for SigLIP indexes only, a probability: "
      "the model's sigmoid(exp(logit_scale) * score + logit_bias) for the best frame of the segment, shown on "
      "the page as a percentage (CLIP results show the score). /api/status gives the index's model family.");
  return {app, [c] { return run_serve(*c); }};
}

}  // namespace clipfind

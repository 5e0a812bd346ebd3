// Who may use the server. The policy (see `clipfind serve --help`):
//
// - By default it binds a loopback address and needs no token; it then
//   answers only requests whose Host is a loopback name, so a web page on the
//   Internet cannot reach it through DNS rebinding.
// - Binding any other address needs --token: refused without one, since the
//   API reads any indexed video. With a token, /api/* needs
//   "Authorization: Bearer TOKEN" or the cookie the page gets by being opened
//   once as /?token=TOKEN (it is then redirected to / so the token leaves the
//   address bar; <video> and <img> cannot send headers, a cookie they do).
// - Traffic is plain HTTP: put a TLS proxy in front for untrusted networks.
#pragma once
#include <httplib.h>

#include <optional>
#include <string>

namespace clipfind::server {

// 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(const std::string& host);

class AccessPolicy {
 public:
  // token empty: none required (only allowed on a loopback host).
  explicit AccessPolicy(std::string token) : token_(std::move(token)) {}

  bool needs_token() const { return !token_.empty(); }

  // nullopt when the request may go on; else the status (401/403) and why.
  std::optional<std::pair<int, std::string>> check(const httplib::Request& req) const;

  // A matching ?token= on the page: true after setting the cookie and a
  // redirect to the page without it.
  bool accept_token_login(const httplib::Request& req, httplib::Response& res) const;

 private:
  bool token_matches(const std::string& given) const;
  std::string token_;
};

}  // namespace clipfind::server

#include "server/access.h"

#include <arpa/inet.h>

#include <cstring>

namespace clipfind::server {

namespace {

constexpr const char* kCookie = "clipfind_token";

// "name" from "name", "name:port", "[v6]" or "[v6]:port".
std::string host_without_port(const std::string& value) {
  if (!value.empty() && value.front() == '[') {
    const auto close = value.find(']');
    return close == std::string::npos ? value : value.substr(1, close - 1);
  }
  const auto colon = value.find(':');
  if (colon != std::string::npos && value.find(':', colon + 1) == std::string::npos) return value.substr(0, colon);
  return value;
}

std::string cookie_value(const httplib::Request& req, const std::string& name) {
  for (size_t i = 0; i < req.get_header_value_count("Cookie"); ++i) {
    const std::string header = req.get_header_value("Cookie", i);
    size_t pos = 0;
    while (pos < header.size()) {
      size_t end = header.find(';', pos);
      if (end == std::string::npos) end = header.size();
      std::string pair = header.substr(pos, end - pos);
      pair.erase(0, pair.find_first_not_of(' '));
      if (pair.compare(0, name.size() + 1, name + "=") == 0) return pair.substr(name.size() + 1);
      pos = end + 1;
    }
  }
  return {};
}

}  // namespace

bool is_loopback_host(const std::string& host) {
  const std::string h = host_without_port(host);
  if (h == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

// Compares every byte whatever the first difference, so the answer's timing
// does not tell how much of a guess was right.
bool AccessPolicy::token_matches(const std::string& given) const {
  if (given.size() != token_.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ token_[i]);
  return diff == 0;
}

std::optional<std::pair<int, std::string>> AccessPolicy::check(const httplib::Request& req) const {
  if (!needs_token()) {
    if (!is_loopback_host(req.get_header_value("Host"))) {
      return std::make_pair(403, "this server answers only requests to a loopback address (Host: " +
                                     req.get_header_value("Host") + "); use --token to serve other names");
    }
    return std::nullopt;
  }
  if (req.path.rfind("/api/", 0) != 0) return std::nullopt;  // the page itself holds no data
  const std::string auth = req.get_header_value("Authorization");
  const std::string bearer = "Bearer ";
  if (auth.compare(0, bearer.size(), bearer) == 0 && token_matches(auth.substr(bearer.size()))) return std::nullopt;
  if (token_matches(cookie_value(req, kCookie))) return std::nullopt;
  return std::make_pair(401, std::string("this server needs a token: send \"Authorization: Bearer TOKEN\", "
                                         "or open the page once as /?token=TOKEN"));
}

bool AccessPolicy::accept_token_login(const httplib::Request& req, httplib::Response& res) const {
  if (!needs_token() || !req.has_param("token") || !token_matches(req.get_param_value("token"))) return false;
  // HttpOnly: page scripts never see it; SameSite=Strict: other sites'
  // pages cannot make the browser send it.
  res.set_header("Set-Cookie", std::string(kCookie) + "=" + token_ + "; Path=/; HttpOnly; SameSite=Strict");
  res.set_redirect("/", 303);
  return true;
}

}  // namespace clipfind::server

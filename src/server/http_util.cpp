#include "server/http_util.h"

namespace clipfind::server {

void reply_json(httplib::Response& res, const nlohmann::json& body, int status) {
  res.status = status;
  // Invalid UTF-8 in what we echo (a query, a file name) becomes U+FFFD
  // rather than an exception halfway through an answer.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message) {
  reply_json(res, {{"error", message}}, status);
}

std::optional<int64_t> parse_count(const std::string& text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<std::string> single_param(const httplib::Request& req, const char* name) {
  const size_t n = req.get_param_value_count(name);
  if (n == 0) return std::nullopt;
  if (n > 1) throw BadRequest(std::string("parameter '") + name + "' given more than once");
  return req.get_param_value(name);
}

}  // namespace clipfind::server

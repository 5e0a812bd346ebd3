// Small helpers every route uses: JSON answers and errors, and strict parsing
// of the numbers that come in URLs (digits only: "12abc", "-1" and "1e3"
// are malformed, not 12, -1 or 1000).
#pragma once
#include <httplib.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

namespace clipfind::server {

// A malformed request: answered 400 with its message.
class BadRequest : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An acceptable request that is too large: answered 413.
class TooLarge : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void reply_json(httplib::Response& res, const nlohmann::json& body, int status = 200);
// {"error": message}; the page shows the message as it is.
void reply_error(httplib::Response& res, int status, const std::string& message);

// A non-negative decimal integer of at most 18 digits, else nullopt.
std::optional<int64_t> parse_count(const std::string& text);

// The value of query parameter `name`: nullopt when absent; throws
// BadRequest when it is given twice (ambiguous).
std::optional<std::string> single_param(const httplib::Request& req, const char* name);

}  // namespace clipfind::server

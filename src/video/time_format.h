// Times as people type and read them: "00:01:02.5", "1:02.5", "62.5".
#pragma once
#include <optional>
#include <string>

namespace clipfind {

// "hh:mm:ss.mmm", rounded to the millisecond.
std::string format_hms(double seconds);

// [[hh:]mm:]ss[.fff] or plain seconds; nullopt when malformed or negative.
std::optional<double> parse_time(const std::string& text);

}  // namespace clipfind

// Streams a file the server chose (never a path from the request) with HTTP
// Range support, so a browser's <video> can start anywhere and seek.
#pragma once
#include <httplib.h>

#include <filesystem>
#include <string>

namespace clipfind::server {

// The whole file (200), the satisfiable part of a Range (206, several ranges
// as multipart/byteranges), or 416 when none of it is. Reads the file in
// pieces as the client takes them; 404 when the file is gone.
void serve_file(const httplib::Request& req, httplib::Response& res, const std::filesystem::path& file);

// By extension (lower-cased): video/mp4, video/webm, image/jpeg, ...;
// application/octet-stream for what we do not know.
std::string content_type_for(const std::filesystem::path& file);

}  // namespace clipfind::server

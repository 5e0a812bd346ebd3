// The web page: one HTML file (page.html, with its CSS and JavaScript inline)
// compiled into the binary, so `clipfind serve` needs nothing beside it and
// the page loads nothing from elsewhere.
#include "server/routes.h"

namespace clipfind::server {

namespace {

// page_html.inc is page.html inside a raw string literal, written by CMake.
constexpr char kPage[] =
#include "page_html.inc"
    ;

// Scripts and styles only from the page itself; pictures and video only
// from this server; nothing may frame it.
constexpr const char* kPagePolicy =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace

void add_page_routes(httplib::Server& http, const AccessPolicy& access) {
  http.Get("/", [&access](const httplib::Request& req, httplib::Response& res) {
    if (access.accept_token_login(req, res)) return;
    res.set_header("Content-Security-Policy", kPagePolicy);
    res.set_header("Cache-Control", "no-cache");
    res.set_content(kPage, sizeof(kPage) - 1, "text/html; charset=utf-8");
  });
}

}  // namespace clipfind::server

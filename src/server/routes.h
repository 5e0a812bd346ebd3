// The server's routes, by kind. Each handler answers every request it gets
// (errors included: it throws BadRequest, TooLarge or Busy, which Server
// turns into 400, 413 and 503).
#pragma once
#include <httplib.h>

#include "server/access.h"
#include "server/context.h"

namespace clipfind::server {

// GET/POST /api/search, GET /api/videos, GET /api/status.
void add_api_routes(httplib::Server& http, Context& ctx);

// GET /api/thumbnail/ID?t=MS (JPEG), GET /api/video/ID (the file, with ranges).
void add_media_routes(httplib::Server& http, Context& ctx);

// GET / (the page; /?token=T logs in, see access.h).
void add_page_routes(httplib::Server& http, const AccessPolicy& access);

}  // namespace clipfind::server

// Pictures and files for the page: thumbnails of hits and the videos
// themselves. Both name a video only by its catalog id (digits, matched by
// the route): no part of a request's path reaches the file system.
#include <filesystem>
#include <string>

#include "server/file_response.h"
#include "server/http_util.h"
#include "server/routes.h"

namespace clipfind::server {

namespace {

// The id in the route's (\d+), as a video of the current snapshot; nullptr
// (after answering 404) when there is none.
const IndexedVideo* find_video(const IndexSnapshot& snap, const httplib::Request& req, httplib::Response& res) {
  const auto id = parse_count(req.matches[1].str());
  const IndexedVideo* v = id ? snap.find(*id) : nullptr;
  if (!v) reply_error(res, 404, "no video with id " + req.matches[1].str() + " in the index");
  return v;
}

}  // namespace

void add_media_routes(httplib::Server& http, Context& ctx) {
  http.Get(R"(/api/thumbnail/(\d+))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    const auto snap = ctx.index.current();
    const IndexedVideo* v = find_video(*snap, req, res);
    if (!v) return;
    if (v->end_row == v->first_row) {
      reply_error(res, 404, v->record.path + " has no indexed frames (" + v->record.status + ")");
      return;
    }
    double seconds = snap->table.time[v->first_row];
    if (const auto t = single_param(req, "t")) {
      const auto ms = parse_count(*t);
      if (!ms) throw BadRequest("t=" + *t + ": expected milliseconds (digits)");
      seconds = double(*ms) / 1000.0;
    }
    if (std::error_code ec; !std::filesystem::exists(v->record.path, ec)) {
      reply_error(res, 404, v->record.path + " is no longer there");
      return;
    }
    // Frame times of the index (what results link to) are kept on disk;
    // other times are made for this request only.
    const auto frame = snap->frame_time(*v, seconds);
    const std::string jpeg = ctx.thumbnails.get(v->record, v->is_image, frame.value_or(seconds), frame.has_value());
    res.set_header("Cache-Control", "private, max-age=3600");
    res.set_content(jpeg, "image/jpeg");
  });

  http.Get(R"(/api/video/(\d+))", [&ctx](const httplib::Request& req, httplib::Response& res) {
    const auto snap = ctx.index.current();
    const IndexedVideo* v = find_video(*snap, req, res);
    if (v) serve_file(req, res, v->record.path);
  });
}

}  // namespace clipfind::server

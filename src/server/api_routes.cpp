// JSON routes: search by text or image, the list of videos, the status.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <semaphore>

#include "clip/image/image.h"
#include "index/query.h"
#include "server/http_util.h"
#include "server/routes.h"

namespace clipfind::server {

namespace {

using nlohmann::json;

struct SearchRequest {
  std::string text;   // a text query, or
  clip::Image image;  // an image query
  std::string query;  // what the answer echoes: the text, or the image's file name
  int k = 20;
  std::optional<int64_t> video;  // only this video
};

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

std::string thumbnail_url(int64_t id, double seconds) {
  return "/api/thumbnail/" + std::to_string(id) + "?t=" + std::to_string(std::llround(seconds * 1000.0));
}

class ApiRoutes {
 public:
  explicit ApiRoutes(Context& ctx) : ctx_(ctx), decoders_(std::max(1, ctx.limits.max_concurrent_decodes)) {}

  void search_get(const httplib::Request& req, httplib::Response& res) {
    SearchRequest s;
    s.text = s.query = single_param(req, "q").value_or("");
    read_common_params(req, s);
    search(std::move(s), res);
  }

  // An image: multipart field "image", or the body itself (image/*); or a
  // text query as JSON {"q": ..., "k": ..., "video": ...}.
  void search_post(const httplib::Request& req, httplib::Response& res) {
    SearchRequest s;
    read_common_params(req, s);
    const std::string type = req.get_header_value("Content-Type");
    if (req.is_multipart_form_data()) {
      if (!req.has_file("image")) throw BadRequest("multipart upload without an 'image' field");
      const auto part = req.get_file_value("image");
      s.query = part.filename.empty() ? "uploaded image" : part.filename;
      s.image = decode(part.content, s.query);
    } else if (type.rfind("application/json", 0) == 0) {
      read_json(req.body, s);
    } else if (type.rfind("image/", 0) == 0 || type.rfind("application/octet-stream", 0) == 0) {
      s.query = "uploaded image";
      s.image = decode(req.body, s.query);
    } else {
      throw BadRequest(
          "POST /api/search takes multipart/form-data with an 'image' field, an image/* body, "
          "or application/json {\"q\": ...}; got Content-Type '" +
          type + "'");
    }
    search(std::move(s), res);
  }

  void videos(const httplib::Request&, httplib::Response& res) {
    const auto snap = ctx_.index.current();
    json list = json::array();
    for (const auto& [id, v] : snap->videos) {
      const auto& r = v.record;
      json item = {{"id", id},
                   {"path", r.path},
                   {"name", file_name(r.path)},
                   {"kind", v.is_image ? "image" : "video"},
                   {"status", r.status},
                   {"duration", r.duration},
                   {"fps", r.fps},
                   {"width", r.width},
                   {"height", r.height},
                   {"frames", v.end_row - v.first_row},
                   {"url", "/api/video/" + std::to_string(id)}};
      if (!r.error.empty()) item["error"] = r.error;
      if (v.end_row > v.first_row) item["thumbnail"] = thumbnail_url(id, snap->table.time[v.first_row]);
      list.push_back(std::move(item));
    }
    reply_json(res, {{"videos", list}});
  }

  void status(const httplib::Request&, httplib::Response& res) {
    using namespace std::chrono;
    const auto snap = ctx_.index.current();
    const auto now = system_clock::now();
    const auto unix_s = [](system_clock::time_point t) { return duration<double>(t.time_since_epoch()).count(); };
    const auto modified = ctx_.index.modified();
    size_t ok = 0;
    for (const auto& [id, v] : snap->videos) ok += v.record.status == "ok";
    const BatcherStats enc = ctx_.encoder.stats();
    json out = {
        {"model", ctx_.model_dir},
        {"model_fingerprint", ctx_.model_fingerprint},
        {"device", ctx_.encoder.device()},
        {"family", snap->model.family},
        {"dim", ctx_.encoder.projection_dim()},
        {"index", ctx_.index.dir().string()},
        {"videos", ok},
        {"videos_failed", snap->videos.size() - ok},
        {"frames", snap->table.rows()},
        {"index_modified", unix_s(modified)},
        {"index_age_s", duration<double>(now - modified).count()},
        {"index_loaded", unix_s(snap->loaded_at)},
        {"uptime_s", duration<double>(now - ctx_.started).count()},
        {"encoder",
         {{"texts", enc.texts},
          {"images", enc.images},
          {"calls", enc.calls},
          {"largest_batch", enc.largest_batch},
          {"engine_calls", enc.engine_calls}}},
        {"text_queries", ctx_.encoder.has_text()},
        {"image_queries", ctx_.encoder.has_vision()},
    };
    if (snap->model.logit_scale) out["logit_scale"] = *snap->model.logit_scale;
    if (snap->model.logit_bias) out["logit_bias"] = *snap->model.logit_bias;
    if (const auto problem = ctx_.index.problem(); !problem.empty()) out["problem"] = problem;
    reply_json(res, out);
  }

 private:
  void read_common_params(const httplib::Request& req, SearchRequest& s) const {
    if (const auto k = single_param(req, "k")) set_k(s, parse_count(*k), *k);
    if (const auto v = single_param(req, "video"); v && !v->empty()) {
      s.video = parse_count(*v);
      if (!s.video) throw BadRequest("video=" + *v + ": expected a video id (a number from /api/videos)");
    }
  }

  void set_k(SearchRequest& s, std::optional<int64_t> k, const std::string& given) const {
    if (!k || *k < 1 || *k > ctx_.limits.max_k) {
      throw BadRequest("k=" + given + ": expected a number from 1 to " + std::to_string(ctx_.limits.max_k));
    }
    s.k = int(*k);
  }

  void read_json(const std::string& body, SearchRequest& s) const {
    const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) throw BadRequest("the body is not a JSON object");
    if (!j.contains("q") || !j["q"].is_string()) throw BadRequest("JSON body without a \"q\" string");
    s.text = s.query = j["q"].get<std::string>();
    if (j.contains("k")) {
      if (!j["k"].is_number_integer()) throw BadRequest("\"k\" must be an integer");
      set_k(s, j["k"].get<int64_t>() >= 0 ? std::optional<int64_t>(j["k"].get<int64_t>()) : std::nullopt,
            j["k"].dump());
    }
    if (j.contains("video") && !j["video"].is_null()) {
      if (!j["video"].is_number_unsigned() || j["video"].get<uint64_t>() > uint64_t(INT64_MAX)) {
        throw BadRequest("\"video\" must be a video id");
      }
      s.video = j["video"].get<int64_t>();
    }
  }

  clip::Image decode(const std::string& bytes, const std::string& name) {
    if (bytes.empty()) throw BadRequest("the uploaded image is empty");
    if (bytes.size() > ctx_.limits.max_upload_bytes) {
      throw TooLarge("images up to " + std::to_string(ctx_.limits.max_upload_bytes >> 20) + " MiB");
    }
    if (!ctx_.encoder.has_vision()) throw BadRequest("this model has no vision tower: no image queries");
    // A small file can hold a huge picture (the decoder allows ~180 MP, half
    // a gigabyte of RGB): only a few are decoded at a time.
    decoders_.acquire();
    struct Release {
      std::counting_semaphore<>& s;
      ~Release() { s.release(); }
    } release{decoders_};
    try {
      return clip::decode_image_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
    } catch (const clip::Error& e) {
      throw BadRequest(e.what());
    }
  }

  void search(SearchRequest s, httplib::Response& res) {
    const bool by_image = s.image.width > 0;
    if (!by_image) {
      if (s.text.find_first_not_of(" \t\r\n") == std::string::npos) throw BadRequest("empty query: give q=TEXT");
      if (s.text.size() > ctx_.limits.max_query_bytes) {
        throw BadRequest("query of " + std::to_string(s.text.size()) + " bytes; at most " +
                         std::to_string(ctx_.limits.max_query_bytes));
      }
      if (!ctx_.encoder.has_text()) throw BadRequest("this model has no text tower: no text queries");
      try {
        (void)json(s.text).dump();  // the strict serializer doubles as a UTF-8 check
      } catch (const json::type_error&) {
        throw BadRequest("the query is not valid UTF-8");
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    // Take the snapshot first: an index reloaded meanwhile cannot pull the
    // video out from under this request.
    const auto snap = ctx_.index.current();
    if (s.video && !snap->find(*s.video)) {
      reply_error(res, 404, "no video with id " + std::to_string(*s.video) + " in the index");
      return;
    }
    auto future = by_image ? ctx_.encoder.embed_image(std::move(s.image)) : ctx_.encoder.embed_text(s.text);
    if (future.wait_for(ctx_.limits.embed_timeout) != std::future_status::ready) {
      throw Busy("the model did not answer within " + std::to_string(ctx_.limits.embed_timeout.count()) + " s");
    }
    const std::vector<float> q = future.get();
    auto segs = [&] {
      const std::string name = ctx_.index.dir().string();
      if (!s.video) {
        return index::search_embedding(snap->table, q.data(), int(q.size()), size_t(s.k), snap->gap, name,
                                       snap->ann.get());
      }
      const auto only = index::select_videos(snap->table, [&](int64_t v) { return v == *s.video; });
      return index::search_embedding(only, q.data(), int(q.size()), size_t(s.k), snap->gap, name);
    }();
    index::add_probabilities(segs, snap->model);  // SigLIP only

    json results = json::array();
    for (const auto& seg : segs) {
      const IndexedVideo* v = snap->find(seg.video);
      if (!v) continue;  // its frames were read before its record changed; gone at the next reload
      json r = {{"video_id", seg.video},
                {"video", v->record.path},
                {"name", file_name(v->record.path)},
                {"kind", v->is_image ? "image" : "video"},
                {"start", seg.start},
                {"end", seg.end},
                {"time", seg.time},
                {"score", seg.score},
                {"thumbnail", thumbnail_url(seg.video, seg.time)},
                {"url", "/api/video/" + std::to_string(seg.video)}};
      if (seg.probability) r["probability"] = *seg.probability;
      results.push_back(std::move(r));
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    json out = {{"query", s.query},
                {"kind", by_image ? "image" : "text"},
                {"k", s.k},
                {"video", s.video ? json(*s.video) : json(nullptr)},
                {"took_ms", std::round(ms * 10) / 10},
                {"results", results}};
    if (results.empty()) out["reason"] = why_nothing_found(*snap, s.video);
    reply_json(res, out);
  }

  // Why a search found nothing, in `clipfind search`'s words.
  static std::string why_nothing_found(const IndexSnapshot& snap, std::optional<int64_t> video) {
    std::vector<index::VideoRecord> records;
    for (const auto& [id, v] : snap.videos) records.push_back(v.record);
    const std::string why = index::why_nothing_found(
        records, [&](const index::VideoRecord& r) { return !video || r.id == *video; },
        video ? "video=" + std::to_string(*video) : "");
    return why.empty() ? index::kNoRowsToRank : why;
  }

  Context& ctx_;
  std::counting_semaphore<> decoders_;
};

}  // namespace

void add_api_routes(httplib::Server& http, Context& ctx) {
  auto api = std::make_shared<ApiRoutes>(ctx);
  http.Get("/api/search", [api](const httplib::Request& req, httplib::Response& res) { api->search_get(req, res); });
  http.Post("/api/search", [api](const httplib::Request& req, httplib::Response& res) { api->search_post(req, res); });
  http.Get("/api/videos", [api](const httplib::Request& req, httplib::Response& res) { api->videos(req, res); });
  http.Get("/api/status", [api](const httplib::Request& req, httplib::Response& res) { api->status(req, res); });
}

}  // namespace clipfind::server

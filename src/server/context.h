// What the route handlers share: the index, the model, the thumbnails and
// the limits a request must respect. Owned by Server, outliving every request.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>

#include "server/index_snapshot.h"
#include "server/query_batcher.h"
#include "server/thumbnails.h"

namespace clipfind::server {

struct Limits {
  size_t max_query_bytes = 1000;           // text queries (CLIP reads 77 tokens anyway): longer is 400
  int max_k = 200;                         // results per search
  size_t max_upload_bytes = 10u << 20;     // image queries: larger is 413
  int max_concurrent_decodes = 2;          // uploaded images decoded at once (each may take ~0.5 GB)
  std::chrono::seconds embed_timeout{30};  // waiting for the model longer than this is 503
};

struct Context {
  IndexWatcher& index;
  QueryBatcher& encoder;
  ThumbnailCache& thumbnails;
  Limits limits;
  std::string model_dir;
  std::string model_fingerprint;
  std::chrono::system_clock::time_point started;
};

}  // namespace clipfind::server

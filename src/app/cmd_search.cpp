// clipfind search: moments that match a sentence or an image.
#include <fnmatch.h>

#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/time_format.h"
#include "index/catalog.h"
#include "index/fingerprint.h"
#include "index/search.h"

namespace clipfind {

namespace {

struct SearchOptions {
  std::string index = "clipfind-index";
  std::string text;
  std::string image;
  std::string model;
  std::string video_glob;
  int k = 10;
  double gap = 0.0;
  bool json = false;
  clip::EngineOptions engine;
};

int run_search(const SearchOptions& o) {
  if (o.text.empty() == o.image.empty()) throw std::runtime_error("give either a TEXT or --image FILE");
  index::Catalog cat(o.index, false);
  const auto stored_fp = cat.meta("model");
  if (!stored_fp) throw std::runtime_error(o.index + ": the index is empty (run `clipfind index` first)");
  const std::string model_dir = o.model.empty() ? cat.meta("model_path").value_or("") : o.model;
  const std::string fp = index::model_fingerprint(model_dir);
  if (fp != *stored_fp) {
    throw std::runtime_error(o.index + ": built with model fingerprint " + *stored_fp + " but " + model_dir +
                             " has " + fp + " (rebuild with `clipfind index --reindex --model " + model_dir + "`)");
  }

  auto engine = clip::Engine::load(model_dir, o.engine);
  clip::Tensor q = o.image.empty() ? engine->embed_texts({o.text}) : engine->embed_image_files({o.image});
  clip::l2_normalize_rows(q);

  index::FrameTable table = cat.load_frames();
  std::map<int64_t, std::string> paths;
  for (const auto& v : cat.videos()) paths[v.id] = v.path;
  if (!o.video_glob.empty()) {
    // Drop rows of other videos up front so top-k ranks only the wanted ones.
    index::FrameTable kept;
    kept.dim = table.dim;
    for (size_t r = 0; r < table.rows(); ++r) {
      if (fnmatch(o.video_glob.c_str(), paths[table.video[r]].c_str(), 0) != 0) continue;
      kept.video.push_back(table.video[r]);
      kept.time.push_back(table.time[r]);
      kept.embeddings.insert(kept.embeddings.end(), table.embeddings.begin() + long(r) * table.dim,
                             table.embeddings.begin() + long(r + 1) * table.dim);  // half floats, copied as is
    }
    table = std::move(kept);
  }
  if (q.dim(1) != table.dim && table.rows() > 0) {
    throw std::runtime_error(o.index + ": stored embeddings have dim " + std::to_string(table.dim) +
                             ", the model gives " + std::to_string(q.dim(1)));
  }
  const double gap = o.gap > 0 ? o.gap : 2.0 * std::stod(cat.meta("interval").value_or("1"));
  const auto segs = index::search(table, q.ptr(), size_t(o.k), gap);

  if (o.json) {
    nlohmann::json results = nlohmann::json::array();
    for (const auto& s : segs) {
      results.push_back({{"video", paths[s.video]}, {"start", s.start}, {"end", s.end}, {"time", s.time},
                         {"score", s.score}});
    }
    nlohmann::json out = {{"query", o.image.empty() ? o.text : o.image}, {"results", results}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    for (const auto& s : segs) {
      std::printf("%s  %s  %.4f\n", paths[s.video].c_str(), format_hms(s.time).c_str(), s.score);
    }
  }
  return 0;
}

}  // namespace

Command add_search_command(CLI::App& root) {
  auto o = std::make_shared<SearchOptions>();
  CLI::App* app = root.add_subcommand("search", "Find the moments in indexed videos that match a text or an image.");
  app->add_option("TEXT", o->text, "what to look for, in words");
  app->add_option("--image", o->image, "look for frames like this image instead")->check(CLI::ExistingFile);
  app->add_option("--index", o->index, "index folder")->capture_default_str();
  app->add_option("-k", o->k, "number of results")->capture_default_str()->check(CLI::Range(1, 100000));
  app->add_option("--video", o->video_glob, "only videos whose path matches this glob");
  app->add_option("--gap", o->gap, "merge hits of one video this close in seconds (default: 2x the sampling interval)");
  app->add_option("--model", o->model, "model folder (default: the one the index was built with)");
  app->add_flag("--json", o->json,
                R"(print {"query": ..., "results": [{"video", "start", "end", "time", "score"}, ...]})");
  add_engine_options(*app, o->engine);
  app->footer("Example: clipfind search \"a yellow ambulance at night\" -k 5");
  return {app, [o] { return run_search(*o); }};
}

}  // namespace clipfind

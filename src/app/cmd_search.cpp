// clipfind search: moments that match a sentence or an image.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/commands.h"
#include "index/ann_catalog.h"
#include "index/catalog.h"
#include "index/multi_search.h"
#include "index/query.h"
#include "index/residency.h"
#include "video/time_format.h"

namespace clipfind {

namespace {

// One-shot search takes the ANN index by itself below this share of
// vectors.f16 in memory. Per 1M frames at dim 512, on the 2-core machine: a
// scan in memory 59 ms, loading the ANN index 157 ms, reading vectors.f16
// from disk ~530 ms (31 GB in 15.8 s at 30M): the ANN index wins once more
// than about a quarter of the rows would come from disk; half leaves room.
constexpr double kAnnBelowResident = 0.5;

struct SearchOptions {
  std::vector<std::string> indexes = {"clipfind-index"};  // --index, repeatable
  std::string text;
  std::string image;
  std::string model;
  std::string video_glob;
  int k = 10;
  double gap = 0.0;
  bool json = false;
  bool timings = false;
  bool exact = false;
  bool ann = false;
  clip::EngineOptions engine;
};

// Milliseconds per step of one search, for --timings (the benchmark's split).
class StepTimer {
 public:
  void lap(const char* step) {
    const auto now = std::chrono::steady_clock::now();
    laps_ += std::string(laps_.empty() ? "" : ", ") + step + " " +
             std::to_string(std::chrono::duration<double, std::milli>(now - last_).count()).substr(0, 6) + " ms";
    last_ = now;
  }
  const std::string& str() const { return laps_; }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  std::string laps_;
};

// A probability for people: "87.25%", and "<0.01%" / ">99.99%" rather than
// a rounded 0.00% or 100.00% that is neither.
std::string percent(float p) {
  const double pc = 100.0 * double(p);
  if (pc < 0.01) return "<0.01%";
  if (pc > 99.99) return ">99.99%";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.2f%%", pc);
  return buf;
}

// The answer on stdout: --json's object (with "reason" when nothing was
// found), or one line per segment: path, best time, start-end, score, and
// for a SigLIP index the probability as a percentage.
void print_results(const SearchOptions& o, const std::vector<index::Segment>& segs,
                   std::map<int64_t, std::string>& paths, const std::string& reason) {
  if (!reason.empty()) std::fprintf(stderr, "clipfind: no results: %s\n", reason.c_str());
  if (o.json) {
    nlohmann::json results = nlohmann::json::array();
    for (const auto& s : segs) {
      nlohmann::json r = {
          {"video", paths[s.video]}, {"start", s.start}, {"end", s.end}, {"time", s.time}, {"score", s.score}};
      if (s.probability) r["probability"] = *s.probability;
      results.push_back(std::move(r));
    }
    nlohmann::json out = {{"query", o.image.empty() ? o.text : o.image}, {"results", results}};
    if (!reason.empty()) out["reason"] = reason;
    std::printf("%s\n", out.dump().c_str());
  } else {
    for (const auto& s : segs) {
      const std::string probability = s.probability ? "  " + percent(*s.probability) : "";
      std::printf("%s  %s  %s-%s  %.4f%s\n", paths[s.video].c_str(), format_hms(s.time).c_str(),
                  format_hms(s.start).c_str(), format_hms(s.end).c_str(), s.score, probability.c_str());
    }
  }
}

int run_search(const SearchOptions& o) {
  if (o.text.empty() == o.image.empty()) throw std::runtime_error("give either a TEXT or --image FILE");
  StepTimer timer;
  const index::IndexSet set(o.indexes);  // several: searched as one (multi_search.h)
  const index::Catalog& cat = set.first();
  std::map<int64_t, std::string> paths;
  // Nothing to rank (no video, none chosen, none with frames): say why, before loading a model.
  const std::string why = index::why_nothing_found(
      set.videos(),
      [&](const index::VideoRecord& v) { return o.video_glob.empty() || index::video_matches(o.video_glob, v.path); },
      o.video_glob.empty() ? "" : "--video '" + o.video_glob + "'");
  if (!why.empty()) {
    print_results(o, {}, paths, why);
    return 0;
  }
  const std::string model_dir = index::query_model(cat, o.model);
  const index::ModelRecord model = cat.model().value();  // query_model found one
  timer.lap("open");

  auto engine = clip::Engine::load(model_dir, o.engine);
  timer.lap("model");
  const std::string precision_note = index::precision_note(cat, clip::precision_name(engine->precision()));
  if (!precision_note.empty()) std::fprintf(stderr, "note: %s\n", precision_note.c_str());
  clip::Tensor q = o.image.empty() ? engine->embed_texts({o.text}) : engine->embed_image_files({o.image});
  clip::l2_normalize_rows(q);
  timer.lap("query");

  std::string bypassed;  // why vectors.f16 was not used, if it was not
  index::FrameTable table = set.load_frames(&bypassed);
  if (!bypassed.empty()) {
    std::fprintf(stderr, "note: %s: searching the catalog instead (slower); `clipfind index` rebuilds it\n",
                 bypassed.c_str());
  }
  timer.lap(bypassed.empty() ? "frames (mapped)" : "frames (SQLite)");
  for (const auto& v : set.videos()) paths[v.id] = v.path;  // read after the frames: each has its path
  if (!o.video_glob.empty()) {
    // Drop rows of other videos up front so top-k ranks only the wanted ones.
    table = index::select_videos(table, [&](int64_t v) { return index::video_matches(o.video_glob, paths[v]); });
  }
  const double gap = o.gap > 0 ? o.gap : set.default_gap();
  timer.lap("videos");
  // The ANN index, with --ann, when one holds these rows (not a --video
  // subset, not the SQLite fallback). By default only when much of
  // vectors.f16 is not in memory: loading the ANN index whole costs more
  // than a scan in memory saves (157 against 59 ms at 1M frames), but a
  // scan that reads the disk costs far more (15.8 s at 30M frames;
  // bench/video/RESULTS.md). `serve` loads it once and always uses it. One
  // index only: the rows of several are copied into one table that no ANN
  // file describes.
  const bool one_mapped_table = set.catalogs().size() == 1 && o.video_glob.empty() && bypassed.empty();
  bool use_ann = o.ann;
  std::string chosen;
  if (!o.ann && !o.exact && one_mapped_table && std::filesystem::exists(index::ann_file(cat))) {
    const double resident = index::resident_share(table.embeddings.data(), table.embeddings.size_bytes());
    if (resident < kAnnBelowResident) {
      use_ann = true;
      chosen = std::to_string(int(resident * 100)) + "% of vectors.f16 in memory";
    }
  }
  std::shared_ptr<const index::AnnIndex> ann;
  if (o.ann && set.catalogs().size() > 1) {
    std::fprintf(stderr, "note: --ann takes one --index; scanning the frames of all %zu\n", set.catalogs().size());
  } else if (use_ann && one_mapped_table) {  // --ann excludes --exact
    std::string ann_note;
    ann = index::load_ann(cat, table, &ann_note);
    if (!ann_note.empty()) std::fprintf(stderr, "warning: %s: scanning every frame instead\n", ann_note.c_str());
    timer.lap("ann load");
  }
  auto segs = index::search_embedding(table, q.ptr(), int(q.dim(1)), size_t(o.k), gap, set.name(), ann.get());
  index::add_probabilities(segs, model);
  timer.lap(ann ? "search (ann)" : "search (exact)");

  // Empty only if the chosen videos lost their frames (re-indexed meanwhile) after the check above.
  print_results(o, segs, paths, segs.empty() ? index::kNoRowsToRank : "");
  if (o.timings) {
    std::fprintf(stderr, "timings: %s over %zu frames on %s\n", timer.str().c_str(), table.rows(),
                 engine->backend_name().c_str());
    if (ann) {
      const index::AnnInfo i = ann->info();
      std::fprintf(stderr, "ann: nprobe %d of %zu lists, %.1f MB, recall@10 at build %.3f%s\n", i.nprobe, i.lists,
                   double(i.memory_bytes) / 1e6, double(i.recall_at_10),
                   chosen.empty() ? "" : ("; chosen: " + chosen).c_str());
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
  app->add_option("--index", o->indexes,
                  "index folder; repeat it to search several as one (the shards of `clipfind index --shard`)")
      ->capture_default_str()
      ->allow_extra_args(false);
  app->add_option("-k", o->k, "number of results")->capture_default_str()->check(CLI::Range(1, 100000));
  app->add_option("--video", o->video_glob,
                  "only videos this glob matches: against the file name (\"*.mkv\"), the path relative to the "
                  "indexed folder (\"trips/*\"), or the absolute path");
  app->add_option("--gap", o->gap, "merge hits of one video this close in seconds (default: 2x the sampling interval)");
  app->add_option("--model", o->model, "model folder (default: the one the index was built with)");
  app->add_flag("--json", o->json,
                R"(print {"query": ..., "results": [{"video", "start", "end", "time", "score"}, ...]})"
                "; SigLIP indexes add \"probability\" to each result (see below)");
  app->add_flag("--timings", o->timings, "print how long each step took on stderr");
  auto* ann = app->add_flag("--ann", o->ann,
                            "take candidates from the index's ANN index (vectors.ann) when it is current; "
                            "by default only when most of vectors.f16 is not in memory (a scan would read the "
                            "disk): loading it costs more than a scan in memory saves");
  app->add_flag("--exact", o->exact, "scan every frame")->excludes(ann);
  add_engine_options(*app, o->engine);
  app->footer(
      "Each result is a segment: the frames of one video that match, merged; its time and score (the cosine "
      "similarity of the query and the frame, -1 to 1) are the best frame's.\n"
      "The probability (SigLIP indexes only; CLIP has none): the model's estimate that the query and the best "
      "frame match, sigmoid(exp(logit_scale) * score + logit_bias) with the model's own logit_scale and "
      "logit_bias. Results stay ranked by score. Plain output shows it as a percentage after the score.\n"
      "Example: clipfind search \"a yellow ambulance at night\" -k 5");
  return {app, [o] { return run_search(*o); }};
}

}  // namespace clipfind

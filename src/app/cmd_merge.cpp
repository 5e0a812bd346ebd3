// clipfind merge: index folders (the shards of `clipfind index --shard I/N`)
// combined into one index.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/ann_option.h"
#include "app/commands.h"
#include "index/merge.h"

namespace clipfind {

namespace {

struct MergeOptions {
  std::vector<std::string> sources;
  std::string index;
  std::string ann = "auto";
  bool json = false;
};

int run_merge(const MergeOptions& o) {
  const std::vector<std::filesystem::path> sources(o.sources.begin(), o.sources.end());
  const index::MergeSummary s = index::merge_indexes(
      sources, o.index, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  if (!s.missing_shards.empty()) {
    std::string missing;
    for (const auto& m : s.missing_shards) missing += (missing.empty() ? "" : ", ") + m;
    std::fprintf(stderr, "warning: shards %s of the split are not among those merged (did their jobs finish?)\n",
                 missing.c_str());
  }
  std::fprintf(stderr, "%s: %s %zu indexes: now %d videos, %ld frames, in %.2f s\n", s.out.c_str(),
               s.appended ? "appended" : "merged", s.sources.size(), s.videos, s.frames, s.seconds);
  // As `clipfind index` would after adding these videos: the shards' own
  // vectors.ann cannot be joined (each has its own lists).
  update_ann(s.out, o.ann);
  if (o.json) {
    nlohmann::json sources_json = nlohmann::json::array();
    for (const auto& src : s.sources) {
      sources_json.push_back(
          {{"index", src.index}, {"shard", src.shard}, {"videos", src.videos}, {"frames", src.frames}});
    }
    const nlohmann::json out = {{"index", s.out},
                                {"appended", s.appended},
                                {"sources", sources_json},
                                {"videos", s.videos},
                                {"frames", s.frames},
                                {"missing_shards", s.missing_shards},
                                {"precisions", s.precisions},
                                {"seconds", s.seconds}};
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}

}  // namespace

Command add_merge_command(CLI::App& root) {
  auto o = std::make_shared<MergeOptions>();
  CLI::App* app = root.add_subcommand(
      "merge",
      "Combine index folders (the shards of `clipfind index --shard I/N`) into one index: videos and\n"
      "embeddings are copied as they are, so the result equals one `clipfind index` over all the files.");
  app->add_option("SHARD", o->sources, "index folders to merge")->required()->check(CLI::ExistingDirectory);
  app->add_option("--index", o->index,
                  "the merged index: a new or empty folder (built beside it, then renamed into place), or an "
                  "index of the same model to add the videos to")
      ->required();
  add_ann_option(*app, &o->ann);
  app->add_flag("--json", o->json,
                R"(print {"index", "appended", "sources": [{"index", "shard", "videos", "frames"}], "videos", )"
                R"("frames", "missing_shards", "precisions", "seconds"} on stdout)");
  app->footer("Example: clipfind merge shards/* --index archive-index");
  return {app, [o] { return run_merge(*o); }};
}

}  // namespace clipfind

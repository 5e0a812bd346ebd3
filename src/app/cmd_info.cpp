// clipfind info: what an index holds and which model made it: the model's
// folder, fingerprint and family (CLIP or SigLIP), its logit parameters,
// the embedding width, precisions, sampling, and the counts.
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "app/commands.h"
#include "index/ann_catalog.h"
#include "index/catalog.h"
#include "index/query.h"

namespace clipfind {

namespace {

struct InfoOptions {
  std::string index = "clipfind-index";
  bool json = false;
};

int run_info(const InfoOptions& o) {
  const index::Catalog cat(o.index, false);
  const auto model = cat.model();  // none: nothing indexed yet
  int64_t ok = 0, failed = 0, frames = 0;
  for (const auto& v : cat.videos()) {
    if (v.status == "ok") {
      ++ok;
      frames += v.frames;
    } else {
      ++failed;
    }
  }
  const auto sampling = cat.meta("sampling");
  const auto precisions = cat.precisions();
  const std::string shard = cat.meta("shard").value_or("");  // `index --shard I/N` (issue 30)
  const std::string ann = index::ann_status(cat);

  if (o.json) {
    using nlohmann::json;
    json out = {{"index", std::filesystem::absolute(cat.dir()).string()},
                {"model", model ? json(model->path) : json(nullptr)},
                {"model_fingerprint", model ? json(model->fingerprint) : json(nullptr)},
                {"family", model ? json(model->family) : json(nullptr)},
                {"dim", model ? json(model->dim) : json(nullptr)},
                {"precisions", precisions},
                {"sampling", sampling ? json(*sampling) : json(nullptr)},
                {"shard", shard.empty() ? json(nullptr) : json(shard)},
                {"videos", ok},
                {"videos_failed", failed},
                {"frames", frames},
                {"ann", ann}};
    if (model && model->logit_scale) out["logit_scale"] = *model->logit_scale;
    if (model && model->logit_bias) out["logit_bias"] = *model->logit_bias;
    if (model) out["probabilities"] = index::has_probabilities(*model);
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }

  std::printf("index: %s\n", std::filesystem::absolute(cat.dir()).c_str());
  if (!model) {
    std::printf("model: none yet (nothing indexed: run `clipfind index`)\n");
  } else {
    std::printf("model: %s (fingerprint %s)\n", model->path.c_str(), model->fingerprint.c_str());
    std::printf("family: %s\n", model->family.c_str());
    if (model->logit_scale) {
      std::printf("logit_scale: %.9g (temperature %.6g)\n", double(*model->logit_scale),
                  std::exp(double(*model->logit_scale)));
    }
    if (model->logit_bias) std::printf("logit_bias: %.9g\n", double(*model->logit_bias));
    std::printf("search results: %s\n", index::has_probabilities(*model)
                                            ? "score (cosine) and probability (sigmoid of the model's logit)"
                                            : "score (cosine)");
    std::printf("dim: %d\n", model->dim);
  }
  if (!precisions.empty()) {
    std::string list;
    for (const auto& p : precisions) list += (list.empty() ? "" : ", ") + p;
    std::printf("precision: %s\n", list.c_str());
  }
  if (sampling) std::printf("sampling: %s\n", sampling->c_str());
  if (!shard.empty()) std::printf("shard: %s (combine the shards with `clipfind merge`)\n", shard.c_str());
  std::printf("videos: %lld (%lld failed), frames: %lld\n", static_cast<long long>(ok), static_cast<long long>(failed),
              static_cast<long long>(frames));
  std::printf("ann: %s\n", ann.c_str());
  return 0;
}

}  // namespace

Command add_info_command(CLI::App& root) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* app = root.add_subcommand(
      "info", "Show what an index holds and which model made it (folder, fingerprint, family: clip or siglip).");
  app->add_option("--index", o->index, "index folder")->capture_default_str();
  app->add_flag("--json", o->json,
                R"(print {"index", "model", "model_fingerprint", "family", "dim", "logit_scale", "logit_bias", )"
                R"("probabilities", "precisions", "sampling", "shard", "videos", "videos_failed", "frames", "ann"}; )"
                "logit_scale and logit_bias only when the model has them, model fields null for an empty index, "
                "shard (\"I/N\") null unless the index is one shard of `index --shard`");
  app->footer("Example: clipfind info --index clipfind-index");
  return {app, [o] { return run_info(*o); }};
}

}  // namespace clipfind

// clipfind tokenize: the token ids the text tower sees, one JSON array per text.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/commands.h"
#include "clip/error.h"
#include "clip/model/config.h"
#include "clip/model/weight_source.h"
#include "clip/text/tokenizer.h"

namespace clipfind {

namespace {

struct TokenizeOptions {
  std::string model;
  std::vector<std::string> texts;
};

// The context length is the text tower's number of positions. The weights
// decide it (they win over config.json); their header is read through mmap
// without converting any tensor, so this stays fast for large models.
int context_length(const std::filesystem::path& dir) {
  const clip::WeightSource weights = clip::WeightSource::open_folder(dir);
  if (const auto* pos = weights.find("text_model.embeddings.position_embedding.weight")) {
    if (!pos->shape.empty()) return static_cast<int>(pos->shape[0]);
  }
  const clip::ClipConfig cfg = clip::load_clip_config(dir / "config.json");
  if (!cfg.text) throw clip::Error((dir / "config.json").string() + ": the model has no text tower");
  return cfg.text->max_positions;
}

int run_tokenize(const TokenizeOptions& o) {
  const clip::Tokenizer tokenizer = clip::Tokenizer::from_folder(o.model);
  const int context = context_length(o.model);
  for (const std::string& text : o.texts) {
    std::printf("%s\n", nlohmann::json(tokenizer.encode_for_model(text, context)).dump().c_str());
  }
  return 0;
}

}  // namespace

Command add_tokenize_command(CLI::App& root) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* app =
      root.add_subcommand("tokenize",
                          "Print the token ids of each TEXT as a JSON array (start and end tokens included,\n"
                          "truncated to the model's context length with the end token kept last).");
  app->add_option("--model", o->model, "Hugging Face CLIP folder with tokenizer files")
      ->required()
      ->check(CLI::ExistingDirectory);
  app->add_option("TEXT", o->texts, "texts to tokenize")->required();
  return {app, [o] { return run_tokenize(*o); }};
}

}  // namespace clipfind

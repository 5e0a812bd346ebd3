// clipfind tokenize: the token ids the text tower sees, one JSON array per text.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/commands.h"
#include "clip/error.h"
#include "clip/model/config.h"
#include "clip/model/weight_source.h"
#include "clip/text/model_tokenizer.h"

namespace clipfind {

namespace {

struct TokenizeOptions {
  std::string model;
  std::vector<std::string> texts;
};

// The model's config says which tokenizer (CLIP BPE or SigLIP
// SentencePiece); the context length is the text tower's number of
// positions, which the weights decide when the folder has them (they win
// over config.json). Their header is read through mmap without converting
// any tensor, so this stays fast for large models.
clip::ClipConfig text_config(const std::filesystem::path& dir) {
  clip::ClipConfig cfg = clip::load_clip_config(dir / "config.json");
  if (!cfg.text) throw clip::Error((dir / "config.json").string() + ": the model has no text tower");
  std::error_code ec;
  if (!std::filesystem::exists(dir / "model.safetensors", ec) &&
      !std::filesystem::exists(dir / "model.safetensors.index.json", ec))
    return cfg;  // a tokenizer folder: config.json's context length
  const clip::WeightSource weights = clip::WeightSource::open_folder(dir);
  if (const auto* pos = weights.find("text_model.embeddings.position_embedding.weight")) {
    if (!pos->shape.empty()) cfg.text->max_positions = static_cast<int>(pos->shape[0]);
  }
  return cfg;
}

int run_tokenize(const TokenizeOptions& o) {
  const clip::ModelTokenizer tokenizer = clip::ModelTokenizer::load(o.model, text_config(o.model));
  for (const std::string& text : o.texts) {
    std::printf("%s\n", nlohmann::json(tokenizer.encode(text)).dump().c_str());
  }
  return 0;
}

}  // namespace

Command add_tokenize_command(CLI::App& root) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* app =
      root.add_subcommand("tokenize",
                          "Print the token ids of each TEXT as a JSON array (start and end tokens included,\n"
                          "truncated to the model's context length with the end token kept last; for SigLIP\n"
                          "models padded to it, as the text tower takes them).");
  app->add_option("--model", o->model, "Hugging Face CLIP or SigLIP folder with tokenizer files")
      ->required()
      ->check(CLI::ExistingDirectory);
  app->add_option("TEXT", o->texts, "texts to tokenize")->required();
  return {app, [o] { return run_tokenize(*o); }};
}

}  // namespace clipfind

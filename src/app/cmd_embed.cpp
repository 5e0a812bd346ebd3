// clipfind embed: CLIP embeddings of images and texts, for scripts and checks.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/commands.h"
#include "clip/clip.h"

namespace clipfind {

namespace {

struct EmbedOptions {
  std::string model;
  std::vector<std::string> images;
  std::vector<std::string> texts;
  bool json = false;
  bool normalize = false;
  clip::EngineOptions engine;
};

nlohmann::json rows_to_json(const clip::Tensor& t) {
  nlohmann::json rows = nlohmann::json::array();
  const size_t cols = t.shape.size() == 2 ? static_cast<size_t>(t.shape[1]) : 0;
  for (size_t r = 0; cols && r < static_cast<size_t>(t.shape[0]); ++r) {
    rows.push_back(std::vector<float>(t.ptr() + r * cols, t.ptr() + (r + 1) * cols));
  }
  return rows;
}

// One line per input: what it was, then the vector.
void print_plain(const char* kind, const std::vector<std::string>& inputs, const clip::Tensor& t) {
  const size_t cols = static_cast<size_t>(t.shape[1]);
  for (size_t r = 0; r < inputs.size(); ++r) {
    std::printf("%s\t%s\t", kind, inputs[r].c_str());
    for (size_t c = 0; c < cols; ++c) std::printf(c ? " %.6g" : "%.6g", t.ptr()[r * cols + c]);
    std::printf("\n");
  }
}

int run_embed(const EmbedOptions& o) {
  if (o.images.empty() && o.texts.empty()) {
    throw clip::Error("nothing to embed: give at least one --image FILE or --text STRING");
  }
  auto engine = clip::Engine::load(o.model, o.engine);
  clip::Tensor image_embeds, text_embeds;
  if (!o.images.empty()) {
    image_embeds = engine->embed_image_files({o.images.begin(), o.images.end()});
    if (o.normalize) clip::l2_normalize_rows(image_embeds);
  }
  if (!o.texts.empty()) {
    text_embeds = engine->embed_texts(o.texts);
    if (o.normalize) clip::l2_normalize_rows(text_embeds);
  }
  if (o.json) {
    nlohmann::json out = nlohmann::json::object();
    if (!o.images.empty()) out["image_embeds"] = rows_to_json(image_embeds);
    if (!o.texts.empty()) out["text_embeds"] = rows_to_json(text_embeds);
    std::printf("%s\n", out.dump().c_str());
  } else {
    if (!o.images.empty()) print_plain("image", o.images, image_embeds);
    if (!o.texts.empty()) print_plain("text", o.texts, text_embeds);
  }
  return 0;
}

constexpr const char* kDeviceHelp = "cpu, cuda, cuda:N or auto (a usable GPU, else the CPU)";

}  // namespace

void allow_several_gpus(CLI::App& app, const std::string& how) {
  app.get_option("--device")
      ->description(std::string(kDeviceHelp) + ", or several GPUs: cuda:all or cuda:N,M,... (" + how + ")");
}

void add_engine_options(CLI::App& app, clip::EngineOptions& e) {
  e.device = "auto";  // the GPU when one is usable, else the CPU
  app.add_option("--device", e.device, kDeviceHelp)->capture_default_str();
  app.add_option_function<std::string>(
      "--precision",
      [&e](const std::string& name) {
        try {
          e.precision = clip::parse_precision(name);
        } catch (const clip::Error& err) {
          throw CLI::ValidationError("--precision", err.what());
        }
      },
      "fp32|bf16|int8|auto on CPU, fp32|tf32|fp16|bf16|auto on CUDA (default: fp32 on CPU, fp16 on CUDA; "
      "auto: bf16 on CPUs with native bf16)");
  app.add_option("--threads", e.threads, "CPU threads (0: all cores)")->capture_default_str();
}

Command add_embed_command(CLI::App& root) {
  auto o = std::make_shared<EmbedOptions>();
  CLI::App* app =
      root.add_subcommand("embed",
                          "Print CLIP embeddings of images and texts (unnormalised unless --normalize),\n"
                          "equal to transformers' visual_projection / text_projection of the pooled output.");
  app->add_option("--model", o->model, "Hugging Face CLIP or SigLIP folder (config.json, model.safetensors, ...)")
      ->required()
      ->check(CLI::ExistingDirectory);
  app->add_option("--image", o->images, "image file (PNG or JPEG); repeatable");
  app->add_option("--text", o->texts, "text; repeatable");
  app->add_flag("--json", o->json, R"(print {"image_embeds": [[...]], "text_embeds": [[...]]})");
  app->add_flag("--normalize", o->normalize, "divide each embedding by its L2 norm");
  add_engine_options(*app, o->engine);
  app->footer("Example: clipfind embed --model models/shapes-clip --text \"a red circle\" --json");
  return {app, [o] { return run_embed(*o); }};
}

}  // namespace clipfind

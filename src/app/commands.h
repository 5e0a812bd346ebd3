// Each subcommand registers its options on the CLI11 app and returns the
// function that runs it once the command line is parsed.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "clip/clip.h"

namespace clipfind {

inline constexpr const char* kVersion = "0.1.0";  // --version and doctor

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;  // returns the process exit status
};

// --device, --precision, --threads: shared by every command that runs the model.
void add_engine_options(CLI::App& app, clip::EngineOptions& options);
// After add_engine_options: --device also takes several GPUs (clip::device_list);
// `how` says what the command does with them.
void allow_several_gpus(CLI::App& app, const std::string& how);

Command add_embed_command(CLI::App& root);
Command add_tokenize_command(CLI::App& root);
Command add_index_command(CLI::App& root);  // issue 4: video search
Command add_search_command(CLI::App& root);
Command add_merge_command(CLI::App& root);  // issue 30: shards of `index --shard` into one
Command add_frame_command(CLI::App& root);
Command add_info_command(CLI::App& root);    // issue 26: the index's model and family
Command add_serve_command(CLI::App& root);   // issue 6: web page and HTTP API
Command add_doctor_command(CLI::App& root);  // build, GPU and CUDA switches for bug reports

}  // namespace clipfind
